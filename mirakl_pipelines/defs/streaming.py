"""Parquet partitions written a page at a time and read back as "the latest version of each record".

A partition folder holds numbered parts, `part-<NNNNNN>.parquet` (the first layout's `part-0.parquet` is part 0).
Each run appends one part holding only the records that are new or changed, one row group per fetched page, so
a refresh writes what changed, never the whole day, and memory is bounded by a page. A record may therefore sit
in several parts: its latest version is the one with the greatest version column (e.g. `last_updated_date`, a
missing version being the oldest), a tie going to the later part, then the later row. A compaction (when parts
pile up, and in a full-day run) rewrites the partition as one part of latest versions, row group by row group,
and only then removes the parts it replaced.

Crash safety: a part is written under a temporary name, then linked to its final name (`os.link` never
overwrites: two writers of one partition take different numbers), so a crash leaves either no new part or a
complete one. A compaction's part holds the same versions as the parts it replaces: a crash before their
removal leaves duplicates, which readers resolve. A snapshot opens every part when it is taken, so a compaction
removing files during a read does not disturb it.

Reading the latest versions with DuckDB (the `filename` tie-break is only needed between identical versions):

    SELECT * FROM read_parquet('<base>/<dataset>/*/*/*.parquet', hive_partitioning = true, filename = true)
    QUALIFY row_number() OVER (PARTITION BY marketplace, date, <key> ORDER BY <version> DESC, filename DESC) = 1
"""

import contextlib
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterable, Iterator, Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

_PART = re.compile(r"^part-(\d+)\.parquet$")
# Rows per row group of a compacted part: a few MB of raw JSON, read one at a time.
COMPACT_ROW_GROUP_ROWS = 1000
# Appended parts beyond which a write compacts the partition (a one-minute schedule appends only on change).
COMPACT_AFTER_PARTS = 16
_OPEN_ATTEMPTS = 5
# A temporary part not touched for this long belongs to a dead writer (a run writes a page every few seconds).
STALE_TEMPORARY_SECONDS = 3600.0  # a compaction may remove a listed part before it is opened: list again


@dataclass(frozen=True)
class Versioned:
    """How a dataset tells versions apart: its record key and the column ordering a record's versions."""

    key: str
    version: str


def part_name(number: int) -> str:
    return f"part-{number:06d}.parquet"


def list_parts(folder: Path) -> list[tuple[int, Path]]:
    """The partition's parts, oldest first (temporary files are not parts)."""
    if not folder.is_dir():
        return []
    found = ((_PART.match(p.name), p) for p in folder.iterdir())
    return sorted((int(m.group(1)), p) for m, p in found if m)


