"""How a command names a person on each platform (SPEC §1 "user reference"): the id a
reference must come down to there, checked before a limit or an access rule is stored.

The grammar (:func:`bot.core.policy_commands.parse_user_ref`) already turned ``<@U123|bob>``
into ``U123`` and ``@bob`` into ``bob``; a Slack or Discord rule keyed by a plain name would
never match anyone, so it is refused with how to name the person instead.
"""

from __future__ import annotations

import re

from bot.core.errors import UsageError
from bot.core.replies import Invocation

_IDS: dict[str, tuple[re.Pattern[str], str]] = {
    "slack": (re.compile(r"^[UW][A-Z0-9]+$"), "a Slack user; mention them, e.g. @name"),
    "discord": (
        re.compile(r"^[0-9]{1,21}$"),
        "a Discord member; pick them in the user option or mention them",
    ),
}


def user_id(ctx: Invocation, ref: str) -> str:
    """The platform id ``ref`` names in ``ctx``'s platform (the console: a plain name)."""
    known = _IDS.get(ctx.platform)
    if known is not None and not known[0].match(ref):
        raise UsageError(f"`{ref[:40]}` is not {known[1]}.")
    return ref
