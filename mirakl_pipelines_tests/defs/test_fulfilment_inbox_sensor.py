"""The `fulfilment_inbox` sensor (issue 9 §6): a tick on every loop of Dagster's sensor daemon, one push run per
marketplace, and deliveries held for a push run that is queued or starting instead of a run each.

Real Dagster instance and sensor evaluations, a real SQLite ledger; no sandbox needed (the sensor reads the ledger).
"""

import uuid
from datetime import datetime, timezone

import dagster as dg
import pytest

from mirakl_pipelines.config import load_settings
from mirakl_pipelines.definitions import build_definitions
from mirakl_pipelines.defs.fulfilments.assets import JOB_NAME, SHIPPING_TAG
from mirakl_pipelines.defs.resources import LedgerResource, SettingsResource
from mirakl_pipelines.ledger import Ledger

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
DEC, LM = "decathlon_fr", "leroymerlin_fr"


@pytest.fixture
def ledger_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.fixture
def defs() -> dg.Definitions:
    return build_definitions(load_settings())


def _link(ledger: Ledger, marketplace: str, order_id: str, shopify_id: int) -> None:
    ledger.observe_order(marketplace, order_id, commercial_id=None, mirakl_state="SHIPPING", created_at=T0,
                         updated_at=T0, acceptance_deadline=None, eligible=True, skip_reason=None, now=T0)
    ledger.record_import(marketplace, order_id, shopify_order_id=f"gid://shopify/Order/{shopify_id}",
                         shopify_order_name=None, shopify_legacy_id=str(shopify_id), now=T0)


def _deliver(ledger: Ledger, shopify_order_id: int) -> int:
    """A fulfillments/create delivery for the order; its inbox id."""
    fulfilment_id = uuid.uuid4().int % 10**9
    ledger.store_webhook(webhook_id=str(uuid.uuid4()), topic="fulfillments/create", shop_domain="shop.example",
                         api_version="2026-07", event_id=None, triggered_at=T0,
                         payload={"id": fulfilment_id, "order_id": shopify_order_id}, now=T0)
    return ledger.latest_inbox_id()


def _tick(defs, instance, ledger_url, cursor, config_path: str | None = None) -> dg.SensorResult:
    sensor = defs.resolve_sensor_def("fulfilment_inbox")
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                 resources={"ledger": LedgerResource(url=ledger_url),
                                            "settings": SettingsResource(config_path=config_path)}) as context:
        return sensor.evaluate_tick(context)


def _push_run(instance, marketplace: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name=JOB_NAME, run_id=str(uuid.uuid4()), status=status, tags={SHIPPING_TAG: marketplace})
    return instance.add_run(run)


def _requested(result: dg.SensorResult) -> dict[str, str]:
    return {r.tags[SHIPPING_TAG]: r.run_key for r in result.run_requests}


def test_the_sensor_ticks_on_every_loop_of_the_sensor_daemon(defs):
    from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME

    # An interval equal to the loop's skips every other loop (tick start jitter): the sensor would tick every 10 s.
    # (Inside an instance: Dagster ties its process-wide load context to an instance, maybe an earlier test's, closed.)
    with dg.instance_for_test():
        assert defs.resolve_sensor_def("fulfilment_inbox").minimum_interval_seconds < MIN_INTERVAL_LOOP_TIME


def test_one_run_per_marketplace_concerned_and_foreign_deliveries_ignored(defs, ledger_url):
    with Ledger.connect(ledger_url) as ledger:
        _link(ledger, DEC, "D-1", 11)
        _link(ledger, LM, "L-1", 21)
        _deliver(ledger, 11)
        _deliver(ledger, 99)  # an order this project did not import
        last = _deliver(ledger, 21)
    with dg.instance_for_test() as instance:
        result = _tick(defs, instance, ledger_url, "0")
    assert _requested(result) == {DEC: f"shipments|{DEC}|{last}", LM: f"shipments|{LM}|{last}"}
    assert result.cursor == str(last)


def test_deliveries_ride_along_with_a_push_run_not_started_yet(defs, ledger_url):
    with Ledger.connect(ledger_url) as ledger, dg.instance_for_test() as instance:
        _link(ledger, DEC, "D-1", 11)
        _link(ledger, LM, "L-1", 21)
        first = _deliver(ledger, 11)
        queued = _push_run(instance, DEC, dg.DagsterRunStatus.STARTING)
        _push_run(instance, LM, dg.DagsterRunStatus.STARTED)  # started: it may have taken the inbox already
        last = _deliver(ledger, 21)

        result = _tick(defs, instance, ledger_url, "0")
        assert _requested(result) == {LM: f"shipments|{LM}|{last}"}  # decathlon's starting run will take D-1's
        assert result.cursor == str(first - 1)  # held: looked at again next tick

        # The run starts and takes the inbox: nothing left for decathlon, the cursor moves on.
        instance.handle_run_event(queued.run_id, dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name=JOB_NAME))
        ledger.mark_processed([first, last], outcome="queued", now=T0)
        result = _tick(defs, instance, ledger_url, result.cursor)
        assert _requested(result) == {} and result.cursor == str(last)