class PartWriter:
    """Writes one new part, a row group per `write`; `commit` makes it visible at once, `abort` drops it.

    Used as a context manager it commits on success and aborts on an exception. Nothing is written for a part
    that received no row."""

    def __init__(self, folder: str | Path, schema: pa.Schema):
        self.folder = Path(folder)
        self.schema = schema
        self.rows = 0
        self.path: Optional[Path] = None
        self._tmp = self.folder / f".part.{uuid.uuid4().hex}.tmp"
        self._writer: Optional[pq.ParquetWriter] = None

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self._tmp, self.schema)
        self._writer.write_table(table.select(self.schema.names).cast(self.schema), row_group_size=table.num_rows)
        self.rows += table.num_rows

    def commit(self) -> Optional[Path]:
        if self._writer is None:
            return None
        self._writer.close()
        self._writer = None
        try:
            number = max((n for n, _ in list_parts(self.folder)), default=-1) + 1
            while True:
                final = self.folder / part_name(number)
                try:
                    os.link(self._tmp, final)  # never replaces a part another writer just linked
                    break
                except FileExistsError:
                    number += 1
            self.path = final
            return final
        finally:
            self._tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "PartWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class PartitionSnapshot:
    """Every part of one partition, opened together, and where each record's latest version lives.

    `index` is a small table (key, version, the `columns` asked for, `_part`, `_row`) with one row per record:
    reading it touches only those columns. The full rows are read by `iter_latest`, row group by row group.
    """

    def __init__(self, folder: str | Path, schema: pa.Schema, versioned: Versioned, columns: Iterable[str] = ()):
        self.folder = Path(folder)
        self.schema = schema
        self.versioned = versioned
        self.index_columns = list(dict.fromkeys([versioned.key, versioned.version, *columns]))
        self.files: list[tuple[Path, pq.ParquetFile]] = self._open()
        self.rows_held = sum(f.metadata.num_rows for _, f in self.files)
        self.index = self._latest()
        self._positions: Optional[dict[str, int]] = None

    def _open(self) -> list[tuple[Path, pq.ParquetFile]]:
        for _ in range(_OPEN_ATTEMPTS):
            opened = []
            try:
                for _, path in list_parts(self.folder):
                    opened.append((path, pq.ParquetFile(path)))
                return opened
            except FileNotFoundError:
                for _, f in opened:
                    f.close()
        raise RuntimeError(f"{self.folder}: parts kept vanishing while being opened (compactions in a loop?)")

    def _latest(self) -> pa.Table:
        tables = []
        for number, (_, f) in enumerate(self.files):
            t = f.read(columns=self.index_columns)
            tables.append(t.append_column("_part", pa.array([number] * t.num_rows, pa.int32()))
                           .append_column("_row", pa.array(range(t.num_rows), pa.int64())))
        empty = pa.schema([self.schema.field(c) for c in self.index_columns]
                          + [pa.field("_part", pa.int32()), pa.field("_row", pa.int64())]).empty_table()
        if not tables:
            return empty
        every = pa.concat_tables(tables).cast(empty.schema)
        key, version = self.versioned.key, self.versioned.version
        order = pc.sort_indices(every, sort_keys=[(key, "ascending"), (version, "ascending", "at_start"),
                                                  ("_part", "ascending"), ("_row", "ascending")])
        ordered = every.take(order)
        keys = ordered.column(key)
        if len(keys) <= 1:
            return ordered
        # The last row of each key's run is its latest version.
        last = pc.not_equal(keys.slice(0, len(keys) - 1), keys.slice(1))
        return ordered.filter(pa.concat_arrays([last.combine_chunks(), pa.array([True])]))

    def __len__(self) -> int:
        return self.index.num_rows

    @property
    def superseded(self) -> int:
        """Rows held that are not a latest version (what a compaction would drop)."""
        return self.rows_held - len(self)

    def position(self, key: str) -> Optional[int]:
        """The record's row in `index`, or None."""
        if self._positions is None:
            self._positions = {k: i for i, k in enumerate(self.index.column(self.versioned.key).to_pylist())}
        return self._positions.get(key)

    def iter_latest(self, columns: Optional[Iterable[str]] = None, keys: Optional[Collection[str]] = None,
                    chunk_rows: int = 500) -> Iterator[pa.Table]:
        """The latest version of each record (of `keys` only, when given), in tables of at most `chunk_rows` rows:
        one row group is read at a time, so memory is bounded by a chunk and a row group."""
        columns = list(columns) if columns is not None else self.schema.names
        wanted = self.index
        if keys is not None:
            wanted = wanted.filter(pc.is_in(wanted.column(self.versioned.key), value_set=pa.array(list(keys), pa.string())))
        if wanted.num_rows == 0:
            return
        parts, rows = wanted.column("_part").to_numpy(), wanted.column("_row").to_numpy()
        pending: list[pa.Table] = []
        pending_rows = 0
        for number, (_, f) in enumerate(self.files):
            mine = sorted(rows[parts == number].tolist())
            if not mine:
                continue
            start, cursor = 0, 0
            for group in range(f.metadata.num_row_groups):
                size = f.metadata.row_group(group).num_rows
                local = []
                while cursor < len(mine) and mine[cursor] < start + size:
                    local.append(mine[cursor] - start)
                    cursor += 1
                start += size
                if not local:
                    continue
                pending.append(f.read_row_group(group, columns=columns).take(pa.array(local, pa.int64())))
                pending_rows += len(local)
                if pending_rows >= chunk_rows:
                    ready = pa.concat_tables(pending)
                    while ready.num_rows >= chunk_rows:
                        yield ready.slice(0, chunk_rows)
                        ready = ready.slice(chunk_rows)
                    pending, pending_rows = [ready], ready.num_rows
                if cursor == len(mine):
                    break
        if pending_rows:
            yield pa.concat_tables(pending)

    def read_latest(self, columns: Optional[Iterable[str]] = None) -> pa.Table:
        """Every latest version at once: for small partitions and tests; runs use iter_latest."""
        names = list(columns) if columns is not None else self.schema.names
        tables = list(self.iter_latest(names, chunk_rows=1 << 30))
        return pa.concat_tables(tables) if tables else self.schema.empty_table().select(names)

    def read_one(self, key: str, columns: Optional[Iterable[str]] = None) -> Optional[pa.Table]:
        """The latest version of one record (a one-row table), reading only its row group."""
        at = self.position(key)
        if at is None:
            return None
        tables = list(self.iter_latest(columns, keys=[key], chunk_rows=1))
        return tables[0] if tables else None

    def close(self) -> None:
        for _, f in self.files:
            f.close()
        self.files = []

    def __enter__(self) -> "PartitionSnapshot":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def compact(folder: str | Path, schema: pa.Schema, versioned: Versioned,
            row_group_rows: int = COMPACT_ROW_GROUP_ROWS) -> Optional[Path]:
    """Rewrite the partition as one part of latest versions, streaming; None when it already is one."""
    with PartitionSnapshot(folder, schema, versioned) as snapshot:
        if len(snapshot.files) <= 1 and snapshot.superseded == 0:
            return None
        replaced = [path for path, _ in snapshot.files]
        with PartWriter(folder, schema) as writer:
            for table in snapshot.iter_latest(chunk_rows=row_group_rows):
                writer.write(table)
    if writer.path is None:  # nothing to keep (only empty parts): keep them rather than risk anything
        return None
    # The new part holds every latest version: only now may the parts it replaces go.
    for path in replaced:
        path.unlink(missing_ok=True)
    _remove_stale_temporaries(Path(folder))
    return writer.path


def _remove_stale_temporaries(folder: Path, older_than: float = STALE_TEMPORARY_SECONDS) -> None:
    """Temporary files of writers killed mid-run (a crash leaves them, never a part): removed once surely dead."""
    limit = time.time() - older_than
    for tmp in folder.glob(".part.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if tmp.stat().st_mtime < limit:
                tmp.unlink()
