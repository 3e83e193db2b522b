"""Bulk query operations of the sandbox store: recorded validator and concurrency answers, the state machine,
and JSONL results served over HTTP with `__parentId` for nested connections."""

import json
import re

import httpx
import pytest

from mirakl_pipelines.shopify.operations import load_operation
from mirakl_pipelines_tests.sandbox.conftest import ok
from mirakl_pipelines_tests.sandbox.shopify.fixtures import fixture

RUN = """mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status type errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl query }
    userErrors { field message code }
  }
}"""
BY_ID = """query ById($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount rootObjectCount fileSize url }
  currentBulkOperation { id status }
}"""
PRODUCTS = """{ products { edges { node { id title variants { edges { node { id sku } } } } } } }"""


def run(shop, query: str, api_version: str | None = None) -> dict:
    return ok(shop.graphql(RUN, {"query": query}, api_version=api_version))["bulkOperationRunQuery"]


def finished(shop, operation_id: str) -> dict:
    data = ok(shop.graphql(BY_ID, {"id": operation_id}))
    assert data["currentBulkOperation"]["id"] == operation_id
    return data["bulkOperation"]


def jsonl(url: str) -> list[dict]:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/jsonl")
    return [json.loads(line) for line in response.text.splitlines()]


def test_inventory_query_runs_and_its_levels_follow_their_variant(shop):
    started = run(shop, load_operation("InventoryLevelsBulk"))
    assert started["userErrors"] == []
    operation = started["bulkOperation"]
    # Recorded shape of a new operation.
    assert (operation["status"], operation["type"], operation["objectCount"], operation["url"]) == ("CREATED", "QUERY", "0", None)
    done = finished(shop, operation["id"])
    assert done["status"] == "COMPLETED" and done["errorCode"] is None
    lines = jsonl(done["url"])
    assert done["objectCount"] == str(len(lines)) and int(done["fileSize"]) > 0
    variants = [line for line in lines if "__parentId" not in line]
    assert done["rootObjectCount"] == str(len(variants)) == str(len(shop.store.variants))
    seen: set[str] = set()
    for line in lines:
        if "__parentId" in line:
            assert line["__parentId"] in seen  # the parent came first
            assert set(line) == {"location", "quantities", "__parentId"} and line["location"]["id"].startswith("gid://")
        else:
            seen.add(line["id"])
            assert "inventoryLevels" not in line["inventoryItem"]  # nested connections are lines of their own
    by_sku = {v["sku"]: v["id"] for v in variants}
    head = [line["quantities"][0]["quantity"] for line in lines if line.get("__parentId") == by_sku["LUM-HEAD-400"]]
    assert sorted(head) == [3, 12, 120]
    assert not [line for line in lines if line.get("__parentId") == by_sku["ALP-GAITER-L"]]  # stocked nowhere
    assert None in by_sku  # the variant without SKU is a line too


def test_any_query_is_executed_not_only_the_readers(shop):
    done = finished(shop, run(shop, PRODUCTS)["bulkOperation"]["id"])
    lines = jsonl(done["url"])
    products = {line["id"]: line for line in lines if "__parentId" not in line}
    assert {p["title"] for p in products.values()} >= {"Trail running shoe", "Trail gaiters"}
    gaiters = next(p["id"] for p in products.values() if p["title"] == "Trail gaiters")
    assert sorted(str(line["sku"]) for line in lines if line.get("__parentId") == gaiters) == \
        ["ALP-GAITER-L", "ALP-GAITER-S", "None"]


@pytest.mark.parametrize("case", ["nodesInsteadOfEdges", "ordersNodesInsteadOfEdges", "topLevelNode", "depthThreeNesting",
                                  "sixConnections", "nestedWithoutParentId", "invalidOperationType", "connectionWithinList"])
def test_recorded_validator_answers(shop, case):
    recorded = fixture("bulk-operations__bulk-operation-run-query-validators")["validations"][case]
    answer = run(shop, recorded["variables"]["query"])
    assert answer == recorded["response"]["data"]["bulkOperationRunQuery"]


