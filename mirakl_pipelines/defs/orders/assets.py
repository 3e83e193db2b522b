"""Order assets, partitioned by day × marketplace.

- `mirakl_orders`: the Mirakl orders updated in the fetch window, appended to the day's parquet page by page
  (only what is new or changed; kept raw so a mapping fix can be replayed without calling Mirakl again).
- `shopify_orders`: the day's orders decided in Mirakl (OR21) and created in Shopify, with the
  ledger as memory and asset checks on what operators must watch.

Both take a backfill of a range in one run (`BackfillPolicy.single_run()`): Dagster then hands the run a
rectangle of days × marketplaces; each marketplace's days are fetched by one paginated OR11 sequence over the
whole range, rows routed to their day partitions, and imported day by day. A single partition (the schedules'
refreshes, the close-outs) is the one-day case.
"""

from datetime import date, datetime, timedelta, timezone
from itertools import chain
from pathlib import Path

import dagster as dg

from mirakl_pipelines.config import MarketplaceConfig, Settings
from mirakl_pipelines.defs.alerts import Alerts
from mirakl_pipelines.defs.orders import raw_dataset
from mirakl_pipelines.defs.orders.catch_up import owe_refresh
from mirakl_pipelines.defs.orders.checks import ORDER_CHECK_SPECS, evaluate_order_checks
from mirakl_pipelines.defs.orders.importer import BatchReport, OrderBatch
from mirakl_pipelines.mirakl.budget import BACKGROUND, LIVE
from mirakl_pipelines.mirakl.errors import CallBudgetExceeded
from mirakl_pipelines.defs.resources import (
    LedgerResource,
    MiraklResource,
    SettingsResource,
    ShopifyResource,
    WarehouseResource,
)
from mirakl_pipelines.sync.sku_map import marketplace_sku_map
from mirakl_pipelines.sync.windows import fetch_window, partition_day_bounds, range_window

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


def run_days(context: dg.AssetExecutionContext) -> dict[str, list[date]]:
    """The run's partitions as the days of each marketplace (one day for a single-partition run)."""
    partitions_def = context.assets_def.partitions_def
    days: dict[str, list[date]] = {}
    for key in context.partition_keys:
        dims = key.keys_by_dimension if isinstance(key, dg.MultiPartitionKey) else \
            partitions_def.get_partition_key_from_str(key).keys_by_dimension
        days.setdefault(dims["marketplace"], []).append(date.fromisoformat(dims["date"]))
    return {code: sorted(set(found)) for code, found in days.items()}


