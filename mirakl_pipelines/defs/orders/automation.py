"""The order job, its schedules and sensors: a refresh of today's partition per marketplace on its cron, a
close-out of yesterday once the look-back has passed midnight, and the catch-up of a refresh owed (catch_up.py)."""

import json
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from mirakl_pipelines.config import MarketplaceConfig, Settings
from mirakl_pipelines.defs.orders.assets import FLOW, FULL_DAY_TAG
from mirakl_pipelines.defs.orders.catch_up import CATCH_UP_TAG, LAUNCH_LEAD_SECONDS, due_catch_ups
from mirakl_pipelines.defs.partitions import partition_key
from mirakl_pipelines.defs.resources import LedgerResource, MiraklResource, SettingsResource

JOB_NAME = "orders_sync"
# How often the catch-up sensor reads the ledger: a refresh owed runs at most this long after its slot opens.
CATCH_UP_INTERVAL_SECONDS = 3


def build_orders_job(assets: list[dg.AssetsDefinition], partitions: dg.PartitionsDefinition):
    # In-process executor: one process per run, not per step, so a run starts and finishes fast.
    return dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.assets(*assets),
        partitions_def=partitions,
        executor_def=dg.in_process_executor,
        description="Fetch the partition's Mirakl orders, accept them per the marketplace's rules, create them in Shopify.",
    )


def refresh_run_key(code: str, tick) -> str:
    """One run per marketplace and tick: a key without the tick time would dedupe every refresh after the first."""
    return f"orders|{code}|{tick:%Y-%m-%dT%H:%M}"


def _refresh_schedule(m: MarketplaceConfig, job, status) -> dg.ScheduleDefinition:
    @dg.schedule(name=f"orders_{m.code}", cron_schedule=m.schedule.cron, job=job, execution_timezone="UTC",
                 default_status=status, description=f"Refresh today's orders of {m.name}.")
    def refresh(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time
        return dg.RunRequest(run_key=refresh_run_key(m.code, tick), partition_key=partition_key(tick.date(), m.code),
                             tags={"marketplace": m.code})

    return refresh


def _closeout_schedule(m: MarketplaceConfig, job, status) -> dg.ScheduleDefinition:
    @dg.schedule(name=f"orders_closeout_{m.code}", cron_schedule=m.schedule.closeout_cron, job=job,
                 execution_timezone="UTC", default_status=status,
                 description=f"Re-materialise yesterday's orders of {m.name} in full, after the look-back passed midnight.")
    def closeout(context: dg.ScheduleEvaluationContext):
        yesterday = context.scheduled_execution_time.date() - timedelta(days=1)
        return dg.RunRequest(run_key=f"orders-closeout|{m.code}|{yesterday}", partition_key=partition_key(yesterday, m.code),
                             tags={"marketplace": m.code, FULL_DAY_TAG: "true"})

    return closeout


def build_order_schedules(settings: Settings, job) -> list[dg.ScheduleDefinition]:
    status = _status(settings, dg.DefaultScheduleStatus)
    schedules = []
    for m in settings.marketplaces:
        schedules += [_refresh_schedule(m, job, status), _closeout_schedule(m, job, status)]
    return schedules


def _status(settings: Settings, kind):
    """RUNNING or STOPPED of `kind` (DefaultScheduleStatus or DefaultSensorStatus), as the configuration says."""
    return kind.RUNNING if settings.schedules_running else kind.STOPPED


def build_order_sensors(config: Settings, job) -> list[dg.SensorDefinition]:
    """The catch-up sensor, and the run-failure sensor that owes a refresh when a live refresh run fails."""
    codes = [m.code for m in config.marketplaces]

    @dg.sensor(name="orders_catch_up", job=job, minimum_interval_seconds=CATCH_UP_INTERVAL_SECONDS,
               default_status=_status(config, dg.DefaultSensorStatus),
               description="Runs a refresh owed (skipped for its OR11 slot, or failed) as soon as the slot opens.")
    def orders_catch_up(context: dg.SensorEvaluationContext, ledger: LedgerResource, mirakl: MiraklResource):
        requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        with ledger.open() as lg:
            debts = lg.refresh_debts(FLOW)
        lead = timedelta(seconds=LAUNCH_LEAD_SECONDS * mirakl.rate_limit_scale)  # API seconds, as the run's patience
        due = due_catch_ups(debts, datetime.now(timezone.utc), requested, codes, lead)
        if not due:
            return dg.SkipReason("no refresh owed whose slot has opened")
        for catch_up in due:
            code = catch_up.debt.marketplace
            context.log.info("%s: refresh owed since %s (%s, %d×), its slot opened at %s: catching up", code,
                             catch_up.debt.owed_since, catch_up.debt.reason, catch_up.debt.times, catch_up.debt.slot_opens_at)
            requested[code] = catch_up.run_key
        context.update_cursor(json.dumps(requested, sort_keys=True))
        return [dg.RunRequest(run_key=c.run_key, partition_key=partition_key(c.day, c.debt.marketplace),
                              tags={"marketplace": c.debt.marketplace, CATCH_UP_TAG: "true"}) for c in due]

    # Every few seconds, not Dagster's default 30 s: the catch-up of a killed refresh waits for this tick.
    @dg.run_failure_sensor(name="orders_refresh_failures", monitored_jobs=[job],
                           minimum_interval_seconds=CATCH_UP_INTERVAL_SECONDS,
                           default_status=_status(config, dg.DefaultSensorStatus),
                           description="A failed run gives back the OR11 slots it never called on; a live refresh that failed "
                                       "owes a refresh, caught up at once.")
    def orders_refresh_failures(context: dg.RunFailureSensorContext, ledger: LedgerResource,
                                settings: SettingsResource):
        run = context.dagster_run
        with ledger.open() as lg:
            # Any run of the job that died waiting for a slot (a catch-up, a close-out, a backfill too) gives back
            # the slots it booked and never called on; a slot it called on stays spent.
            released = lg.release_unclaimed(run.run_id)
            if released:
                context.log.info("run %s failed before calling on its slots: given back %s", run.run_id,
                                 ", ".join(released))
            code, day = run.tags.get("dagster/partition/marketplace"), run.tags.get("dagster/partition/date")
            # Close-outs and backfills are re-run by their owner; a failed catch-up owes nothing (no loop).
            if not code or not day or run.tags.get(FULL_DAY_TAG) == "true" or run.tags.get(CATCH_UP_TAG) == "true":
                return
            if date.fromisoformat(day) != datetime.now(timezone.utc).date():
                return
            if code not in {m.code for m in settings.load().marketplaces}:
                return
            # Owed at once, not at the next OR11 slot: what the dead run fetched is already in the day's files, so
            # the catch-up's import runs now, and its fetch too when the run never called on its slot.
            lg.owe_refresh(FLOW, code, date.fromisoformat(day), datetime.now(timezone.utc), f"run {run.run_id} failed")
        context.log.info("%s: refresh run %s failed; a refresh is owed now", code, run.run_id)

    return [orders_catch_up, orders_refresh_failures]
