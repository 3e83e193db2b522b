"""fulfillmentCreate / fulfillmentTrackingInfoUpdate on the sandbox store, over loopback HTTP.

Golden files: the recorded precondition userErrors and the recorded multi-tracking capture are
replayed with the sandbox's own ids substituted for the recorded ones.
"""

import json

import pytest

from mirakl_pipelines.sync.order_mapping import LINE_ID_PROPERTY
from mirakl_pipelines_tests.reference import reference_file
from mirakl_pipelines_tests.sandbox.conftest import ok
from mirakl_pipelines_tests.sandbox.test_shopify_fixtures import assert_same_response, shape

PRECONDITIONS = "shopify/fixtures/harry-test-heelo.myshopify.com__2026-04__orders__fulfillment-create-preconditions.json"
MULTI_TRACKING = "shopify/fixtures/harry-test-heelo.myshopify.com__2025-01__orders__fulfillment-multi-tracking-info.json"

CREATE_ORDER = """mutation($order: OrderCreateOrderInput!) { orderCreate(order: $order) {
  order { id name fulfillmentOrders(first: 5) { nodes { id status lineItems(first: 20) { nodes { id remainingQuantity sku } } } } }
  userErrors { field message } } }"""
FULFIL = """mutation($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment { id name status displayStatus totalQuantity trackingInfo(first: 10) { number company url }
      fulfillmentLineItems(first: 20) { nodes { quantity lineItem { id sku customAttributes { key value } } } } }
    userErrors { field message } } }"""
FULFIL_ERRORS = """mutation($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) { fulfillment { id } userErrors { field message } } }"""
UPDATE_TRACKING = """mutation($id: ID!, $tracking: FulfillmentTrackingInput!) {
  fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $tracking) {
    fulfillment { id updatedAt trackingInfo(first: 10) { number company url } } userErrors { field message } } }"""
ORDER_STATE = """query($id: ID!) { order(id: $id) { displayFulfillmentStatus updatedAt
  lineItems(first: 20) { nodes { sku unfulfilledQuantity } }
  fulfillmentOrders(first: 5) { nodes { status supportedActions { action } lineItems(first: 20) { nodes { remainingQuantity } } } }
  fulfillments(first: 10) { name status } } }"""
SWEEP = """query($q: String!) { orders(first: 50, query: $q, sortKey: UPDATED_AT) { nodes { id name updatedAt
  fulfillments(first: 10) { id name status createdAt updatedAt trackingInfo(first: 5) { number company url }
    fulfillmentLineItems(first: 50) { nodes { quantity lineItem { id sku customAttributes { key value } } } } } } } }"""


@pytest.fixture()
def sandbox(catalogue_store):
    return catalogue_store


def load(relative: str) -> dict:
    return json.loads(reference_file(relative).read_text(encoding="utf-8"))


def create_order(sandbox, lines: list[tuple[str, int]], source_identifier: str = "decathlon_fr:MKP-1") -> dict:
    order = {"sourceName": "mirakl", "sourceIdentifier": source_identifier, "lineItems": [
        {"variantId": sandbox.store.variant_by_sku(sku)["id"], "quantity": quantity,
         "properties": [{"name": LINE_ID_PROPERTY, "value": f"{source_identifier}-{n + 1}"}]}
        for n, (sku, quantity) in enumerate(lines)]}
    payload = ok(sandbox.graphql(CREATE_ORDER, {"order": order}))["orderCreate"]
    assert payload["userErrors"] == []
    return payload["order"]


def fulfil(sandbox, groups: list[dict], tracking: dict | None = None) -> dict:
    fulfillment = {"lineItemsByFulfillmentOrder": groups}
    if tracking is not None:
        fulfillment["trackingInfo"] = tracking
    return ok(sandbox.graphql(FULFIL, {"fulfillment": fulfillment}))["fulfillmentCreate"]


def order_state(sandbox, order_id: str) -> dict:
    return ok(sandbox.graphql(ORDER_STATE, {"id": order_id}))["order"]


# --- golden files -----------------------------------------------------------------------------------

