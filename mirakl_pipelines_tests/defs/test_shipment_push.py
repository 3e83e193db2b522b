"""The shipment push over the real path: the sandbox warehouse fulfils an imported order, the store sends a signed
webhook, the receiver stores it in the inbox, the push sends OR23 + OR24 and Mirakl shows the order SHIPPED."""

import logging
from contextlib import closing
from datetime import datetime, timedelta, timezone

import dagster as dg

from mirakl_pipelines.config import PROJECT_ROOT
from mirakl_pipelines.defs.fulfilments.checks import shipment_checks
from mirakl_pipelines.defs.fulfilments.push import ShipmentPush
from mirakl_pipelines.defs.resources import LedgerResource, SettingsResource
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines.sandbox.shopify.rest_payloads import fulfillment_payload
from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
from mirakl_pipelines.sync.carriers import CarrierMap
from mirakl_pipelines.sync.shipments import fulfilment_from_webhook
from mirakl_pipelines.webhooks.app import create_webhook_app
from mirakl_pipelines_tests.defs.conftest import RATE_LIMIT_SCALE
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline, _line, _meta, _order

SECRET = "whsec-test"


def _push(settings, sandbox, ledger, sh21=None) -> ShipmentPush:
    marketplace = settings.marketplace(MKP)
    client = MiraklClient(marketplace.base_url, sandbox.secrets[MKP], rate_limit_scale=RATE_LIMIT_SCALE, marketplace=MKP)
    # SH21 may be called once a day: a second push reuses the list (the flow caches it daily).
    return ShipmentPush(marketplace, client, ledger, CarrierMap.load(PROJECT_ROOT / "data" / "carriers.yaml"),
                        client.list_carriers() if sh21 is None else sh21, settings.resolve_path(settings.warehouse_path),
                        logging.getLogger("push"))


def test_fulfilment_webhook_ships_the_mirakl_order_once(settings, config_path, sandbox):
    sim, store = sandbox.sims[MKP], sandbox.store
    sim.add_order(_order("S-1-A", [_line("ALP-MERINO-S", 2)], state="SHIPPING"))
    with dg.instance_for_test() as instance:
        assert _meta(Pipeline(settings, config_path, instance).run(), "shopify_orders")["imported"] == 1

    receiver = serve_in_thread(create_webhook_app(settings.ledger_default_url, [SECRET]), name="webhooks")
    try:
        store.subscribe(f"{receiver.url}/webhooks/shopify", SECRET, ["fulfillments/create", "fulfillments/update"])
        warehouse = Warehouse(store, seed=5, delay_seconds=0, partial_share=0, unknown_carrier_share=0)
        [parcel] = warehouse.step()
        assert store.webhooks.wait_idle(10)
    finally:
        receiver.stop()

    with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        push = _push(settings, sandbox, ledger)
        push.take_inbox()
        report = push.push()
        assert report.shipped == 1 and report.tracking_sent == 1, report
        [recorded] = ledger.get_pushes(MKP, "S-1-A")
        assert recorded.or23.state == "done" and recorded.or24.state == "done"
        # The demo marketplace wants the invoice: OR74 with the PDF the sandbox store serves for the order.
        assert recorded.or74.state == "done" and report.invoices_uploaded == 1
        [document] = sim.documents("S-1-A")
        meta, content = sim.document_content("S-1-A", document["id"])
        assert (meta["file_name"], meta["type"]) == ("invoice-S-1-A.pdf", "CUSTOMER_INVOICE")
        assert content.startswith(b"%PDF-")
        # A second push (a duplicate delivery, the sweep, a re-run) sends nothing.
        calls = dict(sim.calls)
        again = _push(settings, sandbox, ledger, push.sh21)
        again.take_inbox()
        again.push()
        assert dict(sim.calls).get("OR24") == calls.get("OR24") and dict(sim.calls).get("OR23") == calls.get("OR23")
        assert dict(sim.calls).get("OR74") == calls.get("OR74") == 1

    shipped = sim.get_order("S-1-A")
    assert shipped["order_state"] == "SHIPPED"
    assert shipped["shipping_tracking"] == parcel.number


def test_unknown_carrier_waits_in_the_exception_queue_until_mapped(settings, config_path, sandbox):
    sim, store = sandbox.sims[MKP], sandbox.store
    sim.add_order(_order("U-1-A", [_line("LUM-HEAD-400", 1, "39.95")], state="SHIPPING"))
    with dg.instance_for_test() as instance:
        Pipeline(settings, config_path, instance).run()
    warehouse = Warehouse(store, seed=1, delay_seconds=0, partial_share=0, unknown_carrier_share=1)
    [parcel] = warehouse.step()
    [fulfilment] = [f for f in store.fulfillments.values()]

    with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        push = _push(settings, sandbox, ledger)
        push.record("U-1-A", _fulfilment_of(store, fulfilment))
        assert push.push().carrier_exceptions == 1
        [exception] = ledger.open_exceptions(MKP, kinds=["unknown_carrier"])
        assert parcel.company in exception.reason and "data/carriers.yaml" in exception.reason
        assert sim.get_order("U-1-A")["order_state"] == "SHIPPING" and "OR24" not in sim.calls

        # The operator adds the mapping the reason names; the next push ships it.
        mapped = CarrierMap.from_data({MKP: {parcel.company: push.sh21[0].code}})
        after = ShipmentPush(push.marketplace, push.mirakl, ledger, mapped, push.sh21, push.warehouse_path, push.log)
        assert after.push().shipped == 1
        assert ledger.open_exceptions(MKP, kinds=["unknown_carrier"]) == []
    assert sim.get_order("U-1-A")["order_state"] == "SHIPPED"


