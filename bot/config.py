"""Configuration: read once from the environment (and a .env file) into typed settings."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.registry import PROVIDERS, find_provider

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_SETTINGS = REPO_ROOT / "defaultModelSettings.json"
_PACKAGED_MODEL_SETTINGS = Path(__file__).resolve().parent / "defaultModelSettings.json"


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

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    #: ``auto``: answers stream with chat.startStream/appendStream/stopStream where the workspace
    #: allows it, else with chat.update; ``update``: always chat.update.
    slack_streaming: Literal["auto", "update"] = "auto"
    port: int = Field(default=3000, ge=0, le=65535)

    discord_token: SecretStr | None = None
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str | None = None
    discord_shard_count: int | None = None
    discord_shard_ids: str | None = None
    discord_auto_shard: bool = False

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
    return Settings(**overrides)  # type: ignore[arg-type]
