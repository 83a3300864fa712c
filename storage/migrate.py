"""Schema migrations: a fast "already at head?" check for start-up, and a locked Alembic upgrade.

Alembic is imported only when an upgrade is actually needed: importing it (and loading the
revision scripts) costs more than the console's whole start-up budget, while checking
``alembic_version`` against :data:`HEAD` is one query.

A new revision, from a Python prompt (there is no alembic.ini)::

    from alembic import command
    from storage.migrate import alembic_config
    command.revision(alembic_config(database_url="sqlite:///data/dev.db"),
                     autogenerate=True, rev_id="0002", message="...")

then tidy the generated file, and set :data:`HEAD` to the new id.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.db import Database, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD",
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "upgrade",
]

#: The newest revision in ``storage/migrations/versions``; bump it with every new revision
#: (a test checks it against Alembic's own idea of the head).
HEAD = "0007"

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"

#: Arbitrary but fixed: every routerbot process must use the same key to serialise upgrades.
#: (``int.from_bytes(b"rbmigrat")``; any 64-bit value no other application uses would do.)
PG_MIGRATION_LOCK_KEY = 0x72626D6967726174


def alembic_config(*, database_url: str | None = None, connection: Any = None) -> Config:
    """An Alembic config built in code (no alembic.ini), pointing at this package's scripts."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Alembic's head revision, read from the scripts (slow: imports Alembic)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"expected one migration head, found {heads}")
    return heads[0]


def _current_revision_sync(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    found = sorted(versions.all())
    # Several rows only happen with branched histories; joined, they never equal HEAD.
    return ",".join(found) if found else None


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or ``None`` for a database never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision_sync)


def _alembic_upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection=connection), "head")


async def _lock_for_migration(connection: AsyncConnection) -> None:
    """Serialise concurrent upgrades (several workers starting at once) until commit.

    PostgreSQL: a transaction-level advisory lock, released by the commit or by the rollback
    of a failed or killed migration. SQLite: ``BEGIN IMMEDIATE`` takes the database's write
    lock up front (waiting out the busy timeout) and makes the DDL one transaction; the
    driver would otherwise run each DDL statement on its own.
    """
    if connection.dialect.name == "postgresql":
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY}
        )
    elif connection.dialect.name == "sqlite":
        await connection.exec_driver_sql("BEGIN IMMEDIATE")


async def _upgrade_engine(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await _lock_for_migration(connection)
        # The lock opened the transaction, so Alembic treats it as external and leaves the
        # commit to us: migrations and version bump land together, then the lock is released.
        await connection.run_sync(_alembic_upgrade)
        await connection.commit()


async def upgrade(database_url: str) -> None:
    """Upgrade the database to the newest revision; safe to run from several processes."""
    engine = make_engine(database_url, poolclass=pool.NullPool)
    try:
        await _upgrade_engine(engine)
    finally:
        await engine.dispose()


async def ensure_schema(db: Database) -> None:
    """Make sure the schema is current: one query when it already is, else an upgrade."""
    if await current_revision(db.engine) == HEAD:
        return
    await _upgrade_engine(db.engine)
    reached = await current_revision(db.engine)
    if reached != HEAD:
        # Otherwise every start-up would silently pay for a full Alembic run.
        raise RuntimeError(
            f"database is at revision {reached}, but storage.migrate.HEAD is {HEAD}: "
            "update HEAD when adding a migration"
        )
