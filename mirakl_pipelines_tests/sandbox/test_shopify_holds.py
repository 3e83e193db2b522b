"""fulfillmentOrderHold / fulfillmentOrderReleaseHold on the sandbox store over loopback HTTP, and what holds
mean for fulfillmentCreate and the warehouse.

The expected shapes and messages are those of real responses recorded by airhorns/shopify-draft-proxy
(fixtures/conformance/harry-test-heelo.myshopify.com/2026-04/shipping-fulfillments/fulfillment-order-hold-*.json,
fulfillment-order-release-hold-selective.json); those files are not in ../shared, so they are quoted here.
"""

from datetime import datetime, timedelta, timezone

import pytest

from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
from mirakl_pipelines.shopify.models import LINE_ID_PROPERTY
from mirakl_pipelines_tests.sandbox.conftest import ok

FO_FIELDS = """id status supportedActions { action }
  fulfillmentHolds { id handle reason reasonNotes displayReason heldByApp { id } heldByRequestingApp }
  lineItems(first: 10) { nodes { id totalQuantity remainingQuantity lineItem { id quantity fulfillableQuantity } } }"""
CREATE = f"""mutation($order: OrderCreateOrderInput!) {{ orderCreate(order: $order) {{
  order {{ id fulfillmentOrders(first: 5) {{ nodes {{ {FO_FIELDS} }} }} }} userErrors {{ field message }} }} }}"""
HOLD = f"""mutation($id: ID!, $hold: FulfillmentOrderHoldInput!) {{ fulfillmentOrderHold(id: $id, fulfillmentHold: $hold) {{
  fulfillmentHold {{ id handle reason reasonNotes displayReason heldByRequestingApp }}
  fulfillmentOrder {{ {FO_FIELDS} }} remainingFulfillmentOrder {{ {FO_FIELDS} }}
  userErrors {{ field message code }} }} }}"""
RELEASE = f"""mutation($id: ID!, $holdIds: [ID!]) {{ fulfillmentOrderReleaseHold(id: $id, holdIds: $holdIds) {{
  fulfillmentOrder {{ {FO_FIELDS} }} userErrors {{ field message code }} }} }}"""
ORDER = f"""query($id: ID!) {{ order(id: $id) {{ displayFulfillmentStatus
  lineItems(first: 10) {{ nodes {{ quantity fulfillableQuantity unfulfilledQuantity }} }}
  fulfillmentOrders(first: 10) {{ nodes {{ {FO_FIELDS} }} }} }} }}"""
FULFIL = """mutation($fulfillment: FulfillmentInput!) { fulfillmentCreate(fulfillment: $fulfillment) {
  fulfillment { id } userErrors { field message } } }"""
HELD_ACTIONS = [{"action": "RELEASE_HOLD"}, {"action": "HOLD"}, {"action": "MOVE"}]  # recorded
FRESH_ACTIONS = [{"action": "CREATE_FULFILLMENT"}, {"action": "MOVE"}, {"action": "HOLD"}, {"action": "SPLIT"}]


@pytest.fixture()
def sandbox(catalogue_store):
    return catalogue_store


def create_order(sandbox, lines=(("ALP-TRAIL-42", 5),), source="MKP-H1") -> tuple[str, dict]:
    """(order id, its one fulfilment order)."""
    order = {"sourceIdentifier": source, "lineItems": [
        {"variantId": sandbox.store.variant_by_sku(sku)["id"], "quantity": quantity,
         "properties": [{"name": LINE_ID_PROPERTY, "value": f"{source}-{n + 1}"}]} for n, (sku, quantity) in enumerate(lines)]}
    created = ok(sandbox.graphql(CREATE, {"order": order}))["orderCreate"]["order"]
    return created["id"], created["fulfillmentOrders"]["nodes"][0]


def hold(sandbox, fo_id: str, handle: str, lines: list[tuple[str, int]] | None = None, reason="OTHER") -> dict:
    held = {"reason": reason, "reasonNotes": f"notes {handle}", "handle": handle, "notifyMerchant": False}
    if lines is not None:
        held["fulfillmentOrderLineItems"] = [{"id": i, "quantity": q} for i, q in lines]
    return ok(sandbox.graphql(HOLD, {"id": fo_id, "hold": held}))["fulfillmentOrderHold"]


