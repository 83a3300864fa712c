"""Governance: per-user budgets and their holds, notice claims, channel policies, user access,
the audit log, and an index for one person's spend.

Revision ID: 0006
Revises: 0004 (re-chained after 0005 at merge)
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A budget's scope gains a person: (channel, user), "" for none, "*" for each user.
    # Batch mode: SQLite can only change a unique constraint by rebuilding the table.
    with op.batch_alter_table("budget") as batch:
        batch.add_column(
            sa.Column("user_id", sa.String(length=64), nullable=False, server_default="")
        )
        batch.drop_constraint("uq_budget", type_="unique")
        batch.create_unique_constraint(
            "uq_budget_scope", ["workspace_id", "channel_id", "user_id"]
        )
    with op.batch_alter_table("budget") as batch:
        # The default only filled the existing rows; the application always says.
        batch.alter_column("user_id", server_default=None)

    op.add_column(
        "budget_reservation",
        sa.Column("user_id", sa.String(length=64), nullable=False, server_default=""),
    )
    with op.batch_alter_table("budget_reservation") as batch:
        batch.alter_column("user_id", server_default=None)

    op.create_table(
        "budget_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("budget_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["budget_id"], ["budget.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("budget_id", "subject", "month", "level", name="uq_budget_notice"),
    )
    # The 80 % notices already given this month stay given.
    op.execute(
        "INSERT INTO budget_notice (budget_id, subject, month, level) "
        "SELECT id, '', notified_month, 80 FROM budget WHERE notified_month IS NOT NULL"
    )

    op.create_table(
        "channel_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("default_model", sa.String(length=200), nullable=True),
        sa.Column("chats_off", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "channel_id", name="uq_channel_policy"),
    )
    op.create_table(
        "user_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "user_id", name="uq_user_access"),
    )
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspace.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_entry_ws_time", "audit_entry", ["workspace_id", "created_at"])
    op.create_index(
        "ix_usage_ws_user_time", "usage_record", ["workspace_id", "user_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_usage_ws_user_time", table_name="usage_record")
    op.drop_index("ix_audit_entry_ws_time", table_name="audit_entry")
    op.drop_table("audit_entry")
    op.drop_table("user_access")
    op.drop_table("channel_policy")
    op.drop_table("budget_notice")
    with op.batch_alter_table("budget_reservation") as batch:
        batch.drop_column("user_id")
    # Person-scoped limits have no place in the older schema.
    op.execute("DELETE FROM budget WHERE user_id <> ''")
    with op.batch_alter_table("budget") as batch:
        batch.drop_constraint("uq_budget_scope", type_="unique")
        batch.create_unique_constraint("uq_budget", ["workspace_id", "channel_id"])
        batch.drop_column("user_id")
