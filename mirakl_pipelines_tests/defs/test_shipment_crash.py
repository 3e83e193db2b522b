"""A shipments_sync run killed between OR23 and its ledger write, or between OR23 and OR24: the next runs ship
the order with one OR23 and one OR24 in all (the child process shares the SQLite ledger with the test)."""

import os
import subprocess
import sys
from contextlib import closing
from datetime import datetime, timezone

import dagster as dg
import pytest

from mirakl_pipelines.defs.crash_points import CRASH_ENV, CRASH_EXIT_CODE
from mirakl_pipelines.defs.fulfilments.push import SENDING_TIMEOUT
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines_tests.defs.conftest import RATE_LIMIT_SCALE
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline, _line, _meta, _order
from mirakl_pipelines_tests.defs.test_shipment_scenarios import _warehouse, _run_shipments, _webhook_receiver

RUN_SHIPMENTS = """
import sys, dagster as dg
from datetime import date
from mirakl_pipelines.config import load_settings
from mirakl_pipelines.definitions import build_definitions
from mirakl_pipelines.defs.partitions import partition_key
settings = load_settings(sys.argv[1])
job = build_definitions(settings, sys.argv[1], rate_limit_scale=float(sys.argv[2])).resolve_job_def("shipments_sync")
job.execute_in_process(partition_key=partition_key(date.fromisoformat(sys.argv[3]), sys.argv[4]),
                       instance=dg.DagsterInstance.ephemeral())
"""


@pytest.mark.parametrize("crash_at", ["after_or23", "before_or24"])
def test_crash_between_or23_and_or24_then_resume(settings, config_path, sandbox, crash_at):
    sim, store = sandbox.sims[MKP], sandbox.store
    sim.add_order(_order("K-1-A", [_line("ALP-MERINO-S", 1)], state="SHIPPING"))
    today = datetime.now(timezone.utc).date().isoformat()
    with dg.instance_for_test() as instance, closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        pipeline = Pipeline(settings, config_path, instance)
        assert _meta(pipeline.run(), "shopify_orders")["imported"] == 1
        with _webhook_receiver(settings, store):
            [parcel] = _warehouse(store).step()
            assert store.webhooks.wait_idle(10)

        crashed = subprocess.run(
            [sys.executable, "-c", RUN_SHIPMENTS, str(config_path), str(RATE_LIMIT_SCALE), today, MKP],
            env={**os.environ, CRASH_ENV: crash_at}, capture_output=True, text=True, timeout=120,
        )
        assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr[-3000:]
        assert (sim.calls["OR23"], sim.calls["OR24"]) == (1, 0)
        assert sim.get_order("K-1-A")["order_state"] == "SHIPPING"
        [row] = ledger.get_pushes(MKP, "K-1-A")
        # after_or23: the call went out but its outcome was never written; before_or24: OR23 recorded, OR24 not sent.
        assert (row.or23.state, row.or24.state) == ("sending" if crash_at == "after_or23" else "done", "pending")

        if crash_at == "after_or23":
            # A run right after cannot tell the dead run from a live one still sending: it leaves OR23 alone.
            early = _run_shipments(pipeline, MKP)
            assert early["shipped"] == 0 and any("OR23" in reason for reason in early["waiting"])
            assert (sim.calls["OR23"], sim.calls["OR24"]) == (1, 0)
            # Once the claim is older than the timeout (as it is that long after the crash), it is taken over.
            ledger.record_step(MKP, "K-1-A", row.shopify_fulfillment_id, "OR23", "sending",
                               now=row.or23.at - SENDING_TIMEOUT)
        or11 = sim.calls["OR11"]
        resumed = _run_shipments(pipeline, MKP)
        [row] = ledger.get_pushes(MKP, "K-1-A")

    assert resumed["shipped"] == 1 and resumed["failed"] == 0
    assert sim.calls["OR23"] == 1 and sim.calls["OR24"] == 1
    if crash_at == "after_or23":
        # The tracking was read back (one OR11 by id) and found in Mirakl: recorded, not sent again.
        assert row.or23.state == "already" and sim.calls["OR11"] == or11 + 1 and resumed["tracking_sent"] == 0
    else:
        assert row.or23.state == "done" and sim.calls["OR11"] == or11 and resumed["tracking_sent"] == 0
    assert row.or24.state == "done"
    shipped = sim.get_order("K-1-A")
    assert shipped["order_state"] == "SHIPPED" and shipped["shipping_tracking"] == parcel.number
