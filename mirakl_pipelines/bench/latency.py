"""From a paid Mirakl order to its Shopify order, with a one-minute schedule: the demo set-up, for real.

The sandbox (with its scenario placing orders on both marketplaces, Mirakl's real call limits) runs in
one process and `dagster dev` (webserver + daemon, schedules "* * * * *") in another, as
`mirakl-pipelines demo` starts them. Every run goes through the daemon's queue and a process of its own.
For each order the customer paid (Mirakl `customer_debited_date`) inside the measured window, the
latency is the Shopify order's `createdAt` minus that moment; an order still missing from Shopify at
the end counts as later than any sample. Everything started here is stopped at the end.
"""

import math
import time
from datetime import datetime, timedelta
from pathlib import Path

from mirakl_pipelines.bench.harness import (
    RunStats,
    run_demo_setup,
)
from mirakl_pipelines.bench.report import BenchResult, Figure

TITLE = "Paid Mirakl order → Shopify order, one-minute schedule"
TARGET_P95_SECONDS = 75.0


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (inf values sort last: a missing order is later than every sample)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_figures(bench: str, what: str, values: list[float], target_p95: float, samples: str) -> list[Figure]:
    """p50, p95 against its target (PASS/FAIL as measured) and the sample count, for a latency benchmark."""
    p50, p95 = percentile(values, 0.50), percentile(values, 0.95)
    return [
        Figure(bench, f"{what}, p50", p50, "s", precision=1),
        Figure(bench, f"{what}, p95", p95, "s", f"≤ {target_p95:g} s", bool(values) and p95 <= target_p95, 1),
        Figure(bench, f"samples ({samples})", len(values), "", precision=0),
    ]


def latencies(mirakl_orders: dict[str, list[dict]], shop_orders: list[dict], window: tuple[datetime, datetime]) -> dict[str, float]:
    """Seconds from debit to Shopify createdAt per order paid inside `window` (inf when not in Shopify)."""
    created = {o["sourceIdentifier"]: _parse(o["createdAt"]) for o in shop_orders if o.get("sourceIdentifier")}
    samples = {}
    for code, orders in mirakl_orders.items():
        for order in orders:
            debited = order.get("customer_debited_date")
            if not debited:
                continue
            debited = _parse(debited) if isinstance(debited, str) else debited
            if not window[0] <= debited < window[1]:
                continue
            key = f"{code}:{order['order_id']}"
            samples[key] = (created[key] - debited).total_seconds() if key in created else math.inf
    return samples


def bench_latency(workdir: Path, duration_s: float = 420.0, warmup_s: float = 60.0, horizon_s: float = 90.0,
                  orders_per_minute: float = 6.0, debit_delay_s: float = 20.0) -> BenchResult:
    """Run the demo set-up `duration_s`; sample orders paid in [start + warmup, end − horizon]."""
    if duration_s <= warmup_s + horizon_s:
        raise ValueError(f"duration_s ({duration_s}) must exceed warmup_s + horizon_s ({warmup_s + horizon_s})")
    began = time.monotonic()
    demo = run_demo_setup(workdir, duration_s, debit_delay_s=debit_delay_s, orders_per_minute=orders_per_minute)
    start, end, records = demo.start, demo.end, demo.records

    window = (start + timedelta(seconds=warmup_s), end - timedelta(seconds=horizon_s))
    samples = latencies(demo.mirakl_orders, demo.shop_orders, window)
    values = list(samples.values())
    missing = sum(1 for v in values if math.isinf(v))
    runs = RunStats.of(records)
    finished = [r for r in records if r.start_time and r.end_time]
    by_marketplace: dict[str, list[str]] = {}
    for r in sorted(finished, key=lambda r: r.start_time):
        by_marketplace.setdefault(r.dagster_run.tags.get("marketplace", "?"), []).append(f"{r.end_time - r.start_time:.0f}")

    bench = "5 latency"
    figures = latency_figures(bench, "paid → Shopify order", values, TARGET_P95_SECONDS, "orders paid in the window")
    notes = [
        f"`dagster dev` with both marketplaces' refresh schedules on \"* * * * *\", for {duration_s:.0f} s; the scenario "
        f"places {orders_per_minute:g} orders a minute per marketplace, the pipeline accepts them (OR21), the customer is "
        f"debited {debit_delay_s:g} s later and the next run imports the order. Mirakl's call limits are the real ones "
        f"(OR11 once a minute per marketplace).",
        f"samples: orders debited between {warmup_s:g} s after start and {horizon_s:g} s before the end; {missing} of "
        f"{len(values)} were not in Shopify at the end (counted as later than every sample). Shopify's `createdAt` has "
        f"whole seconds, so a latency can read up to 1 s short.",
        "latencies (s), sorted: " + ", ".join("missing" if math.isinf(v) else f"{v:.0f}" for v in sorted(values)) + ".",
        f"runs: {len(records)} ({runs.describe()}); median queued → started "
        f"{percentile(runs.launch, 0.5):.1f} s, median started → finished {percentile(runs.duration, 0.5):.1f} s (a process per run). "
        f"Mirakl calls served: {demo.mirakl_calls()}.",
        "run durations in start order (s): " + "; ".join(f"{c}: {', '.join(d)}" for c, d in sorted(by_marketplace.items()))
        + ". Runs lengthen by ~3 s a minute: each OR11 books its slot 63 s (60 s + 5 % margin) after the "
        "previous one, so a one-minute schedule falls behind steadily; after ~40 minutes the wait passes the client's "
        "120 s max_wait and refreshes fail. This short run does not reach that steady state.",
    ]
    return BenchResult(TITLE, figures, notes, time.monotonic() - began)
