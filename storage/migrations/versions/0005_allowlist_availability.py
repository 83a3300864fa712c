"""Allowlist availability: whether the provider still serves each allowlisted model.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "allowed_model", sa.Column("unavailable_reason", sa.String(length=16), nullable=True)
    )
    op.add_column("allowed_model", sa.Column("unavailable_since", sa.DateTime(), nullable=True))
    op.add_column("allowed_model", sa.Column("confirmed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("allowed_model") as batch:
        batch.drop_column("confirmed_at")
        batch.drop_column("unavailable_since")
        batch.drop_column("unavailable_reason")
