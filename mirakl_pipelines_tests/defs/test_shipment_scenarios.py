"""Issue 3 scenarios over the real path: sandbox webhooks with faults → receiver → ledger inbox → push (or the
shipments_sync job) → the Mirakl sandbox. Each test counts the OR23/OR24 calls Mirakl served."""

import random
import time
from contextlib import closing, contextmanager
from datetime import datetime, timezone

import dagster as dg
import pytest
import yaml

from mirakl_pipelines.config import load_settings
from mirakl_pipelines.defs.partitions import partition_key
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines.sandbox.shopify.fulfillment_create import fulfillment_tracking_info_update
from mirakl_pipelines.sandbox.shopify.tracking import tracking_number
from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
from mirakl_pipelines.webhooks.app import create_webhook_app
from mirakl_pipelines.webhooks.topics import FULFILMENT_TOPICS
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline, _line, _meta, _order
from mirakl_pipelines_tests.defs.test_shipment_push import SECRET, _push

PARTIAL_MKP = "leroymerlin_fr"  # demo config: multiple shipments, unregistered carriers by name and URL


@contextmanager
def _webhook_receiver(settings, store, topics=FULFILMENT_TOPICS):
    """The project's receiver on loopback, subscribed to the sandbox store; stopped on exit."""
    receiver = serve_in_thread(create_webhook_app(settings.ledger_default_url, [SECRET]), name="webhooks")
    try:
        store.subscribe(f"{receiver.url}/webhooks/shopify", SECRET, list(topics))
        yield receiver
    finally:
        receiver.stop()


def _run_shipments(pipeline: Pipeline, marketplace: str, tags=None) -> dict:
    """One shipments_sync run for today's partition of `marketplace`; the mirakl_shipments metadata."""
    job = pipeline.defs.resolve_job_def("shipments_sync")
    result = job.execute_in_process(partition_key=partition_key(datetime.now(timezone.utc).date(), marketplace),
                                    instance=pipeline.instance, tags=tags or {})
    return _meta(result, "mirakl_shipments")


def _warehouse(store, **kwargs) -> Warehouse:
    return Warehouse(store, **{"seed": 3, "delay_seconds": 0, "partial_share": 0, "unknown_carrier_share": 0, **kwargs})


def _edit_tracking(store, fulfillment_id: str) -> tuple[str, str]:
    """The merchant corrects the parcel's carrier and number (fulfillments/update); (company, number) sent.

    No wait: the edit usually lands in the same whole second as the create (Shopify's timestamps), and the
    ledger orders the two versions by their webhooks' triggered-at."""
    company, number = "Chronopost", tracking_number("Chronopost", random.Random(fulfillment_id))
    result = fulfillment_tracking_info_update(store, fulfillment_id, {"company": company, "number": number})
    assert result["userErrors"] == []
    return company, number


def _fulfilment_ids(ledger, marketplace: str, order_id: str) -> set[str]:
    return {p.shopify_fulfillment_id for p in ledger.get_pushes(marketplace, order_id)}


def _import(settings, config_path, sim, order_id: str, lines) -> None:
    sim.add_order(_order(order_id, lines, state="SHIPPING"))
    with dg.instance_for_test() as instance:
        assert _meta(Pipeline(settings, config_path, instance).run(), "shopify_orders")["imported"] == 1


