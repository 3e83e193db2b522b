"""Fulfilment order records: the one Shopify creates with every order, the ones a hold splits off, and what
their state means for the order (line items' fulfillable quantities, the order's fulfilment status).

"Shopify creates fulfillment orders automatically when an order is created. It is not possible to
manually create fulfillment orders." (FulfillmentOrder description): new ones come only from splits.
"""

from mirakl_pipelines.sandbox.shopify.addresses import fulfillment_order_destination
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore

FULFILLABLE_STATUSES = ("OPEN", "IN_PROGRESS")
DONE_STATUSES = ("CLOSED", "CANCELLED")
FRESH_FO_ACTIONS = ("CREATE_FULFILLMENT", "MOVE", "HOLD", "SPLIT")  # captured on a fresh fulfilment order (2025-01)
HELD_FO_ACTIONS = ("RELEASE_HOLD", "HOLD", "MOVE")  # captured on an ON_HOLD fulfilment order (2026-04)
HOLD_LIMIT_FO_ACTIONS = ("RELEASE_HOLD", "MOVE")  # captured once the app's 10 holds are placed


def supported_actions(actions) -> list[dict]:
    return [{"action": action, "externalUrl": None} for action in actions]


def new_fulfillment_order(store: ShopifyStore, order: dict, lines: list[tuple[dict, int]], created: str,
                          *, fulfilled: bool = False) -> dict:
    """A fulfilment order at the store's one location for (line item, quantity) pairs; CLOSED when `fulfilled`."""
    fo_id, _ = store.new_id("FulfillmentOrder")
    location = store.location
    return {
        "id": fo_id, "orderId": order["id"], "orderName": order["name"], "orderProcessedAt": order["processedAt"],
        "status": "CLOSED" if fulfilled else "OPEN", "requestStatus": "UNSUBMITTED",
        "supportedActions": [] if fulfilled else supported_actions(FRESH_FO_ACTIONS),
        "assignedLocation": {"name": location["name"], "countryCode": location["_countryCode"], "address1": None,
                             "address2": None, "city": None, "province": None, "zip": None, "phone": None,
                             "location": location},
        "destination": fulfillment_order_destination(store, order["shippingAddress"], order["email"]),
        "deliveryMethod": {"methodType": "SHIPPING"}, "channelId": None,
        "fulfillAt": created, "fulfillBy": None, "fulfillmentHolds": [], "merchantRequests": [],
        "createdAt": created, "updatedAt": created, "fulfillments": [],
        "lineItems": [fulfillment_order_line(store, line, quantity, 0 if fulfilled else quantity)
                      for line, quantity in lines],
    }


def fulfillment_order_line(store: ShopifyStore, line: dict, total: int, remaining: int) -> dict:
    variant = store.variant_record(line["_variantId"]) if line["_variantId"] else None
    fo_line_id, _ = store.new_id("FulfillmentOrderLineItem")
    return {
        "id": fo_line_id, "totalQuantity": total, "remainingQuantity": remaining,
        "sku": line["sku"], "productTitle": line["title"], "variantTitle": line["variantTitle"], "vendor": line["vendor"],
        "inventoryItemId": variant["inventoryItem"]["id"] if variant else None,
        "requiresShipping": line["requiresShipping"], "originalUnitPriceSet": line["originalUnitPriceSet"],
        "financialSummaries": [], "warnings": [],
        "lineItemId": line["id"], "_variantId": line["_variantId"],
    }


def add_fulfillment_order(store: ShopifyStore, order: dict, fulfillment_order: dict) -> None:
    order["fulfillmentOrders"].append(fulfillment_order)
    store.fulfillment_orders[fulfillment_order["id"]] = fulfillment_order


def refresh_fulfillment_state(store: ShopifyStore, order: dict) -> None:
    """Line items' fulfillable quantities and the order's displayFulfillmentStatus, from its fulfilment orders.

    Held units are not fulfillable (recorded: holding 2 of 5 units leaves `fulfillableQuantity` 3); an order
    whose pending fulfilment orders are all held shows ON_HOLD (recorded).
    """
    fulfillable: dict[str, int] = {line["id"]: 0 for line in order["lineItems"]}
    for fo in order["fulfillmentOrders"]:
        if fo["status"] in FULFILLABLE_STATUSES:
            for fo_line in fo["lineItems"]:
                fulfillable[fo_line["lineItemId"]] += fo_line["remainingQuantity"]
    for line in order["lineItems"]:
        line["fulfillableQuantity"] = fulfillable[line["id"]]
    lines = order["lineItems"]
    if any(line["unfulfilledQuantity"] < line["quantity"] for line in lines):
        fully = all(line["unfulfilledQuantity"] == 0 for line in lines)
        order["displayFulfillmentStatus"] = "FULFILLED" if fully else "PARTIALLY_FULFILLED"
        return
    pending = [fo for fo in order["fulfillmentOrders"] if fo["status"] not in DONE_STATUSES]
    order["displayFulfillmentStatus"] = \
        "ON_HOLD" if pending and all(fo["status"] == "ON_HOLD" for fo in pending) else "UNFULFILLED"
