"""Spend governance: budgets, budget reservations, and the daily usage rollup (backfilled).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same aggregates as storage.stores.rollups (kept literal here: a migration must not
# change meaning when the application code does).
_AGGREGATES = """
    COALESCE(SUM(cost_nano), 0),
    SUM(CASE WHEN outcome <> 'error' THEN 1 ELSE 0 END),
    SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END),
    SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens),
    SUM(CASE WHEN cost_source = 'computed' AND cost_nano IS NOT NULL THEN 1 ELSE 0 END),
    SUM(CASE WHEN cost_nano IS NULL AND outcome <> 'error' THEN 1 ELSE 0 END)
"""

#: (scope, dim, key) expressions for the five rollups each usage row feeds.
_ROLLUPS = (
    ("channel_id", "'model'", "COALESCE(model_served, model_requested)"),
    ("channel_id", "'user'", "user_id"),
    ("''", "'model'", "COALESCE(model_served, model_requested)"),
    ("''", "'user'", "user_id"),
    ("''", "'channel'", "channel_id"),
)


def upgrade() -> None:
    op.create_table(
        "budget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("limit_nano", sa.BigInteger(), nullable=False),
        sa.Column("notified_month", sa.String(length=7), nullable=True),
        sa.Column("set_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "channel_id", name="uq_budget"),
    )

    op.create_table(
        "budget_reservation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("amount_nano", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_budget_reservation_ws_expires",
        "budget_reservation",
        ["workspace_id", "expires_at"],
    )

    op.create_table(
        "usage_daily",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("dim", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("cost_nano", sa.BigInteger(), nullable=False),
        sa.Column("chats", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("computed_cost_chats", sa.BigInteger(), nullable=False),
        sa.Column("unknown_cost_chats", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("workspace_id", "scope", "dim", "day", "group_key"),
        sqlite_with_rowid=False,
    )

    # Backfill from the ledger so summaries stay exact for rows written before this revision.
    day = "date(created_at)" if op.get_bind().dialect.name == "sqlite" else "CAST(created_at AS DATE)"
    for scope, dim, key in _ROLLUPS:
        # PostgreSQL rejects a string constant in GROUP BY, so the '' scope is left out of it.
        group_by = ", ".join(c for c in ("workspace_id", scope, day, key) if c != "''")
        op.execute(
            f"INSERT INTO usage_daily (workspace_id, scope, dim, day, group_key, cost_nano, chats, "
            f"failed, prompt_tokens, cached_tokens, completion_tokens, computed_cost_chats, "
            f"unknown_cost_chats) "
            f"SELECT workspace_id, {scope}, {dim}, {day}, {key}, {_AGGREGATES} "
            f"FROM usage_record GROUP BY {group_by}"
        )


def downgrade() -> None:
    op.drop_table("usage_daily")
    op.drop_index("ix_budget_reservation_ws_expires", table_name="budget_reservation")
    op.drop_table("budget_reservation")
    op.drop_table("budget")
