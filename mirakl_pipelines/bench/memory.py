"""Peak memory of a day of `orders` orders (10,000 and 50,000): one partition through `mirakl_orders` and
`shopify_orders`. Both stream (a page of OR11 at a time into parquet, a chunk of orders at a time through the
batch), so the peak should not grow with the day: the target is the same figure for both sizes.

The orders are SHIPPED, a state the marketplace's config does not import: every one is fetched
(OR11, 100 a page), written to the day's parquet, read back and observed in the ledger, and none
needs an orderCreate (10,000 creates would take the Standard plan ~25 minutes and measure Shopify's bucket,
not memory). Peak RSS is the job process's ru_maxrss, which includes Dagster and the code location.
"""

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mirakl_pipelines.bench.harness import BenchError, order_specs, run_jobs, sandbox_process, spread, write_config
from mirakl_pipelines.bench.report import BenchResult, Figure

MARKETPLACE = "decathlon_fr"
RATE_LIMIT_SCALE = 0.001
PEAK_TARGET_MIB = 300


def bench_memory(workdir: Path, orders: int = 10_000) -> BenchResult:
    title = f"Peak memory, one day of {orders:,} orders"
    began = time.monotonic()
    with sandbox_process(workdir, rate_limit_scale=RATE_LIMIT_SCALE) as sandbox:
        config = write_config(sandbox, workdir)
        now = datetime.now(timezone.utc)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        placing = time.monotonic()
        sandbox.place_orders(MARKETPLACE, order_specs("MEM", orders, "SHIPPED", spread(orders, day_start, now - timedelta(seconds=30))))
        placing = time.monotonic() - placing
        result = run_jobs(sandbox, config, workdir, [{"label": "day", "marketplace": MARKETPLACE, "day": now.date().isoformat()}],
                          RATE_LIMIT_SCALE)

    [run] = result["runs"]
    raw, batch = run["metadata"]["mirakl_orders"], run["metadata"]["shopify_orders"]
    if raw["fetched"] != orders or batch["orders_in_day"] != orders:
        raise BenchError(f"the run saw {raw['fetched']} fetched / {batch['orders_in_day']} in the day, not {orders}")
    peak, baseline = result["peak_rss_kib"] / 1024, result["rss_before_runs_kib"] / 1024
    bench = f"6 memory, {orders:,} orders"
    figures = [
        Figure(bench, "peak RSS of the job process", peak, "MiB", f"≤ {PEAK_TARGET_MIB} MiB", peak <= PEAK_TARGET_MIB,
               precision=0),
        Figure(bench, "RSS after loading the code, before the run", baseline, "MiB", precision=0),
        Figure(bench, "run wall time", run["wall_seconds"], "s", precision=1),
    ]
    notes = [
        f"{orders:,} orders in state SHIPPED spread over today on {MARKETPLACE} (placed through POST /_sandbox/orders in "
        f"{placing:.0f} s); the config imports SHIPPING only, so no Shopify order is created: what is measured is fetching "
        f"(page by page into parquet row groups), the ledger observations ({batch['examined']:,} orders parsed in chunks) "
        f"and the checks, not orderCreate.",
        f"OR11: {raw['mirakl_calls']} requests of 100 orders; steps: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in run["steps"].items())
        + f"; skipped: {batch['skipped']}; pipeline CPU {run['cpu_seconds']:.1f} s, sandbox CPU {run['sandbox_cpu_seconds']:.1f} s.",
        "peak RSS is ru_maxrss of the process that ran the job (Linux reports KiB), whole-process: the run's own "
        "growth is roughly peak minus the RSS before the run.",
    ]
    return BenchResult(title, figures, notes, time.monotonic() - began)
