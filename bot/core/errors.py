"""User-facing errors raised by the core; each message is one sentence a user can act on."""

from __future__ import annotations


class UserFacingError(Exception):
    """An expected failure whose message is shown to the user as it is."""

    #: Whether the reply should be visible only to the person who asked.
    private = False

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class UsageError(UserFacingError):
    """A malformed command; the message carries the right usage."""

    private = True


class PermissionDenied(UserFacingError):
    private = True


class NotFound(UserFacingError):
    pass


class NoApiKey(UserFacingError):
    pass


class ModelNotAllowed(UserFacingError):
    pass


class BudgetExceeded(UserFacingError):
    pass


class AccessDenied(UserFacingError):
    """A chat refused by a channel or person access rule (SPEC §5a)."""


class ConfigurationError(Exception):
    """The operator's configuration is incomplete; the message says which variable to set."""
