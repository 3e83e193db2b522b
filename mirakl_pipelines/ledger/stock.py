"""Stock pushes: the STO01 imports sent per marketplace and the last quantity sent per offer SKU.

A stock file sets absolute quantities, so sending a line twice is harmless; what matters is sending
every change at least once and never over an import Mirakl is still processing. The rows here are
the resume point: an import recorded SENT/WAITING/RUNNING is polled by the next run before it sends,
a failed import's lines are sent again, a rejected line waits for the next full file.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, Optional

import pandas as pd
import sqlalchemy as sa

from mirakl_pipelines.ledger.base import LedgerBase, require_text
from mirakl_pipelines.ledger.errors import InvalidLedgerInput
from mirakl_pipelines.ledger.tables import stock_imports as si
from mirakl_pipelines.ledger.tables import stock_sent as ss
from mirakl_pipelines.ledger.timestamps import require_aware

SENT = "SENT"  # recorded before Mirakl's first STO02 answer
FINISHED_STATUSES = ("COMPLETE", "FAILED")
LINE_STATES = ("pending", "applied", "rejected", "failed")
_CHUNK = 5_000  # rows per executemany: bounded statement size on both backends
_SQLITE_UPSERT_SENT = (
    "INSERT INTO stock_sent (marketplace, offer_sku, quantity, import_id, state, sent_at) VALUES (?, ?, ?, ?, 'pending', ?) "
    "ON CONFLICT (marketplace, offer_sku) DO UPDATE SET quantity = excluded.quantity, import_id = excluded.import_id, "
    "state = 'pending', error = NULL, sent_at = excluded.sent_at, settled_at = NULL"
)


@dataclass(frozen=True)
class StockImport:
    marketplace: str
    import_id: str
    mode: str
    run_id: Optional[str]
    lines: int
    snapshot_at: datetime
    sent_at: datetime
    status: str
    lines_in_success: Optional[int]
    lines_in_error: Optional[int]
    lines_rejected: Optional[int]
    finished_at: Optional[datetime]
    error: Optional[str]
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @classmethod
    def from_row(cls, row) -> "StockImport":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def _quantities(lines: pd.DataFrame, record: str) -> list[tuple[str, int]]:
    if not {"offer_sku", "quantity"} <= set(lines.columns):
        raise InvalidLedgerInput(f"{record}: lines need offer_sku and quantity columns, got {list(lines.columns)}")
    pairs = list(zip(lines["offer_sku"].tolist(), lines["quantity"].tolist()))
    for sku, quantity in pairs:
        require_text(sku, "offer_sku", record)
        if quantity is None or quantity is pd.NA or int(quantity) != quantity or quantity < 0:
            raise InvalidLedgerInput(f"{record}: quantity of offer {sku!r} must be an int >= 0, got {quantity!r}")
    return [(sku, int(q)) for sku, q in pairs]


class StockPushes(LedgerBase):
    def record_stock_import(self, marketplace: str, import_id: str, *, mode: str, run_id: Optional[str],
                            lines: pd.DataFrame, snapshot_at: datetime, now: datetime) -> None:
        """An import Mirakl accepted (STO01 answered its id) and the lines it carried, now pending."""
        record = f"stock import {import_id!r} of marketplace {marketplace!r}"
        require_text(marketplace, "marketplace", record)
        require_text(import_id, "import_id", record)
        if mode not in ("delta", "full"):
            raise InvalidLedgerInput(f"{record}: mode must be 'delta' or 'full', got {mode!r}")
        snapshot_at = require_aware(snapshot_at, "snapshot_at", record, optional=False)
        now = require_aware(now, "now", record, optional=False)
        pairs = _quantities(lines, record)
        with self._write() as conn:
            conn.execute(sa.insert(si).values(
                marketplace=marketplace, import_id=import_id, mode=mode, run_id=run_id, lines=len(pairs),
                snapshot_at=snapshot_at, sent_at=now, status=SENT, updated_at=now))
            self._write_sent_lines(conn, marketplace, import_id, pairs, now)

    def _write_sent_lines(self, conn: sa.Connection, marketplace: str, import_id: str, pairs: list[tuple[str, int]],
                          now: datetime) -> None:
        if self.backend == "sqlite":
            # A full file is 100,000 lines: SQLAlchemy's per-row parameter processing took 2 s of a 100k-SKU run, the
            # driver's own executemany a fraction of it. The time shared by every line is converted once.
            to_db = ss.c.sent_at.type.bind_processor(conn.dialect) or (lambda value: value)
            sent_at = to_db(now)
            conn.exec_driver_sql(_SQLITE_UPSERT_SENT, [(marketplace, sku, quantity, import_id, sent_at)
                                                       for sku, quantity in pairs])
            return
        stmt = self._upsert(ss)
        stmt = stmt.on_conflict_do_update(
            index_elements=[ss.c.marketplace, ss.c.offer_sku],
            set_={"quantity": stmt.excluded.quantity, "import_id": stmt.excluded.import_id, "state": "pending",
                  "error": None, "sent_at": stmt.excluded.sent_at, "settled_at": None})
        for start in range(0, len(pairs), _CHUNK):
            conn.execute(stmt, [{"marketplace": marketplace, "offer_sku": sku, "quantity": quantity,
                                 "import_id": import_id, "state": "pending", "sent_at": now}
                                for sku, quantity in pairs[start:start + _CHUNK]])

    def update_stock_import(self, marketplace: str, import_id: str, status: str, *, now: datetime,
                            lines_in_success: Optional[int] = None, lines_in_error: Optional[int] = None) -> None:
        """Mirakl's latest STO02 status of an import not finished yet (WAITING, RUNNING)."""
        now = require_aware(now, "now", f"stock import {import_id!r}", optional=False)
        with self._write() as conn:
            conn.execute(sa.update(si).where(si.c.marketplace == marketplace, si.c.import_id == import_id,
                                             si.c.status.not_in(FINISHED_STATUSES))
                         .values(status=status, lines_in_success=lines_in_success, lines_in_error=lines_in_error,
                                 updated_at=now))

    def settle_stock_import(self, marketplace: str, import_id: str, status: str, *, now: datetime,
                            lines_in_success: Optional[int] = None, lines_in_error: Optional[int] = None,
                            rejected: Mapping[str, str] | None = None, error: Optional[str] = None) -> int:
        """A finished import: COMPLETE applies its lines except `rejected` (offer SKU → Mirakl's reason); FAILED
        applies none, so they are sent again. Only lines still carried by this import change (a later import may
        have taken a SKU over). Returns the lines settled."""
        record = f"stock import {import_id!r} of marketplace {marketplace!r}"
        if status not in FINISHED_STATUSES:
            raise InvalidLedgerInput(f"{record}: a settled import is COMPLETE or FAILED, got {status!r}")
        now = require_aware(now, "now", record, optional=False)
        rejected = dict(rejected or {})
        mine = sa.and_(ss.c.marketplace == marketplace, ss.c.import_id == import_id, ss.c.state == "pending")
        with self._write() as conn:
            conn.execute(sa.update(si).where(si.c.marketplace == marketplace, si.c.import_id == import_id).values(
                status=status, lines_in_success=lines_in_success, lines_in_error=lines_in_error,
                lines_rejected=len(rejected), finished_at=now, error=error, updated_at=now))
            settled = conn.execute(sa.update(ss).where(mine).values(
                state="applied" if status == "COMPLETE" else "failed", settled_at=now,
                error=None if status == "COMPLETE" else error)).rowcount
            skus = list(rejected)
            for start in range(0, len(skus), _CHUNK):
                conn.execute(
                    sa.update(ss).where(ss.c.marketplace == marketplace, ss.c.import_id == import_id,
                                        ss.c.offer_sku == sa.bindparam("sku"))
                    .values(state="rejected", error=sa.bindparam("reason")),
                    [{"sku": sku, "reason": rejected[sku]} for sku in skus[start:start + _CHUNK]])
        return settled

    def unfinished_stock_imports(self, marketplace: str) -> list[StockImport]:
        """Imports sent and not known to be finished, oldest first."""
        with self._read() as conn:
            rows = conn.execute(sa.select(si).where(si.c.marketplace == marketplace, si.c.status.not_in(FINISHED_STATUSES))
                                .order_by(si.c.sent_at)).mappings()
            return [StockImport.from_row(r) for r in rows]

    def stock_imports(self, marketplace: str, *, since: Optional[datetime] = None) -> list[StockImport]:
        query = sa.select(si).where(si.c.marketplace == marketplace).order_by(si.c.sent_at)
        if since is not None:
            query = query.where(si.c.sent_at >= since)
        with self._read() as conn:
            return [StockImport.from_row(r) for r in conn.execute(query).mappings()]

    def last_stock_import(self, marketplace: str) -> Optional[StockImport]:
        with self._read() as conn:
            row = conn.execute(sa.select(si).where(si.c.marketplace == marketplace)
                               .order_by(si.c.sent_at.desc()).limit(1)).mappings().first()
        return StockImport.from_row(row) if row else None

    def stock_import_skus(self, marketplace: str, import_id: str) -> list[str]:
        """The offer SKUs an import still carries, in the order of its file (lines are sent sorted by offer SKU)."""
        with self._read() as conn:
            return list(conn.scalars(sa.select(ss.c.offer_sku).where(ss.c.marketplace == marketplace,
                                                                      ss.c.import_id == import_id)
                                     .order_by(ss.c.offer_sku)))

    def sent_stock(self, marketplace: str, states: Iterable[str] = ("pending", "applied", "rejected")) -> pd.DataFrame:
        """offer_sku, quantity, state of the last line sent per SKU (by default those not to be sent again)."""
        query = sa.select(ss.c.offer_sku, ss.c.quantity, ss.c.state).where(
            ss.c.marketplace == marketplace, ss.c.state.in_(list(states)))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return pd.DataFrame({"offer_sku": pd.array([r[0] for r in rows], dtype="string"),
                             "quantity": pd.array([r[1] for r in rows], dtype="Int64"),
                             "state": pd.array([r[2] for r in rows], dtype="string")})