def _recorded_case(fixture: dict, name: str, sandbox) -> tuple[dict, dict]:
    """The case's variables with the recorded FO / FO line ids mapped onto a fresh sandbox order (replayed setup)."""
    case = fixture["cases"][name]
    variables = case["variables"]
    if "setup" in case:
        setup = case["setup"]["orderCreate"]
        created = ok(sandbox.graphql(setup["query"], setup["variables"]))["orderCreate"]["order"]
        recorded_fo = setup["response"]["data"]["orderCreate"]["order"]["fulfillmentOrders"]["nodes"][0]
        sandbox_fo = created["fulfillmentOrders"]["nodes"][0]
        text = json.dumps(variables).replace(recorded_fo["id"], sandbox_fo["id"])
        for recorded_line, sandbox_line in zip(recorded_fo["lineItems"]["nodes"], sandbox_fo["lineItems"]["nodes"]):
            text = text.replace(recorded_line["id"], sandbox_line["id"])
        variables = json.loads(text)
    return variables, case["response"]["data"]


@pytest.mark.parametrize("case", ["nonPositiveQuantity", "overFulfill", "missingFulfillmentOrder"])
def test_precondition_user_errors_match_the_recording(sandbox, case):
    variables, recorded = _recorded_case(load(PRECONDITIONS), case, sandbox)
    before = len(sandbox.store.fulfillments)
    response = sandbox.post(FULFIL_ERRORS, variables, api_version="2026-04")
    assert response.status_code == 200
    assert ok(response.json()) == recorded
    assert len(sandbox.store.fulfillments) == before


def test_closed_fulfillment_order_error_matches_the_recording(sandbox):
    """Recorded on a cancelled order's CLOSED FO; here the FO is closed by fulfilling it, the answer is the same."""
    fixture = load(PRECONDITIONS)
    case = fixture["cases"]["cancelled"]
    recorded_fo_id = case["variables"]["fulfillment"]["lineItemsByFulfillmentOrder"][0]["fulfillmentOrderId"]
    order = create_order(sandbox, [("LUM-HEAD-400", 1)])
    fo_id = order["fulfillmentOrders"]["nodes"][0]["id"]
    assert fulfil(sandbox, [{"fulfillmentOrderId": fo_id}])["userErrors"] == []
    variables = json.loads(json.dumps(case["variables"]).replace(recorded_fo_id, fo_id))
    body = ok(sandbox.graphql(FULFIL_ERRORS, variables))
    expected = json.loads(json.dumps(case["response"]["data"]).replace(
        recorded_fo_id.rsplit("/", 1)[1], fo_id.rsplit("/", 1)[1]))
    assert body == expected


def test_multi_tracking_capture_replays_create_update_and_read(sandbox):
    fixture = load(MULTI_TRACKING)
    setup = fixture["setup"]["orderCreate"]
    created = ok(sandbox.graphql(setup["query"], setup["variables"], api_version="2025-01"))["orderCreate"]["order"]
    ids = {fixture["fulfillmentOrderId"]: created["fulfillmentOrders"]["nodes"][0]["id"], fixture["orderId"]: created["id"]}

    def replay(step: str, extra_ids: dict | None = None) -> dict:
        recorded = fixture[step]
        text = json.dumps(recorded["variables"])
        for old, new in {**ids, **(extra_ids or {})}.items():
            text = text.replace(old, new)
        response = sandbox.post(recorded["query"], json.loads(text), api_version="2025-01")
        assert response.status_code == recorded["status"]
        body = response.json()
        assert "errors" not in body, body.get("errors")
        assert_same_response(body["data"], recorded["response"]["data"])
        assert shape(body["extensions"]) == shape(recorded["response"]["extensions"])
        return body["data"]

    fulfillment_id = replay("fulfillmentCreate")["fulfillmentCreate"]["fulfillment"]["id"]
    replay("fulfillmentTrackingInfoUpdate", {fixture["fulfillmentId"]: fulfillment_id})
    replay("downstreamRead", {fixture["fulfillmentId"]: fulfillment_id})


# --- behaviour ----------------------------------------------------------------------------------------

