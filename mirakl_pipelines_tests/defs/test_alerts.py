"""Alerts reach the log and the configured webhook; a failing webhook never fails the caller; the run-failure
sensor uses the same sinks."""

import json
import logging

import dagster as dg
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mirakl_pipelines.config import load_settings
from mirakl_pipelines.defs.alerts import Alerts, build_run_failure_sensor
from mirakl_pipelines.sandbox.server import serve_in_thread


@pytest.fixture
def webhook():
    received = []

    async def ok(request):
        received.append(json.loads(await request.body()))
        return JSONResponse({"ok": True})

    async def broken(request):
        return Response(status_code=500)

    server = serve_in_thread(Starlette(routes=[Route("/ok", ok, methods=["POST"]), Route("/broken", broken, methods=["POST"])]))
    yield server.url, received
    server.stop()


def test_alert_goes_to_log_and_webhook(webhook, caplog):
    url, received = webhook
    with caplog.at_level(logging.ERROR):
        assert Alerts(webhook_url=f"{url}/ok").send("Acceptance failed", "order X-1-A: OR21 refused")
    assert received == [{"text": "*Acceptance failed*\norder X-1-A: OR21 refused"}]
    assert "order X-1-A" in caplog.text


def test_broken_webhook_is_logged_not_raised(webhook, caplog):
    url, _ = webhook
    assert Alerts(webhook_url=f"{url}/broken").send("t", "x") is False
    assert Alerts(webhook_url=None).send("t", "x") is False
    assert url not in caplog.text  # the URL authorises posting: never logged


def test_run_failure_sensor_alerts(webhook, monkeypatch):
    url, received = webhook
    monkeypatch.setenv("MIRAKL_PIPELINES_ALERT_WEBHOOK_URL", f"{url}/ok")
    sensor = build_run_failure_sensor(load_settings())

    @dg.op
    def explode():
        raise RuntimeError("Mirakl said no")

    @dg.job
    def doomed():
        explode()

    with dg.instance_for_test() as instance:
        result = doomed.execute_in_process(instance=instance, raise_on_error=False)
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=result.dagster_run, dagster_event=failure
        ).for_run_failure()
        sensor(context)
    assert len(received) == 1 and "doomed" in received[0]["text"]
