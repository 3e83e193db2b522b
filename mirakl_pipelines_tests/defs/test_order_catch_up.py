"""A refresh that finds its OR11 slot taken (or whose run failed) is owed, and the catch-up sensor runs it as soon
as the slot opens: real Dagster runs and sensor evaluations, the real ledger, the sandbox over loopback."""

import time
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from mirakl_pipelines.defs.orders.assets import FULL_DAY_TAG
from mirakl_pipelines.defs.orders.catch_up import CATCH_UP_TAG, STALE_AFTER, due_catch_ups
from mirakl_pipelines.ledger.budget import RefreshDebt
from mirakl_pipelines.mirakl.budget import OwnedBudget, min_interval
from mirakl_pipelines.mirakl.client import BUDGET_MARGIN_SECONDS
from mirakl_pipelines_tests.defs.conftest import RATE_LIMIT_SCALE
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline, _meta

OR11_INTERVAL = min_interval("OR11", scale=RATE_LIMIT_SCALE) + BUDGET_MARGIN_SECONDS * RATE_LIMIT_SCALE


@pytest.fixture
def pipeline(settings, config_path):
    with dg.instance_for_test() as instance:
        yield Pipeline(settings, config_path, instance)


def _take_the_slot(pipeline, seconds: float) -> float:
    """Another caller (a backfill, another process) books OR11 slots for `seconds` ahead; when the next one opens."""
    with pipeline.ledger() as lg:
        while lg.reserve(f"{MKP}:OR11", OR11_INTERVAL) < seconds:
            pass
        return lg.next_slot(f"{MKP}:OR11", OR11_INTERVAL)


def _evaluate(pipeline, name: str, cursor=None):
    sensor = pipeline.defs.get_sensor_def(name)
    with dg.build_sensor_context(instance=pipeline.instance, cursor=cursor, resources=dict(pipeline.defs.resources),
                                 definitions=pipeline.defs) as context:
        return sensor.evaluate_tick(context)


def test_a_skipped_refresh_is_caught_up_once_as_soon_as_its_slot_opens(pipeline):
    opens = _take_the_slot(pipeline, 4.0)  # far enough for the run to start before it opens
    skipped = pipeline.run()
    assert _meta(skipped, "mirakl_orders")["skipped"].startswith("OR11: ") and "nothing was sent" in _meta(skipped, "mirakl_orders")["skipped"]
    with pipeline.ledger() as lg:
        (debt,) = lg.refresh_debts("orders")
    assert debt.marketplace == MKP and not debt.settled and debt.reason == "OR11 slot taken"
    assert debt.slot_opens_at.timestamp() == pytest.approx(opens, abs=0.05)

    early = _evaluate(pipeline, "orders_catch_up")
    assert early.run_requests == [] and "no refresh owed" in early.skip_message  # none before the slot opens

    time.sleep(max(0.0, opens - time.time()) + 0.05)
    due = _evaluate(pipeline, "orders_catch_up")
    (request,) = due.run_requests
    assert request.partition_key == f"{datetime.now(timezone.utc).date()}|{MKP}"
    assert request.tags[CATCH_UP_TAG] == "true" and request.tags["marketplace"] == MKP
    again = _evaluate(pipeline, "orders_catch_up", cursor=due.cursor)
    assert again.run_requests == []  # none twice

    caught_up = pipeline.run(tags=request.tags)
    assert "skipped" not in _meta(caught_up, "mirakl_orders")
    with pipeline.ledger() as lg:
        assert lg.refresh_debts("orders")[0].settled
    assert _evaluate(pipeline, "orders_catch_up").run_requests == []  # settled: nothing even with a fresh cursor


def test_a_catch_up_that_skips_again_re_owes_one_slot_later(pipeline):
    opens = _take_the_slot(pipeline, 4.0)
    pipeline.run()
    time.sleep(max(0.0, opens - time.time()) + 0.02)
    first = _evaluate(pipeline, "orders_catch_up")
    (request,) = first.run_requests
    _take_the_slot(pipeline, 4.0)  # someone else got the slot before the catch-up run started
    pipeline.run(tags=request.tags)
    with pipeline.ledger() as lg:
        (debt,) = lg.refresh_debts("orders")
    assert debt.times == 2 and not debt.settled  # still one debt, moved to the new slot
    assert _evaluate(pipeline, "orders_catch_up", cursor=first.cursor).run_requests == []  # the new slot is not open
    time.sleep(max(0.0, debt.slot_opens_at.timestamp() - time.time()) + 0.02)
    (second,) = _evaluate(pipeline, "orders_catch_up", cursor=first.cursor).run_requests
    assert second.run_key != request.run_key


def _fail_a_run_like(pipeline, tags: dict):
    """A run of the order job that died (a killed worker, marked failed by run monitoring): its failure event."""
    run = pipeline.instance.create_run_for_job(pipeline.job, tags=tags, status=dg.DagsterRunStatus.STARTED)
    event = pipeline.instance.report_run_failed(run)
    return pipeline.instance.get_run_by_id(run.run_id), event


def _on_failure(pipeline, run, event):
    sensor = pipeline.defs.get_sensor_def("orders_refresh_failures")
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=event, dagster_instance=pipeline.instance, dagster_run=run,
        resources=dict(pipeline.defs.resources),  # the project's resources, as the daemon gives them
    ).for_run_failure()
    sensor(context)


