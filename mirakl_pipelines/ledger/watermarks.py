"""Sync watermarks: the end of the last successful fetch window per flow, marketplace and day."""

from datetime import date, datetime, timezone

import sqlalchemy as sa

from mirakl_pipelines.ledger.base import LedgerBase, require_text
from mirakl_pipelines.ledger.errors import InvalidLedgerInput
from mirakl_pipelines.ledger.tables import sync_watermarks as w
from mirakl_pipelines.ledger.timestamps import require_aware


def _check_day(day, record: str) -> date:
    # datetime is a date subclass; a datetime here is almost always a caller mix-up.
    if not isinstance(day, date) or isinstance(day, datetime):
        raise InvalidLedgerInput(f"{record}: day must be a datetime.date, got {type(day).__name__} {day!r}")
    return day


class Watermarks(LedgerBase):
    def get_watermark(self, flow: str, marketplace: str, day: date) -> datetime | None:
        _check_day(day, f"watermark {flow}/{marketplace}")
        query = sa.select(w.c.window_end).where(w.c.flow == flow, w.c.marketplace == marketplace, w.c.day == day)
        with self._read() as conn:
            return conn.execute(query).scalar_one_or_none()

    def set_watermark(self, flow: str, marketplace: str, day: date, window_end: datetime) -> None:
        """Move the watermark forward to ``window_end``; an earlier value leaves it where it is."""
        record = f"watermark {flow}/{marketplace}/{day}"
        require_text(flow, "flow", record)
        require_text(marketplace, "marketplace", record)
        _check_day(day, record)
        window_end = require_aware(window_end, "window_end", record, optional=False)
        stmt = self._upsert(w).values(
            flow=flow, marketplace=marketplace, day=day, window_end=window_end, updated_at=datetime.now(timezone.utc)
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[w.c.flow, w.c.marketplace, w.c.day],
            set_={"window_end": stmt.excluded.window_end, "updated_at": stmt.excluded.updated_at},
            where=stmt.excluded.window_end > w.c.window_end,
        )
        with self._write() as conn:
            conn.execute(stmt)