def test_duplicated_late_and_reordered_deliveries_ship_once_with_the_latest_tracking(settings, config_path, sandbox):
    sim, store = sandbox.sims[MKP], sandbox.store
    _import(settings, config_path, sim, "R-1-A", [_line("ALP-MERINO-S", 2)])
    # Every delivery twice, every original again later, and the create held back until the update overtakes it.
    store.webhook_faults.update(duplicate_rate=1.0, reorder=True, late_redelivery_seconds=2.0)
    store.webhook_settings.reorder_hold_seconds = 10  # the edit comes up to a second after the create

    with _webhook_receiver(settings, store), closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        [parcel] = _warehouse(store).step()
        company, number = _edit_tracking(store, parcel.fulfillment_id)
        assert number != parcel.number
        deadline = time.monotonic() + 10
        while store.webhooks.stats()["delivered"] < 4 and time.monotonic() < deadline:  # originals and duplicates
            time.sleep(0.05)
        push = _push(settings, sandbox, ledger)
        push.take_inbox()
        push.push()

        assert store.webhooks.wait_idle(15)  # the late redeliveries arrive after the order shipped
        again = _push(settings, sandbox, ledger, push.sh21)
        again.take_inbox()
        again.push()
        [row] = ledger.get_pushes(MKP, "R-1-A")
        stored = ledger.inbox_after(0, topics=FULFILMENT_TOPICS)

    stats = store.webhooks.stats()
    assert (stats["published"], stats["duplicates"], stats["reordered"], stats["late_redeliveries"]) == (2, 2, 1, 2)
    assert stats["delivered"] == 6
    assert sorted(e.topic for e in stored) == ["fulfillments/create", "fulfillments/update"]  # one per webhook id
    # Six deliveries, one fulfilment: one tracking and one shipment, with the edited tracking.
    assert sim.calls["OR23"] == 1 and sim.calls["OR24"] == 1
    # The first push already had both versions (their first deliveries were in): it shipped; the second sent nothing.
    assert (push.report.tracking_sent, push.report.shipped) == (1, 1)
    assert (again.report.tracking_sent, again.report.shipped, again.report.already_shipped) == (0, 0, 0)
    assert (row.tracking_company, row.tracking_number, row.carrier_code) == (company, number, "CHRONOPOST")
    assert row.or23.state == "done" and row.or24.state == "done"
    shipped = sim.get_order("R-1-A")
    assert shipped["order_state"] == "SHIPPED"
    assert (shipped["shipping_tracking"], shipped["shipping_carrier_code"]) == (number, "CHRONOPOST")


def test_update_delivered_before_create_keeps_the_newer_version(settings, config_path, sandbox):
    sim, store = sandbox.sims[MKP], sandbox.store
    _import(settings, config_path, sim, "R-2-A", [_line("ALP-MERINO-M", 1)])
    store.webhook_faults.update(reorder=True)
    store.webhook_settings.reorder_hold_seconds = 10
    # One delivery thread: the update is answered before the create leaves, so the inbox order is certain.
    store.webhook_settings.concurrency = 1

    with _webhook_receiver(settings, store), closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        [parcel] = _warehouse(store).step()
        company, number = _edit_tracking(store, parcel.fulfillment_id)
        assert store.webhooks.wait_idle(15)
        assert [e.topic for e in ledger.unprocessed(topics=FULFILMENT_TOPICS)] == ["fulfillments/update",
                                                                                   "fulfillments/create"]
        push = _push(settings, sandbox, ledger)
        push.take_inbox()
        [row] = ledger.get_pushes(MKP, "R-2-A")
        # The create came second but is older: it changed nothing.
        assert (row.tracking_company, row.tracking_number) == (company, number)
        report = push.push()

    assert report.fulfilments_received == 2 and report.tracking_sent == 1 and report.shipped == 1
    assert sim.calls["OR23"] == 1 and sim.calls["OR24"] == 1
    shipped = sim.get_order("R-2-A")
    assert shipped["order_state"] == "SHIPPED" and shipped["shipping_tracking"] == number != parcel.number


