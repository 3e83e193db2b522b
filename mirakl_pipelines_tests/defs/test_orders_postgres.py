"""The order flow on PostgreSQL: Dagster's run/event/schedule storage and the ledger on a real server
started by the test on 127.0.0.1."""

from contextlib import closing

import dagster as dg
import pytest

from mirakl_pipelines.config import load_settings
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline, _line, _meta, _order

pytestmark = pytest.mark.postgres


def _postgres_instance_overrides(url: str) -> dict:
    config = {"postgres_url": url}
    return {
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": config},
        "event_log_storage": {"module": "dagster_postgres.event_log", "class": "PostgresEventLogStorage", "config": config},
        "schedule_storage": {"module": "dagster_postgres.schedule_storage", "class": "PostgresScheduleStorage", "config": config},
    }


def test_order_flow_on_postgres(sandbox, config_path, make_postgres_url, monkeypatch):
    ledger_url = make_postgres_url()
    dagster_url = make_postgres_url()
    monkeypatch.setenv("MIRAKL_PIPELINES_LEDGER_URL", ledger_url)
    settings = load_settings(config_path)
    assert settings.ledger_url() == ledger_url

    sim = sandbox.sims[MKP]
    sim.add_order(_order("P-1-A", [_line("LUM-BOTTLE-750", 2, "24.50")], state="SHIPPING"))
    with dg.instance_for_test(overrides=_postgres_instance_overrides(dagster_url)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        pipeline = Pipeline(settings, config_path, instance)
        result = pipeline.run()
        assert _meta(result, "shopify_orders")["imported"] == 1
        again = pipeline.run()
        assert _meta(again, "shopify_orders")["imported"] == 0
        records = instance.fetch_materializations(dg.AssetKey("shopify_orders"), limit=10).records
        assert len(records) == 2

    with closing(Ledger.connect(ledger_url)) as ledger:
        assert ledger.backend == "postgresql"
        assert ledger.get_order_links(MKP, ["P-1-A"])["P-1-A"].import_state == "imported"
    assert len(sandbox.store.orders()) == 1
