"""The stock flow over the real path: the sandbox store's inventory → each marketplace's policy → STO01 to the sandbox
marketplace → its offers read back; the `stock_delta` check, the `stock_snapshots` dataset and the ledger."""

import os
from datetime import datetime, timedelta, timezone

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml

from mirakl_pipelines.config import load_settings
from mirakl_pipelines.defs.partitions import partition_key
from mirakl_pipelines.defs.stock.assets import FULL_TAG
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.mirakl.offers import send_stock_file
from mirakl_pipelines.sync.stock_file import stock_import_csv
from mirakl_pipelines_tests.defs.conftest import RATE_LIMIT_SCALE
from mirakl_pipelines_tests.defs.test_orders_flow import Pipeline, _line, _order, _wait_until_shipping
from mirakl_pipelines_tests.defs.test_orders_flow import _meta as _meta_orders

DKT, LM = "decathlon_fr", "leroymerlin_fr"


class StockPipeline(Pipeline):
    """The project's Definitions, the stock job materialised partition by partition on a test instance."""

    def __init__(self, settings, config_path, instance):
        super().__init__(settings, config_path, instance)
        self.job = self.defs.resolve_job_def("stock_sync")

    def run(self, marketplace=DKT, day=None, tags=None, raise_on_error=True) -> dg.ExecuteInProcessResult:
        day = day or datetime.now(timezone.utc).date()
        return self.job.execute_in_process(partition_key=partition_key(day, marketplace), instance=self.instance,
                                           tags=tags or {}, raise_on_error=raise_on_error)


def _meta(result, asset):
    [mat] = [m for m in result.get_asset_materialization_events() if m.asset_key.to_user_string() == asset]
    return {k: v.value for k, v in mat.materialization.metadata.items()}


def _check(result):
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


@pytest.fixture
def pipeline(settings, config_path):
    with dg.instance_for_test() as instance:
        yield StockPipeline(settings, config_path, instance)


def test_first_run_sends_every_offered_sku_and_mirakl_then_agrees(pipeline, sandbox):
    result = pipeline.run(DKT)
    shopify, mirakl = _meta(result, "shopify_stock"), _meta(result, "mirakl_stock")
    assert shopify["source"] == "paginated"
    # The catalogue's variety is reported, not guessed.
    assert {"no_sku", "untracked", "not_stocked"} <= set(shopify["findings"])
    assert mirakl["mode"] == "full" and mirakl["import_status"] == "COMPLETE"
    offers = sandbox.sims[DKT].offers.quantities()
    # Decathlon sums Entrepôt Lyon and Boutique Paris, minus a 2-unit buffer.
    assert offers["ALP-TRAIL-42"] == 40 + 6 - 2
    assert offers["ALP-TRAIL-44"] == 3 - 2
    assert offers["ALP-MERINO-L"] == 0
    # Offers of SKUs Shopify does not have are left alone; Shopify SKUs no offer lists are not sent.
    assert offers["ALP-DISCONTINUED-01"] == 0 and "ALP-GAITER-S" not in offers
    assert mirakl["lines_sent"] == mirakl["skus_computed"] - mirakl["not_offered"]
    check = _check(result)
    assert check.passed, check.metadata
    with pipeline.ledger() as ledger:
        [done] = ledger.stock_imports(DKT)
        assert (done.status, done.mode, done.lines) == ("COMPLETE", "full", mirakl["lines_sent"])