def test_an_edit_in_the_same_second_as_the_create_is_the_tracking_sent(settings, config_path, sandbox):
    """Create, then the tracking corrected at once: both versions carry the same whole-second updated_at, and the
    deliveries come in order. The edit must win (it was triggered later)."""
    sim, store = sandbox.sims[MKP], sandbox.store
    _import(settings, config_path, sim, "R-3-A", [_line("ALP-MERINO-M", 1)])
    with _webhook_receiver(settings, store), closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        while datetime.now(timezone.utc).microsecond > 200_000:  # start early in a second: both land inside it
            time.sleep(0.02)
        [parcel] = _warehouse(store).step()
        company, number = _edit_tracking(store, parcel.fulfillment_id)
        assert store.webhooks.wait_idle(15)
        edited = store.fulfillments[parcel.fulfillment_id]
        assert edited["updatedAt"] == edited["createdAt"], "the edit left the create's second: nothing tested"
        push = _push(settings, sandbox, ledger)
        push.take_inbox()
        assert push.push().shipped == 1
    shipped = sim.get_order("R-3-A")
    assert (shipped["shipping_tracking"], shipped["shipping_carrier_code"]) == (number, "CHRONOPOST") and number != parcel.number


def test_parcels_wait_on_a_complete_only_marketplace_and_ship_one_by_one_with_multiple_shipments(
        settings, config_path, sandbox):
    """Issue 8, point 7: Decathlon (no multiple shipments) ships once every unit is fulfilled, with OR23 + OR24;
    Leroy Merlin (Mirakl's multiple shipments) gets one shipment per parcel (ST01), each with its lines and its own
    tracking, and the order ships with its last parcel. OR24 is never sent after a first parcel."""
    complete_only, multi, store = sandbox.sims[MKP], sandbox.sims[PARTIAL_MKP], sandbox.store
    lines = [_line("ALP-MERINO-S", 1), _line("LUM-HEAD-400", 2, "39.95")]
    complete_only.add_order(_order("P-1-A", lines, state="SHIPPING"))
    multi.add_order(_order("P-2-A", lines, state="SHIPPING"))
    warehouse = _warehouse(store, partial_share=1)  # every order in two parcels: some lines, then the rest

    with dg.instance_for_test() as instance, _webhook_receiver(settings, store), \
            closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        pipeline = Pipeline(settings, config_path, instance)
        assert _meta(pipeline.run(), "shopify_orders")["imported"] == 1
        assert _meta(pipeline.run(marketplace=PARTIAL_MKP), "shopify_orders")["imported"] == 1
        first = warehouse.step()
        assert len(first) == 2 and all(p.partial for p in first)
        assert store.webhooks.wait_idle(10)

        waits = _run_shipments(pipeline, MKP)
        assert waits["shipped"] == 0 and waits["tracking_sent"] == 0
        [row] = ledger.get_pushes(MKP, "P-1-A")
        ordered = {line["order_line_id"] for line in complete_only.get_order("P-1-A")["order_lines"]}
        [missing] = ordered - set(row.line_quantities)
        assert row.or24.state == "waiting" and row.or23.state == "pending"
        assert f"line {missing} " in row.or24.error and "partial_shipments is false" in row.or24.error
        assert "OR23" not in complete_only.calls and "OR24" not in complete_only.calls

        first_parcel = _run_shipments(pipeline, PARTIAL_MKP)
        assert first_parcel["shipped"] == 1 and first_parcel["tracking_sent"] == 1
        assert multi.get_order("P-2-A")["order_state"] == "SHIPPING"  # the other line has not left the warehouse
        [first_multi] = [p for p in first if p.fulfillment_id in _fulfilment_ids(ledger, PARTIAL_MKP, "P-2-A")]

        second = warehouse.step()
        assert len(second) == 2 and not any(p.partial for p in second)
        assert store.webhooks.wait_idle(10)
        completes = _run_shipments(pipeline, MKP)
        last_parcel = _run_shipments(pipeline, PARTIAL_MKP)
        rows = {p.shopify_fulfillment_id: p for code, order in ((MKP, "P-1-A"), (PARTIAL_MKP, "P-2-A"))
                for p in ledger.get_pushes(code, order)}

    # Complete-only: shipped once, when the second parcel completed the order, with that parcel's tracking.
    assert completes["shipped"] == 1 and complete_only.calls["OR23"] == 1 and complete_only.calls["OR24"] == 1
    [second_complete] = [p for p in second if rows[p.fulfillment_id].marketplace == MKP]
    shipped = complete_only.get_order("P-1-A")
    assert shipped["order_state"] == "SHIPPED" and shipped["shipping_tracking"] == second_complete.number
    # Multiple shipments: two shipments, each parcel's lines and tracking; no OR23/OR24 at all.
    assert last_parcel["shipped"] == 1 and "OR23" not in multi.calls and "OR24" not in multi.calls
    assert multi.calls["ST01"] == 2 and multi.get_order("P-2-A")["order_state"] == "SHIPPED"
    [second_multi] = [p for p in second if rows[p.fulfillment_id].marketplace == PARTIAL_MKP]
    shipments = {s["id"]: s for s in multi.shipments.of_order("P-2-A")}
    assert {rows[p.fulfillment_id].shipment_id for p in (first_multi, second_multi)} == set(shipments)
    assert sorted(s["tracking"]["tracking_number"] for s in shipments.values()) == sorted(
        [first_multi.number, second_multi.number])
    assert all(rows[p.fulfillment_id].or24.state == "done" for p in (first_multi, second_multi))


