"""Order assets, partitioned by day × marketplace.

- `mirakl_orders`: the Mirakl orders updated in the fetch window, merged into the day's parquet
  (kept raw so a mapping fix can be replayed without calling Mirakl again).
- `shopify_orders`: the day's orders decided in Mirakl (OR21) and created in Shopify, with the
  ledger as memory and asset checks on what operators must watch.
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg

from mirakl_pipelines.config import Settings
from mirakl_pipelines.defs.alerts import Alerts
from mirakl_pipelines.defs.io import read_partition, write_partition
from mirakl_pipelines.defs.orders import raw_dataset
from mirakl_pipelines.defs.orders.checks import ORDER_CHECK_SPECS, evaluate_order_checks
from mirakl_pipelines.defs.orders.importer import OrderBatch
from mirakl_pipelines.defs.partitions import split_partition_key
from mirakl_pipelines.mirakl.errors import CallBudgetExceeded
from mirakl_pipelines.defs.resources import (
    LedgerResource,
    MiraklResource,
    SettingsResource,
    ShopifyResource,
    WarehouseResource,
)
from mirakl_pipelines.sync.windows import fetch_window

# Run tag asking for the partition's whole day (close-out runs); past days are always fetched whole.
FULL_DAY_TAG = "mirakl_pipelines/full_day"
FLOW = "orders"
# How long (in API seconds) a fetch may wait for Mirakl's OR11 slot (at most one call a minute).
REFRESH_PATIENCE_SECONDS = 20.0
FULL_DAY_PATIENCE_SECONDS = 120.0

API_RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _full_day(context: dg.AssetExecutionContext, day: date, now: datetime) -> bool:
    return context.run.tags.get(FULL_DAY_TAG) == "true" or day < now.date()


def build_order_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=partitions,
        group_name="orders",
        kinds={"mirakl", "parquet"},
        pool="mirakl_api",
        retry_policy=API_RETRY,
        description="Mirakl orders (OR11) updated in the partition's day, as received; one parquet file per day and marketplace.",
    )
    def mirakl_orders(
        context: dg.AssetExecutionContext,
        settings: SettingsResource,
        ledger: LedgerResource,
        warehouse: WarehouseResource,
        mirakl: MiraklResource,
    ) -> dg.MaterializeResult:
        cfg: Settings = settings.load()
        day, code = split_partition_key(context)
        marketplace = cfg.marketplace(code)
        now = _utcnow()
        full_day = _full_day(context, day, now)
        with ledger.open() as lg:
            watermark = None if full_day else lg.get_watermark(FLOW, code, day)
            start, end = fetch_window(
                day, now, watermark, timedelta(minutes=marketplace.schedule.lookback_minutes), full_day=full_day
            )
            # A refresh does not queue for OR11: when the slot is far, it skips and the next tick's look-back
            # covers the window. A close-out or backfill waits for its slot.
            patience = FULL_DAY_PATIENCE_SECONDS if full_day else REFRESH_PATIENCE_SECONDS
            with mirakl.client(cfg, code, budget=lg, max_wait=patience) as client:
                try:
                    fresh = client.list_orders(updated_from=start, updated_to=end, tax_mode=marketplace.orders.tax_mode)
                except CallBudgetExceeded as e:
                    if full_day:
                        raise
                    context.log.warning("%s %s: refresh skipped, OR11's next slot is %.1f s away", code, day, e.wait)
                    return dg.MaterializeResult(metadata={"fetched": 0, "skipped": "OR11 call budget: next slot too far",
                                                          "mirakl_calls": 0})
                calls = sum(client.calls.values())
            table, merged = raw_dataset.merge_into(_day_table(warehouse, code, day), fresh)
            path = write_partition(warehouse.base_path, raw_dataset.DATASET, code, day, table)
            lg.set_watermark(FLOW, code, day, end)
        context.log.info("%s %s: fetched %d orders in [%s, %s), %d new, %d updated",
                         code, day, len(fresh), start, end, merged.new, merged.updated)
        return dg.MaterializeResult(
            metadata={
                "fetched": len(fresh),
                "new": merged.new,
                "updated": merged.updated,
                "dagster/row_count": len(table),
                "window_start": dg.MetadataValue.timestamp(start),
                "window_end": dg.MetadataValue.timestamp(end),
                "full_day": full_day,
                "mirakl_calls": calls,
                "path": dg.MetadataValue.path(str(path)),
            }
        )

    @dg.asset(
        partitions_def=partitions,
        group_name="orders",
        kinds={"shopify", "mirakl"},
        deps=[mirakl_orders],
        pool="shopify_api",
        retry_policy=API_RETRY,
        check_specs=ORDER_CHECK_SPECS,
        description=(
            "The day's Mirakl orders accepted in Mirakl (OR21) per the marketplace's acceptance mode and created in "
            "Shopify (orderCreate) once paid; each linked in the ledger, bad ones in the exception queue."
        ),
    )
    def shopify_orders(
        context: dg.AssetExecutionContext,
        settings: SettingsResource,
        ledger: LedgerResource,
        warehouse: WarehouseResource,
        mirakl: MiraklResource,
        shopify: ShopifyResource,
    ) -> dg.MaterializeResult:
        cfg: Settings = settings.load()
        day, code = split_partition_key(context)
        marketplace = cfg.marketplace(code)
        store = cfg.store_for(marketplace)
        day_table = _day_table(warehouse, code, day)
        with ledger.open() as lg, mirakl.client(cfg, code, budget=lg) as mk, shopify.client(cfg, store.name) as sh:
            sharing = tuple(m.code for m in cfg.marketplaces if cfg.store_for(m).name == store.name)
            batch = OrderBatch(marketplace, store, mk, sh, lg, Alerts.from_settings(cfg), context.log,
                               warehouse_path=warehouse.base_path, store_marketplaces=sharing)
            report = batch.run(day, day_table)
            checks = evaluate_order_checks(lg, marketplace, _utcnow())
            api_calls = {"mirakl": sum(mk.calls.values()), "shopify": sum(sh.calls.values()), "shopify_cost": sh.cost_spent}
        return dg.MaterializeResult(
            metadata={
                "orders_in_day": report.considered,
                "examined": report.examined,
                "eligible": report.eligible,
                "imported": report.imported,
                "recovered": report.recovered,
                "already_imported": report.already_imported,
                "accepted": report.accepted,
                "refused": report.refused,
                "left_for_operator": report.left_for_operator,
                "acceptance_failed": report.acceptance_failed,
                "failed": report.failed,
                "marked_paid": report.marked_paid,
                "units_held_after_cancellation": report.units_held,
                "addresses_completed": report.addresses_completed,
                "follow_ups_failed": report.follow_ups_failed,
                "skipped": dg.MetadataValue.json(dict(report.skipped)),
                "api_calls": dg.MetadataValue.json(api_calls),
                "imported_orders": _preview(report.imported_orders),
            },
            check_results=checks,
        )

    return [mirakl_orders, shopify_orders]


def _day_table(warehouse: WarehouseResource, code: str, day: date):
    """The day's raw orders table (empty before the first fetch)."""
    return read_partition(warehouse.base_path, raw_dataset.DATASET, code, day, raw_dataset.SCHEMA)


def _preview(rows: list[dict]) -> dg.MetadataValue:
    if not rows:
        return dg.MetadataValue.md("_no order imported in this run_")
    lines = ["| Mirakl order | Shopify order |", "|---|---|"]
    lines += [f"| {r['mirakl_order_id']} | [{r['shopify_order']}]({r['url']}) |" for r in rows[:50]]
    if len(rows) > 50:
        lines.append(f"| … {len(rows) - 50} more | |")
    return dg.MetadataValue.md("\n".join(lines))
