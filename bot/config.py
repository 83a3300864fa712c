"""Configuration: read once from the environment (and a .env file) into typed settings."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.registry import PROVIDERS, find_provider
from bot.core.errors import ConfigurationError
from bot.core.text import clean_key, decode_utf8, looks_like_key

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_SETTINGS = REPO_ROOT / "defaultModelSettings.json"
_PACKAGED_MODEL_SETTINGS = Path(__file__).resolve().parent / "defaultModelSettings.json"


class SuggestedPrompt(BaseModel):
    """One of the prompts Slack offers in routerbot's Messages tab (``message`` is sent as
    the user's message when clicked; a routerbot command such as ``/models`` is answered by
    routerbot itself)."""

    model_config = ConfigDict(frozen=True)

    title: str = Field(min_length=1, max_length=100)
    message: str = Field(min_length=1, max_length=2000)


class Settings(BaseSettings):
    """Every knob of SPEC §6. Field names are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = "sqlite:///data/routerbot.db"
    routerbot_secret_key: SecretStr | None = None
    routerbot_data_dir: Path = Path("data")

    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    openrouter_api_key: SecretStr | None = None
    fireworks_base_url: str = "https://api.fireworks.ai/inference/v1"
    fireworks_api_key: SecretStr | None = None
    routerbot_model_settings: Path | None = None
    routerbot_app_url: str = "https://github.com/routerbot/routerbot"
    routerbot_app_title: str = "routerbot"
    routerbot_admins: str = ""
    routerbot_log_level: str = "INFO"
    #: How often a process records its answers in flight and renews its heartbeat, and how
    #: old a heartbeat must be before another process finishes that process's answers.
    routerbot_answer_heartbeat_seconds: float = Field(default=5.0, gt=0)
    routerbot_answer_stale_seconds: float = Field(default=30.0, gt=0)
    #: Budget holds and chats in flight are leases of the process running them: it renews
    #: them every ``routerbot_lease_renew_seconds`` while they run (and looks for chats of dead
    #: processes to settle as often); those of a process that died lapse after
    #: ``routerbot_lease_seconds``, and another process settles its chats.
    routerbot_lease_seconds: float = Field(default=45.0, gt=0)
    routerbot_lease_renew_seconds: float = Field(default=15.0, gt=0)
    #: The serving commands' event loop: ``uvloop`` (the default where it is installed) spends
    #: a fraction of asyncio's CPU on sockets and callbacks; ``asyncio`` is the standard one.
    routerbot_event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    #: What carries requests to the providers: ``aiohttp`` reads a streamed answer for a third
    #: of the CPU of httpx's own transport (``httpx``); both behave the same otherwise.
    routerbot_provider_transport: Literal["aiohttp", "httpx"] = "aiohttp"

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    #: ``auto``: answers stream with chat.startStream/appendStream/stopStream where the workspace
    #: allows it, else with chat.update; ``update``: always chat.update.
    slack_streaming: Literal["auto", "update"] = "auto"
    #: Up to four suggested prompts for the Messages tab, as JSON
    #: (``[{"title": …, "message": …}]``; ``[]``: none); unset: routerbot's defaults.
    slack_suggested_prompts: list[SuggestedPrompt] | None = Field(default=None, max_length=4)
    port: int = Field(default=3000, ge=0, le=65535)

    discord_token: SecretStr | None = None
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str | None = None
    discord_shard_count: int | None = None
    discord_shard_ids: str | None = None
    discord_auto_shard: bool = False

    @field_validator("openrouter_api_key", "fireworks_api_key")
    @classmethod
    def _fallback_key(cls, key: SecretStr | None) -> SecretStr | None:
        """The operator's keys, cleaned as an admin's pasted key is; one no HTTP header can
        carry stops start-up instead of every chat."""
        if key is None:
            return None
        cleaned = clean_key(key.get_secret_value())
        if not cleaned:
            return None
        if not looks_like_key(cleaned):
            raise ValueError(
                "does not look like an API key (spaces, or characters an HTTP header cannot carry)"
            )
        return SecretStr(cleaned)

    @model_validator(mode="after")
    def _renewed_within_the_lease(self) -> Settings:
        if self.routerbot_lease_renew_seconds >= self.routerbot_lease_seconds:
            raise ValueError(
                "ROUTERBOT_LEASE_RENEW_SECONDS must be shorter than ROUTERBOT_LEASE_SECONDS "
                "(a lease must be renewed before it lapses)"
            )
        return self

    @property
    def model_settings_path(self) -> Path:
        if self.routerbot_model_settings is not None:
            return self.routerbot_model_settings
        if DEFAULT_MODEL_SETTINGS.exists():
            return DEFAULT_MODEL_SETTINGS
        return _PACKAGED_MODEL_SETTINGS

    @cached_property
    def admins(self) -> frozenset[str]:
        """``platform:user_id`` entries of ROUTERBOT_ADMINS."""
        return frozenset(item.strip() for item in self.routerbot_admins.split(",") if item.strip())

    def fallback_key(self, provider: str) -> SecretStr | None:
        """The operator's key for workspaces that have not set their own (the setting the
        provider registry names)."""
        known = find_provider(provider)
        key = getattr(self, known.api_key_setting) if known is not None else None
        return key if isinstance(key, SecretStr) else None

    def base_urls(self) -> dict[str, str]:
        """Every provider's base URL, by provider name (the settings the registry names)."""
        return {p.name: str(getattr(self, p.base_url_setting)) for p in PROVIDERS}

    @property
    def secret_key_file(self) -> Path:
        return self.routerbot_data_dir / "secret.key"


def load_settings(**overrides: object) -> Settings:
    """The settings, or a ConfigurationError naming each variable at fault and why.

    Never pydantic's own message: it quotes each bad input, and the input may be a key.
    """
    _check_env_files(overrides.get("_env_file", Settings.model_config.get("env_file")))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper()}: "
            + error["msg"].removeprefix("Value error, ")
            for error in exc.errors()
        )
        raise ConfigurationError(problems) from None


def _check_env_files(env_files: object) -> None:
    """Refuse a .env file that is not UTF-8, naming it and the line: pydantic-settings reads
    it strictly, and its UnicodeDecodeError names neither."""
    if isinstance(env_files, str | Path):
        env_files = [env_files]
    if not isinstance(env_files, list | tuple):
        return
    for name in env_files:
        path = Path(name).absolute()
        try:
            raw = path.read_bytes()
        except OSError:
            continue  # absent or unreadable: pydantic-settings skips it as well
        try:
            decode_utf8(raw, str(path))
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
