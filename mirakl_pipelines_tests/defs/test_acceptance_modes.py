"""Acceptance per marketplace, end to end: after_import, manual, refusing what cannot be served, and a
refused decision that lands in the exception queue and raises an alert on the configured webhook."""

import json
from contextlib import closing

import dagster as dg
import pytest
import yaml
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from mirakl_pipelines.config import load_settings
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline, _line, _meta, _order, _wait_until_shipping

LEROY = "leroymerlin_fr"  # configured by the sandbox to refuse lines it cannot serve


@pytest.fixture
def configure(sandbox, config_path, tmp_path):
    """Rewrite the pipeline configuration of one marketplace; returns a Pipeline on a test instance."""
    instances = []

    def _configure(code: str, settings: dict | None = None, **changes) -> Pipeline:
        data = yaml.safe_load(config_path.read_text())
        data.update(settings or {})
        entry = next(m for m in data["marketplaces"] if m["code"] == code)
        for key, value in changes.items():
            entry[key] = {**entry.get(key, {}), **value} if isinstance(value, dict) else value
        config_path.write_text(yaml.safe_dump(data))
        instance = dg.instance_for_test()
        instances.append(instance)
        return Pipeline(load_settings(config_path), config_path, instance.__enter__())

    yield _configure
    for instance in instances:
        instance.__exit__(None, None, None)


def test_after_import_creates_the_order_then_accepts_it(configure, sandbox):
    pipeline = configure(MKP, orders={"states": ["WAITING_ACCEPTANCE", "SHIPPING"], "paid_only": False},
                         acceptance={"mode": "after_import"})
    sim = sandbox.sims[MKP]
    sim.add_order(_order("AI-1-A", [_line("ALP-MERINO-S", 1)]))
    result = pipeline.run()
    meta = _meta(result, "shopify_orders")
    assert meta["imported"] == 1 and meta["accepted"] == 1
    [created] = sandbox.store.orders()
    assert created["sourceIdentifier"] == f"{MKP}:AI-1-A"
    assert sim.get_order("AI-1-A")["order_state"] in ("WAITING_DEBIT", "SHIPPING")
    # Paid later: the order is already in Shopify and is not created again.
    _wait_until_shipping(sim, ["AI-1-A"])
    assert _meta(pipeline.run(), "shopify_orders")["imported"] == 0
    assert len(sandbox.store.orders()) == 1


def test_manual_mode_never_accepts_and_queues_the_order(configure, sandbox):
    pipeline = configure(MKP, acceptance={"mode": "manual"})
    sandbox.sims[MKP].add_order(_order("MA-1-A", [_line("ALP-MERINO-S", 1)]))
    meta = _meta(pipeline.run(), "shopify_orders")
    assert meta["accepted"] == 0 and meta["left_for_operator"] == 1
    assert sandbox.sims[MKP].get_order("MA-1-A")["order_state"] == "WAITING_ACCEPTANCE"
    with closing(Ledger.connect(pipeline.settings.ledger_default_url)) as ledger:
        [exception] = ledger.open_exceptions(MKP, kinds=["acceptance_needed"])
    assert exception.record_id == "MA-1-A" and "manual" in exception.reason


def test_unservable_lines_are_refused_and_the_rest_imported(configure, sandbox):
    pipeline = configure(LEROY)
    sim = sandbox.sims[LEROY]
    sim.add_order(_order("PR-1-A", [_line("LUM-HEAD-400", 2, "39.95"), _line("LEGACY-SKU-9", 1, "19.90")]))
    sim.add_order(_order("PR-2-A", [_line("ALP-MERINO-L", 1)]))  # out of stock: refused whole
    meta = _meta(pipeline.run(marketplace=LEROY), "shopify_orders")
    assert meta["accepted"] == 1 and meta["refused"] == 1
    lines = {line["order_line_id"]: line["order_line_state"] for line in sim.get_order("PR-1-A")["order_lines"]}
    assert sorted(lines.values())[0] == "REFUSED" and sorted(lines.values())[1] in ("SHIPPING", "WAITING_DEBIT")
    assert sim.get_order("PR-2-A")["order_state"] == "REFUSED"

    _wait_until_shipping(sim, ["PR-1-A"])
    assert _meta(pipeline.run(marketplace=LEROY), "shopify_orders")["imported"] == 1
    [created] = sandbox.store.orders()
    assert [item["sku"] for item in created["lineItems"]] == ["LUM-HEAD-400"]


def test_refused_decision_goes_to_the_exception_queue_and_alerts(configure, sandbox, monkeypatch):
    received = []

    async def hook(request):
        received.append(json.loads(await request.body()))
        return JSONResponse({"ok": True})

    receiver = serve_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])]), name="alert-hook")
    monkeypatch.setenv("TEST_ALERT_WEBHOOK", f"{receiver.url}/hook")
    try:
        pipeline = configure(LEROY, settings={"alerts": {"webhook_url_env": "TEST_ALERT_WEBHOOK"}})
        sim = sandbox.sims[LEROY]
        sim.settings.partial_acceptance = False  # this marketplace forbids mixed decisions
        sim.add_order(_order("PF-1-A", [_line("LUM-HEAD-400", 1, "39.95"), _line("LEGACY-SKU-9", 1, "19.90")]))
        meta = _meta(pipeline.run(marketplace=LEROY), "shopify_orders")
    finally:
        receiver.stop()
    assert meta["acceptance_failed"] == 1
    with closing(Ledger.connect(pipeline.settings.ledger_default_url)) as ledger:
        [exception] = ledger.open_exceptions(LEROY, kinds=["acceptance_failed"])
    assert "ORDER_PARTIAL_ACCEPTANCE_DISABLED" in exception.reason
    assert len(received) == 1 and "PF-1-A" in received[0]["text"]
