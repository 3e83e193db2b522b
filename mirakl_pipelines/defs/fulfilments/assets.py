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
from mirakl_pipelines.defs.fulfilments.checks import SHIPMENT_CHECK_SPECS, shipment_checks
from mirakl_pipelines.defs.fulfilments.push import ShipmentPush
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
from mirakl_pipelines.webhooks.push_runs import JOB_NAME, SHIPPING_TAG, WATCHED_STATUSES, takes_delivery
from mirakl_pipelines.webhooks.topics import FULFILMENT_TOPICS

SWEEP_TAG = "mirakl_pipelines/sweep"
SWEEP_FLOW = "fulfilment_sweep"
INBOX_SENSOR_INTERVAL_SECONDS = 1  # below the daemon's loop: the sensor runs on every loop
# Where the receiver launches push runs itself (webhooks.dagster_graphql_url), a delivery younger than this is left to
# its launch (bounded by the launcher's deadline, launcher.LAUNCH_DEADLINE_SECONDS): the sensor catches what it missed.
LAUNCH_GRACE = timedelta(seconds=10)
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


def build_shipment_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=partitions, group_name="fulfilments", kinds={"shopify", "mirakl"}, deps=["shopify_orders"],
        # No pool: pools are global (production allows one step per pool), and one marketplace's push must never wait
        # for another's; the SHIPPING_TAG run limit already keeps one push per marketplace at a time.
        check_specs=SHIPMENT_CHECK_SPECS,
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
            checks = shipment_checks(push, cfg.marketplaces, _utcnow())
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

    # Dagster's sensor daemon evaluates sensors once a loop, every 5 s at best (not configurable): an interval of 5
    # would skip every other loop (the last tick started a little after its loop did) and tick every 10 s.
    @dg.sensor(name="fulfilment_inbox", job=job, minimum_interval_seconds=INBOX_SENSOR_INTERVAL_SECONDS,
               default_status=sensor_status,
               description="New fulfilment webhooks in the ledger inbox → a push run per marketplace concerned.")
    def fulfilment_inbox(context: dg.SensorEvaluationContext, ledger: LedgerResource, settings: SettingsResource):
        cursor = int(context.cursor or 0)
        launched_by_receiver = settings.load().webhooks.dagster_graphql_url is not None
        now = _utcnow()
        runs = _push_runs(context.instance)
        with ledger.open() as lg:
            entries = _inbox_from(lg, cursor)
            marketplaces, held = set(), []
            for entry in entries:
                if entry.processed_at is not None:  # a run took it since an earlier tick held it
                    continue
                link = lg.order_link_by_shopify_id(str(entry.payload.get("order_id")))
                if link is None:
                    continue
                received = entry.received_at.timestamp()
                if (any(takes_delivery(status, started, received) for status, started in runs.get(link.marketplace, ()))
                        or (launched_by_receiver and now - entry.received_at < LAUNCH_GRACE)):
                    held.append(entry.id)  # a run takes it at its step, or the receiver's launch is under way
                else:
                    marketplaces.add(link.marketplace)
            last = max((e.id for e in entries), default=cursor)
        today = now.date()
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"shipments|{code}|{last}", partition_key=partition_key(today, code),
                                        tags={SHIPPING_TAG: code}) for code in sorted(marketplaces)],
            # Held deliveries are looked at again next tick: should their run die before its step, a new one is requested.
            cursor=str(min(held) - 1 if held else last),
        )

    schedules = []
    for m in settings.marketplaces:
        schedules.append(_sweep_schedule(m, job, status))
    return [fulfilment_inbox], schedules


def _inbox_from(ledger: Ledger, cursor: int, page: int = 500) -> list:
    """Every fulfilment delivery after `cursor`, page by page: a held delivery keeps the cursor behind a backlog."""
    entries: list = []
    while True:
        batch = ledger.inbox_after(entries[-1].id if entries else cursor, topics=FULFILMENT_TOPICS, limit=page)
        entries += batch
        if len(batch) < page:
            return entries


def _push_runs(instance: dg.DagsterInstance) -> dict[str, list[tuple[str, float | None]]]:
    """(status, RUN_START epoch) of each push run not finished, by marketplace: a run whose step has not taken the
    inbox yet takes the new deliveries of its marketplace (takes_delivery), which ride along instead of starting
    another run (one process start saved per tick under load; none doubled with a run the receiver launched)."""
    records = instance.get_run_records(filters=dg.RunsFilter(
        job_name=JOB_NAME, statuses=[dg.DagsterRunStatus(status) for status in WATCHED_STATUSES]))
    runs: dict[str, list[tuple[str, float | None]]] = {}
    for record in records:
        run = record.dagster_run
        if SHIPPING_TAG in run.tags:
            runs.setdefault(run.tags[SHIPPING_TAG], []).append((run.status.value, record.start_time))
    return runs


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
