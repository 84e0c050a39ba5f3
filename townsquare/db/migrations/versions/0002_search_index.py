"""full-text search index over statuses

On SQLite an external-content FTS5 table mirrors ``statuses.text`` and ``spoiler_text``, kept in
step by triggers inside the writing transaction. On PostgreSQL a GIN index over the same text
serves ``to_tsvector('simple', ...) @@ plainto_tsquery('simple', ...)``; the expression here must
stay identical to the one in ``townsquare/search/statuses.py`` for the planner to use it.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UP = (
    """
    CREATE VIRTUAL TABLE statuses_fts USING fts5(
        text, spoiler_text,
        content='statuses', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER statuses_fts_insert AFTER INSERT ON statuses BEGIN
        INSERT INTO statuses_fts(rowid, text, spoiler_text)
        VALUES (new.id, new.text, new.spoiler_text);
    END
    """,
    """
    CREATE TRIGGER statuses_fts_delete AFTER DELETE ON statuses BEGIN
        INSERT INTO statuses_fts(statuses_fts, rowid, text, spoiler_text)
        VALUES ('delete', old.id, old.text, old.spoiler_text);
    END
    """,
    """
    CREATE TRIGGER statuses_fts_update AFTER UPDATE OF text, spoiler_text ON statuses BEGIN
        INSERT INTO statuses_fts(statuses_fts, rowid, text, spoiler_text)
        VALUES ('delete', old.id, old.text, old.spoiler_text);
        INSERT INTO statuses_fts(rowid, text, spoiler_text)
        VALUES (new.id, new.text, new.spoiler_text);
    END
    """,
    "INSERT INTO statuses_fts(statuses_fts) VALUES ('rebuild')",
)

SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS statuses_fts_update",
    "DROP TRIGGER IF EXISTS statuses_fts_delete",
    "DROP TRIGGER IF EXISTS statuses_fts_insert",
    "DROP TABLE IF EXISTS statuses_fts",
)

POSTGRES_UP = (
    "CREATE INDEX ix_statuses_search ON statuses "
    "USING gin (to_tsvector('simple', text || ' ' || spoiler_text))",
)

POSTGRES_DOWN = ("DROP INDEX IF EXISTS ix_statuses_search",)


def _run(statements: Sequence[str]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_UP)
    elif dialect == "postgresql":
        _run(POSTGRES_UP)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _run(SQLITE_DOWN)
    elif dialect == "postgresql":
        _run(POSTGRES_DOWN)
