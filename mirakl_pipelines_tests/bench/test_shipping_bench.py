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

from mirakl_pipelines.bench.harness import run_events, sandbox_process
from mirakl_pipelines.bench.latency import percentile
from mirakl_pipelines.bench.shipping import (
    STAGES,
    PushRun,
    Sample,
    describe_stages,
    shipping_latencies,
    stage_seconds,
    taking_run,
)
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
            (f"{receiver}/webhooks/shopify", ["fulfillments/create", "fulfillments/update", "inventory_levels/update"])]
        assert set(sandbox.info["urls"]) == {"decathlon_fr", "leroymerlin_fr", "shopify"}
    assert (tmp_path / "ledger.sqlite").exists()  # the receiver's inbox is the pipelines' ledger


def _run(marketplace="m", created=3.0, step=8.0, **moments) -> PushRun:
    return PushRun(f"run-{marketplace}-{created}", marketplace, created, **{
        "enqueued": created + 0.5, "starting": created + 1, "process": created + 2.5, "started": created + 4, "step": step,
        **moments})


def test_a_samples_stages_follow_its_moments_and_add_up_to_its_latency():
    sample = Sample("m", created=0.0, received=0.8, taken=8.3, or23=8.6, shipped=8.9)
    seconds = stage_seconds(sample, _run())
    assert len(seconds) == len(STAGES)
    # webhook, request, submit, queue, process, code, step, OR23, OR24
    assert seconds == pytest.approx([0.8, 2.2, 0.5, 0.5, 1.5, 1.5, 1.3, 0.3, 0.3])
    assert sum(seconds) == pytest.approx(sample.shipped - sample.created)


def test_moments_out_of_order_or_missing_are_clamped_so_the_stages_still_add_up():
    # The run was requested (by an earlier tick) before this webhook came: no tick wait, the run's own stages shrink.
    early = Sample("m", created=0.0, received=4.5, taken=8.3, or23=None, shipped=9.0)
    seconds = stage_seconds(early, _run(starting=None))
    assert seconds == pytest.approx([4.5, 0.0, 0.0, 0.0, 1.0, 1.5, 1.3, 0.0, 0.7])
    # ST01 ships before the ledger records the tracking step: the call's time sits in the first push stage.
    parcel = Sample("m", created=0.0, received=0.5, taken=8.2, or23=9.5, shipped=9.1)
    seconds = stage_seconds(parcel, _run())
    assert seconds[-2:] == pytest.approx([0.9, 0.0]) and sum(seconds) == pytest.approx(9.1)


def test_the_taking_run_is_the_last_of_its_marketplace_to_start_its_step_before_the_take():
    runs = [_run("m", created=0, step=5), _run("m", created=10, step=15), _run("n", created=11, step=14),
            _run("m", created=20, step=None)]
    taken = lambda at, code="m": taking_run(Sample(code, 0, 0, at, None, at + 1), runs)  # noqa: E731
    assert taken(15.5).created == 10
    assert taken(14.5).created == 0
    assert taken(14.5, "n").marketplace == "n"
    assert taken(4.0) is None


def test_the_breakdown_gives_each_stage_its_own_percentiles():
    rows = [[float(n)] * len(STAGES) for n in range(1, 21)]
    text = describe_stages(rows)
    assert text.count("10.0 / 19.0 / 20.0") == len(STAGES)
    assert text.startswith("webhook 10.0 / 19.0 / 20.0 (createdAt → stored")
    assert text.endswith(f"total {10.0 * len(STAGES):.1f} / {19.0 * len(STAGES):.1f} / {20.0 * len(STAGES):.1f}")


def test_run_events_read_a_real_runs_log_into_its_moments(tmp_path):
    import dagster as dg

    @dg.asset
    def tiny():
        return 1

    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        result = dg.materialize([tiny], instance=instance)
    run_id = result.run_id
    events = run_events(tmp_path, [run_id])[run_id]
    assert [at for _, _, at in events] == sorted(at for _, _, at in events)
    run = PushRun.from_events(run_id, "m", events[0][2], events)
    assert run.started is not None and run.step is not None and run.started <= run.step
    assert run.enqueued is None and run.starting is None and run.process is None  # in process: no queue, no launch
    launched = PushRun.from_events(run_id, "m", 0.0, [
        ("RUN_ENQUEUED", "", 0.5), ("RUN_STARTING", "", 1.0), ("ENGINE_EVENT", "Launching", 1.5),
        ("ENGINE_EVENT", "Started process for run (pid: 7).", 2.0), *events])
    assert (launched.enqueued, launched.starting, launched.process, launched.started) == (0.5, 1.0, 2.0, run.started)
