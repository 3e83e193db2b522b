"""Parquet datasets, Hive-style: <base>/<dataset>/marketplace=<code>/date=<YYYY-MM-DD>/part-<NNNNNN>.parquet.

Readable by pandas, pyarrow and DuckDB without knowing Dagster. A partition is a set of numbered parts
appended run after run, each holding only the records that run found new or changed; a record's latest
version wins (see defs/streaming.py for the rule, the crash safety and a DuckDB query). Parts are written
under a temporary name and linked into place, so a reader never sees half a file.
"""

from datetime import date
from pathlib import Path

import pyarrow as pa

# Money columns: 18 digits, 4 after the point, enough for any marketplace amount and exact.
MONEY = pa.decimal128(18, 4)
TIMESTAMP = pa.timestamp("us", tz="UTC")


def partition_dir(base: str | Path, dataset: str, marketplace: str, day: date) -> Path:
    return Path(base) / dataset / f"marketplace={marketplace}" / f"date={day.isoformat()}"
