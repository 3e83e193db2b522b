"""The `stock_snapshots` dataset: <warehouse>/stock_snapshots/marketplace=<code>/date=<day>/part-NNNNNN.parquet.

One part per stock run, one row per offer SKU: what Shopify had (at the counted locations), what was promised to
orders not in Shopify yet, what the policy computed, what the run's STO01 file carried and what became of it, and
what Mirakl's offer showed afterwards. A partition holds the day's latest snapshot in full and, from the earlier
runs, only the rows they sent: the history of pushes without a 100,000-row copy per quarter hour.

    SELECT * FROM read_parquet('data/warehouse/stock_snapshots/*/*/*.parquet', hive_partitioning = true)
    WHERE marketplace = 'decathlon_fr' AND date = '2026-12-02'
    QUALIFY snapshot_at = max(snapshot_at) OVER ()   -- the latest snapshot; drop it for the pushes' history

Quantities are integers (units), never floats.
"""

import os
import uuid
from datetime import date
from pathlib import Path
from typing import Optional

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mirakl_pipelines.defs.io import TIMESTAMP, partition_dir
from mirakl_pipelines.defs.streaming import PartWriter, list_parts

DATASET = "stock_snapshots"
SCHEMA = pa.schema([
    pa.field("snapshot_at", TIMESTAMP, nullable=False),  # when Shopify was read
    pa.field("run_id", pa.string()),
    pa.field("offer_sku", pa.string(), nullable=False),
    pa.field("shopify_sku", pa.string()),
    pa.field("shopify_available", pa.int64()),  # at the counted locations (may be negative)
    pa.field("promised", pa.int64()),  # units of Mirakl orders accepted but not in Shopify yet
    pa.field("servable", pa.int64()),  # max(0, shopify_available − promised)
    pa.field("computed", pa.int64()),  # what the policy publishes (buffer, cap, threshold applied)
    pa.field("sent", pa.int64()),  # the quantity this run's file carried; null when the SKU was not in it
    pa.field("import_id", pa.string()),
    pa.field("import_status", pa.string()),  # COMPLETE | FAILED | RUNNING … of this run's import
    pa.field("line_error", pa.string()),  # STO03's reason when the line was rejected
    pa.field("mirakl_quantity", pa.int64()),  # the offer's quantity read back; null when Mirakl has no offer
    pa.field("in_flight", pa.int64()),  # units ordered on Mirakl since the snapshot (Mirakl took them off)
    pa.field("difference", pa.int64()),  # mirakl_quantity − computed
    pa.field("delta_status", pa.string()),  # stock_delta's verdict for the SKU
    pa.field("check_severity", pa.string()),  # stock_delta's verdict for the whole snapshot: PASS | WARN | ERROR
])


def snapshot_table(rows: pd.DataFrame) -> pa.Table:
    """The dataset's table from a frame with the schema's columns (missing optional ones are null)."""
    frame = rows.reindex(columns=SCHEMA.names)  # absent columns come in as nulls
    return pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False)


def write_snapshot(warehouse: str | Path, marketplace: str, day: date, table: pa.Table) -> Path:
    """Add the run's snapshot as a new part, then cut earlier parts down to the rows they sent."""
    folder = partition_dir(warehouse, DATASET, marketplace, day)
    with PartWriter(folder, SCHEMA) as writer:
        writer.write(table)
    written = writer.path
    for _, part in list_parts(folder):
        if part != written:
            _keep_sent_rows(part)
    return written


def _keep_sent_rows(part: Path) -> None:
    table = pq.read_table(part, schema=SCHEMA)
    sent = table.filter(pc.is_valid(table["sent"]))
    if sent.num_rows == table.num_rows:
        return
    if sent.num_rows == 0:
        part.unlink(missing_ok=True)
        return
    tmp = part.with_name(f".{part.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(sent, tmp)
    os.replace(tmp, part)  # a reader sees the whole old part or the whole new one


def latest_snapshot(warehouse: str | Path, marketplace: str, day: date, columns: Optional[list[str]] = None) -> Optional[pa.Table]:
    """The day's latest snapshot of the marketplace (None when no run wrote one that day)."""
    parts = list_parts(partition_dir(warehouse, DATASET, marketplace, day))
    if not parts:
        return None
    table = pq.read_table(parts[-1][1], schema=SCHEMA, columns=columns and sorted({*columns, "snapshot_at"}))
    latest = pc.max(table["snapshot_at"])
    return table.filter(pc.equal(table["snapshot_at"], latest))