def _fulfilment_of(store, fulfilment: dict):
    """The store's fulfilment as the webhook would carry it (REST payload)."""
    return fulfilment_from_webhook(fulfillment_payload(store, fulfilment))


def test_inbox_sensor_requests_a_run_that_ships_and_the_check_turns_red_on_rejection(settings, config_path, sandbox):
    sim, store = sandbox.sims[MKP], sandbox.store
    sim.add_order(_order("D-1-A", [_line("ALP-MERINO-M", 1)], state="SHIPPING"))
    sim.add_order(_order("D-2-A", [_line("ALP-MERINO-M", 1)], state="SHIPPING"))
    with dg.instance_for_test() as instance:
        pipeline = Pipeline(settings, config_path, instance)
        pipeline.run()
        receiver = serve_in_thread(create_webhook_app(settings.ledger_default_url, [SECRET]), name="webhooks")
        try:
            store.subscribe(f"{receiver.url}/webhooks/shopify", SECRET, ["fulfillments/create"])
            Warehouse(store, seed=2, delay_seconds=0, partial_share=0, unknown_carrier_share=0).step()
            assert store.webhooks.wait_idle(10)
        finally:
            receiver.stop()

        sensor = pipeline.defs.resolve_sensor_def("fulfilment_inbox")
        context = dg.build_sensor_context(instance=instance, cursor="0", definitions=pipeline.defs,
                                          resources={"ledger": LedgerResource(url=settings.ledger_default_url),
                                                     "settings": SettingsResource(config_path=str(config_path))})
        result = sensor.evaluate_tick(context)
        [request] = result.run_requests
        assert request.partition_key.endswith(f"|{MKP}") and int(result.cursor) > 0

        sim.settings.reject_shipments = True  # the marketplace refuses OR24: the check must list the orders
        job = pipeline.defs.resolve_job_def("shipments_sync")
        run = job.execute_in_process(partition_key=request.partition_key, instance=instance)
        checks = {e.check_name: e for e in run.get_asset_check_evaluations()}
        meta = {k: v.value for k, v in run.asset_materializations_for_node("mirakl_shipments")[0].metadata.items()}
        assert meta["failed"] == 2
        # Past the threshold the check reads both orders back (one OR11 call) and lists them, still SHIPPING.
        later = datetime.now(timezone.utc) + timedelta(hours=2)
        or11 = sim.calls["OR11"]
        with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
            red = {c.check_name: c for c in shipment_checks(_push(settings, sandbox, ledger, sh21=[]), settings.marketplaces, later)}
        late = red["unacknowledged_fulfilments"]
        assert not late.passed and late.metadata["late"].value == 2 and late.metadata["orders_read_back"].value == 2
        assert "D-1-A: Mirakl SHIPPING" in late.metadata["orders"].value and "D-2-A" in late.metadata["orders"].value
        assert sim.calls["OR11"] == or11 + 1
        # Once the orders refresh has read Mirakl after the attempts, the check trusts what it saw: no OR11 of its own.
        pipeline.run()
        or11 = sim.calls["OR11"]
        with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
            late = {c.check_name: c for c in shipment_checks(_push(settings, sandbox, ledger, sh21=[]), settings.marketplaces, later)}[
                "unacknowledged_fulfilments"]
        assert not late.passed and late.metadata["orders_verified_by_refresh"].value == 2
        assert late.metadata["orders_read_back"].value == 0 and sim.calls["OR11"] == or11

        sim.settings.reject_shipments = False
        run = job.execute_in_process(partition_key=request.partition_key, instance=instance)
        meta = {k: v.value for k, v in run.asset_materializations_for_node("mirakl_shipments")[0].metadata.items()}
        assert meta["shipped"] == 2
        assert all(e.passed for e in run.get_asset_check_evaluations())
    assert {sim.get_order(o)["order_state"] for o in ("D-1-A", "D-2-A")} == {"SHIPPED"}
    assert checks["open_carrier_exceptions"].passed


def test_every_order_of_a_run_ships_before_any_invoice_is_uploaded(settings, config_path, sandbox):
    # An invoice (fetch + OR74) takes longer than OR23 + OR24: a run's later orders must not wait behind it.
    sim, store = sandbox.sims[MKP], sandbox.store
    orders = ["I-1-A", "I-2-A", "I-3-A"]
    for order_id in orders:
        sim.add_order(_order(order_id, [_line("ALP-MERINO-S", 1)], state="SHIPPING"))
    with dg.instance_for_test() as instance:
        assert _meta(Pipeline(settings, config_path, instance).run(), "shopify_orders")["imported"] == 3
    warehouse = Warehouse(store, seed=5, delay_seconds=0, partial_share=0, unknown_carrier_share=0)
    assert len(warehouse.step()) == 3

    with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        push = _push(settings, sandbox, ledger)
        for fulfilment in store.fulfillments.values():
            order_id = store.order_record(fulfilment["orderId"])["sourceIdentifier"].split(":", 1)[1]
            push.record(order_id, _fulfilment_of(store, fulfilment))
        report = push.push()
        assert (report.shipped, report.invoices_uploaded) == (3, 3), report
        pushes = [p for order_id in orders for p in ledger.get_pushes(MKP, order_id)]
        assert max(p.or24.at for p in pushes) <= min(p.or74.at for p in pushes)
    assert all(sim.get_order(order_id)["order_state"] == "SHIPPED" for order_id in orders)