def test_five_running_at_once_then_the_recorded_refusal(shop):
    shop.store.apply_settings(bulk_operation_seconds=60)
    recorded = fixture("bulk-operations__bulk-operation-run-query-concurrency-limit")
    query = recorded["sixthRun"]["variables"]["query"]
    ids = [run(shop, query)["bulkOperation"]["id"] for _ in range(5)]
    refused = run(shop, query)
    expected = recorded["sixthRun"]["response"]["data"]["bulkOperationRunQuery"]
    pattern = re.escape(expected["userErrors"][0]["message"])
    for recorded_id in re.findall(r"gid://shopify/BulkOperation/\d+", expected["userErrors"][0]["message"]):
        pattern = pattern.replace(re.escape(recorded_id), r"gid://shopify/BulkOperation/\d+")
    assert refused["bulkOperation"] is None
    (error,) = refused["userErrors"]
    assert re.fullmatch(pattern, error["message"]) and all(i in error["message"] for i in ids)
    assert (error["field"], error["code"]) == (None, "OPERATION_IN_PROGRESS")
    cancel = ok(shop.graphql("mutation C($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { status } "
                             "userErrors { message } } }", {"id": ids[0]}))["bulkOperationCancel"]
    assert cancel == {"bulkOperation": {"status": "CANCELING"}, "userErrors": []}  # recorded
    assert ok(shop.graphql(BY_ID, {"id": ids[0]}))["bulkOperation"]["status"] == "CANCELED"
    assert run(shop, query)["userErrors"] == []  # a slot is free again


def test_before_2026_01_one_query_operation_at_a_time(shop):
    shop.store.apply_settings(bulk_operation_seconds=60)
    assert run(shop, PRODUCTS, api_version="2025-10")["userErrors"] == []
    assert [e["code"] for e in run(shop, PRODUCTS, api_version="2025-10")["userErrors"]] == ["OPERATION_IN_PROGRESS"]


def test_running_then_completed_on_the_clock_and_failures_on_demand(shop):
    now = [100.0]
    shop.store.clock = lambda: now[0]
    shop.store.apply_settings(bulk_operation_seconds=10)
    operation = run(shop, PRODUCTS)["bulkOperation"]
    now[0] += 3
    assert finished(shop, operation["id"])["status"] == "RUNNING"
    now[0] += 7
    assert finished(shop, operation["id"])["status"] == "COMPLETED"
    response = shop.http.post("/_sandbox/settings", json={"bulk_operation_failure": "TIMEOUT"})
    assert response.status_code == 200 and response.json()["bulk_operation_failure"] == "TIMEOUT"
    failing = run(shop, PRODUCTS)["bulkOperation"]
    now[0] += 10
    failed = finished(shop, failing["id"])
    assert (failed["status"], failed["errorCode"], failed["url"]) == ("FAILED", "TIMEOUT", None)


def test_quantities_change_while_an_operation_runs(shop, receiver):
    r, url = receiver
    shop.store.subscribe(url, "whsec", ["inventory_levels/update"])
    shop.store.apply_settings(bulk_changes_while_running=4)
    done = finished(shop, run(shop, load_operation("InventoryLevelsBulk"))["bulkOperation"]["id"])
    store = shop.store
    in_file = {(line["__parentId"], line["location"]["id"]): line["quantities"][0]["quantity"]
               for line in jsonl(done["url"]) if "__parentId" in line}
    in_store = {(store.inventory_items[level["_itemId"]]["_variantId"], level["_locationId"]): level["quantities"]["available"]
                for by_location in store.levels.values() for level in by_location.values()}
    assert len(store.adjustment_groups) == 4
    assert len(r.of_topic("inventory_levels/update", at_least=4)) == 4
    assert in_file.keys() == in_store.keys() and in_file != in_store  # the file is older than the store


def test_result_files_need_a_completed_operation(shop):
    assert shop.http.get("/_sandbox/bulk/123.jsonl").status_code == 404


def test_an_unknown_failure_knob_is_refused(shop):
    response = shop.http.post("/_sandbox/settings", json={"bulk_operation_failure": "OOPS"})
    assert response.status_code == 400 and "ACCESS_DENIED" in response.json()["message"]
