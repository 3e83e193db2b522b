"""A refresh that finds nothing new: what a schedule tick costs when no order changed.

Two partitions of today: a small one (a few orders, imported by a first run) and a full one
(`day_orders` orders spread over the day so far, state SHIPPED so they are observed but not imported).
Each is materialised once, then refreshed `repeats` times with nothing new; the figures are the
median refresh. Time inside the run is the two asset steps (STEP_START → STEP_SUCCESS); the rest of
`execute_in_process`'s wall time is Dagster's own per-run overhead, reported apart.
"""

import statistics
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mirakl_pipelines.bench.harness import BenchError, order_specs, run_jobs, sandbox_process, spread, write_config
from mirakl_pipelines.bench.report import BenchResult, Figure

TITLE = "A refresh that finds nothing new"
SMALL, FULL = "decathlon_fr", "leroymerlin_fr"
RATE_LIMIT_SCALE = 0.001  # OR11 once a minute becomes once per 60 ms: refreshes follow each other at once
STEP_TARGET_SECONDS = 1.0


def _median(runs: list[dict], pick) -> float:
    return statistics.median(pick(run) for run in runs)


def bench_refresh(workdir: Path, small_orders: int = 5, day_orders: int = 2000, repeats: int = 3) -> BenchResult:
    began = time.monotonic()
    with sandbox_process(workdir, rate_limit_scale=RATE_LIMIT_SCALE) as sandbox:
        config = write_config(sandbox, workdir)
        now = datetime.now(timezone.utc)
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        recent = spread(small_orders, max(day_start, now - timedelta(minutes=30)), now - timedelta(seconds=5))
        sandbox.place_orders(SMALL, order_specs("REF", small_orders, "SHIPPING", recent))
        sandbox.place_orders(FULL, order_specs("DAY", day_orders, "SHIPPED", spread(day_orders, day_start, now - timedelta(minutes=1))))
        overlap = timedelta(minutes=sandbox.info["settings"]["marketplaces"][0]["schedule"].get("overlap_minutes", 2))
        today = now.date().isoformat()
        runs = [{"label": f"{code} first", "marketplace": code, "day": today} for code in (SMALL, FULL)]
        runs += [{"label": f"{code} refresh {i}", "marketplace": code, "day": today}
                 for code in (SMALL, FULL) for i in range(1, repeats + 1)]
        result = run_jobs(sandbox, config, workdir, runs, RATE_LIMIT_SCALE)

    by_label = {run["label"]: run for run in result["runs"]}
    first_small = by_label[f"{SMALL} first"]["metadata"]["shopify_orders"]
    if first_small["imported"] != small_orders:
        raise BenchError(f"the first run of {SMALL} imported {first_small['imported']} of {small_orders} orders")
    figures, notes = [], []
    for code, what in ((SMALL, f"{small_orders} orders"), (FULL, f"{day_orders:,} orders")):
        refreshes = [by_label[f"{code} refresh {i}"] for i in range(1, repeats + 1)]
        for run in refreshes:
            raw, imported = run["metadata"]["mirakl_orders"], run["metadata"]["shopify_orders"]
            if raw["new"] or raw["updated"] or imported["imported"]:
                raise BenchError(f"{run['label']} found something new: {raw['new']} new, {raw['updated']} updated, "
                                 f"{imported['imported']} imported")
        calls = _median(refreshes, lambda r: r["metadata"]["mirakl_orders"]["mirakl_calls"])
        steps = _median(refreshes, lambda r: r["step_seconds_total"])
        overhead = _median(refreshes, lambda r: r["wall_seconds"] - r["step_seconds_total"])
        fetched = _median(refreshes, lambda r: r["metadata"]["mirakl_orders"]["fetched"])
        bench = f"4 refresh, day of {what}"
        # The window since the last refresh holds a few minutes of orders: one page, however full the day.
        calls_figure = Figure(bench, "OR11 requests (mirakl_calls)", calls, "", "1", calls == 1, precision=0)
        figures += [
            calls_figure,
            Figure(bench, "time inside the run (both steps)", steps, "s", f"< {STEP_TARGET_SECONDS:g} s",
                   steps < STEP_TARGET_SECONDS, 3),
            Figure(bench, "Dagster run overhead (wall − steps)", overhead, "s", precision=2),
        ]
        step_detail = "; ".join(
            f"{r['label']}: " + ", ".join(f"{k} {v:.3f} s" for k, v in r["steps"].items()) + f", wall {r['wall_seconds']:.2f} s"
            for r in refreshes)
        notes.append(f"day of {what} on {code}: the refresh fetches the window since the last one (minus the {overlap} "
                     f"overlap, and Mirakl's own start-date slack), {fetched:.0f} orders, appends nothing when nothing "
                     f"changed, as `mirakl_calls` = {calls:.0f} OR11 request(s) "
                     f"(100 orders a page; only the first page counts against Mirakl's once-a-minute limit). {step_detail}.")
    first_full = by_label[f"{FULL} first"]
    notes.append(f"the full day's {day_orders:,} orders are SHIPPED (observed and recorded in the ledger, not imported) "
                 f"so setting it up needs no {day_orders:,} Shopify creates; its first run took "
                 f"{first_full['wall_seconds']:.1f} s. Small day's orders are SHIPPING and imported by the first run.")
    notes.append(f"Dagster's overhead is that of `execute_in_process` in a warm process; a scheduled run also pays a "
                 f"process start and the code location load ({result['load_seconds']:.1f} s here), see the latency benchmark.")
    return BenchResult(TITLE, figures, notes, time.monotonic() - began)
