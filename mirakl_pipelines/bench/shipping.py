"""From a Shopify fulfilment to its Mirakl order SHIPPED, in the demo set-up, for real.

The sandbox process runs the scenario (orders on both marketplaces, Mirakl's real call limits), the
webhook receiver on the pipelines' ledger, subscribed to the store, and the warehouse fulfilling
imported orders a few seconds after they arrive (one parcel, a mapped carrier: every sample can ship).
`dagster dev` runs in another process with schedules and sensors on, as `mirakl-pipelines demo` starts
it: the one-minute refresh imports orders; once a fulfilment delivery is stored, the receiver asks the webserver for a
`shipments_sync` run of its marketplace (GraphQL launchRun), which sends OR23 then OR24; the `fulfilment_inbox` sensor
(on every 5-s loop of the sensor daemon) requests one for a delivery no run took (with `receiver_launches=False`,
for every delivery, as before issue 9 §6). For each fulfilment of an imported order created
inside the measured window, the latency is the Mirakl order's `shipped_date` minus the fulfilment's
`createdAt`; one not shipped at the end counts as later than any sample.
"""

import math
import os
from collections import Counter
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mirakl_pipelines.bench.harness import RunStats, inbox_entries, run_demo_setup, run_events
from mirakl_pipelines.bench.latency import latency_figures, percentile
from mirakl_pipelines.bench.report import BenchResult, Figure
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sandbox.mirakl.wire import parse_datetime

TITLE = "Shopify fulfilment → Mirakl SHIPPED, run launched by the webhook receiver"
TARGET_P95_SECONDS = 10.0


def _shipped_dates(mirakl_orders: dict[str, list[dict]]) -> dict[str, str | None]:
    """Mirakl `shipped_date` by the Shopify order's sourceIdentifier ("code:order id")."""
    return {f"{code}:{order['order_id']}": order.get("shipped_date") for code, orders in mirakl_orders.items() for order in orders}


def shipping_latencies(shop_orders: list[dict], mirakl_orders: dict[str, list[dict]],
                       window: tuple[datetime, datetime]) -> dict[str, float]:
    """Seconds from each fulfilment's `createdAt` (inside `window`) to its Mirakl order's `shipped_date`.

    Only fulfilments of imported orders count: a Shopify order whose `sourceIdentifier` ("code:order id")
    names an order of `mirakl_orders`. Not shipped yet: inf. Keyed "code:order id fulfilment id". The order's
    `shipped_date` is that of its first parcel, so the set-up ships every order in one parcel.
    """
    shipped = _shipped_dates(mirakl_orders)
    samples = {}
    for order in shop_orders:
        key = order.get("sourceIdentifier")
        if key not in shipped:
            continue
        for fulfilment in order.get("fulfillments") or []:
            created = parse_datetime(fulfilment["createdAt"], "fulfilment createdAt")
            if not window[0] <= created < window[1]:
                continue
            done = shipped[key]
            samples[f"{key} {fulfilment['id']}"] = (
                (parse_datetime(done, "shipped_date") - created).total_seconds() if done else math.inf)
    return samples


def _median(values: list[float]) -> str:
    return f"{percentile(values, 0.5):.1f} s" if values else "n/a"


STAGES = (
    ("webhook", "createdAt → stored in the inbox: the store's webhook delivery, plus up to 1 s as createdAt is truncated"),
    ("request", "stored → run created: the receiver's launch (GraphQL launchRun) for a run it started, the wait for "
                "the `fulfilment_inbox` tick for a run the sensor requested"),
    ("submit", "created → RUN_ENQUEUED: the webserver (launch) or the sensor daemon (tick) submits the run"),
    ("queue", "enqueued → RUN_STARTING: the run queue daemon dequeues it"),
    ("process", "starting → the run's process up: a new Python process, Dagster imported, the instance opened"),
    ("code", "process up → RUN_START: the code location imported, the job built"),
    ("step", "RUN_START → inbox taken: resources, step start, settings, ledger, carriers"),
    ("OR23", "taken → OR23 recorded, after the orders before it in the run (ST01 where multiple shipments are on)"),
    ("OR24", "OR23 → Mirakl shipped_date (OR24)"),
)