def release(sandbox, fo_id: str, hold_ids: list[str] | None) -> dict:
    return ok(sandbox.graphql(RELEASE, {"id": fo_id, "holdIds": hold_ids}))["fulfillmentOrderReleaseHold"]


def order_state(sandbox, order_id: str) -> dict:
    return ok(sandbox.graphql(ORDER, {"id": order_id}))["order"]


def later() -> datetime:
    return datetime.now(timezone.utc) + timedelta(days=1)


def test_a_hold_on_the_whole_fulfillment_order(sandbox):
    order_id, fo = create_order(sandbox)
    payload = hold(sandbox, fo["id"], "mirakl-cancel")
    assert payload["userErrors"] == [] and payload["remainingFulfillmentOrder"] is None
    assert {k: v for k, v in payload["fulfillmentHold"].items() if k != "id"} == {
        "handle": "mirakl-cancel", "reason": "OTHER", "reasonNotes": "notes mirakl-cancel", "displayReason": "Other",
        "heldByRequestingApp": True}
    held = payload["fulfillmentOrder"]
    assert held["id"] == fo["id"] and held["status"] == "ON_HOLD" and held["supportedActions"] == HELD_ACTIONS
    assert held["fulfillmentHolds"][0]["id"] == payload["fulfillmentHold"]["id"]
    assert held["fulfillmentHolds"][0]["heldByApp"] is None
    assert held["lineItems"]["nodes"][0]["lineItem"]["fulfillableQuantity"] == 0  # held units are not fulfillable
    assert order_state(sandbox, order_id)["displayFulfillmentStatus"] == "ON_HOLD"


def test_a_hold_on_some_line_items_splits_the_fulfillment_order(sandbox):
    order_id, fo = create_order(sandbox, [("ALP-TRAIL-42", 5), ("LUM-HEAD-400", 2)])
    shoe, lamp = fo["lineItems"]["nodes"]
    payload = hold(sandbox, fo["id"], "cancel-shoes", [(shoe["id"], 2)])
    assert payload["userErrors"] == []
    held, rest = payload["fulfillmentOrder"], payload["remainingFulfillmentOrder"]
    # As recorded: the fulfilment order given keeps the held units (same line id) and goes ON_HOLD…
    assert held["id"] == fo["id"] and held["status"] == "ON_HOLD"
    assert [(n["id"], n["totalQuantity"], n["remainingQuantity"]) for n in held["lineItems"]["nodes"]] == [(shoe["id"], 2, 2)]
    # …the rest moves to a new OPEN one with new line ids.
    assert rest["id"] != fo["id"] and rest["status"] == "OPEN" and rest["fulfillmentHolds"] == []
    assert rest["supportedActions"] == FRESH_ACTIONS
    assert [(n["lineItem"]["id"], n["totalQuantity"], n["remainingQuantity"]) for n in rest["lineItems"]["nodes"]] == [
        (shoe["lineItem"]["id"], 3, 3), (lamp["lineItem"]["id"], 2, 2)]
    assert {n["id"] for n in rest["lineItems"]["nodes"]}.isdisjoint({shoe["id"], lamp["id"]})
    state = order_state(sandbox, order_id)
    assert [n["fulfillableQuantity"] for n in state["lineItems"]["nodes"]] == [3, 2]  # recorded: 5 − 2 held
    assert [n["status"] for n in state["fulfillmentOrders"]["nodes"]] == ["ON_HOLD", "OPEN"]


def test_holding_every_remaining_unit_does_not_split(sandbox):
    _, fo = create_order(sandbox, [("ALP-TRAIL-42", 2)])
    line = fo["lineItems"]["nodes"][0]
    payload = hold(sandbox, fo["id"], "all-of-it", [(line["id"], 2)])
    assert payload["remainingFulfillmentOrder"] is None and payload["fulfillmentOrder"]["status"] == "ON_HOLD"


