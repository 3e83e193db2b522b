"""The exception queue: problems a person must act on, each with a reason they can act on.

At most one OPEN row per (marketplace, kind, record): raising it again counts an occurrence and
refreshes the reason and details; resolving closes it, and a later raise opens a new row.
"""

from datetime import datetime
from typing import Iterable

import sqlalchemy as sa

from mirakl_pipelines.ledger.base import LedgerBase, require_text
from mirakl_pipelines.ledger.engine import dumps_json
from mirakl_pipelines.ledger.errors import InvalidLedgerInput
from mirakl_pipelines.ledger.records import ExceptionRecord
from mirakl_pipelines.ledger.tables import OPEN_EXCEPTION_WHERE
from mirakl_pipelines.ledger.tables import exception_queue as q
from mirakl_pipelines.ledger.timestamps import require_aware


class ExceptionQueue(LedgerBase):
    def raise_exception(
        self,
        marketplace: str,
        kind: str,
        record_id: str,
        reason: str,
        details: dict | None = None,
        *,
        now: datetime,
    ) -> ExceptionRecord:
        record = f"{kind} exception for {record_id!r} of marketplace {marketplace!r}"
        for field, value in (("marketplace", marketplace), ("kind", kind), ("record_id", record_id), ("reason", reason)):
            require_text(value, field, record)
        details = {} if details is None else details
        if not isinstance(details, dict):
            raise InvalidLedgerInput(f"{record}: details must be a dict, got {type(details).__name__}")
        try:
            dumps_json(details)
        except (TypeError, ValueError) as exc:
            raise InvalidLedgerInput(f"{record}: details cannot be stored as JSON ({exc})") from exc
        now = require_aware(now, "now", record, optional=False)
        with self._write() as conn:
            return self._open_exception(conn, marketplace, kind, record_id, reason, details, now)

    def _open_exception(self, conn: sa.Connection, marketplace: str, kind: str, record_id: str, reason: str,
                        details: dict, now: datetime) -> ExceptionRecord:
        """raise_exception's write, inside the caller's transaction (arguments already checked)."""
        stmt = self._upsert(q).values(
            marketplace=marketplace,
            kind=kind,
            record_id=record_id,
            reason=reason,
            details=details,
            status="open",
            occurrences=1,
            first_seen_at=now,
            last_seen_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[q.c.marketplace, q.c.kind, q.c.record_id],
            index_where=OPEN_EXCEPTION_WHERE,
            set_={
                "reason": stmt.excluded.reason,
                "details": stmt.excluded.details,
                "occurrences": q.c.occurrences + 1,
                "last_seen_at": stmt.excluded.last_seen_at,
            },
        )
        conn.execute(stmt)
        row = conn.execute(
            sa.select(q).where(
                q.c.marketplace == marketplace, q.c.kind == kind, q.c.record_id == record_id, OPEN_EXCEPTION_WHERE
            )
        ).mappings().one()
        return ExceptionRecord.from_row(row)

    def resolve_exceptions(
        self, marketplace: str, record_id: str, kinds: Iterable[str] | None = None, *, now: datetime
    ) -> int:
        """Close the open exceptions of a record (all kinds, or only ``kinds``); returns how many were closed."""
        now = require_aware(now, "now", f"record {record_id!r} of marketplace {marketplace!r}", optional=False)
        stmt = (
            sa.update(q)
            .where(q.c.marketplace == marketplace, q.c.record_id == record_id, OPEN_EXCEPTION_WHERE)
            .values(status="resolved", resolved_at=now)
        )
        if kinds is not None:
            stmt = stmt.where(q.c.kind.in_(list(kinds)))
        with self._write() as conn:
            return conn.execute(stmt).rowcount

    def open_exceptions(
        self, marketplace: str | None = None, kinds: Iterable[str] | None = None
    ) -> list[ExceptionRecord]:
        """Open exceptions, oldest first, optionally for one marketplace and some kinds."""
        query = sa.select(q).where(OPEN_EXCEPTION_WHERE).order_by(q.c.first_seen_at, q.c.id)
        if marketplace is not None:
            query = query.where(q.c.marketplace == marketplace)
        if kinds is not None:
            query = query.where(q.c.kind.in_(list(kinds)))
        with self._read() as conn:
            return [ExceptionRecord.from_row(row) for row in conn.execute(query).mappings()]