@dataclass(frozen=True)
class PushRun:
    """One `shipments_sync` run's moments (epoch seconds), from its run record and event log; None when absent."""

    run_id: str
    marketplace: str
    created: float  # the run record's creation: the receiver's launch, or the tick that requested it
    enqueued: float | None  # RUN_ENQUEUED
    starting: float | None  # RUN_STARTING: dequeued, handed to the run launcher
    process: float | None  # "Started process for run": the run's own process is up
    started: float | None  # RUN_START: the code location is loaded, the job is built
    step: float | None  # STEP_START of the push
    origin: str = "sensor"  # who asked for it: "receiver", "sensor" or "sweep" (its schedule)

    @classmethod
    def from_events(cls, run_id: str, marketplace: str, created: float, events: list[tuple[str, str, float]],
                    origin: str = "sensor") -> "PushRun":
        def first(kind: str, message: str = "") -> float | None:
            return next((at for k, m, at in events if k == kind and m.startswith(message)), None)

        return cls(run_id, marketplace, created, first("RUN_ENQUEUED"), first("RUN_STARTING"),
                   first("ENGINE_EVENT", "Started process for run"), first("RUN_START"), first("STEP_START"), origin)


def run_origin(tags: dict[str, str]) -> str:
    """Who asked for a push run, by Dagster's own tags: the sensor's and the schedule's runs carry their name; the
    receiver's launch (launcher.PushLauncher) carries neither."""
    if "dagster/sensor_name" in tags:
        return "sensor"
    return "sweep" if "dagster/schedule_name" in tags else "receiver"


@dataclass(frozen=True)
class Sample:
    """One sampled fulfilment's own moments (epoch seconds)."""

    marketplace: str
    created: float  # Shopify createdAt
    received: float  # stored in the inbox
    taken: float  # the push run took it from the inbox
    or23: float | None  # the ledger recorded OR23 (or ST01) done
    shipped: float  # Mirakl shipped_date


def stage_seconds(sample: Sample, run: PushRun) -> list[float]:
    """The sample's latency cut at each of STAGES' boundaries; they add up to shipped − created.

    A moment missing, earlier than the one before (a run requested before the webhook came, which took it at its
    step) or later than shipped_date is clamped into place, so that stage reads 0 and the next one holds the time.
    """
    moments = [sample.received, run.created, run.enqueued, run.starting, run.process, run.started, sample.taken,
               sample.or23]
    seconds, previous = [], sample.created
    for moment in moments:
        moment = previous if moment is None else min(max(moment, previous), max(sample.shipped, previous))
        seconds.append(moment - previous)
        previous = moment
    seconds.append(max(sample.shipped - previous, 0.0))
    return seconds


def taking_run(sample: Sample, runs: list[PushRun]) -> PushRun | None:
    """The run of the sample's marketplace that took it: the last one whose step started before it was taken."""
    candidates = [r for r in runs if r.marketplace == sample.marketplace and r.step is not None and r.step <= sample.taken]
    return max(candidates, key=lambda r: r.step, default=None)


def describe_stages(rows: list[list[float]]) -> str:
    """p50 / p95 / max of each stage over the samples (each column alone: the p95s do not add up)."""
    parts = []
    for i, (name, meaning) in enumerate(STAGES):
        column = [row[i] for row in rows]
        parts.append(f"{name} {percentile(column, 0.5):.1f} / {percentile(column, 0.95):.1f} / {max(column):.1f} ({meaning})")
    total = [sum(row) for row in rows]
    parts.append(f"total {percentile(total, 0.5):.1f} / {percentile(total, 0.95):.1f} / {max(total):.1f}")
    return "; ".join(parts)


