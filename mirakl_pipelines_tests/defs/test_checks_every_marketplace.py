"""A check tells the truth for every marketplace at once: a problem on one marketplace stays visible after
another marketplace's run evaluates the same check (Dagster keeps one latest result per check)."""

import logging
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from mirakl_pipelines import demo_summary

from mirakl_pipelines.config import PROJECT_ROOT
from mirakl_pipelines.defs.fulfilments.checks import ledger_late, shipment_checks
from mirakl_pipelines.defs.fulfilments.push import ShipmentPush
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
from mirakl_pipelines.sync.carriers import CarrierMap
from mirakl_pipelines.sandbox.shopify.rest_payloads import fulfillment_payload
from mirakl_pipelines.sync.shipments import fulfilment_from_webhook
from mirakl_pipelines_tests.defs.conftest import RATE_LIMIT_SCALE
from mirakl_pipelines_tests.defs.test_orders_flow import Pipeline, _line, _order

DECATHLON, LEROY = "decathlon_fr", "leroymerlin_fr"


def _latest_check(instance: dg.DagsterInstance, name: str):
    key = dg.AssetCheckKey(dg.AssetKey("shopify_orders" if name in _ORDER_CHECKS else "mirakl_shipments"), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    return record.event.dagster_event.event_specific_data  # AssetCheckEvaluation


_ORDER_CHECKS = {"eligible_orders_imported", "acceptance_window", "open_import_exceptions", "imported_orders_in_step"}


def test_an_order_waiting_for_an_operator_on_one_marketplace_stays_red_after_the_other_marketplace_runs(
        settings, config_path, sandbox):
    # Decathlon leaves an order it cannot serve to an operator (acceptance_needed): a person must act.
    sandbox.sims[DECATHLON].add_order(_order("OP-1-A", [_line("LEGACY-SKU-9")]))
    with dg.instance_for_test() as instance:
        pipeline = Pipeline(settings, config_path, instance)
        first = pipeline.run(marketplace=DECATHLON)
        checks = {e.check_name: e for e in first.get_asset_check_evaluations()}
        assert not checks["open_import_exceptions"].passed
        assert "acceptance_needed" in checks["open_import_exceptions"].metadata["orders"].value

        pipeline.run(marketplace=LEROY)  # nothing wrong on Leroy Merlin
        latest = _latest_check(instance, "open_import_exceptions")
        assert not latest.passed, "Leroy Merlin's run must not hide Decathlon's open exception"
        assert f"{DECATHLON} OP-1-A [acceptance_needed]" in latest.metadata["orders"].value
        assert latest.metadata["by_marketplace"].value == {DECATHLON: 1, LEROY: 0}
        # The demo's closing summary reads the same single answer.
        summary = demo_summary._checks(settings, Path(instance.root_directory))
        assert f"shopify_orders:open_import_exceptions: failed (WARN): {DECATHLON} 1, {LEROY} 0" in summary


def _push(settings, sandbox, ledger, code: str, carriers: CarrierMap) -> ShipmentPush:
    marketplace = settings.marketplace(code)
    client = MiraklClient(marketplace.base_url, sandbox.secrets[code], rate_limit_scale=RATE_LIMIT_SCALE, marketplace=code)
    return ShipmentPush(marketplace, client, ledger, carriers, client.list_carriers(),
                        settings.resolve_path(settings.warehouse_path), logging.getLogger("push"))


def test_a_late_fulfilment_and_a_carrier_exception_on_one_marketplace_stay_listed_in_the_others_checks(
        settings, config_path, sandbox):
    sim, store = sandbox.sims[DECATHLON], sandbox.store
    sim.add_order(_order("L-1-A", [_line("ALP-MERINO-M", 1)], state="SHIPPING"))
    sim.add_order(_order("L-2-A", [_line("ALP-MERINO-S", 1)], state="SHIPPING"))
    with dg.instance_for_test() as instance:
        Pipeline(settings, config_path, instance).run(marketplace=DECATHLON)
    Warehouse(store, seed=3, delay_seconds=0, partial_share=0, unknown_carrier_share=1).step()
    fulfilments = list(store.fulfillments.values())
    assert len(fulfilments) == 2
    carriers = CarrierMap.load(PROJECT_ROOT / "data" / "carriers.yaml")
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        decathlon = _push(settings, sandbox, ledger, DECATHLON, carriers)
        for fulfilment in fulfilments:
            payload = fulfillment_payload(store, fulfilment)
            link = ledger.order_link_by_shopify_id(str(payload["order_id"]))
            decathlon.record(link.mirakl_order_id, fulfilment_from_webhook(payload))
        assert decathlon.push().carrier_exceptions == 2  # unknown carriers: nothing ships, an operator must map them
        assert len(ledger_late(ledger, settings.marketplace(DECATHLON), later)) == 2

        # Leroy Merlin's run evaluates the same checks: Decathlon's problems stay listed and red.
        leroy = _push(settings, sandbox, ledger, LEROY, carriers)
        leroy.push()
        checks = {c.check_name: c for c in shipment_checks(leroy, settings.marketplaces, later)}
        # A delivery the receiver could only keep verbatim waits for a person too, whatever the marketplace.
        ledger.quarantine_webhook(webhook_id="wh-poison-1", topic="fulfillments/create", shop_domain="sandbox",
                                  api_version="2026-07", event_id=None, triggered_at=None, raw_body=b'{"a": "\\ud800"}',
                                  reason="a lone surrogate", now=datetime.now(timezone.utc))
        quarantined = {c.check_name: c for c in shipment_checks(leroy, settings.marketplaces, later)}[
            "open_shipping_exceptions"]
    late = checks["unacknowledged_fulfilments"]
    assert not late.passed and late.metadata["by_marketplace"].value == {DECATHLON: 2, LEROY: 0}
    assert f"{DECATHLON} L-1-A: Mirakl SHIPPING" in late.metadata["orders"].value
    assert late.metadata["verified_marketplace"].value == LEROY
    assert not checks["open_carrier_exceptions"].passed
    assert checks["open_carrier_exceptions"].metadata["by_marketplace"].value[DECATHLON] == 2
    assert checks["open_shipping_exceptions"].passed
    assert not quarantined.passed and quarantined.metadata["by_marketplace"].value["shopify"] == 1
    assert "shopify wh-poison-1 [webhook_quarantined]" in quarantined.metadata["orders"].value
