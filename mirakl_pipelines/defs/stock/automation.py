"""The stock job, its schedules and the webhook sensor.

Per marketplace: a schedule on `stock.cron` (default every 15 minutes: only changed SKUs), a full file on
`stock.full_cron`, and the `stock_inventory_webhooks` sensor: `inventory_levels/update` deliveries in the ledger
inbox start one run per marketplace once the first of them is `stock.debounce_seconds` old, so a burst of changes
(a delivery per item and location) yields one push. A run not yet past its start reads Shopify later still, so new
deliveries ride along with it instead of starting another.
"""

import json
from datetime import datetime, timezone
from urllib.parse import urlparse

import dagster as dg

from mirakl_pipelines.config import MarketplaceConfig, Settings
from mirakl_pipelines.defs.partitions import partition_key
from mirakl_pipelines.defs.resources import LedgerResource, SettingsResource
from mirakl_pipelines.defs.stock.assets import FULL_TAG, JOB_NAME, STOCK_TAG
from mirakl_pipelines.webhooks.push_runs import WATCHED_STATUSES, takes_delivery
from mirakl_pipelines.webhooks.topics import INVENTORY_TOPICS

WEBHOOK_SENSOR_INTERVAL_SECONDS = 1  # every daemon loop: the debounce, not the tick, sets the pace
_PAGE = 1000


def build_stock_job(assets, partitions):
    return dg.define_asset_job(JOB_NAME, selection=dg.AssetSelection.assets(*assets), partitions_def=partitions,
                               executor_def=dg.in_process_executor,
                               description="Shopify inventory → each marketplace's stock policy → one STO01 file → "
                                           "Mirakl's offers read back for the stock_delta check.")


def _status(settings: Settings, kind):
    return kind.RUNNING if settings.schedules_running else kind.STOPPED


def _schedule(m: MarketplaceConfig, job, status, *, full: bool) -> dg.ScheduleDefinition:
    name = f"stock_full_{m.code}" if full else f"stock_{m.code}"

    @dg.schedule(name=name, cron_schedule=m.stock.full_cron if full else m.stock.cron, job=job,
                 execution_timezone="UTC", default_status=status,
                 description=(f"Send every SKU's stock to {m.name} (a full STO01 file)." if full else
                              f"Send the stock of SKUs that changed to {m.name}."))
    def stock(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time
        tags = {STOCK_TAG: m.code, **({FULL_TAG: "true"} if full else {})}
        return dg.RunRequest(run_key=f"{name}|{tick:%Y-%m-%dT%H:%M}", partition_key=partition_key(tick.date(), m.code),
                             tags=tags)

    return stock


def marketplaces_of_shop(settings: Settings, shop_domain: str) -> list[str]:
    """Stock-enabled marketplaces fed by the store that sent a delivery (every one when there is a single store)."""
    stores = settings.shopify_stores
    if len(stores) == 1:
        names = {stores[0].name}
    else:
        names = {s.name for s in stores if urlparse(s.shop_url).hostname == shop_domain}
    return [m.code for m in settings.marketplaces if m.stock.enabled and settings.store_for(m).name in names]


def _stock_runs(instance: dg.DagsterInstance) -> dict[str, list[tuple[str, float | None]]]:
    records = instance.get_run_records(filters=dg.RunsFilter(
        job_name=JOB_NAME, statuses=[dg.DagsterRunStatus(s) for s in WATCHED_STATUSES]))
    runs: dict[str, list[tuple[str, float | None]]] = {}
    for record in records:
        code = record.dagster_run.tags.get(STOCK_TAG)
        if code:
            runs.setdefault(code, []).append((record.dagster_run.status.value, record.start_time))
    return runs


def due_pushes(pending: dict[str, list[tuple[int, float]]], debounce: dict[str, float], now: float,
               runs: dict[str, list[tuple[str, float | None]]]) -> tuple[dict[str, int], dict[str, int]]:
    """(launch, covered): marketplace → the last inbox id covered, for marketplaces whose oldest pending delivery
    (id, received epoch) is at least its debounce old; `launch` needs a new run, `covered` is taken by a run that has
    not read Shopify yet."""
    launch, covered = {}, {}
    for code, deliveries in pending.items():
        oldest = min(received for _, received in deliveries)
        if now - oldest < debounce.get(code, 0.0):
            continue
        last = max(i for i, _ in deliveries)
        if any(takes_delivery(status, started, max(r for _, r in deliveries)) for status, started in runs.get(code, ())):
            covered[code] = last  # that run reads Shopify after every one of these changes
        else:
            launch[code] = last
    return launch, covered


def build_stock_automation(settings: Settings, job) -> tuple[list, list]:
    schedule_status = _status(settings, dg.DefaultScheduleStatus)
    schedules = []
    for m in settings.marketplaces:
        if m.stock.enabled:
            schedules += [_schedule(m, job, schedule_status, full=False), _schedule(m, job, schedule_status, full=True)]

    @dg.sensor(name="stock_inventory_webhooks", job=job, minimum_interval_seconds=WEBHOOK_SENSOR_INTERVAL_SECONDS,
               default_status=_status(settings, dg.DefaultSensorStatus),
               description="Shopify inventory_levels/update webhooks → one debounced stock run per marketplace.")
    def stock_inventory_webhooks(context: dg.SensorEvaluationContext, ledger: LedgerResource,
                                 settings: SettingsResource):
        cfg = settings.load()
        codes = [m.code for m in cfg.marketplaces if m.stock.enabled]
        # Per marketplace, the last inbox id a requested run covers: one delivery concerns every marketplace of its store.
        cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        with ledger.open() as lg:
            if not cursor:  # first tick: start from now, the schedules cover what came before
                latest = lg.latest_inbox_id()
                context.update_cursor(json.dumps({c: latest for c in codes}))
                return dg.SkipReason("started: inventory webhooks from now on trigger stock runs")
            start = min(cursor.get(c, 0) for c in codes) if codes else 0
            pending: dict[str, list[tuple[int, float]]] = {}
            after = start
            while True:
                batch = lg.inbox_after(after, topics=INVENTORY_TOPICS, limit=_PAGE)
                for entry in batch:
                    for code in marketplaces_of_shop(cfg, entry.shop_domain):
                        if entry.id > cursor.get(code, 0):
                            pending.setdefault(code, []).append((entry.id, entry.received_at.timestamp()))
                if len(batch) < _PAGE:
                    break
                after = batch[-1].id
        if not pending:
            return dg.SkipReason("no new inventory webhook")
        debounce = {m.code: float(m.stock.debounce_seconds) for m in cfg.marketplaces}
        now = datetime.now(timezone.utc)
        due, covered = due_pushes(pending, debounce, now.timestamp(), _stock_runs(context.instance))
        if covered or due:
            context.update_cursor(json.dumps({**cursor, **covered, **due}, sort_keys=True))
        if not due:
            return dg.SkipReason(f"{sum(map(len, pending.values()))} inventory change(s) waiting for their debounce "
                                 "or a run about to read Shopify")
        return [dg.RunRequest(run_key=f"stock-webhooks|{code}|{last}", partition_key=partition_key(now.date(), code),
                              tags={STOCK_TAG: code}) for code, last in sorted(due.items())]

    return [stock_inventory_webhooks], schedules