def push_timelines(workdir: Path, shop_orders: list[dict], mirakl_orders: dict[str, list[dict]], keys: set[str],
                   records: list) -> tuple[list[list[float]], int, list[str]]:
    """stage_seconds of each shipped sample in `keys`, how many shipped samples had no complete timeline, and the
    origin (run_origin) of the run that took each timed sample.

    The moments come from the store (createdAt), the ledger (inbox received/processed, OR23), the Dagster instance
    in `workdir` (run records and event logs) and Mirakl (shipped_date).
    """
    from mirakl_pipelines.defs.fulfilments.assets import JOB_NAME, SHIPPING_TAG  # loads Dagster: the runs are over

    shipped = _shipped_dates(mirakl_orders)
    sampled = {}  # fulfilment id (numeric) → (marketplace, Mirakl order id, gid, createdAt, shipped_date)
    for order in shop_orders:
        source = order.get("sourceIdentifier")
        for f in order.get("fulfillments") or []:
            if f"{source} {f['id']}" in keys and shipped.get(source):
                code, order_id = source.split(":", 1)
                sampled[f["id"].rsplit("/", 1)[-1]] = (code, order_id, f["id"], _epoch(f["createdAt"]), _epoch(shipped[source]))
    entries = {}
    ledger_url = f"sqlite:///{workdir / 'ledger.sqlite'}"
    for entry in inbox_entries(ledger_url, topics=["fulfillments/create"]):
        entries.setdefault(entry.resource_id, entry)  # a redelivery stored under a new webhook id: the first counts
    shipments = [r for r in records if r.dagster_run.job_name == JOB_NAME]
    events = run_events(workdir / "dagster_home", [r.dagster_run.run_id for r in shipments])
    runs = [PushRun.from_events(r.dagster_run.run_id, r.dagster_run.tags.get(SHIPPING_TAG, ""),
                                r.create_timestamp.replace(tzinfo=r.create_timestamp.tzinfo or timezone.utc).timestamp(),
                                events[r.dagster_run.run_id], run_origin(r.dagster_run.tags)) for r in shipments]
    rows, missing, origins = [], 0, []
    with Ledger.connect(ledger_url) as ledger:
        for resource_id, (code, order_id, gid, created, shipped_at) in sampled.items():
            entry = entries.get(resource_id)
            push = next((p for p in ledger.get_pushes(code, order_id) if p.shopify_fulfillment_id == gid), None)
            if entry is None or entry.processed_at is None:
                missing += 1
                continue
            sample = Sample(code, created, entry.received_at.timestamp(), entry.processed_at.timestamp(),
                            push.or23.at.timestamp() if push and push.or23.at else None, shipped_at)
            run = taking_run(sample, runs)
            if run is None:
                missing += 1
                continue
            rows.append(stage_seconds(sample, run))
            origins.append(run.origin)
    return rows, missing, origins


def describe_origins(rows: list[list[float]], origins: list[str]) -> str:
    """How many timed samples each kind of run took, with that kind's `request` stage p50 / p95 (s)."""
    request = [name for name, _ in STAGES].index("request")
    parts = []
    for origin in sorted(set(origins)):
        column = [row[request] for row, o in zip(rows, origins) if o == origin]
        parts.append(f"{len(column)} by a {origin} run (request {percentile(column, 0.5):.1f} / "
                     f"{percentile(column, 0.95):.1f})")
    return ", ".join(parts) or "none"


def _epoch(moment: str) -> float:
    return parse_datetime(moment, "timestamp").timestamp()


def _run_summary(records: list) -> str:
    from mirakl_pipelines.defs.fulfilments.assets import JOB_NAME  # loads Dagster: only once the runs are over

    shipments = [r for r in records if r.dagster_run.job_name == JOB_NAME]
    runs = RunStats.of(shipments)
    origins = Counter(run_origin(r.dagster_run.tags) for r in shipments)
    return (f"{JOB_NAME} runs: {len(shipments)} ({runs.describe()}; "
            f"{', '.join(f'{n} by the {o}' for o, n in sorted(origins.items())) or 'none'}), "
            f"median queued → started {_median(runs.launch)}, started → finished {_median(runs.duration)} (a process per run); "
            f"other runs: {len(records) - len(shipments)}")


