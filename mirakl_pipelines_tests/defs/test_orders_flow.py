"""The order flow end to end on the SQLite instance: real Dagster runs, real loopback HTTP to the sandbox,
a real ledger file and real parquet."""

import logging
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from mirakl_pipelines.defs.orders import raw_dataset
from mirakl_pipelines.defs.partitions import partition_key
from mirakl_pipelines.definitions import build_definitions
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines_tests.defs.conftest import RATE_LIMIT_SCALE

MKP = "decathlon_fr"


def _order(order_id: str, lines, created=None, **kwargs) -> dict:
    address = {"firstname": "Zoë", "lastname": "Lefèvre", "street_1": "12 rue de la République", "zip_code": "69002",
               "city": "Lyon", "country_iso_code": "FRA", "phone": "+33612345678"}
    kwargs.setdefault("shipping_address", address)
    kwargs.setdefault("billing_address", address)
    kwargs.setdefault("customer", {"firstname": "Zoë", "lastname": "Lefèvre"})
    return build_order(order_id=order_id, lines=lines, created=created or datetime.now(timezone.utc), **kwargs)


def _line(sku: str, qty: int = 1, price: str = "54.00") -> dict:
    return {"sku": sku, "title": f"Item {sku}", "quantity": qty, "unit_price": Decimal(price)}


class Pipeline:
    """The project's real Definitions, materialised partition by partition on a test instance."""

    def __init__(self, settings, config_path, instance):
        self.settings = settings
        self.defs = build_definitions(settings, str(config_path), rate_limit_scale=RATE_LIMIT_SCALE)
        self.instance = instance
        self.job = self.defs.resolve_job_def("orders_sync")

    def run(self, day=None, marketplace=MKP, tags=None) -> dg.ExecuteInProcessResult:
        day = day or datetime.now(timezone.utc).date()
        return self.job.execute_in_process(
            partition_key=partition_key(day, marketplace), instance=self.instance, tags=tags or {}, raise_on_error=True
        )

    def ledger(self) -> Ledger:
        return Ledger.connect(self.settings.ledger_default_url)


def _meta(result, asset: str) -> dict:
    [mat] = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in mat.metadata.items()}


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def pipeline(settings, config_path):
    with dg.instance_for_test() as instance:
        yield Pipeline(settings, config_path, instance)