def test_a_failed_live_refresh_run_owes_a_refresh_but_a_failed_catch_up_or_close_out_does_not(pipeline):
    tags = {k: v for k, v in pipeline.run().dagster_run.tags.items() if k.startswith("dagster/partition")}
    assert tags["dagster/partition/marketplace"] == MKP
    for kind in ({FULL_DAY_TAG: "true"}, {CATCH_UP_TAG: "true"}):
        run, event = _fail_a_run_like(pipeline, {**tags, **kind})
        with pipeline.ledger() as lg:
            waited_for = OwnedBudget(lg, run.run_id).reserve(f"{MKP}:OR11", 10.0)  # died waiting for a slot 10 s on
        _on_failure(pipeline, run, event)
        with pipeline.ledger() as lg:
            assert lg.refresh_debts("orders") == []
            assert lg.next_slot(f"{MKP}:OR11", OR11_INTERVAL) - time.time() < waited_for / 2  # given back all the same
    opens = _take_the_slot(pipeline, 4.0)  # the dead run (or another caller) booked OR11 ahead
    run, event = _fail_a_run_like(pipeline, tags)
    _on_failure(pipeline, run, event)
    with pipeline.ledger() as lg:
        (debt,) = lg.refresh_debts("orders")
    assert debt.reason == f"run {run.run_id} failed" and not debt.settled
    # Owed at once: the import of what the dead run fetched needs no OR11 slot.
    (request,) = _evaluate(pipeline, "orders_catch_up").run_requests
    assert request.tags["marketplace"] == MKP and time.time() < opens
    caught_up = pipeline.run(tags=request.tags)
    assert _meta(caught_up, "mirakl_orders")["skipped"] and "imported" in _meta(caught_up, "shopify_orders")
    with pipeline.ledger() as lg:
        (debt,) = lg.refresh_debts("orders")
    assert debt.reason == "OR11 slot taken" and debt.slot_opens_at.timestamp() == pytest.approx(opens, abs=0.05)


def _debt(code="decathlon_fr", owed_ago=5.0, opens_in=-1.0, settled=False, now=None) -> RefreshDebt:
    now = now or datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    owed = now - timedelta(seconds=owed_ago)
    return RefreshDebt("orders", code, now.date(), owed, owed, now + timedelta(seconds=opens_in), "x", 1, settled)


def test_due_catch_ups_rules():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    ok = _debt(now=now)
    assert [c.debt for c in due_catch_ups([ok], now, {}, ["decathlon_fr"])] == [ok]
    assert due_catch_ups([_debt(opens_in=1, now=now)], now, {}, ["decathlon_fr"]) == []  # slot not open
    # Requested a launch's lead before the slot opens, so the run's OR11 lands on the slot, not seconds after it.
    lead = timedelta(seconds=10)
    assert len(due_catch_ups([_debt(opens_in=9.5, now=now)], now, {}, ["decathlon_fr"], lead)) == 1
    assert due_catch_ups([_debt(opens_in=10.5, now=now)], now, {}, ["decathlon_fr"], lead) == []
    assert due_catch_ups([_debt(settled=True, now=now)], now, {}, ["decathlon_fr"]) == []
    stale = _debt(owed_ago=STALE_AFTER.total_seconds() + 1, now=now)
    assert due_catch_ups([stale], now, {}, ["decathlon_fr"]) == []  # the schedule has taken over
    assert due_catch_ups([_debt("gone_fr", now=now)], now, {}, ["decathlon_fr"]) == []  # no longer configured
    (catch_up,) = due_catch_ups([ok], now, {}, ["decathlon_fr"])
    assert due_catch_ups([ok], now, {"decathlon_fr": catch_up.run_key}, ["decathlon_fr"]) == []  # requested already
    assert catch_up.day == now.date()


def test_the_mirakl_resource_books_background_callers_behind_live_ones(settings, sandbox):
    from mirakl_pipelines.defs.resources import MiraklResource
    from mirakl_pipelines.mirakl.budget import BACKGROUND, BackgroundBudget, InMemoryBudget

    resource = MiraklResource(api_keys={MKP: "key"}, rate_limit_scale=RATE_LIMIT_SCALE)
    shared = InMemoryBudget()
    with resource.client(settings, MKP, budget=shared, priority=BACKGROUND) as client:
        assert isinstance(client.budget, BackgroundBudget)
    with resource.client(settings, MKP, budget=shared) as client:
        assert client.budget is shared
    with pytest.raises(ValueError, match="priority 'urgent'"):
        with resource.client(settings, MKP, budget=shared, priority="urgent"):
            pass


def test_the_project_definitions_register_both_order_sensors():
    from mirakl_pipelines import definitions

    sensors = {s.name: s for s in definitions.defs.sensors}
    assert sensors["orders_catch_up"].minimum_interval_seconds <= 5  # a slot that opened is used within seconds
    assert "orders_refresh_failures" in sensors


def test_a_run_killed_while_it_waited_for_its_slot_gives_the_slot_back_and_the_catch_up_fetches_at_once(pipeline):
    tags = {k: v for k, v in pipeline.run().dagster_run.tags.items() if k.startswith("dagster/partition")}
    run, event = _fail_a_run_like(pipeline, tags)
    with pipeline.ledger() as lg:
        # The run booked a slot well ahead (a 10 s interval, far beyond a refresh's patience, so that without the
        # slot given back the catch-up would skip), and was killed while it waited for it.
        assert OwnedBudget(lg, run.run_id).reserve(f"{MKP}:OR11", 10.0) > 5
    _on_failure(pipeline, run, event)
    (request,) = _evaluate(pipeline, "orders_catch_up").run_requests
    caught_up = pipeline.run(tags=request.tags)
    assert "skipped" not in _meta(caught_up, "mirakl_orders")  # the slot the dead run never used was its
    with pipeline.ledger() as lg:
        assert lg.refresh_debts("orders")[0].settled