def test_hold_user_errors_are_the_recorded_ones(sandbox):
    _, fo = create_order(sandbox)
    line = fo["lineItems"]["nodes"][0]["id"]
    assert hold(sandbox, fo["id"], "appA-1", [(line, 2)])["userErrors"] == []
    refusals = {
        "duplicate handle": hold(sandbox, fo["id"], "appA-1"),
        "line items on a held order": hold(sandbox, fo["id"], "appA-2", [(line, 1)]),
        "zero quantity": hold(sandbox, fo["id"], "appA-13", [(line, 0)]),
        "same line twice": hold(sandbox, fo["id"], "appA-14", [(line, 1), (line, 1)]),
    }
    assert {case: payload["userErrors"] for case, payload in refusals.items()} == {
        "duplicate handle": [{"field": ["fulfillmentHold", "handle"], "code": "DUPLICATE_FULFILLMENT_HOLD_HANDLE",
                              "message": "The handle provided for the fulfillment hold is already in use by this app "
                                         "for another hold on this fulfillment order."}],
        "line items on a held order": [{"field": ["fulfillmentHold", "fulfillmentOrderLineItems"],
                                        "message": "The fulfillment order is not in a splittable state.",
                                        "code": "FULFILLMENT_ORDER_NOT_SPLITTABLE"}],
        "zero quantity": [{"field": ["fulfillmentHold", "fulfillmentOrderLineItems", "0", "quantity"],
                           "message": "You must select at least one item to place on partial hold.",
                           "code": "GREATER_THAN_ZERO"}],
        "same line twice": [{"field": ["fulfillmentHold", "fulfillmentOrderLineItems"],
                             "message": "must contain unique line item ids", "code": "DUPLICATED_FULFILLMENT_ORDER_LINE_ITEMS"}],
    }
    for payload in refusals.values():
        assert (payload["fulfillmentHold"], payload["fulfillmentOrder"], payload["remainingFulfillmentOrder"]) == (None,) * 3


def test_an_app_places_at_most_ten_holds(sandbox):
    _, fo = create_order(sandbox)
    for n in range(1, 11):
        payload = hold(sandbox, fo["id"], f"appA-{n}")
        assert payload["userErrors"] == []
    assert payload["fulfillmentOrder"]["supportedActions"] == [{"action": "RELEASE_HOLD"}, {"action": "MOVE"}]  # recorded
    assert hold(sandbox, fo["id"], "appA-11")["userErrors"] == [{
        "field": ["id"], "code": "FULFILLMENT_ORDER_HOLD_LIMIT_REACHED",
        "message": "The maximum number of fulfillment holds for this fulfillment order has been reached for this app. "
                   "An app can only have up to 10 holds on a single fulfillment order at any one time."}]


def test_closed_unknown_and_over_quantity_holds_are_refused(sandbox):
    _, fo = create_order(sandbox, [("LUM-HEAD-400", 1), ("ALP-MERINO-S", 1)])
    lamp, merino = fo["lineItems"]["nodes"]
    assert hold(sandbox, fo["id"], "too-many", [(lamp["id"], 2)])["userErrors"][0]["code"] == "INVALID_LINE_ITEM_QUANTITY"
    unknown = hold(sandbox, "gid://shopify/FulfillmentOrder/1", "x")["userErrors"]
    assert [(e["field"], e["code"]) for e in unknown] == [(["id"], "FULFILLMENT_ORDER_NOT_FOUND")]
    assert ok(sandbox.graphql(FULFIL, {"fulfillment": {"lineItemsByFulfillmentOrder": [
        {"fulfillmentOrderId": fo["id"]}]}}))["fulfillmentCreate"]["userErrors"] == []
    closed = hold(sandbox, fo["id"], "late")["userErrors"]
    assert [e["field"] for e in closed] == [["id"]] and "status= closed" in closed[0]["message"]


