"""The benchmark harness runs end to end at tiny sizes, so it cannot rot between `make bench` runs.

Real processes and loopback HTTP as in the real benchmarks; only the sizes shrink. The latency
benchmark (minutes of `dagster dev`) is covered through its sampling and percentile logic.
"""

import math
import os
import resource
from datetime import datetime, timedelta, timezone

import pytest

from mirakl_pipelines.bench.harness import order_specs, process_cpu_seconds, spread
from mirakl_pipelines.bench.latency import latencies, percentile
from mirakl_pipelines.bench.memory import bench_memory
from mirakl_pipelines.bench.refresh import bench_refresh
from mirakl_pipelines.bench.report import BenchResult, Figure, render_table, write_markdown
from mirakl_pipelines.bench.throughput import bench_import
from mirakl_pipelines.sandbox.shopify.schema import shopify_sdl_path

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _needs_the_shopify_sdl(request):
    if request.node.name.startswith(("test_import", "test_refresh", "test_memory")) and not shopify_sdl_path().exists():
        pytest.skip(f"the benchmark's Shopify sandbox needs the Admin GraphQL SDL, absent at {shopify_sdl_path()}")


def _figures(result: BenchResult) -> dict[str, Figure]:
    return {f.name: f for f in result.figures}


def test_import_benchmark_measures_a_real_run(tmp_path):
    result = bench_import(tmp_path, orders=6, latency_ms=5)
    figures = _figures(result)
    calls = figures["API calls per order (Mirakl + Shopify)"].value
    # One orderCreate per order, plus one aliased orderByIdentifier look-up, the OR11 page, the variants query and
    # the once-per-process check of the order_ref metafield definition (read, then created in a fresh store).
    assert calls == pytest.approx((6 + 5) / 6)
    assert 0 < figures["Shopify cost ceiling used (run wall time)"].value < 100
    assert figures["Shopify points per order"].value > 10  # orderCreate alone costs 10 + its payload
    assert figures["pipeline CPU per order"].value > 0 and figures["sandbox CPU per order"].value > 0
    assert figures["Shopify cost ceiling used (run wall time)"].passed is False  # 6 orders never drain a bucket


def test_refresh_benchmark_finds_nothing_new(tmp_path):
    result = bench_refresh(tmp_path, small_orders=2, day_orders=30, repeats=1)
    small = [f for f in result.figures if "day of 2 orders" in f.benchmark]
    by_name = {f.name: f for f in small}
    assert by_name["OR11 requests (mirakl_calls)"].value == 1 and by_name["OR11 requests (mirakl_calls)"].passed
    assert 0 < by_name["time inside the run (both steps)"].value
    assert by_name["Dagster run overhead (wall − steps)"].value > 0
    assert any("30 orders" in f.benchmark for f in result.figures)


def test_memory_benchmark_reports_the_job_process_peak(tmp_path):
    figures = _figures(bench_memory(tmp_path, orders=150))
    peak = figures["peak RSS of the job process"].value
    assert peak >= figures["RSS after loading the code, before the run"].value > 50  # Dagster alone is bigger


def test_latency_sampling_counts_missing_orders_as_late():
    t0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    iso = lambda moment: moment.isoformat().replace("+00:00", "Z")  # noqa: E731
    mirakl = {"m": [
        {"order_id": "A", "customer_debited_date": iso(t0 + timedelta(seconds=10))},
        {"order_id": "B", "customer_debited_date": iso(t0 + timedelta(seconds=20))},
        {"order_id": "C", "customer_debited_date": None},  # never paid: not a sample
        {"order_id": "D", "customer_debited_date": iso(t0 - timedelta(seconds=5))},  # before the window
    ]}
    shop = [{"sourceIdentifier": "m:A", "createdAt": iso(t0 + timedelta(seconds=55))}]
    samples = latencies(mirakl, shop, (t0, t0 + timedelta(minutes=5)))
    assert samples == {"m:A": 45.0, "m:B": math.inf}
    assert percentile([1, 2, 3, 4], 0.5) == 2 and percentile([1, math.inf], 0.95) == math.inf
    assert math.isnan(percentile([], 0.5))


def test_process_cpu_seconds_reads_proc_like_getrusage():
    for _ in range(200_000):
        pass
    usage = resource.getrusage(resource.RUSAGE_SELF)
    assert process_cpu_seconds(os.getpid()) == pytest.approx(usage.ru_utime + usage.ru_stime, abs=0.1)


def test_order_specs_are_deterministic_and_spread():
    start = datetime(2026, 11, 23, tzinfo=timezone.utc)
    moments = spread(4, start, start + timedelta(hours=4))
    assert moments[1] - moments[0] == timedelta(hours=1)
    specs = order_specs("X", 4, "SHIPPING", moments)
    assert specs == order_specs("X", 4, "SHIPPING", moments)
    assert [len(s["lines"]) for s in specs] == [1, 2, 3, 1]
    assert all(len({line["sku"] for line in s["lines"]}) == len(s["lines"]) for s in specs)


def test_markdown_names_machine_targets_and_verdicts(tmp_path):
    results = [BenchResult("Demo", [Figure("b", "ratio", 91.25, "%", "≥ 90 %", True, 1),
                                    Figure("b", "calls", 2.0, "calls")], ["a note"], 1.0)]
    path = tmp_path / "BENCHMARKS.md"
    write_markdown(path, results, {"CPU": "test cpu", "cores": "2"}, datetime(2026, 11, 23, tzinfo=timezone.utc))
    text = path.read_text()
    assert "2026-11-23" in text and "CPU: test cpu" in text and "make bench" in text
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in render_table(results).splitlines()]
    assert rows[2] == ["b", "ratio", "91.2 %", "≥ 90 %", "PASS"] and rows[3][4] == ""
    assert "## How to read this" in text and "- a note" in text
