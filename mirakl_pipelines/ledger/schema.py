"""Create and upgrade the ledger schema, idempotently, on every connect.

Additive changes need no code: missing tables, columns and indexes are added from ``tables.py``.
Changes that need data work (back-fills, renames) go in MIGRATIONS, applied once each and
recorded in ``schema_version``. The whole upgrade runs in one transaction under a lock
(PostgreSQL advisory lock; SQLite's write lock from BEGIN IMMEDIATE), so concurrent first
connects do not race.
"""

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional, Sequence

import sqlalchemy as sa

from mirakl_pipelines.ledger.errors import LedgerError
from mirakl_pipelines.ledger.tables import metadata, schema_version

# Arbitrary constant naming "the ledger schema upgrade" among PostgreSQL advisory locks.
_PG_SCHEMA_LOCK_ID = 0x4D49524B  # "MIRK"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    upgrade: Optional[Callable[[sa.Connection], None]] = None  # None: additive only, done from tables.py


MIGRATIONS: list[Migration] = [
    Migration(1, "order links, exception queue, sync watermarks, call budget"),
]
SCHEMA_VERSION = MIGRATIONS[-1].version


def ensure_schema(
    engine: sa.Engine, *, tables: sa.MetaData = metadata, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the database up to date with ``tables`` and ``migrations``; return the schema version.

    The parameters exist for tests; the ledger always uses the module's own.
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK_ID)))
        tables.create_all(conn, checkfirst=True)
        schema_version.create(conn, checkfirst=True)
        _add_missing_columns_and_indexes(conn, tables)
        applied = set(conn.scalars(sa.select(schema_version.c.version)))
        for migration in migrations:
            if migration.version in applied:
                continue
            if migration.upgrade is not None:
                migration.upgrade(conn)
            conn.execute(
                sa.insert(schema_version).values(
                    version=migration.version,
                    description=migration.description,
                    applied_at=datetime.now(timezone.utc),
                )
            )
    return max(applied | {m.version for m in migrations})


def _add_missing_columns_and_indexes(conn: sa.Connection, tables: sa.MetaData) -> None:
    inspector = sa.inspect(conn)
    for table in tables.sorted_tables:
        existing_columns = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in existing_columns:
                continue
            if not column.nullable and column.server_default is None:
                raise LedgerError(
                    f"cannot add column {table.name}.{column.name} to an existing ledger: "
                    "a new column must be nullable or have a server_default"
                )
            ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {conn.dialect.identifier_preparer.format_table(table)} ADD COLUMN {ddl}")
        existing_indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in existing_indexes:
                index.create(conn)
