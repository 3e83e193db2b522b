"""The `mirakl_orders` parquet dataset: every Mirakl order seen in a day, as received.

One row per order (the latest version seen that day). `raw_json` is the order exactly as the
client parsed it (unknown fields included), so a mapping fix can be replayed without calling
Mirakl again; the other columns are there for people and query engines.
"""

from decimal import Decimal

import pyarrow as pa

from mirakl_pipelines.defs.io import MONEY, TIMESTAMP
from mirakl_pipelines.mirakl.models import MiraklOrder

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


def from_table(table: pa.Table) -> list[MiraklOrder]:
    return [MiraklOrder.model_validate_json(raw) for raw in table.column("raw_json").to_pylist()]
