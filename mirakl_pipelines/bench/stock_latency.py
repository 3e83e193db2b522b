"""From a Shopify inventory change to the quantity in Mirakl's offer, with Mirakl's real STO01 limit: the demo set-up.

The sandbox (both marketplaces, the store, the webhook receiver subscribed to the store's inventory topics) runs in
one process and `dagster dev` (webserver + daemon: the `stock_inventory_webhooks` sensor with the demo's 10 s
debounce, the stock schedules, the orders' one-minute schedules) in another, as `mirakl-pipelines demo` starts them,
with Mirakl's real call limits (STO01 once a minute per marketplace). No Mirakl orders are placed, so nothing is
promised and each change's published quantity follows from the levels alone.

From `warmup_s` on, every `change_every_s` the benchmark makes the demo's shop floor take one step in the sandbox
process (a delivery, a sale over the counter, a write-off or a stock count, through the store's inventory code path,
so the store sends its `inventory_levels/update` webhook). For each change and each marketplace listing the SKU whose
published quantity the change moves (by the marketplace's own policy: locations, buffers, cap, zero_below), the
latency is the moment the sandbox marketplace applied a stock line for that SKU from an import sent after the
change (the import's completion: sent + the sandbox's WAITING and RUNNING delays) minus the change's time; a change
never applied by the end counts as later than every sample.
"""

import collections
import functools
import math
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np

from mirakl_pipelines.bench.harness import MARKETPLACES, BenchError, RunStats, run_demo_setup
from mirakl_pipelines.bench.latency import latency_figures, percentile
from mirakl_pipelines.bench.report import BenchResult, Figure
from mirakl_pipelines.config import StockConfig, load_settings
from mirakl_pipelines.defs.stock.assets import JOB_NAME
from mirakl_pipelines.sync.stock_levels import ShopifyLocation
from mirakl_pipelines.sync.stock_policy import published_quantities, resolve_locations

TITLE = "Stock: Shopify inventory change → Mirakl offer quantity, Mirakl's real STO01 limit"
TARGET_P95_SECONDS = 90.0
STO01_WINDOW_SECONDS = 60.0
# The receiver and the warehouse run as in the demo; with no orders the warehouse has nothing to ship.
SHIPPING = {"warehouse_delay": 30, "partial_share": 0, "unknown_carrier_share": 0}


def published(policy: StockConfig, locations: list[ShopifyLocation], available: dict[str, int]) -> int:
    """The quantity `policy` publishes for one SKU whose `available` per location name is given (nothing promised)."""
    counted = resolve_locations(locations, policy.locations)
    total = sum(available[loc.name] for loc in counted if loc.name in available)
    return int(published_quantities(np.array([max(total, 0)]), policy)[0])


def stock_samples(changes: list[dict], imports: dict[str, list[dict]], offered: dict[str, set[str]],
                  policies: dict[str, StockConfig], locations: list[ShopifyLocation]
                  ) -> tuple[dict[str, float], collections.Counter, int]:
    """(latency per (marketplace, change), excluded changes by reason, applied lines whose quantity is not the one
    the change led to although no later change of the SKU came before the import)."""
    samples: dict[str, float] = {}
    excluded: collections.Counter = collections.Counter()
    mismatched = 0
    ordered = sorted(changes, key=lambda c: c["at"])
    for code, policy in policies.items():
        complete = sorted((i for i in imports.get(code, []) if i["status"] == "COMPLETE"), key=lambda i: i["sent"])
        lines = [{sku: quantity for sku, quantity in i.get("stock", [])} for i in complete]
        for n, change in enumerate(ordered):
            sku = change["event"]["sku"]
            if sku not in offered.get(code, ()):
                excluded[f"SKU not listed on {code}"] += 1
                continue
            expected = published(policy, locations, change["after"])
            if published(policy, locations, change["before"]) == expected:
                excluded[f"published quantity unchanged on {code} (location not counted, cap, threshold or no change)"] += 1
                continue
            key = f"{code}:{change['event']['number']}:{sku}"
            applied = next(((i, q) for i, q in zip(complete, lines) if i["sent"] >= change["at"] and sku in q), None)
            if applied is None:
                samples[key] = math.inf
                continue
            stock_import, quantities = applied
            samples[key] = stock_import["done"] - change["at"]
            later = any(c["event"]["sku"] == sku and change["at"] < c["at"] <= stock_import["sent"] for c in ordered[n + 1:])
            if not later and int(quantities[sku]) != expected:
                mismatched += 1
    return samples, excluded, mismatched


