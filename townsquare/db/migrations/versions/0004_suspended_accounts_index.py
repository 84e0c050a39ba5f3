"""partial index on suspended accounts

Every timeline read asks for the suspended accounts (``hidden_account_ids``); without an index
that is a scan of the whole accounts table, about 5 ms per page with 10,000 accounts on SQLite.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Partial: few accounts are ever suspended, and SQLite's planner takes a full index on a
    # mostly-NULL column for unselective and scans the table anyway.
    suspended = sa.text("suspended_at IS NOT NULL")
    op.create_index(
        "ix_accounts_suspended_at",
        "accounts",
        ["suspended_at"],
        sqlite_where=suspended,
        postgresql_where=suspended,
    )


def downgrade() -> None:
    op.drop_index("ix_accounts_suspended_at", table_name="accounts")
