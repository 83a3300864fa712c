"""What the front-ends keep across processes: event claims, answers in flight, Slack installs
and OAuth states."""

from __future__ import annotations

from pydantic import NaiveDatetime
from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.models.clock import utcnow


class ProcessedEvent(SQLModel, table=True):
    """A platform event already taken by some process: the cross-process de-duplication claim.

    ``event_key`` is whatever identifies one delivery on its platform (Slack: a message's
    team, channel and ts, or a slash command's trigger id). Old rows are pruned.
    """

    __tablename__ = "processed_event"
    __table_args__ = (
        UniqueConstraint("platform", "event_key", name="uq_processed_event"),
        Index("ix_processed_event_created_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    event_key: str = Field(max_length=255)
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class AnswerInFlight(SQLModel, table=True):
    """An answer a process is still streaming into a chat, so that another process can finish
    its message if this one dies (SIGKILL, an out-of-memory kill, a lost machine).

    ``owner`` is the streaming process's random id; it renews ``heartbeat_at`` while it lives.
    ``target`` is JSON only its platform's front-end reads: where the message is (channel,
    message ids) and how to say the answer was cut short. It holds no plain secret: a
    credential it needs (a Discord interaction token) is encrypted with the key vault.
    """

    __tablename__ = "answer_in_flight"
    __table_args__ = (Index("ix_answer_in_flight_platform_heartbeat", "platform", "heartbeat_at"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    owner: str = Field(max_length=32, index=True)
    target: str = Field(sa_column=Column(Text, nullable=False))
    heartbeat_at: NaiveDatetime
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class SlackInstallation(SQLModel, table=True):
    """A Slack workspace (or org) that installed the app through OAuth; the latest wins.

    ``enterprise_id`` and ``team_id`` are ``""`` rather than NULL when absent, so the unique
    constraint holds (NULLs never collide). Tokens are Fernet-encrypted like provider keys.
    """

    __tablename__ = "slack_installation"
    __table_args__ = (
        UniqueConstraint("client_id", "enterprise_id", "team_id", name="uq_slack_installation"),
    )

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(max_length=64)
    app_id: str | None = Field(default=None, max_length=32)
    enterprise_id: str = Field(default="", max_length=32)
    enterprise_name: str | None = Field(default=None, max_length=200)
    team_id: str = Field(default="", max_length=32)
    team_name: str | None = Field(default=None, max_length=200)
    is_enterprise_install: bool = False
    bot_id: str | None = Field(default=None, max_length=32)
    bot_user_id: str | None = Field(default=None, max_length=32)
    bot_scopes: str = Field(default="", max_length=1000)
    bot_token: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    bot_refresh_token: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    bot_token_expires_at: NaiveDatetime | None = None
    installer_user_id: str | None = Field(default=None, max_length=32)
    installed_at: NaiveDatetime = Field(default_factory=utcnow)


class SlackOAuthState(SQLModel, table=True):
    """A one-time OAuth ``state`` issued by ``/slack/install``; consumed by the redirect."""

    __tablename__ = "slack_oauth_state"
    __table_args__ = (UniqueConstraint("state", name="uq_slack_oauth_state"),)

    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(max_length=64)
    expire_at: NaiveDatetime = Field(index=True)
