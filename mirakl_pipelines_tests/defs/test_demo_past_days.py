"""The demo's past days (Scenario.seed_past_days): a run of a past day's partition, as a backfill launches it,
has real work: it imports the day's paid orders and accepts those still waiting."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import httpx

from mirakl_pipelines_tests.defs.test_orders_flow import MKP, Pipeline


def test_a_backfill_of_a_seeded_past_day_imports_and_accepts_its_orders(sandbox, settings, config_path):
    sim = sandbox.sims[MKP]
    sandbox.scenario.seed_past_days(2, per_day=6)
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    seeded = {o["order_id"]: o["order_state"] for o in sim.orders() if o["created_date"].date() == yesterday}
    assert sorted(seeded.values()).count("WAITING_ACCEPTANCE") == 2

    with dg.instance_for_test() as instance:
        result = Pipeline(settings, config_path, instance).run(day=yesterday)

    [materialised] = result.asset_materializations_for_node("shopify_orders")
    assert materialised.metadata["imported"].value >= 1
    imported = {o["sourceIdentifier"].split(":", 1)[1] for o in sandbox.store.orders()}
    assert imported and imported <= {oid for oid, state in seeded.items() if state == "SHIPPING"}
    # The store's read-only page, as a user opens it in a browser, lists them.
    page = httpx.get(f"{sandbox.servers['shopify'].url}/_sandbox/orders.html", timeout=10).text
    assert all(f"<td>{MKP}:{order_id}</td>" in page for order_id in imported)
    for order_id, state in seeded.items():
        if state == "WAITING_ACCEPTANCE":  # decided by the backfill's run (decathlon_fr accepts what it cannot serve)
            assert sim.get_order(order_id)["acceptance_decision_date"] is not None
