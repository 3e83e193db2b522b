"""The shipping benchmarks (issue 3) at tiny sizes, so they cannot rot between `make bench` runs.

The webhook throughput benchmark runs end to end (receiver and client processes, loopback HTTP, a
SQLite ledger); the shipping latency benchmark (minutes of `dagster dev`) is covered through its
sampling logic and the sandbox process it starts with the receiver and the warehouse.
"""

import math
import sqlite3
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from mirakl_pipelines.bench.harness import sandbox_process
from mirakl_pipelines.bench.latency import percentile
from mirakl_pipelines.bench.shipping import shipping_latencies
from mirakl_pipelines.bench.webhook_throughput import bench_webhooks, with_redeliveries
from mirakl_pipelines.sandbox.shopify.schema import shopify_sdl_path

pytestmark = pytest.mark.timeout(120)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)


def _iso(moment: datetime, millis: bool = False) -> str:
    text = moment.isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def test_webhook_benchmark_stores_each_delivery_once_and_reports_what_the_inbox_holds(tmp_path):
    result = bench_webhooks(tmp_path, deliveries=50, concurrency=8, duplicate_share=0.1)
    figures = {f.name: f for f in result.figures}

    with sqlite3.connect(tmp_path / "ledger.sqlite") as db:  # read back independently of the benchmark's own count
        rows, distinct, topics = db.execute(
            "select count(*), count(distinct webhook_id), group_concat(distinct topic) from webhook_inbox").fetchone()
    assert (rows, distinct, topics) == (50, 50, "fulfillments/create")
    inbox = figures["inbox rows afterwards"]
    assert inbox.value == rows and inbox.passed
    duplicates = figures["redeliveries answered duplicate"]
    assert duplicates.value == 5 and duplicates.target == "= 5 resent" and duplicates.passed
    assert figures["non-200 responses"].value == 0 and figures["non-200 responses"].passed
    assert figures["deliveries per second (8 in flight)"].value > 0
    assert 0 < figures["response time p50"].value <= figures["response time p99"].value
    assert "55 requests" in " ".join(result.notes)


def test_redeliveries_follow_their_original_and_are_deterministic():
    originals = [f"d{n}" for n in range(40)]
    requests, again = with_redeliveries(originals, 0.05, seed=3)
    assert again == 2 and len(requests) == 42
    assert (requests, again) == with_redeliveries(originals, 0.05, seed=3)
    repeated = [n for n in range(1, len(requests)) if requests[n] == requests[n - 1]]
    assert len(repeated) == 2
    assert [r for n, r in enumerate(requests) if n not in repeated] == originals


def test_shipping_samples_are_fulfilments_of_imported_orders_and_unshipped_ones_count_as_late():
    window = (T0, T0 + timedelta(minutes=5))
    fulfilment = lambda n, at: {"id": f"gid://shopify/Fulfillment/{n}", "createdAt": _iso(at)}  # noqa: E731
    shop = [
        {"sourceIdentifier": "m:A", "fulfillments": [fulfilment(1, T0 + timedelta(seconds=30))]},
        {"sourceIdentifier": "m:B", "fulfillments": [fulfilment(2, T0 + timedelta(seconds=40))]},  # never shipped
        {"sourceIdentifier": "m:C", "fulfillments": [fulfilment(3, T0 - timedelta(seconds=1))]},  # before the window
        {"sourceIdentifier": "m:D", "fulfillments": []},  # not fulfilled yet: no sample
        {"sourceIdentifier": "web:E", "fulfillments": [fulfilment(5, T0 + timedelta(seconds=50))]},  # not imported
        {"sourceIdentifier": None, "fulfillments": [fulfilment(6, T0 + timedelta(seconds=50))]},
        {"sourceIdentifier": "n:F", "fulfillments": [fulfilment(7, T0 + timedelta(seconds=60))]},
    ]
    mirakl = {
        "m": [{"order_id": "A", "shipped_date": _iso(T0 + timedelta(seconds=42.5), millis=True)},
              {"order_id": "B", "shipped_date": None},
              {"order_id": "C", "shipped_date": _iso(T0 + timedelta(seconds=5), millis=True)},
              {"order_id": "D", "shipped_date": None}],
        "n": [{"order_id": "F", "shipped_date": _iso(T0 + timedelta(seconds=69), millis=True)}],
    }
    samples = shipping_latencies(shop, mirakl, window)
    assert samples == {"m:A gid://shopify/Fulfillment/1": 12.5, "m:B gid://shopify/Fulfillment/2": math.inf,
                       "n:F gid://shopify/Fulfillment/7": 9.0}
    values = list(samples.values())
    assert percentile(values, 0.5) == 12.5 and percentile(values, 0.95) == math.inf


@pytest.mark.skipif(not shopify_sdl_path().exists(), reason="the sandbox store needs the Admin GraphQL SDL")
def test_the_sandbox_process_runs_the_receiver_subscribed_to_the_store(tmp_path):
    shipping = {"warehouse_delay": 5, "partial_share": 0, "unknown_carrier_share": 0}
    with sandbox_process(tmp_path, shipping=shipping) as sandbox:
        receiver = sandbox.info["receiver_url"]
        assert httpx.get(f"{receiver}/health").json() == {"status": "ok", "inbox_last_id": 0}
        subscriptions = sandbox.shop_webhooks()["subscriptions"]
        assert [(s["url"], s["topics"]) for s in subscriptions] == [
            (f"{receiver}/webhooks/shopify", ["fulfillments/create", "fulfillments/update"])]
        assert set(sandbox.info["urls"]) == {"decathlon_fr", "leroymerlin_fr", "shopify"}
    assert (tmp_path / "ledger.sqlite").exists()  # the receiver's inbox is the pipelines' ledger
