"""The stock benchmarks' code runs and computes its figures: the large one end to end at a tiny size (real processes,
loopback HTTP, the bulk and OF52 paths kept by lowered thresholds, the sandbox's delays at zero), the latency one
through its sampling logic (its real run is minutes of `dagster dev`)."""

import math

import pytest

from mirakl_pipelines.bench.stock import bench_stock_large
from mirakl_pipelines.bench.stock_latency import max_in_window, published, stock_samples
from mirakl_pipelines.config import StockConfig
from mirakl_pipelines.sandbox.shopify.schema import shopify_sdl_path
from mirakl_pipelines.sync.stock_levels import ShopifyLocation

pytestmark = pytest.mark.timeout(120)

LOCATIONS = [ShopifyLocation("gid://shopify/Location/1", "1", "Lyon"), ShopifyLocation("gid://shopify/Location/2", "2", "Paris"),
             ShopifyLocation("gid://shopify/Location/3", "3", "Lille", active=False)]


def test_stock_large_runs_and_measures_both_runs(tmp_path):
    if not shopify_sdl_path().exists():
        pytest.skip(f"the benchmark's Shopify sandbox needs the Admin GraphQL SDL, absent at {shopify_sdl_path()}")
    result = bench_stock_large(tmp_path, skus=40, changed=4,
                               thresholds={"shopify_bulk_threshold": 10, "mirakl_export_threshold": 10},
                               settle_s=0, sandbox_delays={"stock_import_waiting": 0, "stock_import_running": 0,
                                               "offer_export_delay": 0, "bulk_operation_seconds": 0})
    by_bench: dict[str, dict] = {}
    for figure in result.figures:
        by_bench.setdefault(figure.benchmark, {})[figure.name] = figure
    first, delta = by_bench["9 stock, 40 SKUs: first run"], by_bench["9 stock, 40 SKUs: 10% changed, steady state"]
    assert delta["STO01 lines sent"].value == 4 and delta["STO01 lines sent"].passed
    assert first["STO01 lines sent"].passed and first["STO01 lines sent"].value >= 40  # and the demo catalogue's SKUs
    for figures in by_bench.values():
        assert figures["peak RSS of the job process"].value > 50  # Dagster alone is bigger
        whole, waits = figures["run wall time (whole)"].value, figures["waits for the sandbox (bulk operation, export, import)"].value
        assert 0 < waits < whole
        assert figures["run wall time minus waits for the sandbox's processing"].value == pytest.approx(whole - waits)
        assert figures["API calls (Shopify requests + Mirakl calls)"].value > 5
    assert "Shopify read via bulk" in result.notes[2] and "offers via OF52" in result.notes[3]


def test_published_follows_the_marketplace_policy():
    summed = StockConfig(locations=["Lyon", "Paris"], buffer_units=2)
    single = StockConfig(locations=["Lyon"], mode="single", buffer_percent="10", cap=50, zero_below=2)
    assert published(summed, LOCATIONS, {"Lyon": 10, "Paris": 3, "Lille": 100}) == 11
    assert published(summed, LOCATIONS, {"Lyon": -5, "Paris": 3}) == 0  # oversold: never below 0
    assert published(single, LOCATIONS, {"Lyon": 200, "Paris": 3}) == 50  # capped
    assert published(single, LOCATIONS, {"Lyon": 1}) == 0  # below zero_below


def _change(number, sku, at, before, after):
    return {"event": {"kind": "restock", "sku": sku, "location": "Lyon", "delta": 1, "number": number},
            "at": at, "before": before, "after": after}


def test_stock_samples_measure_to_the_first_import_sent_after_the_change():
    policies = {"m": StockConfig(locations=["Lyon"], mode="single", cap=50)}
    changes = [
        _change(0, "A", 100.0, {"Lyon": 5}, {"Lyon": 6}),  # applied by the import sent at 130
        _change(1, "B", 110.0, {"Lyon": 60}, {"Lyon": 70}),  # capped both times: excluded
        _change(2, "C", 120.0, {"Lyon": 1}, {"Lyon": 2}),  # never applied: later than every sample
        _change(3, "X", 125.0, {"Lyon": 1}, {"Lyon": 2}),  # not listed: excluded
        _change(4, "A", 140.0, {"Lyon": 6}, {"Lyon": 9}),  # the import sent at 130 is before it: the one at 200
    ]
    imports = {"m": [
        {"import_id": "1", "sent": 90.0, "done": 93.0, "status": "COMPLETE", "stock": [["A", "5"]]},
        {"import_id": "2", "sent": 130.0, "done": 133.0, "status": "COMPLETE", "stock": [["A", "7"]]},
        {"import_id": "3", "sent": 150.0, "done": 153.0, "status": "FAILED", "stock": [["A", "9"], ["C", "2"]]},
        {"import_id": "4", "sent": 200.0, "done": 203.0, "status": "COMPLETE", "stock": [["A", "9"]]},
    ]}
    samples, excluded, mismatched = stock_samples(changes, imports, {"m": {"A", "B", "C"}}, policies, LOCATIONS)
    assert samples == {"m:0:A": 33.0, "m:2:C": math.inf, "m:4:A": 63.0}
    assert sum(excluded.values()) == 2
    assert mismatched == 1  # import 2 sent 7 for A where the change led to 6, with no change of A in between


def test_max_in_window_counts_imports_per_minute():
    assert max_in_window([]) == 0
    assert max_in_window([0.0, 61.0, 122.0]) == 1
    assert max_in_window([0.0, 30.0, 61.0]) == 2
    assert max_in_window([0.0, 60.0]) == 1  # [t, t + 60): the next minute's import is its own