def test_partial_shipments_without_multiple_shipments_send_tracking_early_and_ship_once_complete(
        settings, config_path, sandbox):
    """The customer gets each parcel's tracking as it leaves (OR23), but OR24, which ships every line, waits."""
    data = yaml.safe_load(config_path.read_text())
    entry = next(m for m in data["marketplaces"] if m["code"] == PARTIAL_MKP)
    entry["fulfilments"]["multiple_shipments"] = False
    config_path.write_text(yaml.safe_dump(data))
    settings = load_settings(config_path)
    sim, store = sandbox.sims[PARTIAL_MKP], sandbox.store
    sim.apply_settings(multiple_shipments=False)
    sim.add_order(_order("PT-1-A", [_line("ALP-MERINO-S", 1), _line("LUM-HEAD-400", 2, "39.95")], state="SHIPPING"))
    warehouse = _warehouse(store, partial_share=1)

    with dg.instance_for_test() as instance, _webhook_receiver(settings, store):
        pipeline = Pipeline(settings, config_path, instance)
        assert _meta(pipeline.run(marketplace=PARTIAL_MKP), "shopify_orders")["imported"] == 1
        [first] = warehouse.step()
        assert store.webhooks.wait_idle(10)
        early = _run_shipments(pipeline, PARTIAL_MKP)
        assert early["shipped"] == 0 and early["tracking_sent"] == 1
        assert (sim.calls["OR23"], sim.calls["OR24"]) == (1, 0)
        assert sim.get_order("PT-1-A")["shipping_tracking"] == first.number
        assert sim.get_order("PT-1-A")["order_state"] == "SHIPPING"

        [second] = warehouse.step()
        assert store.webhooks.wait_idle(10)
        done = _run_shipments(pipeline, PARTIAL_MKP)
    assert done["shipped"] == 1 and (sim.calls["OR23"], sim.calls["OR24"]) == (2, 1)
    shipped = sim.get_order("PT-1-A")
    assert shipped["order_state"] == "SHIPPED" and shipped["shipping_tracking"] == second.number


def test_unknown_carrier_goes_by_name_and_url_where_the_marketplace_accepts_it(settings, config_path, sandbox):
    sim, store = sandbox.sims[PARTIAL_MKP], sandbox.store
    sim.add_order(_order("C-1-A", [_line("ALP-VEST-12", 1, "119.00")], state="SHIPPING"))
    with dg.instance_for_test() as instance, _webhook_receiver(settings, store), \
            closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        pipeline = Pipeline(settings, config_path, instance)
        pipeline.run(marketplace=PARTIAL_MKP)
        [parcel] = _warehouse(store, unknown_carrier_share=1).step()
        assert store.webhooks.wait_idle(10)
        meta = _run_shipments(pipeline, PARTIAL_MKP)
        [row] = ledger.get_pushes(PARTIAL_MKP, "C-1-A")
        exceptions = ledger.open_exceptions(PARTIAL_MKP)

    assert meta["shipped"] == 1 and meta["carrier_exceptions"] == 0 and exceptions == []
    assert (row.carrier_code, row.carrier_name, row.carrier_url) == (None, parcel.company, parcel.url)
    shipped = sim.get_order("C-1-A")
    assert shipped["order_state"] == "SHIPPED" and shipped["shipping_carrier_code"] is None
    assert (shipped["shipping_company"], shipped["shipping_tracking"], shipped["shipping_tracking_url"]) == (
        parcel.company, parcel.number, parcel.url)
    assert sim.calls["ST01"] == 1 and "OR23" not in sim.calls  # one shipment (multiple shipments), tracking inside


