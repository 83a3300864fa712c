"""Ledger leases: budget holds owned by a live process, and chats in flight until settled.

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing holds have no owner: they lapse at their old 15-minute expiry.
    op.add_column("budget_reservation", sa.Column("owner", sa.String(length=32), nullable=True))
    op.create_index("ix_budget_reservation_owner", "budget_reservation", ["owner"])
    op.create_table(
        "chat_in_flight",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("generation_id", sa.String(length=128), nullable=True),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("streamed_chars", sa.Integer(), nullable=False),
        sa.Column("usage_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.ForeignKeyConstraint(["usage_id"], ["usage_record.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_chat_in_flight_lease", "chat_in_flight", ["lease_until"])


def downgrade() -> None:
    op.drop_index("ix_chat_in_flight_lease", table_name="chat_in_flight")
    op.drop_table("chat_in_flight")
    op.drop_index("ix_budget_reservation_owner", table_name="budget_reservation")
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("budget_reservation") as batch:
        batch.drop_column("owner")