def max_in_window(moments: list[float], window: float = STO01_WINDOW_SECONDS) -> int:
    """The most moments in any half-open window [t, t + window)."""
    ordered = sorted(moments)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _drive_changes(sandbox, config_path: Path, dagster, stop: threading.Event, *, first_after_s: float,
                   last_before_s: float, every_s: float) -> dict:
    """A shop-floor step every `every_s` from `first_after_s` until `last_before_s`; once stopped, what the sandbox
    recorded (locations, offers listed, every STO01 import with its lines)."""
    started = time.monotonic()
    done: dict = {"changes": [], "errors": []}
    next_at = first_after_s
    while not stop.is_set():
        if next_at <= last_before_s and time.monotonic() - started >= next_at:
            next_at += every_s
            try:
                step = sandbox.stock_control("POST", "/floor/step")
                if step.get("event"):
                    done["changes"].append(step)
            except Exception as error:  # noqa: BLE001 - a change that fails is reported, never fatal to the bench
                done["errors"].append(f"{type(error).__name__}: {error}")
        stop.wait(0.2)
    done["locations"] = sandbox.stock_control("GET", "/locations")
    done["offered"] = {code: sandbox.stock_control("GET", f"/offer_skus/{code}") for code in MARKETPLACES}
    done["imports"] = {code: sandbox.stock_control("GET", f"/stock_imports/{code}?lines=1") for code in MARKETPLACES}
    return done


def bench_stock_latency(workdir: Path, duration_s: float = 400.0, warmup_s: float = 60.0, horizon_s: float = 120.0,
                        change_every_s: float = 15.0) -> BenchResult:
    """Run the demo set-up `duration_s`; changes in [start + warmup, end − horizon], one every `change_every_s`."""
    if duration_s <= warmup_s + horizon_s:
        raise ValueError(f"duration_s ({duration_s}) must exceed warmup_s + horizon_s ({warmup_s + horizon_s})")
    began = time.monotonic()
    drive = functools.partial(_drive_changes, first_after_s=warmup_s, last_before_s=duration_s - horizon_s,
                              every_s=change_every_s)
    demo = run_demo_setup(workdir, duration_s, debit_delay_s=20.0, orders_per_minute=0.0, shipping=SHIPPING,
                          disrupt=drive, sandbox_args=["--stock-control"])
    if not any(r.dagster_run.job_name == JOB_NAME for r in demo.records):
        raise BenchError(f"no stock run was started in {duration_s:.0f} s of `dagster dev`: "
                         + _log_errors(workdir / "dagster.log"))
    figures, notes = stock_latency_report(demo, load_settings(workdir / "marketplaces.yaml"), duration_s, warmup_s,
                                          horizon_s, change_every_s)
    return BenchResult(TITLE, figures, notes, time.monotonic() - began)


