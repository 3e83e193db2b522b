"""A run killed between the Shopify call and the ledger write: the re-run links the order, it does not create it twice."""

import os
import subprocess
import sys
from contextlib import closing
from datetime import datetime, timezone

import dagster as dg

from mirakl_pipelines.defs.crash_points import CRASH_ENV
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines_tests.defs.conftest import RATE_LIMIT_SCALE
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline, _line, _meta, _order

RUN_ONE_PARTITION = """
import sys, dagster as dg
from mirakl_pipelines.config import load_settings
from mirakl_pipelines.definitions import build_definitions
from mirakl_pipelines.defs.partitions import partition_key
from datetime import date
settings = load_settings(sys.argv[1])
job = build_definitions(settings, sys.argv[1], rate_limit_scale=float(sys.argv[2])).resolve_job_def("orders_sync")
job.execute_in_process(partition_key=partition_key(date.fromisoformat(sys.argv[3]), sys.argv[4]),
                       instance=dg.DagsterInstance.ephemeral())
"""


def test_crash_after_shopify_create_then_rerun(settings, config_path, sandbox):
    sim = sandbox.sims[MKP]
    sim.add_order(_order("X-1-A", [_line("ALP-MERINO-M", 1)], state="SHIPPING"))
    today = datetime.now(timezone.utc).date().isoformat()

    crashed = subprocess.run(
        [sys.executable, "-c", RUN_ONE_PARTITION, str(config_path), str(RATE_LIMIT_SCALE), today, MKP],
        env={**os.environ, CRASH_ENV: "after_shopify_create"}, capture_output=True, text=True, timeout=120,
    )
    assert crashed.returncode == 70, crashed.stderr[-3000:]
    assert [o["sourceIdentifier"] for o in sandbox.store.orders()] == [f"{MKP}:X-1-A"]
    with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        assert ledger.get_order_links(MKP, ["X-1-A"])["X-1-A"].import_state != "imported"  # the write never happened

    with dg.instance_for_test() as instance:
        result = Pipeline(settings, config_path, instance).run()
    meta = _meta(result, "shopify_orders")
    assert meta["recovered"] == 1 and meta["imported"] == 1
    assert len(sandbox.store.orders()) == 1
    with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        link = ledger.get_order_links(MKP, ["X-1-A"])["X-1-A"]
    assert link.import_state == "imported" and link.shopify_order_id == sandbox.store.orders()[0]["id"]