def _wait_until_shipping(sim, order_ids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sim.tick()
        if all(sim.get_order(o)["order_state"] == "SHIPPING" for o in order_ids):
            return
        time.sleep(0.1)
    raise AssertionError({o: sim.get_order(o)["order_state"] for o in order_ids})


def test_orders_are_accepted_then_imported_once(pipeline, sandbox):
    sim = sandbox.sims[MKP]
    sim.add_order(_order("T-1-A", [_line("ALP-MERINO-S", 2)]))
    sim.add_order(_order("T-2-A", [_line("ALP-TRAIL-42", 1, "89.90"), _line("LUM-HEAD-400", 3, "39.95")]))
    sim.add_order(_order("T-3-A", [_line("ALP-DISCONTINUED-01")]))  # unknown to Shopify: left for an operator
    sim.add_order(_order("T-4-A", [_line("ALP-MERINO-L")]))  # known, but out of stock

    first = pipeline.run()
    raw = _meta(first, "mirakl_orders")
    assert raw["fetched"] == 4 and raw["new"] == 4
    imported = _meta(first, "shopify_orders")
    assert imported["accepted"] == 2 and imported["left_for_operator"] == 2 and imported["imported"] == 0
    assert sim.get_order("T-1-A")["order_state"] in ("WAITING_DEBIT", "SHIPPING")
    assert sim.get_order("T-3-A")["order_state"] == "WAITING_ACCEPTANCE"

    _wait_until_shipping(sim, ["T-1-A", "T-2-A"])
    second = pipeline.run()
    imported = _meta(second, "shopify_orders")
    assert imported["imported"] == 2, imported
    by_source = {o["sourceIdentifier"]: o for o in sandbox.store.orders()}
    assert set(by_source) == {f"{MKP}:T-1-A", f"{MKP}:T-2-A"}
    assert by_source[f"{MKP}:T-2-A"]["displayFinancialStatus"] == "PAID"

    with closing(pipeline.ledger()) as ledger:
        links = ledger.get_order_links(MKP, ["T-1-A", "T-2-A", "T-3-A"])
        assert links["T-1-A"].import_state == "imported" and links["T-1-A"].acceptance_state == "accepted"
        assert links["T-2-A"].shopify_order_name.startswith("#")
        exceptions = {e.record_id: e for e in ledger.open_exceptions(MKP)}
    assert "ALP-DISCONTINUED-01" in exceptions["T-3-A"].reason
    assert exceptions["T-4-A"].kind == "acceptance_needed"

    # Nothing new: a third run creates nothing, calls Mirakl once and writes no parquet.
    parts_before = sorted(Path(_meta(second, "mirakl_orders")["path"]).glob("part-*.parquet"))
    third = pipeline.run()
    assert _meta(third, "mirakl_orders")["mirakl_calls"] == 1
    assert (_meta(third, "mirakl_orders")["new"], _meta(third, "mirakl_orders")["updated"]) == (0, 0)
    assert sorted(Path(_meta(third, "mirakl_orders")["path"]).glob("part-*.parquet")) == parts_before
    assert _meta(third, "shopify_orders")["imported"] == 0
    # Only the two orders still waiting for an operator are looked at again; the imported ones are settled.
    assert _meta(third, "shopify_orders")["examined"] == 2
    assert len(sandbox.store.orders()) == 2

    # The day's raw orders are in parquet, money as decimal128; the latest version of each order wins.
    folder = _meta(third, "mirakl_orders")["path"]
    assert pq.read_schema(next(Path(folder).glob("part-*.parquet"))).field("total_price").type == \
        raw_dataset.SCHEMA.field("total_price").type
    table = raw_dataset.read_day(pipeline.settings.resolve_path(pipeline.settings.warehouse_path), MKP,
                                 datetime.now(timezone.utc).date())
    assert sorted(table.column("order_id").to_pylist()) == ["T-1-A", "T-2-A", "T-3-A", "T-4-A"]
    assert dict(zip(table.column("order_id").to_pylist(), table.column("order_state").to_pylist()))["T-1-A"] == "SHIPPING"


def test_checks_flag_acceptance_window_and_exceptions(pipeline, sandbox):
    sim = sandbox.sims[MKP]
    window = timedelta(hours=pipeline.settings.marketplace(MKP).acceptance.window_hours)
    old = datetime.now(timezone.utc) - window * 0.95  # near the end of its window, and unservable
    sim.add_order(_order("W-1-A", [_line("LEGACY-SKU-9")], created=old))
    result = pipeline.run(day=old.date())
    checks = _checks(result)
    assert not checks["acceptance_window"].passed
    assert checks["acceptance_window"].severity == dg.AssetCheckSeverity.ERROR
    assert "W-1-A" in str(checks["acceptance_window"].metadata["orders"].value)
    assert checks["eligible_orders_imported"].passed


def test_bad_order_never_stops_the_batch(pipeline, sandbox):
    sim = sandbox.sims[MKP]
    no_address = _order("B-1-A", [_line("ALP-MERINO-M")])
    no_address["customer"]["shipping_address"] = None
    sim.add_order(no_address)
    sim.add_order(_order("B-2-A", [_line("ALP-MERINO-M")]))
    pipeline.run()
    _wait_until_shipping(sim, ["B-1-A", "B-2-A"])
    result = pipeline.run()
    meta = _meta(result, "shopify_orders")
    assert meta["imported"] == 1
    assert meta["skipped"].get("no_shipping_address") == 1
    assert [o["sourceIdentifier"] for o in sandbox.store.orders()] == [f"{MKP}:B-2-A"]


def test_past_day_backfill_reimports_safely(pipeline, sandbox):
    sim = sandbox.sims[MKP]
    yesterday = datetime.now(timezone.utc) - timedelta(days=1)
    order = _order("Y-1-A", [_line("ALP-VEST-12", 1, "119.00")], created=yesterday, state="SHIPPING")
    sim.add_order(order)
    first = pipeline.run(day=yesterday.date())
    assert _meta(first, "mirakl_orders")["full_day"] is True
    assert _meta(first, "shopify_orders")["imported"] == 1
    again = pipeline.run(day=yesterday.date())
    assert _meta(again, "shopify_orders")["imported"] == 0
    assert len(sandbox.store.orders()) == 1


def test_an_order_that_keeps_failing_warns_once_then_is_retried_quietly(pipeline, sandbox):
    sim = sandbox.sims[MKP]
    sim.add_order(_order("T-8-A", [_line("ALP-MERINO-S"), _line("ALP-DISCONTINUED-01")], state="SHIPPING"))

    def failures(result) -> list[tuple[str, str]]:
        entries = pipeline.instance.all_logs(result.run_id)
        return [(e.level, e.user_message) for e in entries if "T-8-A" in (e.user_message or "") and "not imported" in e.user_message]

    first, second = pipeline.run(), pipeline.run()
    assert [level for level, _ in failures(first)] == [logging.WARNING]
    [(level, message)] = failures(second)
    assert level == logging.DEBUG and "still not imported (unknown_sku, attempt 2" in message  # retried, not repeated
    with closing(pipeline.ledger()) as ledger:
        [exception] = [e for e in ledger.open_exceptions(MKP) if e.record_id == "T-8-A"]
    assert exception.kind == "unknown_sku" and exception.occurrences == 2
