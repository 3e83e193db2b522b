"""The shipment asset, its job, the inbox sensor and the sweep schedule (issue 3).

`mirakl_shipments` (day × marketplace) pushes Shopify fulfilments of imported orders to Mirakl:
deliveries from the webhook inbox, and on a sweep run the fulfilments of orders Shopify updated since
the last sweep (a lost or late webhook). Its checks list fulfilments Mirakl has not shipped after the
marketplace's threshold and open carrier exceptions.
"""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from mirakl_pipelines.config import MarketplaceConfig, Settings
from mirakl_pipelines.defs.fulfilments.push import CARRIER_EXCEPTION, ShipmentPush
from mirakl_pipelines.defs.partitions import partition_key, split_partition_key
from mirakl_pipelines.defs.resources import (
    InvoiceSourceResource,
    LedgerResource,
    MiraklResource,
    SettingsResource,
    ShopifyResource,
    WarehouseResource,
)
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.mirakl.client import Carrier, MiraklClient
from mirakl_pipelines.mirakl.errors import MiraklError
from mirakl_pipelines.sync.carriers import CarrierMap
from mirakl_pipelines.webhooks.topics import FULFILMENT_TOPICS

JOB_NAME = "shipments_sync"
SWEEP_TAG = "mirakl_pipelines/sweep"
# Shipments runs carry their own per-marketplace tag, not `marketplace`: dagster.yaml allows one run per value of
# each, so a push never queues behind a long import of the same marketplace (the call budgets are per operation).
SHIPPING_TAG = "mirakl_pipelines/shipping"
SWEEP_FLOW = "fulfilment_sweep"
SWEEP_OVERLAP = timedelta(minutes=10)
CARRIERS_MAX_AGE = timedelta(days=1)  # SH21 may be called once a day


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def carriers_cached(client: MiraklClient, folder: Path, code: str, now: datetime) -> list[Carrier]:
    """The marketplace's SH21 carriers, fetched at most once a day and kept beside the datasets."""
    path = folder / "mirakl_carriers" / f"{code}.json"
    cached = json.loads(path.read_text()) if path.exists() else None
    if cached and now - datetime.fromisoformat(cached["fetched_at"]) < CARRIERS_MAX_AGE:
        return [Carrier.model_validate(c) for c in cached["carriers"]]
    try:
        carriers = client.list_carriers()
    except MiraklError:
        if cached:  # a stale list beats no shipping
            return [Carrier.model_validate(c) for c in cached["carriers"]]
        raise
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"fetched_at": now.isoformat(), "carriers": [c.model_dump() for c in carriers]}))
    return carriers


SHIPMENT_CHECK_SPECS = [
    dg.AssetCheckSpec("unacknowledged_fulfilments", asset="mirakl_shipments",
                      description="Every fulfilment of an imported order is SHIPPED in Mirakl within the threshold."),
    dg.AssetCheckSpec("open_carrier_exceptions", asset="mirakl_shipments",
                      description="No fulfilment waits for a carrier mapping."),
]


def shipment_checks(push: ShipmentPush, now: datetime) -> list[dg.AssetCheckResult]:
    marketplace, ledger = push.marketplace, push.ledger
    minutes = marketplace.fulfilments.unacknowledged_after_minutes
    found = push.unacknowledged(older_than=now - timedelta(minutes=minutes))
    carriers = ledger.open_exceptions(marketplace.code, kinds=[CARRIER_EXCEPTION])
    return [
        dg.AssetCheckResult(
            check_name="unacknowledged_fulfilments", passed=not found.late, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"late": len(found.late), "threshold_minutes": minutes, "orders_verified_by_refresh": found.by_refresh,
                      "orders_read_back": found.read_back,
                      "orders_unverified": found.unverified, "read_back_note": found.note or "",
                      "orders": dg.MetadataValue.md("\n".join(
                          f"- {x.push.mirakl_order_id}: Mirakl {x.mirakl_state}; {x.push.shopify_fulfillment_id}, "
                          f"OR23 {x.push.or23.state}, OR24 {x.push.or24.state}: {x.push.or24.error or x.push.or23.error or ''}"
                          for x in found.late[:50]) or "_none_")},
        ),
        dg.AssetCheckResult(
            check_name="open_carrier_exceptions", passed=not carriers, severity=dg.AssetCheckSeverity.WARN,
            metadata={"open": len(carriers), "orders": dg.MetadataValue.md("\n".join(
                f"- {e.record_id}: {e.reason}" for e in carriers[:50]) or "_none_")},
        ),
    ]


