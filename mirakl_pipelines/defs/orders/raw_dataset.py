"""The `mirakl_orders` parquet dataset: every Mirakl order seen in a day, as received.

A day's partition holds parts appended by its runs, each with the orders that run found new or changed (see
defs/streaming.py): an order may sit in several parts, and what the day holds is the latest version of each
order (greatest `last_updated_date`, then the later part). A day's first refreshes also fetch the previous
day's last updates (see sync/windows.py), so an order updated just before midnight may sit in both days.
`raw_json` is the order exactly as the client parsed it (unknown fields included), so a mapping fix can be
replayed without calling Mirakl again; the other columns are there for people and query engines.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Collection, Iterable, Iterator, Optional

import pyarrow as pa

from mirakl_pipelines.defs.io import MONEY, TIMESTAMP, partition_dir
from mirakl_pipelines.defs.streaming import (
    COMPACT_AFTER_PARTS,
    PartitionSnapshot,
    PartWriter,
    Versioned,
    compact,
    list_parts,
)
from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.sync.windows import is_newer, route_day

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
VERSIONED = Versioned(key="order_id", version="last_updated_date")
# What deciding whether an order has something to do needs, read without the raw JSON.
KEY_COLUMNS = ("order_id", "order_state", "last_updated_date")

_CENT = Decimal("0.0001")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(_CENT)


def to_table(orders: Iterable[MiraklOrder]) -> pa.Table:
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


def day_folder(warehouse_path: str | Path, marketplace: str, day: date) -> Path:
    return partition_dir(warehouse_path, DATASET, marketplace, day)


def open_day(warehouse_path: str | Path, marketplace: str, day: date,
             columns: Iterable[str] = KEY_COLUMNS) -> PartitionSnapshot:
    """The day's partition as it is now (empty before its first fetch), indexed by order with `columns`."""
    return PartitionSnapshot(day_folder(warehouse_path, marketplace, day), SCHEMA, VERSIONED, columns)


def read_day(warehouse_path: str | Path, marketplace: str, day: date) -> pa.Table:
    """The latest version of each order of the day, all at once (tests, small days; runs stream)."""
    with open_day(warehouse_path, marketplace, day) as snapshot:
        return snapshot.read_latest()


@dataclass(frozen=True)
class OrderKey:
    """What identifies an order's snapshot, read from the columns without parsing the raw JSON."""

    order_id: str
    order_state: str | None
    last_updated_date: datetime | None


def iter_keys(snapshot: PartitionSnapshot, batch: int) -> Iterator[list[OrderKey]]:
    """The keys of the day's orders, `batch` at a time (a 50,000-order day's keys as objects would weigh ~15 MB)."""
    index = snapshot.index
    for start in range(0, index.num_rows, batch):
        rows = index.slice(start, batch)
        yield [OrderKey(*row) for row in zip(*(rows.column(name).to_pylist() for name in KEY_COLUMNS))]


def parse(table: pa.Table) -> list[MiraklOrder]:
    """The orders of a table of this dataset, parsed from their raw JSON."""
    return [MiraklOrder.model_validate_json(raw) for raw in table.column("raw_json").to_pylist()]


def iter_orders(snapshot: PartitionSnapshot, order_ids: Collection[str], chunk: int) -> Iterator[list[MiraklOrder]]:
    """The latest snapshots of `order_ids`, parsed `chunk` at a time (about: a row group may add a few)."""
    for table in snapshot.iter_latest(["raw_json"], keys=order_ids, chunk_rows=chunk):
        yield parse(table)


_ABSENT = object()