def test_a_held_delivery_gets_its_own_run_when_the_run_it_waited_for_dies_before_its_step(defs, ledger_url):
    with Ledger.connect(ledger_url) as ledger, dg.instance_for_test() as instance:
        _link(ledger, DEC, "D-1", 11)
        first = _deliver(ledger, 11)
        queued = _push_run(instance, DEC, dg.DagsterRunStatus.NOT_STARTED)  # QUEUED needs a code location to build
        result = _tick(defs, instance, ledger_url, "0")
        assert _requested(result) == {} and result.cursor == str(first - 1)

        instance.report_run_canceled(queued)  # cancelled in the queue: the delivery was never taken
        result = _tick(defs, instance, ledger_url, result.cursor)
        assert _requested(result) == {DEC: f"shipments|{DEC}|{first}"} and result.cursor == str(first)


def test_every_page_of_the_inbox_is_read_behind_a_held_delivery(ledger_url):
    from mirakl_pipelines.defs.fulfilments.assets import _inbox_from

    with Ledger.connect(ledger_url) as ledger:
        ids = [_deliver(ledger, n) for n in range(7)]
        assert [e.id for e in _inbox_from(ledger, 0, page=3)] == ids  # pages of 3, 3 and 1
        assert [e.id for e in _inbox_from(ledger, ids[0], page=2)] == ids[1:]  # 2, 2, 2 and an empty one
        assert _inbox_from(ledger, ids[-1], page=2) == []


def _launching_config(tmp_path) -> str:
    """The default configuration with the receiver launching push runs (webhooks.dagster_graphql_url)."""
    import yaml

    from mirakl_pipelines.config import DEFAULT_CONFIG_PATH

    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    data["webhooks"] = {"dagster_graphql_url": "http://127.0.0.1:3000/graphql"}
    path = tmp_path / "marketplaces.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _launched_run(instance, marketplace: str) -> dg.DagsterRun:
    """A run as the receiver's launcher creates it: the sensor's job and tags, no sensor name."""
    from mirakl_pipelines.webhooks.push_runs import push_run_tags

    tags = push_run_tags(datetime.now(timezone.utc).date(), marketplace)
    return instance.add_run(dg.DagsterRun(job_name=JOB_NAME, run_id=str(uuid.uuid4()),
                                          status=dg.DagsterRunStatus.NOT_STARTED, tags=tags))


def test_no_second_run_for_deliveries_a_run_launched_by_the_receiver_takes(defs, ledger_url, tmp_path, monkeypatch):
    from mirakl_pipelines.defs.fulfilments import assets

    config = _launching_config(tmp_path)
    clock = [datetime.now(timezone.utc)]
    monkeypatch.setattr(assets, "_utcnow", lambda: clock[0])
    with Ledger.connect(ledger_url) as ledger, dg.instance_for_test() as instance:
        _link(ledger, DEC, "D-1", 11)
        ledger.store_webhook(webhook_id="wh-1", topic="fulfillments/create", shop_domain="shop.example",
                             api_version="2026-07", event_id=None, triggered_at=None,
                             payload={"id": 1, "order_id": 11}, now=clock[0])
        first = ledger.latest_inbox_id()

        # Fresh: the receiver's launch is under way (its run not created yet): held, not requested.
        result = _tick(defs, instance, ledger_url, "0", config)
        assert _requested(result) == {} and result.cursor == str(first - 1)

        # The launched run is queued, then started (its step not run yet): still held, past the grace too.
        clock[0] += assets.LAUNCH_GRACE
        run = _launched_run(instance, DEC)
        assert _requested(_tick(defs, instance, ledger_url, result.cursor, config)) == {}
        instance.handle_run_event(run.run_id, dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name=JOB_NAME))
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        result = _tick(defs, instance, ledger_url, result.cursor, config)
        assert _requested(result) == {} and result.cursor == str(first - 1)

        # Its step took the delivery: nothing for the sensor, the cursor moves on.
        ledger.mark_processed([first], outcome=f"queued for {DEC}", now=clock[0])
        result = _tick(defs, instance, ledger_url, result.cursor, config)
        assert _requested(result) == {} and result.cursor == str(first)


def test_the_sensor_starts_the_run_a_failed_launch_did_not_once_the_grace_is_over(defs, ledger_url, tmp_path, monkeypatch):
    from mirakl_pipelines.defs.fulfilments import assets

    config = _launching_config(tmp_path)
    clock = [datetime.now(timezone.utc)]
    monkeypatch.setattr(assets, "_utcnow", lambda: clock[0])
    with Ledger.connect(ledger_url) as ledger, dg.instance_for_test() as instance:
        _link(ledger, DEC, "D-1", 11)
        # A push run that started before the delivery was stored may have taken the inbox already: not waited for.
        old = _push_run(instance, DEC, dg.DagsterRunStatus.NOT_STARTED)
        instance.handle_run_event(old.run_id, dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name=JOB_NAME))
        stored_at = datetime.now(timezone.utc)
        ledger.store_webhook(webhook_id="wh-1", topic="fulfillments/create", shop_domain="shop.example",
                             api_version="2026-07", event_id=None, triggered_at=None,
                             payload={"id": 1, "order_id": 11}, now=stored_at)
        first = ledger.latest_inbox_id()
        clock[0] = stored_at
        assert _requested(_tick(defs, instance, ledger_url, "0", config)) == {}  # the receiver's launch is under way
        # It failed (no run came): once the grace is over, the sensor requests the run.
        clock[0] = stored_at + assets.LAUNCH_GRACE
        result = _tick(defs, instance, ledger_url, "0", config)
        assert _requested(result) == {DEC: f"shipments|{DEC}|{first}"} and result.cursor == str(first)