@pytest.mark.parametrize("order_flow_saw_it", [True, False], ids=["order-flow-saw-it", "raw-orders-stale"])
def test_order_shipped_in_mirakl_back_office_is_recorded_already(settings, config_path, sandbox, order_flow_saw_it):
    sim, store = sandbox.sims[MKP], sandbox.store
    sim.add_order(_order("A-1-A", [_line("LUM-HEAD-400", 1, "39.95")], state="SHIPPING"))
    with dg.instance_for_test() as instance, _webhook_receiver(settings, store), \
            closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        pipeline = Pipeline(settings, config_path, instance)
        pipeline.run()
        sim.ship("A-1-A")  # the seller ships it in Mirakl's back office: no OR24 call from us
        if order_flow_saw_it:
            pipeline.run()  # the raw orders now show it SHIPPED
        _warehouse(store).step()
        assert store.webhooks.wait_idle(10)
        push = _push(settings, sandbox, ledger)
        push.take_inbox()
        report = push.push()
        [row] = ledger.get_pushes(MKP, "A-1-A")
        exceptions = ledger.open_exceptions(MKP)

    assert report.already_shipped == 1 and report.shipped == 0 and report.failed == 0 and exceptions == []
    assert row.or24.state == "already"
    if order_flow_saw_it:
        assert row.or23.state == "skipped"
        assert "OR23" not in sim.calls and "OR24" not in sim.calls  # nothing sent to a SHIPPED order
    else:
        # The push knows the order from the raw orders (SHIPPING then): OR24 is sent and Mirakl's
        # "Current status is SHIPPED" answer is taken as already shipped, not as a failure.
        assert sim.calls["OR24"] == 1
    assert sim.get_order("A-1-A")["order_state"] == "SHIPPED"


def test_lost_webhook_is_shipped_by_the_sweep(settings, config_path, sandbox):
    sim, store = sandbox.sims[MKP], sandbox.store
    sim.add_order(_order("L-1-A", [_line("ALP-TRAIL-42", 1, "89.90")], state="SHIPPING"))
    store.webhook_faults.update(drop=True)
    with dg.instance_for_test() as instance, _webhook_receiver(settings, store), \
            closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        pipeline = Pipeline(settings, config_path, instance)
        pipeline.run()
        [parcel] = _warehouse(store).step()
        assert store.webhooks.wait_idle(10)
        assert store.webhooks.stats()["dropped"] == 1
        assert ledger.unprocessed(topics=FULFILMENT_TOPICS) == []

        inbox_only = _run_shipments(pipeline, MKP)
        assert inbox_only["fulfilments_received"] == 0 and inbox_only["shipped"] == 0
        assert sim.get_order("L-1-A")["order_state"] == "SHIPPING"

        swept = _run_shipments(pipeline, MKP, tags={"mirakl_pipelines/sweep": "true"})
        [row] = ledger.get_pushes(MKP, "L-1-A")

    assert swept["sweep"] is True and swept["fulfilments_received"] == 1 and swept["shipped"] == 1
    assert row.shopify_fulfillment_id == parcel.fulfillment_id and row.or24.state == "done"
    assert sim.calls["OR23"] == 1 and sim.calls["OR24"] == 1
    shipped = sim.get_order("L-1-A")
    assert shipped["order_state"] == "SHIPPED" and shipped["shipping_tracking"] == parcel.number
