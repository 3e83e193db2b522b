"""What a `shipments_sync` push run is, and which deliveries it will take: one rule for the `fulfilment_inbox` sensor
and the receiver's launcher (defs/fulfilments/assets.py, webhooks/launcher.py), without importing Dagster.

A push run's step takes every fulfilment delivery of its marketplace stored before the step starts (take_inbox), so a
delivery stored while a run of its marketplace has not reached its step rides along with that run.
"""

from datetime import date

JOB_NAME = "shipments_sync"
# Shipments runs carry their own per-marketplace tag, not `marketplace`: dagster.yaml allows one run per value of
# each, so a push never queues behind a long import of the same marketplace (the call budgets are per operation).
SHIPPING_TAG = "mirakl_pipelines/shipping"
# Dagster's run statuses (DagsterRunStatus values, GraphQL RunStatus names) of a run whose step has not started.
NOT_STARTED_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING")
STARTED_STATUS = "STARTED"
WATCHED_STATUSES = NOT_STARTED_STATUSES + (STARTED_STATUS,)
PARTITION_TAG = "dagster/partition"


def takes_delivery(status: str, started_at: float | None, received_at: float) -> bool:
    """Whether a push run in `status` (RUN_START at `started_at`, epoch s) will take a delivery stored at
    `received_at` (epoch s): it has not started yet, or it started after the delivery was stored (its step comes
    later still). A run that dies before its step takes nothing: its status says so on the next look."""
    if status in NOT_STARTED_STATUSES:
        return True
    return status == STARTED_STATUS and started_at is not None and started_at >= received_at


def push_run_tags(day: date, marketplace: str) -> dict[str, str]:
    """The tags of the push run of `marketplace` for `day`, as the sensor's RunRequest gets them from Dagster: the
    (date × marketplace) partition, each dimension's, and the per-marketplace shipping tag."""
    return {PARTITION_TAG: f"{day.isoformat()}|{marketplace}", f"{PARTITION_TAG}/date": day.isoformat(),
            f"{PARTITION_TAG}/marketplace": marketplace, SHIPPING_TAG: marketplace}
