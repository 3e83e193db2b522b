"""Calculated query cost and the leaky bucket, on a fake clock."""

from pathlib import Path

import pytest
import yaml

from mirakl_pipelines.sandbox.shopify.harness import running_store
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, StoreSettings
from mirakl_pipelines_tests.reference import reference_file

CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "sandbox" / "catalogue.yaml"
# 9 variants in the catalogue: requested 2 + ⌈√9⌉ × 1 = 5; actual 2 + 9 nodes, capped at the requested 5.
NINE_VARIANTS = "query NineVariants { productVariants(first: 9) { nodes { sku } } }"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock():
    return FakeClock()


@pytest.fixture()
def sandbox(clock):
    reference_file("shopify/admin-2026-07.schema.graphql")
    store = ShopifyStore(StoreSettings(bucket_size=12, restore_rate=1.0), clock=clock)
    store.seed_catalogue(yaml.safe_load(CATALOGUE.read_text(encoding="utf-8")))
    with running_store(store) as connection:
        yield connection


def cost_of(body: dict) -> dict:
    return body["extensions"]["cost"]


def test_bucket_drains_throttles_and_restores_at_the_restore_rate(sandbox, clock):
    first = sandbox.graphql(NINE_VARIANTS)
    assert len(first["data"]["productVariants"]["nodes"]) == 9
    assert cost_of(first) == {"requestedQueryCost": 5, "actualQueryCost": 5,
                              "throttleStatus": {"maximumAvailable": 12, "currentlyAvailable": 7, "restoreRate": 1}}
    assert cost_of(sandbox.graphql(NINE_VARIANTS))["throttleStatus"]["currentlyAvailable"] == 2

    response = sandbox.post(NINE_VARIANTS)
    assert response.status_code == 200  # Shopify answers THROTTLED with HTTP 200
    throttled = response.json()
    assert "data" not in throttled
    assert throttled["errors"] == [{"message": "Throttled", "extensions": {
        "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}]
    assert cost_of(throttled)["actualQueryCost"] is None
    assert cost_of(throttled)["requestedQueryCost"] == 5
    assert cost_of(throttled)["throttleStatus"]["currentlyAvailable"] == 2  # nothing taken

    clock.now += 2.9  # 2 + 2.9 points: still short of 5
    assert sandbox.graphql(NINE_VARIANTS)["errors"][0]["extensions"]["code"] == "THROTTLED"
    clock.now += 0.2  # 5.1 points (a margin for float sums)
    restored = sandbox.graphql(NINE_VARIANTS)
    assert "errors" not in restored
    assert cost_of(restored)["throttleStatus"]["currentlyAvailable"] == 0

    clock.now += 3600  # the bucket never overfills
    assert cost_of(sandbox.graphql("{ shop { name } }"))["throttleStatus"]["currentlyAvailable"] == 11
    assert sandbox.store.stats()["throttled"] == 2


def test_unused_requested_points_are_refunded(sandbox):
    body = sandbox.graphql("query { orders(first: 100) { nodes { id name } } }")  # no orders yet
    assert body["data"]["orders"]["nodes"] == []
    cost = cost_of(body)
    assert cost["requestedQueryCost"] == 12  # 2 + ⌈√100⌉ × 1
    assert cost["actualQueryCost"] == 2
    assert cost["throttleStatus"]["currentlyAvailable"] == 10
    assert sandbox.store.points_spent == 2


def test_throttle_http_status_can_be_429(sandbox):
    sandbox.store.apply_settings(throttle_http_status=429, bucket_size=4)
    response = sandbox.post(NINE_VARIANTS)
    assert response.status_code == 429
    assert response.json()["errors"][0]["extensions"]["code"] == "THROTTLED"


def test_query_above_max_cost_is_refused(sandbox):
    sandbox.store.apply_settings(bucket_size=2000)
    query = """query Huge { orders(first: 250) { nodes {
        lineItems(first: 250) { nodes { id variant { id product { id } } } }
        fulfillmentOrders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } } } }"""
    body = sandbox.graphql(query)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["maxCost"] == 1000
    assert error["message"].startswith(f"Query cost is {error['extensions']['cost']}, which exceeds the single query max cost limit (1000).")
    assert cost_of(body)["actualQueryCost"] is None


def test_cost_extensions_are_on_every_graphql_response(sandbox):
    sandbox.store.apply_settings(bucket_size=2000)
    bodies = [
        sandbox.graphql("{ shop { name } }"),
        sandbox.graphql("{ shop { colour } }"),  # invalid document
        sandbox.graphql("query($q: String!) { orders(first: 1, query: $q) { nodes { id } } }"),  # missing variable
        sandbox.graphql("mutation { orderCreate(order: {lineItems: []}) { userErrors { field message code } } }"),
    ]
    for body in bodies:
        assert set(cost_of(body)) == {"requestedQueryCost", "actualQueryCost", "throttleStatus"}
        assert set(cost_of(body)["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
    mutation = cost_of(bodies[-1])
    assert mutation["requestedQueryCost"] == 11  # 10 for the mutation + 1 for the userErrors list
    assert mutation["actualQueryCost"] == 11


def test_plan_setting_over_http_changes_restore_rate(sandbox):
    response = sandbox.http.post("/_sandbox/settings", json={"plan": "plus"})
    assert response.status_code == 200
    assert response.json()["restore_rate"] == 1000.0
    status = cost_of(sandbox.graphql("{ shop { name } }"))["throttleStatus"]
    assert status["restoreRate"] == 1000
    assert status["maximumAvailable"] == 20000
    bad = sandbox.http.post("/_sandbox/settings", json={"plan": "gold"})
    assert bad.status_code == 400
    assert "unknown plan 'gold'" in bad.json()["message"]
