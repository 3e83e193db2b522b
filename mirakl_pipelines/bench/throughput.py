"""Import throughput, API calls and CPU per imported order: one `orders_sync` run importing a backlog.

A few hundred paid orders (SHIPPING, so acceptance plays no part) wait on one marketplace; both
sandboxes answer every API call 50 ms late. The run is timed as a whole (wall time T, Dagster's
start-up included) and the Shopify points it spent are compared with the most the plan allows in T:
the points available when it started plus restore rate × T.
"""

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mirakl_pipelines.bench.harness import BenchError, order_specs, run_jobs, sandbox_process, spread, write_config
from mirakl_pipelines.bench.report import BenchResult, Figure

TITLE = "Import throughput, API calls and CPU per order"
MARKETPLACE = "decathlon_fr"
TARGET_FRACTION = 0.90
# Mirakl's documented call intervals compressed 1000×: OR11 paces at 60 ms, so it never waits on the clock.
RATE_LIMIT_SCALE = 0.001


def bench_import(workdir: Path, orders: int = 300, latency_ms: float = 50.0) -> BenchResult:
    began = time.monotonic()
    with sandbox_process(workdir, rate_limit_scale=RATE_LIMIT_SCALE) as sandbox:
        config = write_config(sandbox, workdir)
        now = datetime.now(timezone.utc)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        created = spread(orders, max(day_start, now - timedelta(minutes=90)), now - timedelta(seconds=5))
        sandbox.place_orders(MARKETPLACE, order_specs("THR", orders, "SHIPPING", created))
        sandbox.set_faults(latency_ms=latency_ms)
        before = sandbox.shop_stats()
        result = run_jobs(sandbox, config, workdir, [{"label": "import", "marketplace": MARKETPLACE,
                                                      "day": now.date().isoformat()}], RATE_LIMIT_SCALE)
        after = sandbox.shop_stats()
        mirakl_calls = sum(sandbox.marketplace_stats(MARKETPLACE)["calls"].values())

    [run] = result["runs"]
    imported = run["metadata"]["shopify_orders"]["imported"]
    if imported != orders:
        raise BenchError(f"the import run imported {imported} of {orders} orders: {run['metadata']['shopify_orders']}")
    wall = run["wall_seconds"]
    bucket = before["throttle_status"]
    available, restore = float(bucket["currentlyAvailable"]), float(bucket["restoreRate"])
    spent = float(after["points_spent"] - before["points_spent"])
    fraction = spent / (available + restore * wall)
    import_step = run["steps"].get("shopify_orders", float("nan"))
    step_fraction = spent / (available + restore * import_step)
    shop_calls = after["requests"] - before["requests"]  # requests: one aliased look-up reads 25 orders
    api = run["metadata"]["shopify_orders"]["api_calls"]
    step_mirakl = run["metadata"]["mirakl_orders"]["mirakl_calls"] + api["mirakl"]
    if step_mirakl != mirakl_calls or api["shopify"] != shop_calls:
        raise BenchError(f"the run's api_calls ({step_mirakl} Mirakl, {api['shopify']} Shopify) differ from what the "
                         f"sandboxes served ({mirakl_calls}, {shop_calls})")

    per_field = ", ".join(f"{k} {v - before['calls'].get(k, 0)}" for k, v in sorted(after["calls"].items()))
    bench = "1–3 import"
    figures = [
        Figure(bench, "Shopify cost ceiling used (run wall time)", 100 * fraction, "%", "≥ 90 %", fraction >= TARGET_FRACTION, 1),
        Figure(bench, "orders imported per second", orders / wall, "orders/s", precision=2),
        Figure(bench, "Shopify points per order", spent / orders, "points", precision=1),
        Figure(bench, "API calls per order (Mirakl + Shopify)", (mirakl_calls + shop_calls) / orders, "calls", precision=2),
        Figure(bench, "pipeline CPU per order", 1000 * run["cpu_seconds"] / orders, "ms", precision=1),
        Figure(bench, "sandbox CPU per order", 1000 * run["sandbox_cpu_seconds"] / orders, "ms", precision=1),
    ]
    notes = [
        f"{orders} paid orders (state SHIPPING) on {MARKETPLACE}, imported by one `orders_sync` run; "
        f"{latency_ms:g} ms latency injected on every API call of both sandboxes; Shopify plan Standard "
        f"(bucket {bucket['maximumAvailable']}, restore {restore:g} points/s); Mirakl limits compressed ×{1 / RATE_LIMIT_SCALE:g}.",
        f"run wall time T = {wall:.1f} s (steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in run["steps"].items()) + f"); "
        f"points spent {spent:.0f}, available at start {available:.0f}: ceiling = {available:.0f} + {restore:g} × T = "
        f"{available + restore * wall:.0f}.",
        f"over the `shopify_orders` step alone ({import_step:.1f} s) the fraction is {100 * step_fraction:.1f} %; the rest of T "
        f"is Dagster's run overhead and `mirakl_orders`.",
        f"API calls: Mirakl {mirakl_calls} (OR11 pages), Shopify {shop_calls} requests "
        f"(root fields resolved: {per_field}; `orderByIdentifier` reads 25 orders per request, as aliases); counted by the "
        f"sandboxes and equal to the run's `api_calls`/`mirakl_calls` metadata. Shopify refused {after['throttled'] - before['throttled']} "
        f"request(s) as THROTTLED.",
        f"CPU over the run: pipeline process {run['cpu_seconds']:.2f} s (getrusage of the job process around "
        f"`execute_in_process`), sandbox process {run['sandbox_cpu_seconds']:.2f} s (/proc/<pid>/stat; it also serves "
        f"Mirakl). Loading the code location took {result['load_seconds']:.1f} s, not counted.",
    ]
    return BenchResult(TITLE, figures, notes, time.monotonic() - began)
