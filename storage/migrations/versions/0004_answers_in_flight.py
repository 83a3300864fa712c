"""Answers in flight: what a crashed process was streaming, for another process to finish.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_in_flight",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_answer_in_flight_owner", "answer_in_flight", ["owner"])
    op.create_index(
        "ix_answer_in_flight_platform_heartbeat", "answer_in_flight", ["platform", "heartbeat_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_answer_in_flight_platform_heartbeat", table_name="answer_in_flight")
    op.drop_index("ix_answer_in_flight_owner", table_name="answer_in_flight")
    op.drop_table("answer_in_flight")
