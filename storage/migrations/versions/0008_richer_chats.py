"""Richer chats: the ledger counts each chat's web searches and what they cost.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "usage_record",
        sa.Column("web_search_requests", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "usage_record", sa.Column("web_search_cost_nano", sa.BigInteger(), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_record") as batch:
        batch.drop_column("web_search_cost_nano")
        batch.drop_column("web_search_requests")
