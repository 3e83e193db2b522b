"""The day's raw orders: merging a fetch copies the rows it keeps and serialises only what was fetched."""

from datetime import datetime, timezone
from decimal import Decimal

import pyarrow as pa

from mirakl_pipelines.defs.orders import raw_dataset
from mirakl_pipelines.mirakl.models import MiraklOrder


def _order(order_id: str, minute: int, state: str = "SHIPPING", total: str = "54.99") -> MiraklOrder:
    return MiraklOrder.model_validate({
        "order_id": order_id, "order_state": state, "total_price": Decimal(total), "currency_iso_code": "EUR",
        "created_date": "2026-11-23T08:00:00Z", "last_updated_date": f"2026-11-23T09:{minute:02d}:00.123Z",
        "order_lines": [{"order_line_id": f"{order_id}-1", "offer_sku": "ALP-MERINO-S", "quantity": 1}],
        "some_new_mirakl_field": {"kept": True},
    })


def test_merge_into_counts_and_keeps_rows_as_they_were():
    day = raw_dataset.to_table([_order("A", 0), _order("B", 5)])
    fetched = [_order("A", 0), _order("B", 30, "SHIPPED"), _order("C", 31)]
    table, result = raw_dataset.merge_into(day, fetched)
    assert (result.new, result.updated) == (1, 1)
    assert table.schema == raw_dataset.SCHEMA
    assert sorted(table.column("order_id").to_pylist()) == ["A", "B", "C"]
    by_id = {o.order_id: o for o in raw_dataset.parse(table)}
    assert by_id["B"].order_state == "SHIPPED"
    assert by_id["A"].model_extra["some_new_mirakl_field"] == {"kept": True}  # unknown fields survive the round trip
    assert by_id["C"].total_price == Decimal("54.99")


def test_merge_into_an_empty_day_and_an_empty_fetch():
    empty = raw_dataset.SCHEMA.empty_table()
    table, result = raw_dataset.merge_into(empty, [])
    assert len(table) == 0 and (result.new, result.updated) == (0, 0)
    table, _ = raw_dataset.merge_into(empty, [_order("A", 1)])
    again, result = raw_dataset.merge_into(table, [])
    assert again.equals(table) and result.new == 0


def test_money_is_decimal128_and_keys_read_without_parsing():
    table = raw_dataset.to_table([_order("A", 7, total="1234.5")])
    assert pa.types.is_decimal(table.schema.field("total_price").type)
    assert table.column("total_price").to_pylist() == [Decimal("1234.5000")]
    [key] = raw_dataset.keys(table)
    assert key.order_id == "A" and key.last_updated_date == datetime(2026, 11, 23, 9, 7, 0, 123000, tzinfo=timezone.utc)
