"""`fulfillmentOrderHold` and `fulfillmentOrderReleaseHold`: stopping a fulfilment order from shipping, and letting it go.

Recorded real responses (airhorns/shopify-draft-proxy, fixtures/conformance/harry-test-heelo.myshopify.com/
2026-04/shipping-fulfillments/fulfillment-order-hold-validation.json, …-hold-multi-line.json and
…-release-hold-selective.json; not copied to ../shared) that this module reproduces:
- a hold on the whole fulfilment order: status ON_HOLD, supportedActions RELEASE_HOLD, HOLD, MOVE
  (RELEASE_HOLD, MOVE once the app holds 10), `remainingFulfillmentOrder` null;
- a hold on some of its line items SPLITS it: the fulfilment order given keeps the held quantities and
  goes ON_HOLD (`fulfillmentOrder`); the unheld rest moves to a new OPEN fulfilment order with new line
  item ids (`remainingFulfillmentOrder`);
- held units leave LineItem.fulfillableQuantity, and an order whose pending fulfilment orders are all
  held shows ON_HOLD;
- these userErrors, word for word: DUPLICATE_FULFILLMENT_HOLD_HANDLE, FULFILLMENT_ORDER_NOT_SPLITTABLE
  (line items on a held fulfilment order), FULFILLMENT_ORDER_HOLD_LIMIT_REACHED, GREATER_THAN_ZERO,
  DUPLICATED_FULFILLMENT_ORDER_LINE_ITEMS;
- releasing some holds keeps ON_HOLD with the others; releasing the last one reopens it.
The rest is marked "not captured" where it is decided. Holds do not send webhooks here (Shopify's
fulfillment_orders/* topics are not among the sandbox's deliveries).
"""

from mirakl_pipelines.sandbox.shopify.fulfillment_orders import (
    FRESH_FO_ACTIONS,
    HELD_FO_ACTIONS,
    HOLD_LIMIT_FO_ACTIONS,
    add_fulfillment_order,
    new_fulfillment_order,
    refresh_fulfillment_state,
    supported_actions,
)
from mirakl_pipelines.sandbox.shopify.order_create import user_error
from mirakl_pipelines.sandbox.shopify.rest_payloads import numeric_id
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, utc_now_iso

HOLD_LIMIT = 10  # "Each app can place up to 10 active holds per fulfillment order." (SDL)
HANDLE_MAX_LENGTH = 64  # "This field cannot exceed 64 characters." (SDL)
HOLDABLE_STATUSES = ("OPEN", "IN_PROGRESS", "SCHEDULED", "ON_HOLD")  # not captured: which statuses accept a hold
NOT_FOUND = "Fulfillment order does not exist."  # the recorded fulfillmentCreate wording; not captured for holds
LINES = ["fulfillmentHold", "fulfillmentOrderLineItems"]


def fulfillment_order_hold(store: ShopifyStore, fulfillment_order_id: str, hold_input: dict) -> dict:
    """Run one `fulfillmentOrderHold`: the payload `{fulfillmentHold, fulfillmentOrder, remainingFulfillmentOrder, userErrors}`."""
    with store.lock:
        fo = store.fulfillment_orders.get(fulfillment_order_id)
        errors = _hold_errors(fo, hold_input) if fo else [user_error(["id"], NOT_FOUND, "FULFILLMENT_ORDER_NOT_FOUND")]
        if errors:
            return {"fulfillmentHold": None, "fulfillmentOrder": None, "remainingFulfillmentOrder": None,
                    "userErrors": errors}
        now = utc_now_iso()
        order = store.order_record(fo["orderId"])
        held = {item["id"]: item["quantity"] for item in hold_input.get("fulfillmentOrderLineItems") or []}
        remaining = _split_off_unheld(store, order, fo, held, now) if held else None
        hold_id, _ = store.new_id("FulfillmentHold")
        reason = hold_input["reason"]
        hold = {"id": hold_id, "handle": hold_input.get("handle") or "", "reason": reason,
                "reasonNotes": hold_input.get("reasonNotes"), "displayReason": display_reason(reason),
                "heldByApp": None,  # recorded null (the App needs the read_apps scope)
                "heldByRequestingApp": True,  # the sandbox has one app: the caller
                "_externalId": hold_input.get("externalId"), "_notifyMerchant": bool(hold_input.get("notifyMerchant"))}
        fo["fulfillmentHolds"].append(hold)
        _mark_held(fo, now)
        refresh_fulfillment_state(store, order)
        order["updatedAt"] = now
        return {"fulfillmentHold": hold, "fulfillmentOrder": fo, "remainingFulfillmentOrder": remaining, "userErrors": []}


