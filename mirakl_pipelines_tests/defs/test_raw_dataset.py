"""The day's raw orders: a run appends only what is new or changed, readers see the latest version of each order."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mirakl_pipelines.defs.orders import raw_dataset
from mirakl_pipelines.defs.streaming import list_parts
from mirakl_pipelines.mirakl.models import MiraklOrder

DAY = date(2026, 11, 23)
MKP = "decathlon_fr"


def _order(order_id: str, minute: int | None, state: str = "SHIPPING", total: str = "54.99",
           updated_day: int = 23) -> MiraklOrder:
    return MiraklOrder.model_validate({
        "order_id": order_id, "order_state": state, "total_price": Decimal(total), "currency_iso_code": "EUR",
        "created_date": "2026-11-23T08:00:00Z",
        "last_updated_date": None if minute is None else f"2026-11-{updated_day:02d}T09:{minute:02d}:00.123Z",
        "order_lines": [{"order_line_id": f"{order_id}-1", "offer_sku": "ALP-MERINO-S", "quantity": 1}],
        "some_new_mirakl_field": {"kept": True},
    })


def _write(tmp_path, *pages, compact=False) -> raw_dataset.DayWriter:
    writer = raw_dataset.DayWriter(tmp_path, MKP, DAY)
    for page in pages:
        writer.add(page)
    writer.commit(compact_now=compact)
    return writer


def _latest(tmp_path) -> dict[str, MiraklOrder]:
    return {o.order_id: o for o in raw_dataset.parse(raw_dataset.read_day(tmp_path, MKP, DAY))}


def test_a_run_appends_only_new_and_changed_orders(tmp_path):
    first = _write(tmp_path, [_order("A", 0), _order("B", 5)])
    assert (first.fetched, first.new, first.updated, first.rows) == (2, 2, 0, 2)
    second = _write(tmp_path, [_order("A", 0), _order("B", 30, "SHIPPED")], [_order("C", 31), _order("B", 5)])
    assert (second.fetched, second.new, second.updated, second.rows) == (4, 1, 1, 3)
    parts = list_parts(raw_dataset.day_folder(tmp_path, MKP, DAY))
    assert len(parts) == 2 and pq.read_metadata(parts[1][1]).num_rows == 2  # B's new version and C, not A again
    latest = _latest(tmp_path)
    assert sorted(latest) == ["A", "B", "C"] and latest["B"].order_state == "SHIPPED"
    assert latest["A"].model_extra["some_new_mirakl_field"] == {"kept": True}  # unknown fields survive the round trip
    assert latest["C"].total_price == Decimal("54.99")


def test_a_refresh_with_nothing_new_writes_no_file(tmp_path):
    _write(tmp_path, [_order("A", 1)])
    again = _write(tmp_path, [_order("A", 1)], [])
    assert (again.new, again.updated) == (0, 0)
    assert len(list_parts(raw_dataset.day_folder(tmp_path, MKP, DAY))) == 1
    empty = raw_dataset.DayWriter(tmp_path, MKP, date(2026, 11, 24))
    empty.commit()
    assert raw_dataset.read_day(tmp_path, MKP, date(2026, 11, 24)).num_rows == 0


def test_versions_dated_beats_undated_and_older_copies_lose(tmp_path):
    _write(tmp_path, [_order("A", None, "OLD"), _order("B", 10, "KEEP")])
    _write(tmp_path, [_order("A", 1, "NEW"), _order("B", 9, "OLDER"), _order("B", None, "UNDATED")])
    latest = _latest(tmp_path)
    assert latest["A"].order_state == "NEW" and latest["B"].order_state == "KEEP"


def test_compaction_keeps_the_latest_versions_in_one_part(tmp_path):
    _write(tmp_path, [_order("A", 0), _order("B", 1)])
    _write(tmp_path, [_order("B", 2, "SHIPPED")])
    before = _latest(tmp_path)
    _write(tmp_path, [], compact=True)
    parts = list_parts(raw_dataset.day_folder(tmp_path, MKP, DAY))
    assert len(parts) == 1 and pq.read_metadata(parts[0][1]).num_rows == 2
    assert {k: (o.order_state, o.last_updated_date) for k, o in _latest(tmp_path).items()} == \
        {k: (o.order_state, o.last_updated_date) for k, o in before.items()}


def test_a_crash_mid_run_leaves_the_day_as_it_was(tmp_path):
    _write(tmp_path, [_order("A", 0)])
    writer = raw_dataset.DayWriter(tmp_path, MKP, DAY)
    writer.add([_order("A", 5, "SHIPPED"), _order("B", 5)])
    writer.abort()  # what _write_pages does when a page fails
    folder = raw_dataset.day_folder(tmp_path, MKP, DAY)
    assert [p.name for p in folder.iterdir()] == ["part-000000.parquet"]
    assert _latest(tmp_path)["A"].order_state == "SHIPPING"


def test_the_first_layouts_single_file_is_read_as_part_zero(tmp_path):
    folder = raw_dataset.day_folder(tmp_path, MKP, DAY)
    folder.mkdir(parents=True)
    pq.write_table(raw_dataset.to_table([_order("A", 0)]), folder / "part-0.parquet")
    writer = _write(tmp_path, [_order("A", 3, "SHIPPED"), _order("B", 3)])
    assert (writer.new, writer.updated) == (1, 1)
    assert _latest(tmp_path)["A"].order_state == "SHIPPED"


def test_money_is_decimal128_and_keys_read_without_parsing(tmp_path):
    table = raw_dataset.to_table([_order("A", 7, total="1234.5")])
    assert pa.types.is_decimal(table.schema.field("total_price").type)
    assert table.column("total_price").to_pylist() == [Decimal("1234.5000")]
    _write(tmp_path, [_order("A", 7, total="1234.5")])
    with raw_dataset.open_day(tmp_path, MKP, DAY) as snapshot:
        [[key]] = list(raw_dataset.iter_keys(snapshot, 10))
    assert key.order_id == "A" and key.last_updated_date == datetime(2026, 11, 23, 9, 7, 0, 123000, tzinfo=timezone.utc)
    _write(tmp_path, [_order("B", 8), _order("C", 9)])
    with raw_dataset.open_day(tmp_path, MKP, DAY) as snapshot:
        batches = list(raw_dataset.iter_keys(snapshot, 2))  # a batch at a time: the day's keys are never all objects
    assert [[k.order_id for k in batch] for batch in batches] == [["A", "B"], ["C"]]


def test_a_range_routes_orders_to_the_day_of_their_last_update(tmp_path):
    days = [date(2026, 11, 22), DAY]
    writer = raw_dataset.RangeWriter(tmp_path, MKP, days)
    writer.add([_order("A", 1, updated_day=22), _order("B", 2), _order("C", 3, updated_day=21), _order("D", 4, updated_day=24)])
    writer.commit(compact_now=True)
    held = {day: sorted(raw_dataset.read_day(tmp_path, MKP, day).column("order_id").to_pylist()) for day in days}
    assert held == {date(2026, 11, 22): ["A", "C"], DAY: ["B", "D"]}  # outside the range: clamped to its ends
    assert (writer.total("fetched"), writer.total("new")) == (4, 4)


def test_snapshot_reader_reads_single_orders_across_days(tmp_path):
    _write(tmp_path, [_order("A", 0), _order("B", 1)])
    _write(tmp_path, [_order("B", 2, "SHIPPED")])
    reader = raw_dataset.SnapshotReader(tmp_path, MKP)
    assert reader.get("B", date(2026, 11, 22)).order_state == "SHIPPED"  # the day after the one given is read too
    assert reader.get("Z", DAY) is None
    reader.close()


@pytest.mark.parametrize("chunk", [1, 2, 500])
def test_orders_are_parsed_a_chunk_at_a_time(tmp_path, chunk):
    _write(tmp_path, [_order(f"O{i}", i % 60) for i in range(5)], [_order("O1", 59, "SHIPPED")])
    with raw_dataset.open_day(tmp_path, MKP, DAY) as snapshot:
        chunks = list(raw_dataset.iter_orders(snapshot, ["O1", "O3", "O4"], chunk))
    assert all(len(c) <= max(chunk, 1) for c in chunks)
    got = {o.order_id: o.order_state for c in chunks for o in c}
    assert got == {"O1": "SHIPPED", "O3": "SHIPPING", "O4": "SHIPPING"}