def test_partial_then_complete_fulfilment(sandbox):
    order = create_order(sandbox, [("ALP-TRAIL-42", 2), ("LUM-HEAD-400", 1)])
    fo = order["fulfillmentOrders"]["nodes"][0]
    first_line = fo["lineItems"]["nodes"][0]

    first = fulfil(sandbox, [{"fulfillmentOrderId": fo["id"],
                              "fulfillmentOrderLineItems": [{"id": first_line["id"], "quantity": 1}]}],
                   {"number": "6A10000000001", "company": "Colissimo"})
    assert first["userErrors"] == []
    assert first["fulfillment"]["name"] == f"{order['name']}.1"
    assert first["fulfillment"]["totalQuantity"] == 1
    (item,) = first["fulfillment"]["fulfillmentLineItems"]["nodes"]
    assert item["quantity"] == 1 and item["lineItem"]["sku"] == "ALP-TRAIL-42"
    assert item["lineItem"]["customAttributes"] == [{"key": LINE_ID_PROPERTY, "value": "decathlon_fr:MKP-1-1"}]
    state = order_state(sandbox, order["id"])
    assert state["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    (fo_state,) = state["fulfillmentOrders"]["nodes"]
    assert fo_state["status"] == "IN_PROGRESS"
    assert [n["remainingQuantity"] for n in fo_state["lineItems"]["nodes"]] == [1, 1]
    assert [n["unfulfilledQuantity"] for n in state["lineItems"]["nodes"]] == [1, 1]

    # Over what remains: refused, nothing changes.
    over = fulfil(sandbox, [{"fulfillmentOrderId": fo["id"],
                             "fulfillmentOrderLineItems": [{"id": first_line["id"], "quantity": 2}]}])
    assert over == {"fulfillment": None,
                    "userErrors": [{"field": ["fulfillment"], "message": "Invalid fulfillment order line item quantity requested."}]}

    rest = fulfil(sandbox, [{"fulfillmentOrderId": fo["id"]}], {"number": "6A10000000002", "company": "Colissimo"})
    assert rest["userErrors"] == []
    assert rest["fulfillment"]["name"] == f"{order['name']}.2"
    assert sorted((n["lineItem"]["sku"], n["quantity"]) for n in rest["fulfillment"]["fulfillmentLineItems"]["nodes"]) \
        == [("ALP-TRAIL-42", 1), ("LUM-HEAD-400", 1)]
    state = order_state(sandbox, order["id"])
    assert state["displayFulfillmentStatus"] == "FULFILLED"
    assert state["fulfillmentOrders"]["nodes"][0]["status"] == "CLOSED"
    assert state["fulfillmentOrders"]["nodes"][0]["supportedActions"] == []
    assert [f["name"] for f in state["fulfillments"]] == [f"{order['name']}.1", f"{order['name']}.2"]


@pytest.mark.parametrize("tracking, expected", [
    ({"number": "XW123456789FR", "company": "Chronopost"},
     [{"number": "XW123456789FR", "company": "Chronopost",
       "url": "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT=XW123456789FR"}]),
    ({"numbers": ["A1", "A2"], "urls": ["https://t.example/A1"], "company": "Coursier Express Lyon"},
     [{"number": "A1", "company": "Coursier Express Lyon", "url": "https://t.example/A1"},
      {"number": "A2", "company": "Coursier Express Lyon", "url": None}]),
    ({"company": "UPS"}, [{"number": None, "company": "UPS", "url": None}]),
    (None, []),
])
def test_tracking_info_is_stored_per_number(sandbox, tracking, expected):
    order = create_order(sandbox, [("LUM-HEAD-400", 1)])
    payload = fulfil(sandbox, [{"fulfillmentOrderId": order["fulfillmentOrders"]["nodes"][0]["id"]}], tracking)
    assert payload["userErrors"] == []
    assert payload["fulfillment"]["trackingInfo"] == expected


@pytest.mark.parametrize("tracking, field", [
    ({"number": "1", "numbers": ["2"]}, ["fulfillment", "trackingInfo"]),
    ({"url": "https://t.example/1", "urls": ["https://t.example/2"], "number": "1"}, ["fulfillment", "trackingInfo"]),
    ({"url": "https://t.example/1"}, ["fulfillment", "trackingInfo", "number"]),
    ({"urls": ["https://t.example/1"]}, ["fulfillment", "trackingInfo", "numbers"]),
    ({"number": "1", "url": "not a url"}, ["fulfillment", "trackingInfo", "url"]),
])
def test_tracking_rules_of_the_schema_are_enforced(sandbox, tracking, field):
    order = create_order(sandbox, [("LUM-HEAD-400", 1)])
    payload = fulfil(sandbox, [{"fulfillmentOrderId": order["fulfillmentOrders"]["nodes"][0]["id"]}], tracking)
    assert payload["fulfillment"] is None
    assert payload["userErrors"] and payload["userErrors"][0]["field"] == field
    assert order_state(sandbox, order["id"])["displayFulfillmentStatus"] == "UNFULFILLED"


def test_fulfillment_orders_of_two_orders_are_refused_atomically(sandbox):
    a = create_order(sandbox, [("LUM-HEAD-400", 1)], "decathlon_fr:A")
    b = create_order(sandbox, [("LUM-HEAD-400", 1)], "decathlon_fr:B")
    payload = fulfil(sandbox, [{"fulfillmentOrderId": a["fulfillmentOrders"]["nodes"][0]["id"]},
                               {"fulfillmentOrderId": b["fulfillmentOrders"]["nodes"][0]["id"]}])
    assert payload["fulfillment"] is None and payload["userErrors"][0]["field"] == ["fulfillment"]
    assert sandbox.store.fulfillments == {}
    assert order_state(sandbox, a["id"])["fulfillmentOrders"]["nodes"][0]["lineItems"]["nodes"][0]["remainingQuantity"] == 1


def test_tracking_update_replaces_numbers_and_touches_the_order(sandbox):
    order = create_order(sandbox, [("LUM-HEAD-400", 1)])
    created = fulfil(sandbox, [{"fulfillmentOrderId": order["fulfillmentOrders"]["nodes"][0]["id"]}],
                     {"number": "111", "company": "GLS"})["fulfillment"]
    sandbox.store.order_record(order["id"])["updatedAt"] = "2020-01-01T00:00:00Z"
    updated = ok(sandbox.graphql(UPDATE_TRACKING, {"id": created["id"], "tracking": {"numbers": ["222", "333"], "company": "DPD"}}))
    payload = updated["fulfillmentTrackingInfoUpdate"]
    assert payload["userErrors"] == []
    assert [t["number"] for t in payload["fulfillment"]["trackingInfo"]] == ["222", "333"]
    assert {t["company"] for t in payload["fulfillment"]["trackingInfo"]} == {"DPD"}
    assert order_state(sandbox, order["id"])["updatedAt"] > "2020-01-01T00:00:00Z"

    unknown = ok(sandbox.graphql(UPDATE_TRACKING, {"id": "gid://shopify/Fulfillment/1", "tracking": {"number": "1"}}))
    assert unknown["fulfillmentTrackingInfoUpdate"] == {
        "fulfillment": None, "userErrors": [{"field": ["fulfillmentId"], "message": "Fulfillment does not exist."}]}


def test_sweep_query_finds_orders_updated_since_a_time_with_their_fulfilments(sandbox):
    shipped = create_order(sandbox, [("ALP-TRAIL-42", 1)], "decathlon_fr:SHIPPED")
    untouched = create_order(sandbox, [("ALP-TRAIL-42", 1)], "decathlon_fr:UNTOUCHED")
    for order in (shipped, untouched):  # both created long ago
        sandbox.store.order_record(order["id"])["updatedAt"] = "2020-01-01T00:00:00Z"
    fulfil(sandbox, [{"fulfillmentOrderId": shipped["fulfillmentOrders"]["nodes"][0]["id"]}], {"number": "9", "company": "UPS"})

    nodes = ok(sandbox.graphql(SWEEP, {"q": "updated_at:>'2021-01-01T00:00:00Z'"}))["orders"]["nodes"]
    assert [n["id"] for n in nodes] == [shipped["id"]]
    (fulfillment,) = nodes[0]["fulfillments"]
    assert fulfillment["status"] == "SUCCESS" and fulfillment["trackingInfo"][0]["number"] == "9"
    assert fulfillment["createdAt"] == fulfillment["updatedAt"] == nodes[0]["updatedAt"]
    line = fulfillment["fulfillmentLineItems"]["nodes"][0]["lineItem"]
    assert line["customAttributes"] == [{"key": LINE_ID_PROPERTY, "value": "decathlon_fr:SHIPPED-1"}]

    read = ok(sandbox.graphql("query($id: ID!) { order(id: $id) { none: fulfillments(first: 5, query: \"created_at:<'2021-01-01'\") "
                              "{ id } all: fulfillments(first: 5) { id } } }", {"id": shipped["id"]}))["order"]
    assert read["none"] == [] and len(read["all"]) == 1
