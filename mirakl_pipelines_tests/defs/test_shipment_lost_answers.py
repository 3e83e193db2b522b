"""OR23/OR24 against a hostile Mirakl, in real shipments_sync runs: a call applied whose answer was lost ends as
done (Mirakl's state says so), and a Retry-After longer than the push waits leaves the step for the next run."""

from contextlib import closing

import dagster as dg
import pytest

from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline, _line, _meta, _order
from mirakl_pipelines_tests.defs.test_shipment_scenarios import _run_shipments, _warehouse, _webhook_receiver


@pytest.fixture
def fulfilled(settings, config_path, sandbox):
    """An order imported in SHIPPING and fulfilled in the sandbox store, its webhook in the ledger inbox."""
    sim, store = sandbox.sims[MKP], sandbox.store
    sim.add_order(_order("LF-1-A", [_line("ALP-MERINO-S", 1)], state="SHIPPING"))
    with dg.instance_for_test() as instance, closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        pipeline = Pipeline(settings, config_path, instance)
        assert _meta(pipeline.run(), "shopify_orders")["imported"] == 1
        with _webhook_receiver(settings, store):
            [parcel] = _warehouse(store).step()
            assert store.webhooks.wait_idle(10)
        yield pipeline, ledger, sim, parcel


@pytest.mark.parametrize("lost_as", [502, 0])
def test_or24_answer_lost_ends_shipped(fulfilled, lost_as):
    pipeline, ledger, sim, parcel = fulfilled
    sim.faults.update(lose_writes=1, lost_answer_status=lost_as, path_filter="LF-1-A/ship")
    report = _run_shipments(pipeline, MKP)
    assert report["shipped"] == 1 and report["failed"] == 0, report
    assert sim.calls["OR24"] == 2
    [row] = ledger.get_pushes(MKP, "LF-1-A")
    assert (row.or23.state, row.or24.state) == ("done", "done")
    assert not ledger.open_exceptions(MKP)
    assert sim.get_order("LF-1-A")["order_state"] == "SHIPPED"


def test_or23_every_answer_lost_is_read_back_and_recorded(fulfilled):
    pipeline, ledger, sim, parcel = fulfilled
    sim.faults.update(lose_writes=1000, path_filter="LF-1-A/tracking")  # each retry applied, each answer lost
    report = _run_shipments(pipeline, MKP)
    assert report["shipped"] == 1 and report["tracking_sent"] == 1 and report["failed"] == 0, report
    [row] = ledger.get_pushes(MKP, "LF-1-A")
    assert (row.or23.state, row.or24.state) == ("done", "done")
    assert sim.get_order("LF-1-A")["shipping_tracking"] == parcel.number
    assert not ledger.open_exceptions(MKP)


@pytest.mark.parametrize("route, step", [("LF-1-A/ship", "OR24"), ("LF-1-A/tracking", "OR23")])
def test_a_long_retry_after_leaves_the_step_to_the_next_run(fulfilled, route, step):
    pipeline, ledger, sim, parcel = fulfilled
    sim.faults.update(burst_429=1, retry_after_seconds=3600, path_filter=route)
    first = _run_shipments(pipeline, MKP)
    assert first["shipped"] == 0 and first["failed"] == 0, first
    assert any(step in reason and "Retry-After" in reason for reason in first["waiting"]), first
    [row] = ledger.get_pushes(MKP, "LF-1-A")
    assert row.step(step).state == "pending" and "3600 s" in row.step(step).error
    assert not ledger.open_exceptions(MKP)

    second = _run_shipments(pipeline, MKP)
    assert second["shipped"] == 1, second
    assert sim.get_order("LF-1-A")["order_state"] == "SHIPPED"
    assert sim.get_order("LF-1-A")["shipping_tracking"] == parcel.number
