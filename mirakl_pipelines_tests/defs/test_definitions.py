"""The Definitions load, and the schedules ask for the right partitions with the right run keys."""

from datetime import datetime, timezone

import dagster as dg

from mirakl_pipelines.config import load_settings
from mirakl_pipelines.defs.fulfilments.assets import SHIPPING_TAG, SWEEP_TAG
from mirakl_pipelines.defs.orders.assets import FULL_DAY_TAG
from mirakl_pipelines.defs.stock.assets import FULL_TAG, STOCK_TAG
from mirakl_pipelines.definitions import build_definitions


def test_project_definitions_load_from_the_shipped_config():
    from mirakl_pipelines import definitions

    defs = definitions.defs
    assert {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()} >= {
        "mirakl_orders", "shopify_orders", "mirakl_shipments", "shopify_stock", "mirakl_stock"}
    job = defs.resolve_job_def("orders_sync")
    assert job.partitions_def is not None
    names = {s.name for s in defs.schedules}
    assert {"orders_decathlon_fr", "orders_closeout_decathlon_fr", "orders_leroymerlin_fr"} <= names
    checks = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    assert checks == {"eligible_orders_imported", "acceptance_window", "open_import_exceptions", "imported_orders_in_step",
                      "unacknowledged_fulfilments", "open_carrier_exceptions", "open_shipping_exceptions", "stock_delta"}
    assert {"fulfilment_inbox", "run_failure_alerts", "stock_inventory_webhooks"} <= {s.name for s in defs.sensors}
    assert {"shipments_sweep_decathlon_fr", "stock_decathlon_fr", "stock_full_leroymerlin_fr"} <= names


def _evaluate(defs: dg.Definitions, name: str, when: datetime) -> dg.RunRequest:
    schedule = defs.resolve_schedule_def(name)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
        )
        data = schedule.evaluate_tick(context)
    [request] = data.run_requests
    return request


def test_refresh_and_closeout_ticks():
    settings = load_settings()
    defs = build_definitions(settings)
    when = datetime(2026, 11, 23, 10, 15, tzinfo=timezone.utc)
    refresh = _evaluate(defs, "orders_decathlon_fr", when)
    assert refresh.partition_key == "2026-11-23|decathlon_fr"
    assert refresh.run_key == "orders|decathlon_fr|2026-11-23T10:15"
    assert refresh.tags["marketplace"] == "decathlon_fr"
    later = _evaluate(defs, "orders_decathlon_fr", when.replace(minute=30))
    assert later.run_key != refresh.run_key  # every tick refreshes, none is deduplicated away

    closeout = _evaluate(defs, "orders_closeout_leroymerlin_fr", datetime(2026, 11, 23, 2, 30, tzinfo=timezone.utc))
    assert closeout.partition_key == "2026-11-22|leroymerlin_fr"
    assert closeout.tags[FULL_DAY_TAG] == "true"

    # dagster.yaml allows one run per value of each tag: a push must not queue behind an import of its marketplace.
    # (Same Definitions: Dagster keeps a process-wide load context tied to the first instance.)
    sweep = _evaluate(defs, "shipments_sweep_decathlon_fr", datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc))
    assert sweep.partition_key == "2026-11-23|decathlon_fr"
    assert sweep.tags[SHIPPING_TAG] == "decathlon_fr" and sweep.tags[SWEEP_TAG] == "true"
    assert "marketplace" not in sweep.tags

    # Stock: changed offers on the cron, every offer on the full cron; one stock run per marketplace at a time.
    stock = _evaluate(defs, "stock_leroymerlin_fr", datetime(2026, 11, 23, 10, 45, tzinfo=timezone.utc))
    assert (stock.partition_key, stock.tags[STOCK_TAG]) == ("2026-11-23|leroymerlin_fr", "leroymerlin_fr")
    assert FULL_TAG not in stock.tags and "marketplace" not in stock.tags
    full = _evaluate(defs, "stock_full_leroymerlin_fr", datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc))
    assert full.tags[FULL_TAG] == "true" and full.run_key != stock.run_key

