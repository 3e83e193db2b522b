"""The `mirakl_orders` parquet dataset: every Mirakl order seen in a day, as received.

One row per order: the latest version seen that day (a day's first refreshes also fetch the previous
day's last updates, see sync/windows.py, so an order updated just before midnight may sit in both
days). `raw_json` is the order exactly as the client parsed it (unknown fields included), so a
mapping fix can be replayed without calling Mirakl again; the other columns are there for people
and query engines.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from mirakl_pipelines.defs.io import MONEY, TIMESTAMP, read_partition
from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.sync.windows import MergeResult, merge_orders

DATASET = "mirakl_orders"

SCHEMA = pa.schema(
    [
        pa.field("order_id", pa.string(), nullable=False),
        pa.field("commercial_id", pa.string()),
        pa.field("order_state", pa.string()),
        pa.field("created_date", TIMESTAMP),
        pa.field("last_updated_date", TIMESTAMP),
        pa.field("currency", pa.string()),
        pa.field("total_price", MONEY),
        pa.field("total_commission", MONEY),
        pa.field("line_count", pa.int32()),
        pa.field("raw_json", pa.string(), nullable=False),
    ]
)

_CENT = Decimal("0.0001")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_CENT)


def to_table(orders: list[MiraklOrder]) -> pa.Table:
    rows = [
        {
            "order_id": o.order_id,
            "commercial_id": o.commercial_id,
            "order_state": o.order_state,
            "created_date": o.created_date,
            "last_updated_date": o.last_updated_date,
            "currency": o.currency_iso_code,
            "total_price": _money(o.total_price),
            "total_commission": _money(o.total_commission),
            "line_count": len(o.order_lines),
            "raw_json": o.model_dump_json(),
        }
        for o in orders
    ]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


@dataclass(frozen=True)
class OrderKey:
    """What identifies an order's snapshot, read from the columns without parsing the raw JSON."""

    index: int
    order_id: str
    order_state: str | None
    last_updated_date: datetime | None


def keys(table: pa.Table) -> list[OrderKey]:
    ids, states, updated = (table.column(name).to_pylist() for name in ("order_id", "order_state", "last_updated_date"))
    return [OrderKey(i, *row) for i, row in enumerate(zip(ids, states, updated))]


def parse(table: pa.Table, indices: list[int] | None = None) -> list[MiraklOrder]:
    """The orders at `indices` (all when None), parsed from their raw JSON."""
    raw = table.column("raw_json")
    rows = range(len(table)) if indices is None else indices
    return [MiraklOrder.model_validate_json(raw[i].as_py()) for i in rows]


def merge_into(table: pa.Table, fresh: list[MiraklOrder]) -> tuple[pa.Table, MergeResult]:
    """Fold a fetch into the day's table. Rows kept from the table are copied, not parsed again:
    only the fetched orders are serialised."""
    held_keys = keys(table)
    # The look-back fetches most of the day's recent orders again, unchanged: drop those copies first.
    seen = {(k.order_id, k.last_updated_date) for k in held_keys}
    fresh = [o for o in fresh if (o.order_id, o.last_updated_date) not in seen]
    held = [MiraklOrder.model_construct(order_id=k.order_id, last_updated_date=k.last_updated_date) for k in held_keys]
    row_of = {id(stub): i for i, stub in enumerate(held)}
    result = merge_orders(held, fresh)
    kept = [row_of[id(o)] for o in result.orders if id(o) in row_of]
    taken = [o for o in result.orders if id(o) not in row_of]
    return pa.concat_tables([table.take(pa.array(kept, type=pa.int64())).cast(SCHEMA), to_table(taken)]), result


@dataclass
class SnapshotReader:
    """The latest raw snapshot of single orders, from the day partitions, each day's file read once.

    A snapshot lives in the partition the ledger recorded (`snapshot_day`); failing that, in the day of
    its last update or the day after (a refresh early in a day also fetches the previous day's tail).
    """

    warehouse_path: str | Path
    marketplace: str
    _days: dict = field(default_factory=dict, init=False, repr=False)

    def day(self, day: date) -> tuple[pa.Table, dict[str, int]]:
        if day not in self._days:
            table = read_partition(self.warehouse_path, DATASET, self.marketplace, day, SCHEMA)
            self._days[day] = table, {k.order_id: k.index for k in keys(table)}
        return self._days[day]

    def get(self, order_id: str, *days: date | None) -> MiraklOrder | None:
        """The newest snapshot of `order_id` among the partitions of `days` (and each one's next day)."""
        found = []
        for day in dict.fromkeys(d + timedelta(days=shift) for d in days if d is not None for shift in (0, 1)):
            table, rows = self.day(day)
            if order_id in rows:
                found.append(parse(table, [rows[order_id]])[0])
        return max(found, key=lambda o: o.last_updated_date or _EPOCH, default=None)