def bench_shipping(workdir: Path, duration_s: float = 300.0, warmup_s: float = 60.0, horizon_s: float = 45.0,
                   orders_per_minute: float = 10.0, debit_delay_s: float = 20.0,
                   warehouse_delay_s: float = 5.0, receiver_launches: bool = True) -> BenchResult:
    """Run the demo set-up `duration_s`; sample fulfilments created in [start + warmup, end − horizon].

    `receiver_launches=False`: the receiver only stores, and the sensor alone requests push runs (for comparison)."""
    if duration_s <= warmup_s + horizon_s:
        raise ValueError(f"duration_s ({duration_s}) must exceed warmup_s + horizon_s ({warmup_s + horizon_s})")
    began = time.monotonic()
    shipping = {"warehouse_delay": warehouse_delay_s, "partial_share": 0, "unknown_carrier_share": 0}
    demo = run_demo_setup(workdir, duration_s, debit_delay_s=debit_delay_s, orders_per_minute=orders_per_minute,
                          shipping=shipping, receiver_launches=receiver_launches)
    load = os.getloadavg()
    start, end, records = demo.start, demo.end, demo.records
    shop, mirakl, deliveries = demo.shop_orders, demo.mirakl_orders, demo.webhook_stats

    window = (start + timedelta(seconds=warmup_s), end - timedelta(seconds=horizon_s))
    samples = shipping_latencies(shop, mirakl, window)
    values = list(samples.values())
    shipped = sum(1 for v in values if not math.isinf(v))
    stages, untimed, origins = push_timelines(workdir, shop, mirakl, set(samples), records)

    bench = "7 shipping"
    figures = [
        *latency_figures(bench, "fulfilment → Mirakl SHIPPED", values, TARGET_P95_SECONDS,
                         "fulfilments created in the window"),
        Figure(bench, "shipped in Mirakl by the end", shipped, "", precision=0),
    ]
    notes = [
        f"the demo set-up for {duration_s:.0f} s: `dagster dev` with schedules and sensors running (refresh \"* * * * *\", "
        f"`fulfilment_inbox` on every 5-s loop of the sensor daemon), "
        + ("the receiver launching each stored fulfilment's push run through the webserver's GraphQL API (the sensor "
           "as the safety net), " if receiver_launches else "the sensor alone requesting push runs (no launch from "
           "the receiver), ") + f"the scenario placing {orders_per_minute:g} orders a minute per marketplace "
        f"(debited {debit_delay_s:g} s after acceptance), Mirakl's real call limits; the webhook receiver subscribed to the "
        f"sandbox store, storing into the pipelines' SQLite ledger; the warehouse fulfils each imported order "
        f"{warehouse_delay_s:g} s after import in one parcel with a mapped carrier (partial and unknown-carrier shares 0).",
        f"samples: fulfilments created between {warmup_s:g} s after start and {horizon_s:g} s before the end; {len(values) - shipped} "
        f"of {len(values)} were not SHIPPED at the end (counted as later than every sample). Shopify's `createdAt` has "
        f"whole seconds (truncated), so a latency can read up to 1 s long. Samples come in batches (a refresh run imports "
        f"several orders, the warehouse fulfils them together, one push run ships them), so the percentiles rest on the "
        f"few push runs counted below.",
        "latencies (s), sorted: " + (", ".join("not shipped" if math.isinf(v) else f"{v:.1f}" for v in sorted(values)) or "none") + ".",
        f"where the time goes, per shipped sample ({len(stages)} with a complete timeline, {untimed} without), stage "
        f"p50 / p95 / max in s: " + (describe_stages(stages) if stages else "n/a") + ". Timed samples by the kind of "
        f"run that took them: {describe_origins(stages, origins)}. Store deliveries: "
        f"{deliveries.get('delivered')} delivered, {deliveries.get('failed_attempts')} failed attempts, "
        f"{deliveries.get('given_up')} given up.",
        _run_summary(records) + f". Mirakl calls served: {demo.mirakl_calls()}. Load average at the end (1, 5, 15 min) "
        f"{', '.join(f'{x:.1f}' for x in load)} on {os.cpu_count()} cores: the machine's other work counts in every stage.",
    ]
    return BenchResult(TITLE, figures, notes, time.monotonic() - began)