def test_fulfillment_create_refuses_a_held_fulfillment_order_like_a_closed_one(sandbox):
    _, fo = create_order(sandbox)
    hold(sandbox, fo["id"], "stop")
    refused = ok(sandbox.graphql(FULFIL, {"fulfillment": {"lineItemsByFulfillmentOrder": [
        {"fulfillmentOrderId": fo["id"]}]}}))["fulfillmentCreate"]
    number = fo["id"].rsplit("/", 1)[1]
    # The recorded format, with Shopify's lower-case status: "… has an unfulfillable status= closed."
    assert refused == {"fulfillment": None, "userErrors": [
        {"field": ["fulfillment"], "message": f"Fulfillment order {number} has an unfulfillable status= on_hold."}]}
    assert sandbox.store.fulfillments == {}


def test_releasing_holds_one_by_one_reopens_after_the_last(sandbox):
    order_id, fo = create_order(sandbox)
    first = hold(sandbox, fo["id"], "first")["fulfillmentHold"]["id"]
    second = hold(sandbox, fo["id"], "second")["fulfillmentHold"]["id"]
    still_held = release(sandbox, fo["id"], [first])
    assert still_held["userErrors"] == []
    assert still_held["fulfillmentOrder"]["status"] == "ON_HOLD"  # recorded: the other hold stays
    assert [h["handle"] for h in still_held["fulfillmentOrder"]["fulfillmentHolds"]] == ["second"]
    reopened = release(sandbox, fo["id"], [second])["fulfillmentOrder"]
    assert (reopened["status"], reopened["fulfillmentHolds"], reopened["supportedActions"]) == ("OPEN", [], FRESH_ACTIONS)
    assert reopened["lineItems"]["nodes"][0]["lineItem"]["fulfillableQuantity"] == 5
    assert order_state(sandbox, order_id)["displayFulfillmentStatus"] == "UNFULFILLED"
    # Ids that are not (or no longer) on the fulfilment order are ignored: a second release changes nothing.
    assert release(sandbox, fo["id"], [second]) == {"fulfillmentOrder": reopened, "userErrors": []}


def test_release_without_ids_releases_every_hold(sandbox):
    _, fo = create_order(sandbox)
    hold(sandbox, fo["id"], "a")
    hold(sandbox, fo["id"], "b")
    assert release(sandbox, fo["id"], None)["fulfillmentOrder"]["status"] == "OPEN"
    assert [(e["field"], e["code"]) for e in release(sandbox, "gid://shopify/FulfillmentOrder/1", None)["userErrors"]] == [
        (["id"], "FULFILLMENT_ORDER_NOT_FOUND")]


def test_the_warehouse_ships_only_the_unheld_part_then_the_rest_once_released(sandbox):
    order_id, fo = create_order(sandbox, [("ALP-TRAIL-42", 3), ("LUM-HEAD-400", 1)])
    shoe = fo["lineItems"]["nodes"][0]
    payload = hold(sandbox, fo["id"], "cancel-one-shoe", [(shoe["id"], 1)])
    rest_id = payload["remainingFulfillmentOrder"]["id"]
    warehouse = Warehouse(sandbox.store, seed=4, delay_seconds=0, partial_share=0, unknown_carrier_share=0)
    [parcel] = warehouse.step(later())
    assert (parcel.fulfillment_order_id, parcel.quantity, parcel.partial) == (rest_id, 3, False)
    assert warehouse.step(later()) == []  # the held unit waits
    state = order_state(sandbox, order_id)
    assert state["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert [n["unfulfilledQuantity"] for n in state["lineItems"]["nodes"]] == [1, 0]

    release(sandbox, fo["id"], [payload["fulfillmentHold"]["id"]])
    [last] = warehouse.step(later())
    assert (last.fulfillment_order_id, last.quantity) == (fo["id"], 1)
    assert order_state(sandbox, order_id)["displayFulfillmentStatus"] == "FULFILLED"


def test_the_warehouse_never_ships_a_held_order(sandbox):
    _, held_fo = create_order(sandbox, source="MKP-CANCELLED")
    _, open_fo = create_order(sandbox, source="MKP-OK")
    hold(sandbox, held_fo["id"], "mirakl-cancellation")
    shipped = Warehouse(sandbox.store, seed=1, delay_seconds=0).step(later())
    assert [s.fulfillment_order_id for s in shipped] == [open_fo["id"]]
    assert sandbox.store.fulfillment_orders[held_fo["id"]]["fulfillments"] == []