def test_a_change_sends_only_that_sku_and_a_dropped_line_turns_the_check_red(pipeline, sandbox):
    pipeline.run(DKT)
    sandbox.store.adjust_inventory("ALP-TRAIL-43", "Entrepôt Lyon", -30, reason="damaged")
    second = pipeline.run(DKT)
    meta = _meta(second, "mirakl_stock")
    assert (meta["mode"], meta["lines_sent"]) == ("delta", 1)
    assert sandbox.sims[DKT].offers.quantities()["ALP-TRAIL-43"] == 35 - 30 + 4 - 2
    assert _check(second).passed
    # The marketplace silently drops a line: Mirakl keeps showing more than Shopify can serve.
    sandbox.sims[DKT].apply_settings(stock_import_skip_skus=["ALP-TRAIL-42"])
    sandbox.store.adjust_inventory("ALP-TRAIL-42", "Entrepôt Lyon", -40, reason="damaged")
    third = pipeline.run(DKT)
    check = _check(third)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "ALP-TRAIL-42" in check.metadata["worst_skus"].value
    assert check.metadata["severity_by_marketplace"].value[DKT] == "ERROR"
    # The next run of the other marketplace keeps Decathlon's verdict (one check answers for all).
    other = pipeline.run(LM)
    assert not _check(other).passed
    assert _check(other).metadata["severity_by_marketplace"].value == {DKT: "ERROR", LM: "PASS"}
    # Once the marketplace takes lines again, the next run sends the drifted offer again although its computed
    # quantity did not change: Mirakl shows more than Shopify can serve.
    sandbox.sims[DKT].apply_settings(stock_import_skip_skus=[])
    healed = pipeline.run(DKT)
    meta = _meta(healed, "mirakl_stock")
    assert (meta["lines_sent"], meta["lines_for_drift"]) == (1, 1)
    assert sandbox.sims[DKT].offers.quantities()["ALP-TRAIL-42"] == 0 + 6 - 2
    assert _check(healed).passed


def test_leroy_merlin_publishes_one_location_with_its_own_policy(pipeline, sandbox):
    pipeline.run(LM)
    offers = sandbox.sims[LM].offers.quantities()
    assert offers["ALP-TRAIL-42"] == 36  # 40 at Entrepôt Lyon only, 10 % held back (rounded down)
    assert offers["LUM-BOTTLE-750"] == 50  # capped
    assert offers["ALP-TRAIL-44"] == 2  # 3 − 10 % = 2.7 → 2, which is not below the threshold of 2
    sandbox.store.adjust_inventory("ALP-TRAIL-44", "Entrepôt Lyon", -1, reason="damaged")
    pipeline.run(LM)
    assert sandbox.sims[LM].offers.quantities()["ALP-TRAIL-44"] == 0  # 2 − 10 % = 1.8 → 1: below 2, published as 0
    assert offers["ALP-VEST-12"] == 22  # 25 − 10 % = 22.5 → 22


def test_an_earlier_import_is_settled_first_and_its_rejected_lines_become_exceptions(pipeline, sandbox, settings):
    pipeline.run(DKT)
    # A file sent by a run that died before it saw the import finish; one of its offers was deleted meanwhile.
    lines = pd.DataFrame({"offer_sku": ["ALP-TRAIL-42", "NOT-AN-OFFER"], "quantity": [5, 3]})
    marketplace = settings.marketplace(DKT)
    now = datetime.now(timezone.utc)
    with pipeline.ledger() as ledger, MiraklClient(marketplace.base_url, os.environ[marketplace.api_key_env],
                                                   rate_limit_scale=RATE_LIMIT_SCALE, marketplace=DKT) as client:
        import_id = send_stock_file(client, stock_import_csv(lines))
        ledger.record_stock_import(DKT, import_id, mode="delta", run_id=None, lines=lines, snapshot_at=now, now=now)
    result = pipeline.run(DKT)
    meta = _meta(result, "mirakl_stock")
    assert meta["earlier_imports_settled"] == [import_id]
    with pipeline.ledger() as ledger:
        [rejected] = ledger.open_exceptions(DKT, kinds=["stock_line_rejected"])
        assert rejected.record_id == "NOT-AN-OFFER" and import_id in rejected.reason
        assert {i.import_id: i.lines_rejected for i in ledger.stock_imports(DKT)}[import_id] == 1
    # That file set ALP-TRAIL-42 to 5: Mirakl's quantity drifted from the computed one, and the run put it right.
    assert sandbox.sims[DKT].offers.quantities()["ALP-TRAIL-42"] == 40 + 6 - 2
    assert _check(result).passed


