"""A run killed between the Shopify call and the ledger write: the re-run links the order, it does not create it twice,
even while Shopify's search index has not seen the order yet (the look-up reads it by its unique reference)."""

import os
import subprocess
import sys
from collections import Counter
from contextlib import closing
from datetime import datetime, timezone

import dagster as dg

from mirakl_pipelines.defs.crash_points import CRASH_ENV
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.shopify.client import ShopifyClient
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


SEARCH_INDEX_LAG_SECONDS = 60  # longer than the test: the search never sees the order (real stores: seconds)


def test_crash_after_shopify_create_then_rerun(settings, config_path, sandbox):
    sim = sandbox.sims[MKP]
    sim.add_order(_order("X-1-A", [_line("ALP-MERINO-M", 1)], state="SHIPPING"))
    sandbox.store.settings.search_index_lag_seconds = SEARCH_INDEX_LAG_SECONDS
    today = datetime.now(timezone.utc).date().isoformat()

    crashed = subprocess.run(
        [sys.executable, "-c", RUN_ONE_PARTITION, str(config_path), str(RATE_LIMIT_SCALE), today, MKP],
        env={**os.environ, CRASH_ENV: "after_shopify_create"}, capture_output=True, text=True, timeout=120,
    )
    assert crashed.returncode == 70, crashed.stderr[-3000:]
    assert [o["sourceIdentifier"] for o in sandbox.store.orders()] == [f"{MKP}:X-1-A"]
    with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        assert ledger.get_order_links(MKP, ["X-1-A"])["X-1-A"].import_state != "imported"  # the write never happened
    store = settings.shopify_stores[0]
    with ShopifyClient(store.shop_url, sandbox.store.settings.access_token) as shopify:
        # The look-up before this change (a search by sourceIdentifier) misses the order: the re-run would create it
        # again. The direct read finds it.
        assert shopify.find_orders_by_source_identifier(f"{MKP}:X-1-A") == []
        assert shopify.order_by_ref(f"{MKP}:X-1-A").id == sandbox.store.orders()[0]["id"]

    with dg.instance_for_test() as instance:
        result = Pipeline(settings, config_path, instance).run()
    meta = _meta(result, "shopify_orders")
    assert meta["recovered"] == 1 and meta["imported"] == 1
    orders_per_mirakl_order = Counter(o["sourceIdentifier"] for o in sandbox.store.orders())
    assert orders_per_mirakl_order == {f"{MKP}:X-1-A": 1}  # 0 duplicates
    with closing(Ledger.connect(settings.ledger_default_url)) as ledger:
        link = ledger.get_order_links(MKP, ["X-1-A"])["X-1-A"]
    assert link.import_state == "imported" and link.shopify_order_id == sandbox.store.orders()[0]["id"]
