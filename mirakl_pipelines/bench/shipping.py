"""From a Shopify fulfilment to its Mirakl order SHIPPED, in the demo set-up, for real.

The sandbox process runs the scenario (orders on both marketplaces, Mirakl's real call limits), the
webhook receiver on the pipelines' ledger, subscribed to the store, and the warehouse fulfilling
imported orders a few seconds after they arrive (one parcel, a mapped carrier: every sample can ship).
`dagster dev` runs in another process with schedules and sensors on, as `mirakl-pipelines demo` starts
it: the one-minute refresh imports orders, the `fulfilment_inbox` sensor (every 5 s) requests a
`shipments_sync` run, which sends OR23 then OR24. For each fulfilment of an imported order created
inside the measured window, the latency is the Mirakl order's `shipped_date` minus the fulfilment's
`createdAt`; one not shipped at the end counts as later than any sample.
"""

import math
import time
from datetime import datetime, timedelta
from pathlib import Path

from mirakl_pipelines.bench.harness import RunStats, inbox_entries, run_demo_setup
from mirakl_pipelines.bench.latency import latency_figures, percentile
from mirakl_pipelines.bench.report import BenchResult, Figure
from mirakl_pipelines.sandbox.mirakl.wire import parse_datetime

TITLE = "Shopify fulfilment → Mirakl SHIPPED, inbox sensor"
TARGET_P95_SECONDS = 15.0


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


def _stages(ledger_path: Path, shop_orders: list[dict], mirakl_orders: dict[str, list[dict]],
            keys: set[str]) -> tuple[list[float], list[float], list[float]]:
    """Per sampled fulfilment, in seconds: createdAt → stored in the inbox (webhook delivery), stored → taken
    by a push run (sensor tick, queue, run start), taken → Mirakl shipped_date (OR23, OR24)."""
    shipped = _shipped_dates(mirakl_orders)
    sampled = {f["id"].rsplit("/", 1)[-1]: (parse_datetime(f["createdAt"], "createdAt"), shipped[order["sourceIdentifier"]])
               for order in shop_orders for f in order.get("fulfillments") or []
               if f"{order.get('sourceIdentifier')} {f['id']}" in keys}
    delivered, taken, pushed = [], [], []
    for entry in inbox_entries(f"sqlite:///{ledger_path}", topics=["fulfillments/create"]):
        if entry.resource_id not in sampled:
            continue
        created, shipped_date = sampled[entry.resource_id]
        delivered.append((entry.received_at - created).total_seconds())
        if entry.processed_at:
            taken.append((entry.processed_at - entry.received_at).total_seconds())
            if shipped_date:
                pushed.append((parse_datetime(shipped_date, "shipped_date") - entry.processed_at).total_seconds())
    return delivered, taken, pushed


def _run_summary(records: list) -> str:
    from mirakl_pipelines.defs.fulfilments.assets import JOB_NAME  # loads Dagster: only once the runs are over

    shipments = [r for r in records if r.dagster_run.job_name == JOB_NAME]
    runs = RunStats.of(shipments)
    return (f"{JOB_NAME} runs: {len(shipments)} ({runs.describe()}), "
            f"median queued → started {_median(runs.launch)}, started → finished {_median(runs.duration)} (a process per run); "
            f"other runs: {len(records) - len(shipments)}")


def bench_shipping(workdir: Path, duration_s: float = 300.0, warmup_s: float = 60.0, horizon_s: float = 45.0,
                   orders_per_minute: float = 10.0, debit_delay_s: float = 20.0,
                   warehouse_delay_s: float = 5.0) -> BenchResult:
    """Run the demo set-up `duration_s`; sample fulfilments created in [start + warmup, end − horizon]."""
    if duration_s <= warmup_s + horizon_s:
        raise ValueError(f"duration_s ({duration_s}) must exceed warmup_s + horizon_s ({warmup_s + horizon_s})")
    began = time.monotonic()
    shipping = {"warehouse_delay": warehouse_delay_s, "partial_share": 0, "unknown_carrier_share": 0}
    demo = run_demo_setup(workdir, duration_s, debit_delay_s=debit_delay_s, orders_per_minute=orders_per_minute,
                          shipping=shipping)
    start, end, records = demo.start, demo.end, demo.records
    shop, mirakl, deliveries = demo.shop_orders, demo.mirakl_orders, demo.webhook_stats

    window = (start + timedelta(seconds=warmup_s), end - timedelta(seconds=horizon_s))
    samples = shipping_latencies(shop, mirakl, window)
    values = list(samples.values())
    shipped = sum(1 for v in values if not math.isinf(v))
    delivered, taken, pushed = _stages(workdir / "ledger.sqlite", shop, mirakl, set(samples))

    bench = "7 shipping"
    figures = [
        *latency_figures(bench, "fulfilment → Mirakl SHIPPED", values, TARGET_P95_SECONDS,
                         "fulfilments created in the window"),
        Figure(bench, "shipped in Mirakl by the end", shipped, "", precision=0),
    ]
    notes = [
        f"the demo set-up for {duration_s:.0f} s: `dagster dev` with schedules and sensors running (refresh \"* * * * *\", "
        f"`fulfilment_inbox` every 5 s), the scenario placing {orders_per_minute:g} orders a minute per marketplace "
        f"(debited {debit_delay_s:g} s after acceptance), Mirakl's real call limits; the webhook receiver subscribed to the "
        f"sandbox store, storing into the pipelines' SQLite ledger; the warehouse fulfils each imported order "
        f"{warehouse_delay_s:g} s after import in one parcel with a mapped carrier (partial and unknown-carrier shares 0).",
        f"samples: fulfilments created between {warmup_s:g} s after start and {horizon_s:g} s before the end; {len(values) - shipped} "
        f"of {len(values)} were not SHIPPED at the end (counted as later than every sample). Shopify's `createdAt` has "
        f"whole seconds (truncated), so a latency can read up to 1 s long. Samples come in batches (a refresh run imports "
        f"several orders, the warehouse fulfils them together, one push run ships them), so the percentiles rest on the "
        f"few push runs counted below.",
        "latencies (s), sorted: " + (", ".join("not shipped" if math.isinf(v) else f"{v:.1f}" for v in sorted(values)) or "none") + ".",
        f"where the time goes (medians over the samples): createdAt → stored in the inbox {_median(delivered)} (the "
        f"store's webhook delivery); stored → taken by a push run {_median(taken)} (sensor tick every 5 s, run queue, "
        f"process start, code load); taken → Mirakl shipped_date {_median(pushed)} (OR23, OR24). Store deliveries: "
        f"{deliveries.get('delivered')} delivered, {deliveries.get('failed_attempts')} failed attempts, "
        f"{deliveries.get('given_up')} given up.",
        _run_summary(records) + f". Mirakl calls served: {demo.mirakl_calls()}.",
    ]
    return BenchResult(TITLE, figures, notes, time.monotonic() - began)