def _log_errors(path: Path) -> str:
    """The first ERROR lines of `dagster dev`'s log (e.g. the code location failing to load)."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if "ERROR" in line or "Error" in line]
    return " | ".join(lines[:3])[:2000] or f"no error in {path.name}"


def stock_latency_report(demo, settings, duration_s: float, warmup_s: float, horizon_s: float,
                         change_every_s: float, bench: str = "10 stock latency") -> tuple[list[Figure], list[str]]:
    d = demo.disruptions or {}
    locations = [ShopifyLocation(id=loc["id"], legacy_id=str(loc["legacy_id"]), name=loc["name"], active=loc["active"])
                 for loc in d.get("locations", [])]
    policies = {m.code: m.stock for m in settings.marketplaces if m.stock.enabled}
    changes, imports = d.get("changes", []), d.get("imports", {})
    samples, excluded, mismatched = stock_samples(changes, imports, {c: set(s) for c, s in d.get("offered", {}).items()},
                                                  policies, locations)
    values = list(samples.values())
    missing = sum(1 for v in values if math.isinf(v))
    per_minute = {code: max_in_window([i["sent"] for i in imports.get(code, [])]) for code in policies}
    worst = max(per_minute.values(), default=0)
    figures = latency_figures(bench, "inventory change → Mirakl offer quantity", values, TARGET_P95_SECONDS,
                              "change × marketplace whose quantity moved")
    figures.append(Figure(bench, "most STO01 imports in any 60 s, per marketplace", worst, "", "≤ 1", worst <= 1, 0))
    stock_runs = [r for r in demo.records if r.dagster_run.job_name == JOB_NAME]
    runs = RunStats.of(stock_runs)
    by_kind = collections.Counter(e["event"]["kind"] for e in changes)
    by_code = {code: [v for k, v in samples.items() if k.startswith(f"{code}:")] for code in policies}
    notes = [
        f"`dagster dev` with the demo's configuration for {duration_s:.0f} s (stock: the sensor on inventory webhooks, "
        f"debounce {', '.join(f'{c} {p.debounce_seconds} s' for c, p in policies.items())}; schedules "
        f"{', '.join(f'{c} {p.cron!r} (full {p.full_cron!r})' for c, p in policies.items())}; the orders' one-minute "
        f"schedules run too, with no orders to import). Mirakl's limits are the real ones: STO01 once a minute, STO02 "
        f"every 15 s per marketplace. The sandbox marketplace takes 1 s WAITING + 2 s RUNNING to apply an import.",
        f"changes: {len(changes)} shop-floor events ({', '.join(f'{k} {n}' for k, n in sorted(by_kind.items()))}), one "
        f"every {change_every_s:g} s from {warmup_s:g} s after start until {horizon_s:g} s before the end; each is "
        f"judged per marketplace: {len(values)} samples, excluded {sum(excluded.values())} "
        f"({'; '.join(f'{r}: {n}' for r, n in sorted(excluded.items())) or 'none'}). {missing} samples not applied "
        f"by the end (counted as later than every sample). {mismatched} applied lines carried another quantity "
        f"than the change led to (with no later change of that SKU before the import).",
        "latencies (s), sorted, per marketplace: " + "; ".join(
            f"{c}: " + (", ".join("missing" if math.isinf(v) else f"{v:.0f}" for v in sorted(vs)) or "none")
            for c, vs in by_code.items()) + ".",
        "STO01 imports: " + "; ".join(
            f"{c} {len(imports.get(c, []))} in {duration_s / 60:.1f} min "
            f"({len(imports.get(c, [])) / (duration_s / 60):.2f} a minute, at most {per_minute[c]} in any 60 s"
            + "".join(f", {s} {n}" for s, n in sorted(collections.Counter(i['status'] for i in imports.get(c, [])).items()))
            + ")"
            for c in policies) + f". STO01 calls answered 429 by the sandbox: "
        + ", ".join(f"{c} {demo.mirakl_stats[c]['rejected_429'].get('STO01', 0)}" for c in demo.mirakl_stats) + ".",
        f"stock runs: {len(stock_runs)} ({runs.describe()}); median queued → started "
        f"{percentile(runs.launch, 0.5):.1f} s, median started → finished {percentile(runs.duration, 0.5):.1f} s "
        f"(a process per run). Every run booking STO01's slot waits for it before reading Shopify, so a change that "
        f"lands just after a run read Shopify waits for the next run and the next slot.",
    ]
    if d.get("errors"):
        notes.append("changes that failed: " + "; ".join(d["errors"][:5]))
    return figures, notes