class DayWriter:
    """Appends to one day's partition, page by page, the fetched orders it does not hold yet or holds older.

    Reads only the key columns of what the day holds; each `add` writes one row group and keeps nothing but the
    order ids and versions. `commit` makes the new part visible (a crash before it leaves the day as it was).
    """

    def __init__(self, warehouse_path: str | Path, marketplace: str, day: date):
        self.day = day
        self.folder = day_folder(warehouse_path, marketplace, day)
        with open_day(warehouse_path, marketplace, day, columns=()) as snapshot:
            index = snapshot.index
            self.held: dict[str, Optional[datetime]] = dict(
                zip(index.column("order_id").to_pylist(), index.column("last_updated_date").to_pylist()))
        self._known = frozenset(self.held)
        self._new: set[str] = set()
        self._updated: set[str] = set()
        self.fetched = 0
        self._writer = PartWriter(self.folder, SCHEMA)

    @property
    def new(self) -> int:
        return len(self._new)

    @property
    def updated(self) -> int:
        return len(self._updated)

    @property
    def rows(self) -> int:
        """Orders the day holds (latest versions), this run's included."""
        return len(self.held)

    def add(self, orders: Iterable[MiraklOrder]) -> None:
        fresh = []
        for order in orders:
            self.fetched += 1
            held = self.held.get(order.order_id, _ABSENT)
            if held is _ABSENT:
                self._new.add(order.order_id)
            elif is_newer(order.last_updated_date, held):
                if order.order_id in self._known:
                    self._updated.add(order.order_id)
            else:
                continue  # a copy of what the day holds (the overlap, a re-read): nothing to write
            self.held[order.order_id] = order.last_updated_date
            fresh.append(order)
        self._writer.write(to_table(fresh))

    def commit(self, compact_now: bool = False) -> Path:
        """Publish the new part; compact the day when asked (full-day runs) or when parts pile up."""
        self._writer.commit()
        if compact_now or len(list_parts(self.folder)) > COMPACT_AFTER_PARTS:
            compact(self.folder, SCHEMA, VERSIONED)
        return self.folder

    def abort(self) -> None:
        self._writer.abort()


@dataclass
class SnapshotReader:
    """The latest raw snapshot of single orders, from the day partitions, each day's index read once.

    A snapshot lives in the partition the ledger recorded (`snapshot_day`); failing that, in the day of
    its last update or the day after (a refresh early in a day also fetches the previous day's tail).
    Only the row group holding a requested order is read.
    """

    warehouse_path: str | Path
    marketplace: str
    _days: dict = field(default_factory=dict, init=False, repr=False)

    def day(self, day: date) -> PartitionSnapshot:
        if day not in self._days:
            self._days[day] = open_day(self.warehouse_path, self.marketplace, day, columns=())
        return self._days[day]

    def get(self, order_id: str, *days: date | None) -> MiraklOrder | None:
        """The newest snapshot of `order_id` among the partitions of `days` (and each one's next day)."""
        found = []
        for day in dict.fromkeys(d + timedelta(days=shift) for d in days if d is not None for shift in (0, 1)):
            row = self.day(day).read_one(order_id, ["raw_json"])
            if row is not None:
                found.extend(parse(row))
        return max(found, key=lambda o: o.last_updated_date or _EPOCH, default=None)

    def close(self) -> None:
        for snapshot in self._days.values():
            snapshot.close()
        self._days.clear()


class RangeWriter:
    """Routes fetched pages to the day partitions of `days` (by last update, see sync/windows.route_day), each
    day appended by its own DayWriter; a one-day range takes every order (a refresh's previous-day tail too)."""

    def __init__(self, warehouse_path: str | Path, marketplace: str, days: Iterable[date]):
        self.days = sorted(set(days))
        self.writers = {day: DayWriter(warehouse_path, marketplace, day) for day in self.days}

    def add(self, orders: Iterable[MiraklOrder]) -> None:
        by_day: dict[date, list[MiraklOrder]] = {}
        for order in orders:
            by_day.setdefault(route_day(order.last_updated_date, self.days), []).append(order)
        for day, routed in by_day.items():
            self.writers[day].add(routed)

    def total(self, figure: str) -> int:
        return sum(getattr(writer, figure) for writer in self.writers.values())

    def commit(self, compact_now: bool = False) -> None:
        for writer in self.writers.values():
            writer.commit(compact_now)

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()
