"""The stock assets and their job: `shopify_stock` (what Shopify has, per location) and `mirakl_stock` (what was
computed, what was sent, what Mirakl reports), materialised together by one step per run (defs/stock/push.py), with
the `stock_delta` check on `mirakl_stock`.

Partitions are day × marketplace like every flow, but a stock level cannot be read for the past: only today's
partition is materialised (yesterday's for a few minutes after midnight, for a run that was late to start).
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pandas as pd

from mirakl_pipelines.config import Settings
from mirakl_pipelines.defs.orders.assets import API_RETRY
from mirakl_pipelines.defs.partitions import split_partition_key
from mirakl_pipelines.defs.resources import LedgerResource, MiraklResource, SettingsResource, ShopifyResource, WarehouseResource
from mirakl_pipelines.defs.stock.checks import STOCK_CHECK_SPECS, stock_delta_result
from mirakl_pipelines.defs.stock.datasets import snapshot_table, write_snapshot
from mirakl_pipelines.defs.stock.push import StockPush, StockRunReport

JOB_NAME = "stock_sync"
STOCK_TAG = "mirakl_pipelines/stock"  # one stock run per marketplace at a time (instance tag concurrency)
FULL_TAG = "mirakl_pipelines/stock_full"  # "true": send every SKU, not only the changed ones
MIDNIGHT_GRACE = timedelta(minutes=10)


class PastStockDay(dg.Failure):
    pass


def refuse_past_day(day: date, now: datetime) -> None:
    """Stock levels are read now: a past day's partition cannot be materialised (a backfill would write today's
    levels under an old date)."""
    today = now.date()
    if day == today or (day == today - timedelta(days=1) and now - datetime.combine(today, datetime.min.time(),
                                                                                     tzinfo=timezone.utc) < MIDNIGHT_GRACE):
        return
    raise PastStockDay(description=(
        f"stock partition {day} cannot be materialised on {today}: a stock level cannot be re-read for the past, "
        f"so only today's partition is computed (the day's snapshots and pushes stay as they were written)"),
        allow_retries=False)


def build_stock_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.multi_asset(
        name="stock_push",
        specs=[
            dg.AssetSpec("shopify_stock", group_name="stock", kinds={"shopify"},
                         description="Shopify's inventory: `available` per variant and location (paginated GraphQL, "
                                     "or a bulk operation for large catalogues), read at the run."),
            dg.AssetSpec("mirakl_stock", group_name="stock", kinds={"mirakl", "parquet"}, deps=["shopify_stock"],
                         description="Per offer SKU: what the marketplace's stock policy computed from Shopify, what the "
                                     "STO01 file sent and what Mirakl's offers report; dataset `stock_snapshots`."),
        ],
        check_specs=STOCK_CHECK_SPECS,
        partitions_def=partitions,
        can_subset=False,
        retry_policy=API_RETRY,
    )
    def stock_push(context: dg.AssetExecutionContext, settings: SettingsResource, ledger: LedgerResource,
                   warehouse: WarehouseResource, mirakl: MiraklResource, shopify: ShopifyResource):
        cfg: Settings = settings.load()
        day, code = split_partition_key(context)
        refuse_past_day(day, datetime.now(timezone.utc))
        marketplace = cfg.marketplace(code)
        if not marketplace.stock.enabled:
            raise dg.Failure(description=f"stock is disabled for {code} (stock.enabled: false in the configuration)",
                             allow_retries=False)
        full = context.run.tags.get(FULL_TAG) == "true"
        with ledger.open() as lg, \
                mirakl.client(cfg, code, budget=lg, owner=context.run_id) as m_client, \
                shopify.client(cfg, cfg.store_for(marketplace).name) as s_client:
            push = StockPush(cfg, marketplace, m_client, s_client, lg, warehouse.base_path, run_id=context.run_id,
                             logger=context.log)
            report = push.run(full=full)
            path = write_snapshot(warehouse.base_path, code, day, snapshot_table(snapshot_rows(report, context.run_id)))
            check = stock_delta_result(report, cfg, lg, warehouse.base_path, code, day)
        yield dg.MaterializeResult(asset_key="shopify_stock", metadata=shopify_metadata(report))
        yield dg.MaterializeResult(asset_key="mirakl_stock", metadata={**mirakl_metadata(report),
                                                                      "dataset": dg.MetadataValue.path(str(path))},
                                   check_results=[check])

    return [stock_push]


def snapshot_rows(report: StockRunReport, run_id: str) -> pd.DataFrame:
    """The run's `stock_snapshots` rows: the computation, joined with what was sent and the delta's verdict."""
    rows = report.computation.quantities.rename(columns={"quantity": "computed"}).copy()
    rows["snapshot_at"] = report.snapshot.read_at
    rows["run_id"] = run_id
    if report.lines is not None and len(report.lines):
        sent = report.lines.rename(columns={"quantity": "sent"})[["offer_sku", "sent"]]
        rows = rows.merge(sent, on="offer_sku", how="left")
        in_file = rows["sent"].notna()
        rows.loc[in_file, "import_id"] = report.import_id
        rows.loc[in_file, "import_status"] = report.import_status
        if report.rejected:
            rows["line_error"] = rows["offer_sku"].map(report.rejected)
    delta = report.delta.rows.rename(columns={"mirakl": "mirakl_quantity", "status": "delta_status"})
    keep = [c for c in ("offer_sku", "mirakl_quantity", "in_flight", "difference", "delta_status") if c in delta.columns]
    rows = rows.merge(delta[keep], on="offer_sku", how="left")
    rows["check_severity"] = report.delta.severity
    return rows


def shopify_metadata(report: StockRunReport) -> dict:
    snapshot, computation = report.snapshot, report.computation
    levels = snapshot.levels
    findings: dict[str, int] = {}
    for f in computation.findings:
        findings[f.kind] = findings.get(f.kind, 0) + 1
    return {
        "source": snapshot.source,
        "read_at": snapshot.read_at.isoformat(),
        "variants": int(levels["variant_id"].nunique()),
        "levels": int(levels["location_id"].notna().sum()),
        "locations": dg.MetadataValue.json({loc.name: loc.id for loc in snapshot.locations}),
        "findings": dg.MetadataValue.json(findings),
        "read_seconds": report.timings.get("shopify_read", 0.0),
    }


def mirakl_metadata(report: StockRunReport) -> dict:
    quantities = report.computation.quantities
    return {
        "mode": report.mode,
        "skus_computed": len(quantities),
        "units_computed": int(quantities["quantity"].sum()),
        "promised_units": int(quantities["promised"].sum()),
        "lines_sent": 0 if report.lines is None else len(report.lines),
        "not_offered": report.not_offered,
        "lines_for_drift": report.drifted,
        "import_id": report.import_id or "",
        "import_status": report.import_status or ("blocked by " + report.blocked_by if report.blocked_by else "nothing to send"),
        "lines_in_error": report.lines_in_error or 0,
        "lines_rejected": len(report.rejected),
        "earlier_imports_settled": dg.MetadataValue.json(report.earlier_imports),
        "sto01_slot_wait_seconds": round(report.slot_wait_seconds, 1),
        "offers_read": len(report.offers.offers),
        "offers_source": report.offers.source,
        "timings_seconds": dg.MetadataValue.json(report.timings),
    }