def test_the_dataset_holds_the_latest_snapshot_and_the_history_of_pushes(pipeline, sandbox, settings):
    sandbox.sims[DKT].offers.seed([{"sku": "ALP-GAITER-S", "quantity": 1}])  # an offer of an oversold variant
    pipeline.run(DKT)
    sandbox.store.adjust_inventory("ALP-VEST-12", "Entrepôt Lyon", -5, reason="damaged")
    pipeline.run(DKT)
    warehouse = settings.resolve_path(settings.warehouse_path)
    table = f"read_parquet('{warehouse}/stock_snapshots/*/*/*.parquet', hive_partitioning = true)"
    latest = duckdb.sql(f"""
        SELECT offer_sku, computed, sent, mirakl_quantity, delta_status, marketplace, CAST(date AS VARCHAR) AS day
        FROM {table} QUALIFY snapshot_at = max(snapshot_at) OVER () ORDER BY offer_sku""").fetchall()
    by_sku = {r[0]: r for r in latest}
    assert by_sku["ALP-GAITER-S"][1:5] == (0, None, 0, "match")  # oversold in Shopify (−2): published as 0
    assert by_sku["ALP-VEST-12"][1:3] == (25 - 5 - 2, 25 - 5 - 2)
    assert by_sku["ALP-TRAIL-42"][5:] == (DKT, datetime.now(timezone.utc).date().isoformat())
    assert all(isinstance(r[1], int) for r in latest)
    [pushes] = duckdb.sql(f"SELECT count(DISTINCT snapshot_at), count(*) FROM {table} WHERE sent IS NOT NULL").fetchall()
    offered = sum(r[3] is not None for r in latest)
    assert pushes == (2, offered + 1)  # the first run sent every offer (not the shop-only SKUs), the second one line


def test_a_full_run_resends_everything_and_a_past_day_is_refused(pipeline, sandbox):
    pipeline.run(DKT)
    again = pipeline.run(DKT)
    assert _meta(again, "mirakl_stock")["lines_sent"] == 0  # nothing changed: no STO01 at all
    full = pipeline.run(DKT, tags={FULL_TAG: "true"})
    assert _meta(full, "mirakl_stock")["mode"] == "full" and _meta(full, "mirakl_stock")["lines_sent"] > 0
    past = pipeline.run(DKT, day=datetime.now(timezone.utc).date() - timedelta(days=2), raise_on_error=False)
    assert not past.success
    [failure] = [e for e in past.all_events if e.is_step_failure]
    assert "cannot be re-read for the past" in str(failure.step_failure_data.error.message)


def test_a_mapped_offer_sku_is_imported_and_published_as_its_shopify_sku(sandbox, tmp_path, monkeypatch):
    """The SKU mapping file serves both flows: an order for offer DEC-TRAIL-42 creates a Shopify order of variant
    ALP-TRAIL-42, and ALP-TRAIL-42's stock is published under DEC-TRAIL-42."""
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MIRAKL_PIPELINES_LEDGER_URL", raising=False)
    (tmp_path / "sku_map.csv").write_text("marketplace,offer_sku,shopify_sku\ndecathlon_fr,DEC-TRAIL-42,ALP-TRAIL-42\n")
    data = sandbox.settings_dict(tmp_path)
    data["marketplaces"][0]["stock"]["sku_map_file"] = str(tmp_path / "sku_map.csv")
    path = tmp_path / "mapped.yaml"
    path.write_text(yaml.safe_dump(data))
    settings = load_settings(path)
    sim = sandbox.sims[DKT]
    sim.offers.seed([{"sku": "DEC-TRAIL-42", "price": "89.90", "quantity": 3}])
    sim.add_order(_order("M-1-A", [_line("DEC-TRAIL-42", 2, "89.90")]))
    with dg.instance_for_test() as instance:
        orders = Pipeline(settings, path, instance)
        assert _meta_orders(orders.run(), "shopify_orders")["accepted"] == 1
        _wait_until_shipping(sim, ["M-1-A"])
        assert _meta_orders(orders.run(), "shopify_orders")["imported"] == 1
        [order] = [o for o in sandbox.store.orders() if o["sourceIdentifier"] == f"{DKT}:M-1-A"]
        assert [line["sku"] for line in order["lineItems"]] == ["ALP-TRAIL-42"]
        StockPipeline(settings, path, instance).run(DKT)
    offers = sim.offers.quantities()
    assert offers["DEC-TRAIL-42"] == 40 - 2 + 6 - 2  # the order took 2 units at Entrepôt Lyon