def build_order_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=partitions,
        group_name="orders",
        kinds={"mirakl", "parquet"},
        # No pool: Mirakl's limits are per marketplace (the ledger's call budget spaces them); a global pool would
        # make one marketplace's refresh wait for another's, or for a long backfill of another marketplace.
        retry_policy=API_RETRY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=(
            "Mirakl orders (OR11) updated in the partition's day, as received; parquet parts per day and marketplace, "
            "the latest version of each order winning."
        ),
    )
    def mirakl_orders(
        context: dg.AssetExecutionContext,
        settings: SettingsResource,
        ledger: LedgerResource,
        warehouse: WarehouseResource,
        mirakl: MiraklResource,
    ) -> dg.MaterializeResult:
        cfg: Settings = settings.load()
        now = _utcnow()
        runs = run_days(context)
        if len(runs) == 1 and len(next(iter(runs.values()))) == 1:
            [(code, [day])] = runs.items()
            return _refresh_day(context, cfg, ledger, warehouse, mirakl, code, day, now)
        return _fetch_ranges(context, cfg, ledger, warehouse, mirakl, runs, now)

    @dg.asset(
        partitions_def=partitions,
        group_name="orders",
        kinds={"shopify", "mirakl"},
        deps=[mirakl_orders],
        pool="shopify_api",
        retry_policy=API_RETRY,
        backfill_policy=dg.BackfillPolicy.single_run(),
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
        reports = []
        with ledger.open() as lg:
            api_calls = {"mirakl": 0, "shopify": 0, "shopify_cost": 0.0}
            for code, days in run_days(context).items():
                marketplace = cfg.marketplace(code)
                store = cfg.store_for(marketplace)
                sharing = tuple(m.code for m in cfg.marketplaces if cfg.store_for(m).name == store.name)
                sku_map = marketplace_sku_map(cfg, marketplace)
                with mirakl.client(cfg, code, budget=lg) as mk, shopify.client(cfg, store.name) as sh:
                    for day in days:
                        batch = OrderBatch(marketplace, store, mk, sh, lg, Alerts.from_settings(cfg), context.log,
                                           warehouse_path=warehouse.base_path, store_marketplaces=sharing,
                                           sku_map=sku_map)
                        reports.append(batch.run(day))
                    api_calls["mirakl"] += sum(mk.calls.values())
                    api_calls["shopify"] += sum(sh.calls.values())
                    api_calls["shopify_cost"] += sh.cost_spent
            checks = evaluate_order_checks(lg, cfg.marketplaces, _utcnow())
        report = BatchReport.total(reports)
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


def _patience_and_priority(full_day: bool) -> tuple[float, str]:
    # A refresh does not queue for OR11: when the slot is far, it skips and is owed (caught up once the slot
    # opens). A close-out or backfill waits for its slot, behind live refreshes.
    return (FULL_DAY_PATIENCE_SECONDS, BACKGROUND) if full_day else (REFRESH_PATIENCE_SECONDS, LIVE)


def _refresh_day(context, cfg: Settings, ledger: LedgerResource, warehouse: WarehouseResource, mirakl: MiraklResource,
                 code: str, day: date, now: datetime) -> dg.MaterializeResult:
    """One partition: a refresh of the window since the last one (or the whole day), appended to the day."""
    marketplace = cfg.marketplace(code)
    full_day = _full_day(context, day, now)
    with ledger.open() as lg:
        watermark = None if full_day else lg.get_watermark(FLOW, code, day)
        previous = None if full_day or watermark is not None else lg.get_watermark(FLOW, code, day - timedelta(days=1))
        schedule = marketplace.schedule
        start, end = fetch_window(day, now, watermark, timedelta(minutes=schedule.overlap_minutes),
                                  lookback=timedelta(minutes=schedule.lookback_minutes), previous_day_end=previous,
                                  full_day=full_day)
        patience, priority = _patience_and_priority(full_day)
        with mirakl.client(cfg, code, budget=lg, max_wait=patience, priority=priority, owner=context.run.run_id) as client:
            pages = _pages(client, marketplace, start, end, now)
            try:
                first = next(pages, [])
            except CallBudgetExceeded as e:
                if full_day:
                    raise
                # The message says how long: the slot is taken, or Mirakl asked (Retry-After) to wait longer.
                context.log.warning("%s %s: refresh skipped: %s", code, day, e)
                owe_refresh(lg, FLOW, code, day, e.wait, "OR11 slot taken")  # the catch-up sensor runs it
                return dg.MaterializeResult(metadata={"fetched": 0, "skipped": f"OR11: {e}", "mirakl_calls": 0})
            writer = _write_pages(raw_dataset.RangeWriter(warehouse.base_path, code, [day]), chain([first], pages))
            calls = sum(client.calls.values())
        writer.commit(compact_now=full_day)
        lg.set_watermark(FLOW, code, day, end)
    context.log.info("%s %s: fetched %d orders in [%s, %s), %d new, %d updated",
                     code, day, writer.total("fetched"), start, end, writer.total("new"), writer.total("updated"))
    return _fetch_result(writer, start, end, full_day, calls, raw_dataset.day_folder(warehouse.base_path, code, day))


def _fetch_ranges(context, cfg: Settings, ledger: LedgerResource, warehouse: WarehouseResource, mirakl: MiraklResource,
                  runs: dict[str, list[date]], now: datetime) -> dg.MaterializeResult:
    """A backfill of days × marketplaces: one OR11 sequence per marketplace over its whole range, waiting for its
    slot behind live refreshes; each order routed to the day of its last update; each day's watermark at its end."""
    patience, priority = _patience_and_priority(full_day=True)
    figures: dict[str, dict] = {}
    writers, calls, bounds = [], 0, []
    with ledger.open() as lg:
        for code, days in runs.items():
            marketplace = cfg.marketplace(code)
            start, end = range_window(days, now)
            with mirakl.client(cfg, code, budget=lg, max_wait=patience, priority=priority,
                               owner=context.run.run_id) as client:
                writer = _write_pages(raw_dataset.RangeWriter(warehouse.base_path, code, days),
                                      _pages(client, marketplace, start, end, now))
                calls += sum(client.calls.values())
            writer.commit(compact_now=True)
            for day in writer.writers:
                lg.set_watermark(FLOW, code, day, min(end, partition_day_bounds(day)[1]))
            writers.append(writer)
            bounds += [start, end]
            figures[code] = {day.isoformat(): {"fetched": w.fetched, "new": w.new, "updated": w.updated, "orders": w.rows}
                             for day, w in writer.writers.items()}
            context.log.info("%s: fetched %d orders of %d day(s) in [%s, %s) with one OR11 sequence, %d new, %d updated",
                             code, writer.total("fetched"), len(days), start, end, writer.total("new"),
                             writer.total("updated"))
    return _fetch_result(_Totals(writers), min(bounds), max(bounds), True, calls,
                         Path(warehouse.base_path) / raw_dataset.DATASET, days=dg.MetadataValue.json(figures))


def _pages(client, marketplace: MarketplaceConfig, start: datetime, end: datetime, now: datetime):
    # A live window is left open at its end: an order updated while the pages are read stays in the listing
    # (it cannot leave it and shift the next pages); a past window is closed.
    return client.iter_order_pages(updated_from=start, updated_to=None if end >= now else end,
                                   tax_mode=marketplace.orders.tax_mode)


def _write_pages(writer: raw_dataset.RangeWriter, pages) -> raw_dataset.RangeWriter:
    """Each page written as it comes and let go; nothing is published unless every page was read."""
    try:
        for page in pages:
            writer.add(page)
    except BaseException:
        writer.abort()
        raise
    return writer


class _Totals:
    def __init__(self, writers):
        self.writers = writers

    def total(self, figure: str) -> int:
        return sum(w.total(figure) for w in self.writers)


def _fetch_result(writer, start: datetime, end: datetime, full_day: bool, calls: int, path,
                  **extra) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={
            **extra,
            "fetched": writer.total("fetched"),
            "new": writer.total("new"),
            "updated": writer.total("updated"),
            "dagster/row_count": writer.total("rows"),
            "window_start": dg.MetadataValue.timestamp(start),
            "window_end": dg.MetadataValue.timestamp(end),
            "full_day": full_day,
            "mirakl_calls": calls,
            "path": dg.MetadataValue.path(str(path)),
        }
    )


def _preview(rows: list[dict]) -> dg.MetadataValue:
    if not rows:
        return dg.MetadataValue.md("_no order imported in this run_")
    lines = ["| Mirakl order | Shopify order |", "|---|---|"]
    lines += [f"| {r['mirakl_order_id']} | [{r['shopify_order']}]({r['url']}) |" for r in rows[:50]]
    if len(rows) > 50:
        lines.append(f"| … {len(rows) - 50} more | |")
    return dg.MetadataValue.md("\n".join(lines))