def build_shipment_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=partitions, group_name="fulfilments", kinds={"shopify", "mirakl"}, deps=["shopify_orders"],
        pool="mirakl_shipping", check_specs=SHIPMENT_CHECK_SPECS,
        description="Shopify fulfilments of imported orders pushed to Mirakl: OR23 tracking with the marketplace's "
                    "carrier code, then OR24 ship; each step in the ledger.",
    )
    def mirakl_shipments(
        context: dg.AssetExecutionContext, settings: SettingsResource, ledger: LedgerResource,
        warehouse: WarehouseResource, mirakl: MiraklResource, shopify: ShopifyResource, invoices: InvoiceSourceResource,
    ) -> dg.MaterializeResult:
        cfg: Settings = settings.load()
        _, code = split_partition_key(context)
        marketplace = cfg.marketplace(code)
        now = _utcnow()
        carrier_map = CarrierMap.load(cfg.resolve_path(marketplace.fulfilments.carriers_file))
        with ledger.open() as lg, mirakl.client(cfg, code, budget=lg) as client:
            push = ShipmentPush(marketplace, client, lg, carrier_map,
                                carriers_cached(client, Path(warehouse.base_path), code, now), warehouse.base_path, context.log,
                                invoice_headers=invoices.headers(cfg, code))
            push.take_inbox()
            swept = context.run.tags.get(SWEEP_TAG) == "true"
            if swept:
                _sweep(push, lg, shopify, cfg, marketplace, now)
            report = push.push()
            checks = shipment_checks(push, _utcnow())
        return dg.MaterializeResult(
            metadata={"fulfilments_received": report.fulfilments_received, "tracking_sent": report.tracking_sent,
                      "shipped": report.shipped, "already_shipped": report.already_shipped,
                      "waiting": dg.MetadataValue.json(dict(report.waiting)),
                      "carrier_exceptions": report.carrier_exceptions, "failed": report.failed,
                      "invoices_uploaded": report.invoices_uploaded, "invoices_waiting": report.invoices_waiting,
                      "invoice_failures": report.invoice_failures, "sweep": swept},
            check_results=checks,
        )

    return [mirakl_shipments]


def _sweep(push: ShipmentPush, ledger: Ledger, shopify: ShopifyResource, cfg: Settings,
           marketplace: MarketplaceConfig, now: datetime) -> None:
    """Fulfilments of orders Shopify updated since the last sweep (minus an overlap): a lost webhook is caught here."""
    # Watermarks are kept per day: the first sweep of a day starts where yesterday's last one stopped.
    since = (ledger.get_watermark(SWEEP_FLOW, marketplace.code, now.date())
             or ledger.get_watermark(SWEEP_FLOW, marketplace.code, now.date() - timedelta(days=1))
             or now - timedelta(days=1))
    read_at = _utcnow()  # what Shopify answers is at least this fresh
    with shopify.client(cfg, cfg.store_for(marketplace).name) as client:
        fulfilments = client.fulfilments_of_orders_updated_since(since - SWEEP_OVERLAP,
                                                                 source_name=marketplace.orders.source_name)
    for fulfilment in fulfilments:
        link = ledger.order_link_by_shopify_id(fulfilment.order_id or "")
        if link is not None and link.marketplace == marketplace.code:
            push.record(link.mirakl_order_id, fulfilment, seen_at=read_at)
    ledger.set_watermark(SWEEP_FLOW, marketplace.code, now.date(), now)


def build_shipments_job(assets, partitions):
    return dg.define_asset_job(JOB_NAME, selection=dg.AssetSelection.assets(*assets), partitions_def=partitions,
                               executor_def=dg.in_process_executor,
                               description="Push Shopify fulfilments of imported orders to Mirakl (OR23, OR24).")


def build_shipment_automation(settings: Settings, job) -> tuple[list, list]:
    status = dg.DefaultScheduleStatus.RUNNING if settings.schedules_running else dg.DefaultScheduleStatus.STOPPED
    sensor_status = dg.DefaultSensorStatus.RUNNING if settings.schedules_running else dg.DefaultSensorStatus.STOPPED

    @dg.sensor(name="fulfilment_inbox", job=job, minimum_interval_seconds=5, default_status=sensor_status,
               description="New fulfilment webhooks in the ledger inbox → a push run per marketplace concerned.")
    def fulfilment_inbox(context: dg.SensorEvaluationContext, ledger: LedgerResource):
        cursor = int(context.cursor or 0)
        with ledger.open() as lg:
            entries = lg.inbox_after(cursor, topics=FULFILMENT_TOPICS)
            marketplaces = set()
            for entry in entries:
                link = lg.order_link_by_shopify_id(str(entry.payload.get("order_id")))
                if link is not None:
                    marketplaces.add(link.marketplace)
            last = max((e.id for e in entries), default=cursor)
        today = _utcnow().date()
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"shipments|{code}|{last}", partition_key=partition_key(today, code),
                                        tags={SHIPPING_TAG: code}) for code in sorted(marketplaces)],
            cursor=str(last),
        )

    schedules = []
    for m in settings.marketplaces:
        schedules.append(_sweep_schedule(m, job, status))
    return [fulfilment_inbox], schedules


def _sweep_schedule(m: MarketplaceConfig, job, status) -> dg.ScheduleDefinition:
    @dg.schedule(name=f"shipments_sweep_{m.code}", cron_schedule=m.fulfilments.sweep_cron, job=job,
                 execution_timezone="UTC", default_status=status,
                 description=f"Catch fulfilments of {m.name} whose webhook was lost or late.")
    def sweep(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time
        return dg.RunRequest(run_key=f"shipments-sweep|{m.code}|{tick:%Y-%m-%dT%H:%M}",
                             partition_key=partition_key(tick.date(), m.code),
                             tags={SHIPPING_TAG: m.code, SWEEP_TAG: "true"})

    return sweep
