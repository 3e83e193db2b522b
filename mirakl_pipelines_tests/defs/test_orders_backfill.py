"""A backfill of a range runs as one window: Dagster's single-run backfill policy hands one run the whole range,
which lists OR11 once per marketplace and routes each order to the day of its last update."""

from contextlib import closing
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._core.definitions.automation_tick_evaluation_context import build_run_requests_with_backfill_policies
from dagster._core.definitions.events import AssetKeyPartitionKey

from mirakl_pipelines.defs.orders import raw_dataset
from mirakl_pipelines.defs.orders.assets import FLOW
from mirakl_pipelines.defs.partitions import partition_key
from mirakl_pipelines.sync.windows import partition_day_bounds
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline, _line, _order

OTHER = "leroymerlin_fr"


@pytest.fixture
def pipeline(settings, config_path):
    with dg.instance_for_test() as instance:
        yield Pipeline(settings, config_path, instance)


def _seed(sim, prefix: str, days) -> dict:
    placed = {}
    for n, day in enumerate(days):
        at = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=9, minutes=n)
        ids = [f"{prefix}-{day:%d}-{i}-A" for i in range(2)]
        for order_id in ids:
            sim.add_order(_order(order_id, [_line("ALP-MERINO-S")], created=at, state="SHIPPING"))
        placed[day] = ids
    return placed


def _backfill_runs(pipeline, days, codes) -> list[dg.RunRequest]:
    """The runs Dagster's asset backfill would launch for these partitions of both order assets."""
    graph = pipeline.defs.resolve_asset_graph()
    wanted = [AssetKeyPartitionKey(dg.AssetKey(asset), partition_key(day, code))
              for asset in ("mirakl_orders", "shopify_orders") for day in days for code in codes]
    return build_run_requests_with_backfill_policies(wanted, graph, pipeline.instance)


def _materialisations(result, asset: str) -> list[dg.AssetMaterialization]:
    return result.asset_materializations_for_node(asset)


def test_a_three_day_backfill_is_one_run_and_one_or11_listing(pipeline, sandbox):
    sim = sandbox.sims[MKP]
    today = datetime.now(timezone.utc).date()
    days = [today - timedelta(days=n) for n in (4, 3, 2)]
    placed = _seed(sim, "BF", days)

    [request] = _backfill_runs(pipeline, days, [MKP])
    assert request.partition_key is None  # a range, not a partition
    before = sim.calls["OR11"]
    result = pipeline.job.execute_in_process(instance=pipeline.instance, tags=request.tags, raise_on_error=True)

    assert sim.calls["OR11"] - before == 1  # one listing of one page for the three days
    [fetch] = {m.metadata["mirakl_calls"].value for m in _materialisations(result, "mirakl_orders")}
    assert fetch == 1
    assert sorted(m.partition for m in _materialisations(result, "mirakl_orders")) == \
        sorted(str(partition_key(day, MKP)) for day in days)
    warehouse = pipeline.settings.resolve_path(pipeline.settings.warehouse_path)
    for day in days:
        assert sorted(raw_dataset.read_day(warehouse, MKP, day).column("order_id").to_pylist()) == sorted(placed[day])
    [imported] = {m.metadata["imported"].value for m in _materialisations(result, "shopify_orders")}
    assert imported == 6
    assert sorted(o["sourceIdentifier"] for o in sandbox.store.orders()) == \
        sorted(f"{MKP}:{order_id}" for ids in placed.values() for order_id in ids)
    with closing(pipeline.ledger()) as ledger:
        assert [ledger.get_watermark(FLOW, MKP, day) for day in days] == [partition_day_bounds(d)[1] for d in days]
        assert {link.snapshot_day for link in ledger.get_order_links(MKP, placed[days[1]]).values()} == {days[1]}

    # A single partition still runs as before: one day, its own listing.
    again = pipeline.run(day=days[0])
    assert again.asset_materializations_for_node("shopify_orders")[0].metadata["already_imported"].value == 2


def test_a_rectangle_of_days_and_marketplaces_lists_each_marketplace_once(pipeline, sandbox):
    today = datetime.now(timezone.utc).date()
    days = [today - timedelta(days=n) for n in (3, 2)]
    placed = {code: _seed(sandbox.sims[code], code[:2].upper(), days) for code in (MKP, OTHER)}
    requests = _backfill_runs(pipeline, days, [MKP, OTHER])
    assert len(requests) == 2  # Dagster cuts a 2 × 2 rectangle by one dimension: each run a range of the other
    before = {code: sandbox.sims[code].calls["OR11"] for code in (MKP, OTHER)}
    first = days[0]
    # The widest a range run gets: a rectangle over both dimensions, one run.
    tags = {"dagster/asset_partition_range_start": str(partition_key(first, MKP)),
            "dagster/asset_partition_range_end": str(partition_key(days[-1], OTHER))}
    pipeline.job.execute_in_process(instance=pipeline.instance, tags=tags, raise_on_error=True)
    assert {code: sandbox.sims[code].calls["OR11"] - before[code] for code in (MKP, OTHER)} == {MKP: 1, OTHER: 1}
    warehouse = pipeline.settings.resolve_path(pipeline.settings.warehouse_path)
    for code in (MKP, OTHER):
        for day in days:
            assert sorted(raw_dataset.read_day(warehouse, code, day).column("order_id").to_pylist()) == \
                sorted(placed[code][day])
