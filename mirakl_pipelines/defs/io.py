"""Parquet datasets, Hive-style: <base>/<dataset>/marketplace=<code>/date=<YYYY-MM-DD>/part-0.parquet.

Readable by pandas, pyarrow and DuckDB without knowing Dagster. Each partition is one file,
replaced atomically (write to a temporary name, then rename) so a reader never sees half a file
and a crashed run leaves the previous version in place.
"""

import os
import uuid
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# Money columns: 18 digits, 4 after the point, enough for any marketplace amount and exact.
MONEY = pa.decimal128(18, 4)
TIMESTAMP = pa.timestamp("us", tz="UTC")


def partition_dir(base: str | Path, dataset: str, marketplace: str, day: date) -> Path:
    return Path(base) / dataset / f"marketplace={marketplace}" / f"date={day.isoformat()}"


def write_partition(base: str | Path, dataset: str, marketplace: str, day: date, table: pa.Table) -> Path:
    folder = partition_dir(base, dataset, marketplace, day)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / "part-0.parquet"
    tmp = folder / f".part-0.{uuid.uuid4().hex}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


def read_partition(base: str | Path, dataset: str, marketplace: str, day: date, schema: pa.Schema) -> pa.Table:
    """The partition's table, or an empty table of `schema` when it was never written."""
    path = partition_dir(base, dataset, marketplace, day) / "part-0.parquet"
    if not path.exists():
        return schema.empty_table()
    # Read the file alone (not as a dataset) so the Hive folder names are not added as columns.
    return pq.ParquetFile(path).read()
