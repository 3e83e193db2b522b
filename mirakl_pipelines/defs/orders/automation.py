"""The order job and its schedules: a refresh of today's partition per marketplace on its cron, and
a close-out of yesterday once the look-back has passed midnight."""

from datetime import timedelta

import dagster as dg

from mirakl_pipelines.config import MarketplaceConfig, Settings
from mirakl_pipelines.defs.orders.assets import FULL_DAY_TAG
from mirakl_pipelines.defs.partitions import partition_key

JOB_NAME = "orders_sync"


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
    status = dg.DefaultScheduleStatus.RUNNING if settings.schedules_running else dg.DefaultScheduleStatus.STOPPED
    schedules = []
    for m in settings.marketplaces:
        schedules += [_refresh_schedule(m, job, status), _closeout_schedule(m, job, status)]
    return schedules
