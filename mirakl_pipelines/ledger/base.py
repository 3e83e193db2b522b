"""What every part of the ledger shares: the engine, transactions, and the dialect's upsert."""

import time
from contextlib import contextmanager
from typing import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mirakl_pipelines.ledger.engine import READ_ONLY
from mirakl_pipelines.ledger.errors import InvalidLedgerInput


class LedgerBase:
    """Holds the engine; the ledger's parts (orders, exceptions, watermarks, budget…) build on it.

    A later flow adds its state as another part: a table in ``tables.py`` and a mixin using
    ``_write()``/``_read()``/``_upsert()``, without touching the existing parts.
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], float] = time.time):
        self._engine = engine
        self._clock = clock

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    @property
    def backend(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._engine.dialect.name

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One write transaction (SQLite: BEGIN IMMEDIATE, so concurrent writers queue instead of failing)."""
        with self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """One read transaction that does not take SQLite's write lock."""
        with self._engine.connect() as conn:
            conn = conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                yield conn

    def _upsert(self, table: sa.Table):
        """INSERT … ON CONFLICT for this backend (both dialects share the on_conflict_* API)."""
        return (postgresql.insert if self.backend == "postgresql" else sqlite.insert)(table)

    def _greatest(self, *values):
        # SQLite's multi-argument max() is the scalar greatest-of.
        return (sa.func.greatest if self.backend == "postgresql" else sa.func.max)(*values)


def require_text(value, field: str, record: str) -> str:
    """A non-empty string key, or a clear error naming the record."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidLedgerInput(f"{record}: {field} must be a non-empty string, got {value!r}")
    return value
