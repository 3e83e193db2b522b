"""Streaming parquet partitions: parts appended atomically, the latest version of each record read in chunks."""

import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from mirakl_pipelines.defs.streaming import PartitionSnapshot, PartWriter, Versioned, compact, list_parts

SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("v", pa.int64()), pa.field("payload", pa.string())])
VERSIONED = Versioned("id", "v")


def _table(rows) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "v": v, "payload": p} for i, v, p in rows], schema=SCHEMA)


def _latest(folder) -> dict:
    with PartitionSnapshot(folder, SCHEMA, VERSIONED) as snapshot:
        table = snapshot.read_latest()
    return {r["id"]: (r["v"], r["payload"]) for r in table.to_pylist()}


def test_two_writers_of_one_partition_never_overwrite_each_other(tmp_path):
    first, second = PartWriter(tmp_path, SCHEMA), PartWriter(tmp_path, SCHEMA)
    first.write(_table([("a", 1, "first")]))
    second.write(_table([("b", 1, "second")]))
    paths = {first.commit(), second.commit()}
    assert len(paths) == 2 and [n for n, _ in list_parts(tmp_path)] == [0, 1]
    assert _latest(tmp_path) == {"a": (1, "first"), "b": (1, "second")}


def test_a_writer_killed_mid_part_leaves_only_a_temporary_file(tmp_path):
    with PartWriter(tmp_path, SCHEMA) as writer:
        writer.write(_table([("a", 1, "kept")]))
    dead = PartWriter(tmp_path, SCHEMA)
    dead.write(_table([("a", 2, "lost")]))  # never committed: the process died here
    assert _latest(tmp_path) == {"a": (1, "kept")}
    old = time.time() - 7200
    os.utime(dead._tmp, (old, old))
    PartWriter(tmp_path, SCHEMA).__enter__().write(_table([("a", 3, "later")]))  # uncommitted either; recent
    with PartWriter(tmp_path, SCHEMA) as writer:
        writer.write(_table([("b", 1, "x")]))
    compact(tmp_path, SCHEMA, VERSIONED)
    assert not dead._tmp.exists()  # a dead writer's leftovers go with a compaction; a recent one stays
    assert len(list(tmp_path.glob(".part.*.tmp"))) == 1


def test_a_snapshot_reads_on_while_a_compaction_removes_its_parts(tmp_path):
    for v in range(3):
        with PartWriter(tmp_path, SCHEMA) as writer:
            writer.write(_table([("a", v, f"v{v}"), (f"only{v}", 0, "x")]))
    with PartitionSnapshot(tmp_path, SCHEMA, VERSIONED) as reading:
        compact(tmp_path, SCHEMA, VERSIONED)
        assert len(list_parts(tmp_path)) == 1
        assert {r["id"]: r["payload"] for r in reading.read_latest().to_pylist()}["a"] == "v2"
    assert _latest(tmp_path)["a"] == (2, "v2")


_ROWS = st.lists(st.tuples(st.sampled_from("abcde"), st.none() | st.integers(0, 3), st.text(max_size=3)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(_ROWS, min_size=1, max_size=4), chunk=st.integers(1, 5))
def test_latest_version_rule_and_compaction_agree_with_a_plain_model(tmp_path_factory, parts, chunk):
    """Greatest version wins (undated oldest), ties to the later part then row; compaction and chunked reads
    change nothing of what is read."""
    folder = tmp_path_factory.mktemp("p")
    expected: dict = {}
    for rows in parts:
        with PartWriter(folder, SCHEMA) as writer:
            writer.write(_table(rows))
        for key, v, payload in rows:
            held = expected.get(key)
            if held is None or (-1 if v is None else v) >= (-1 if held[0] is None else held[0]):
                expected[key] = (v, payload)
    assert _latest(folder) == expected
    with PartitionSnapshot(folder, SCHEMA, VERSIONED) as snapshot:
        chunks = list(snapshot.iter_latest(["id", "payload"], keys=["a", "b"], chunk_rows=chunk))
    assert all(c.num_rows <= chunk for c in chunks)
    assert {r["id"]: r["payload"] for c in chunks for r in c.to_pylist()} == \
        {k: p for k, (_, p) in expected.items() if k in "ab"}
    compact(folder, SCHEMA, VERSIONED, row_group_rows=2)
    assert _latest(folder) == expected
    assert len(list_parts(folder)) <= 1
    for _, path in list_parts(folder):
        assert pq.read_metadata(path).num_rows == len(expected)