def fulfillment_order_release_hold(store: ShopifyStore, fulfillment_order_id: str, hold_ids: list[str] | None = None,
                                   external_id: str | None = None) -> dict:
    """Run one `fulfillmentOrderReleaseHold`: release `hold_ids` (all holds when None); the payload `{fulfillmentOrder, userErrors}`.

    "Holds will only be released if they belong to the fulfillment order specified by the `id` argument"
    (SDL): other ids are ignored, so releasing twice is harmless. `external_id` (the releasing system) is
    accepted and not kept: nothing reads it back.
    """
    with store.lock:
        fo = store.fulfillment_orders.get(fulfillment_order_id)
        if fo is None:
            # not captured: the message (the code is the schema's)
            return {"fulfillmentOrder": None, "userErrors": [user_error(["id"], NOT_FOUND, "FULFILLMENT_ORDER_NOT_FOUND")]}
        now = utc_now_iso()
        fo["fulfillmentHolds"] = [h for h in fo["fulfillmentHolds"] if hold_ids is not None and h["id"] not in hold_ids]
        if fo["status"] == "ON_HOLD":
            if fo["fulfillmentHolds"]:
                _mark_held(fo, now)
            else:
                # not captured: a fulfilment order with fulfilled units going back to IN_PROGRESS rather than OPEN;
                # the parts of a split stay apart after the release (no merge captured either)
                started = any(line["remainingQuantity"] < line["totalQuantity"] for line in fo["lineItems"])
                fo["status"] = "IN_PROGRESS" if started else "OPEN"
                fo["supportedActions"] = supported_actions(FRESH_FO_ACTIONS)
        fo["updatedAt"] = now
        order = store.order_record(fo["orderId"])
        refresh_fulfillment_state(store, order)
        order["updatedAt"] = now
        return {"fulfillmentOrder": fo, "userErrors": []}


def display_reason(reason: str) -> str:
    """FulfillmentHold.displayReason: "Other" is recorded for OTHER; the others are not captured (the enum in words)."""
    return reason.replace("_", " ").capitalize()


def _mark_held(fo: dict, now: str) -> None:
    fo["status"] = "ON_HOLD"
    at_limit = sum(h["heldByRequestingApp"] for h in fo["fulfillmentHolds"]) >= HOLD_LIMIT
    fo["supportedActions"] = supported_actions(HOLD_LIMIT_FO_ACTIONS if at_limit else HELD_FO_ACTIONS)
    fo["updatedAt"] = now


def _hold_errors(fo: dict, hold_input: dict) -> list[dict]:
    """The hold's userErrors, in the order the recording shows them (input, state, handle, limit)."""
    items = hold_input.get("fulfillmentOrderLineItems") or []
    errors = [user_error(LINES + [i, "quantity"], "You must select at least one item to place on partial hold.",
                         "GREATER_THAN_ZERO") for i, item in enumerate(items) if item["quantity"] <= 0]
    ids = [item["id"] for item in items]
    if len(set(ids)) != len(ids):
        errors.append(user_error(LINES, "must contain unique line item ids", "DUPLICATED_FULFILLMENT_ORDER_LINE_ITEMS"))
    if errors:
        return errors
    handle = hold_input.get("handle") or ""
    if len(handle) > HANDLE_MAX_LENGTH:
        # not captured: the message; no code of the schema's enum fits
        return [user_error(["fulfillmentHold", "handle"], f"Handle is too long (maximum is {HANDLE_MAX_LENGTH} characters)",
                           None)]
    if fo["status"] not in HOLDABLE_STATUSES:
        # not captured: worded after fulfillmentCreate's recorded "has an unfulfillable status= closed."
        return [user_error(["id"], f"Fulfillment order {numeric_id(fo['id'])} has an unholdable status= {fo['status'].lower()}.",
                           None)]
    if items and fo["status"] == "ON_HOLD":
        return [user_error(LINES, "The fulfillment order is not in a splittable state.", "FULFILLMENT_ORDER_NOT_SPLITTABLE")]
    own_holds = [h for h in fo["fulfillmentHolds"] if h["heldByRequestingApp"]]
    if any(h["handle"] == handle for h in own_holds):
        return [user_error(["fulfillmentHold", "handle"],
                           "The handle provided for the fulfillment hold is already in use by this app for another hold "
                           "on this fulfillment order.", "DUPLICATE_FULFILLMENT_HOLD_HANDLE")]
    if len(own_holds) >= HOLD_LIMIT:
        return [user_error(["id"], "The maximum number of fulfillment holds for this fulfillment order has been reached "
                                   "for this app. An app can only have up to 10 holds on a single fulfillment order at "
                                   "any one time.", "FULFILLMENT_ORDER_HOLD_LIMIT_REACHED")]
    remaining = {line["id"]: line["remainingQuantity"] for line in fo["lineItems"]}
    # not captured: the message for a line of another fulfilment order or above what remains (the code is the schema's)
    return [user_error(LINES + [i, "quantity"], "The line item quantity is invalid.", "INVALID_LINE_ITEM_QUANTITY")
            for i, item in enumerate(items) if item["quantity"] > remaining.get(item["id"], 0)]


def _split_off_unheld(store: ShopifyStore, order: dict, fo: dict, held: dict[str, int], now: str) -> dict | None:
    """Move the unheld remaining units of `fo` to a new OPEN fulfilment order (None when everything is held).

    `fo` keeps the held units (and what it already fulfilled, with its fulfilments).
    """
    rest = []
    for fo_line in fo["lineItems"]:
        unheld = fo_line["remainingQuantity"] - held.get(fo_line["id"], 0)
        if unheld:
            rest.append((store.line_items[fo_line["lineItemId"]], unheld))
            fo_line["totalQuantity"] -= unheld
            fo_line["remainingQuantity"] -= unheld
    if not rest:
        return None
    fo["lineItems"] = [line for line in fo["lineItems"] if line["totalQuantity"] > 0]
    remaining = new_fulfillment_order(store, order, rest, now)
    add_fulfillment_order(store, order, remaining)
    return remaining
