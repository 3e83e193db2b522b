"""Engines for the two supported backends, tuned for several processes writing at once.

SQLite: WAL (readers never block the writer), a busy timeout, and ``BEGIN IMMEDIATE`` for write
transactions so two writers queue on the lock instead of failing with "database is locked" when
a read transaction tries to upgrade. PostgreSQL: psycopg2 with pre-ping; concurrency is handled
by single-statement upserts (ON CONFLICT) in the ledger's queries.
"""

import json
import sqlite3
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mirakl_pipelines.ledger.errors import InvalidLedgerInput

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
READ_ONLY = "ledger_read_only"  # execution option: a deferred (shared) SQLite transaction


def _json_default(value):
    # Details often carry Decimal money and datetimes; keep them exact and readable.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON serialisable")


def dumps_json(value) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True)


def create_ledger_engine(url: str) -> sa.Engine:
    """An engine for ``sqlite:///path`` (parent directory created) or ``postgresql+psycopg2://…``."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InvalidLedgerInput(f"ledger URL {url!r} is not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg2":
            # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which is not installed.
            raise InvalidLedgerInput(
                f"ledger URL {parsed.render_as_string(hide_password=True)!r}: use postgresql+psycopg2://…"
            )
        return sa.create_engine(parsed, pool_pre_ping=True, json_serializer=dumps_json)
    raise InvalidLedgerInput(
        f"ledger URL {parsed.render_as_string(hide_password=True)!r}: backend {backend!r} is not supported "
        "(use sqlite:///path or postgresql+psycopg2://…)"
    )


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise InvalidLedgerInput(
            f"ledger URL {url.render_as_string()!r}: the ledger needs a SQLite file (sqlite:///path/to/ledger.sqlite)"
        )
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        json_serializer=dumps_json,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        # Autocommit at the driver level: SQLAlchemy's "begin" hook below issues BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection):
        mode = "DEFERRED" if connection.get_execution_options().get(READ_ONLY) else "IMMEDIATE"
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _enable_wal(cursor) -> None:
    # WAL is a property of the file, set once. Switching needs a moment with no other transaction
    # open and SQLite reports "locked" at once instead of waiting, so first connects retry.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
