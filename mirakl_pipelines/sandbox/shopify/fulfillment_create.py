"""`fulfillmentCreate` and `fulfillmentTrackingInfoUpdate`: fulfilment orders become fulfilments.

Recorded userErrors (fixtures/…fulfillment-create-preconditions.json) are reproduced word for word:
a closed fulfilment order, an unknown one, a quantity above what remains, a quantity ≤ 0. The
others are marked "not captured" and worded after Shopify's style. A fully fulfilled fulfilment
order becomes CLOSED; a partly fulfilled one IN_PROGRESS with its remaining quantities (Shopify's
lifecycle: "When an order undergoes partial fulfillment, the FulfillmentOrderStatus can change to
IN_PROGRESS"), still accepting fulfilments. A held fulfilment order (ON_HOLD, fulfillment_holds.py) is
refused like a closed one, in the recorded format ("… has an unfulfillable status= on_hold."). The
warehouse fulfils through this same function.
"""

from urllib.parse import urlparse

from mirakl_pipelines.sandbox.shopify.fulfillment_orders import FULFILLABLE_STATUSES, refresh_fulfillment_state
from mirakl_pipelines.sandbox.shopify.money import money_bag, to_decimal
from mirakl_pipelines.sandbox.shopify.rest_payloads import fulfillment_payload, numeric_id, order_payload
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, utc_now_iso
from mirakl_pipelines.sandbox.shopify.tracking import shopify_tracking_url

MAX_LINE_ITEMS = 512  # "Accepts a maximum of 512 line items." (FulfillmentOrderLineItemsInput)
INVALID_QUANTITY = "Invalid fulfillment order line item quantity requested."


def _error(field: list, message: str) -> dict:
    # UserError has no `code`; list indexes in `field` are strings (recorded).
    return {"field": [str(part) for part in field], "message": message}


def fulfillment_create(store: ShopifyStore, fulfillment_input: dict, message: str | None = None) -> dict:
    """Run one `fulfillmentCreate`: the payload `{fulfillment, userErrors}`."""
    with store.lock:
        groups = fulfillment_input.get("lineItemsByFulfillmentOrder") or []
        errors = _input_errors(groups) + tracking_errors(fulfillment_input.get("trackingInfo"), ["fulfillment", "trackingInfo"])
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        plan, errors = _plan(store, groups)
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        fulfillment = _apply(store, plan, fulfillment_input, message)
        return {"fulfillment": fulfillment, "userErrors": []}


def fulfillment_tracking_info_update(store: ShopifyStore, fulfillment_id: str, tracking_input: dict,
                                     notify_customer: bool | None = None) -> dict:
    """Replace a fulfilment's tracking numbers, URLs and company (recorded: all of them are replaced)."""
    with store.lock:
        fulfillment = store.fulfillments.get(fulfillment_id)
        if fulfillment is None:
            # not captured: the message
            return {"fulfillment": None, "userErrors": [_error(["fulfillmentId"], "Fulfillment does not exist.")]}
        errors = tracking_errors(tracking_input, ["trackingInfoInput"])
        if errors:
            return {"fulfillment": None, "userErrors": errors}
        now = utc_now_iso()
        fulfillment["trackingInfo"] = tracking_entries(tracking_input)
        fulfillment["updatedAt"] = now
        order = store.order_record(fulfillment["orderId"])
        order["updatedAt"] = now
        event = store.new_event_id()
        store.publish("fulfillments/update", lambda: fulfillment_payload(store, fulfillment), event)
        store.publish("orders/updated", lambda: order_payload(store, order), event)
        return {"fulfillment": fulfillment, "userErrors": []}


# --- tracking -------------------------------------------------------------------------------------

def tracking_errors(tracking: dict | None, path: list) -> list[dict]:
    """The FulfillmentTrackingInput rules of the schema ("If you provide the `url` field, you should not…")."""
    if not tracking:
        return []
    errors = []
    # not captured: every message below (the rules are the schema's)
    if tracking.get("number") and tracking.get("numbers"):
        errors.append(_error(path, "Provide either number or numbers, not both."))
    if tracking.get("url") and tracking.get("urls"):
        errors.append(_error(path, "Provide either url or urls, not both."))
    if tracking.get("url") and not tracking.get("number"):
        errors.append(_error(path + ["number"], "Tracking number is required when a tracking url is provided."))
    if tracking.get("urls") and not tracking.get("numbers"):
        errors.append(_error(path + ["numbers"], "Tracking numbers are required when tracking urls are provided."))
    if tracking.get("urls") and tracking.get("numbers") and len(tracking["urls"]) > len(tracking["numbers"]):
        errors.append(_error(path + ["urls"], "There are more tracking urls than tracking numbers."))
    for key, value in [("url", tracking.get("url"))] + [(f"urls.{i}", u) for i, u in enumerate(tracking.get("urls") or [])]:
        if value is not None and not _is_web_url(value):
            errors.append(_error(path + key.split("."), f"Tracking url {value!r} is not a valid URL."))
    return errors


def _is_web_url(value: str) -> bool:
    parsed = urlparse(str(value))
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def tracking_entries(tracking: dict | None) -> list[dict]:
    """FulfillmentTrackingInfo records: one per number, the company on each, URLs by position or built by Shopify."""
    tracking = tracking or {}
    company = tracking.get("company")
    numbers = list(tracking.get("numbers") or ([tracking["number"]] if tracking.get("number") else []))
    urls = list(tracking.get("urls") or ([tracking["url"]] if tracking.get("url") else []))
    if not numbers:
        return [{"number": None, "company": company, "url": None}] if company else []
    return [{"number": number, "company": company,
             "url": urls[i] if i < len(urls) else shopify_tracking_url(company, number)}
            for i, number in enumerate(numbers)]


# --- validation -----------------------------------------------------------------------------------

def _input_errors(groups: list[dict]) -> list[dict]:
    if not groups:
        # not captured: the message
        return [_error(["fulfillment", "lineItemsByFulfillmentOrder"], "Line items by fulfillment order can't be blank")]
    errors = []
    count = 0
    for g, group in enumerate(groups):
        for i, item in enumerate(group.get("fulfillmentOrderLineItems") or []):
            count += 1
            if item["quantity"] <= 0:
                errors.append(_error(["fulfillment", "lineItemsByFulfillmentOrder", g, "fulfillmentOrderLineItems", i,
                                      "quantity"], "Quantity must be greater than 0"))
    if count > MAX_LINE_ITEMS:
        # not captured: the message
        errors.append(_error(["fulfillment", "lineItemsByFulfillmentOrder"],
                             f"A fulfillment accepts at most {MAX_LINE_ITEMS} line items, {count} given"))
    return errors


def _plan(store: ShopifyStore, groups: list[dict]) -> tuple[list[tuple[dict, dict, int]], list[dict]]:
    """[(fulfilment order, fulfilment order line, quantity)] to fulfil, or userErrors (nothing is changed then)."""
    plan: list[tuple[dict, dict, int]] = []
    order_ids = set()
    for group in groups:
        fo = store.fulfillment_orders.get(group["fulfillmentOrderId"])
        if fo is None:
            return [], [_error(["fulfillment"], "Fulfillment order does not exist.")]
        if fo["status"] not in FULFILLABLE_STATUSES:
            return [], [_error(["fulfillment"],
                               f"Fulfillment order {numeric_id(fo['id'])} has an unfulfillable status= {fo['status'].lower()}.")]
        order_ids.add(fo["orderId"])
        requested = group.get("fulfillmentOrderLineItems")
        lines_by_id = {line["id"]: line for line in fo["lineItems"]}
        if not requested:  # "If left blank, all line items of the fulfillment order will be fulfilled."
            plan += [(fo, line, line["remainingQuantity"]) for line in fo["lineItems"] if line["remainingQuantity"] > 0]
            continue
        wanted: dict[str, int] = {}
        for item in requested:
            wanted[item["id"]] = wanted.get(item["id"], 0) + item["quantity"]
        for line_id, quantity in wanted.items():
            line = lines_by_id.get(line_id)
            # A line of another fulfilment order is not captured; the recorded over-quantity message is the closest.
            if line is None or quantity > line["remainingQuantity"]:
                return [], [_error(["fulfillment"], INVALID_QUANTITY)]
            plan.append((fo, line, quantity))
    if len(order_ids) > 1:
        # not captured: the message (the rule is the schema's: same order, same location)
        return [], [_error(["fulfillment"], "All fulfillment orders must belong to the same order.")]
    if not plan:
        return [], [_error(["fulfillment"], INVALID_QUANTITY)]
    return plan, []


# --- applying -------------------------------------------------------------------------------------

def _apply(store: ShopifyStore, plan: list[tuple[dict, dict, int]], fulfillment_input: dict, message: str | None) -> dict:
    now = utc_now_iso()
    order = store.order_record(plan[0][0]["orderId"])
    currency, presentment = order["currencyCode"], order["presentmentCurrencyCode"]
    per_line: dict[str, int] = {}
    for fo, fo_line, quantity in plan:
        fo_line["remainingQuantity"] -= quantity
        per_line[fo_line["lineItemId"]] = per_line.get(fo_line["lineItemId"], 0) + quantity
    fulfillment_lines = []
    for line_id, quantity in per_line.items():
        line = store.line_items[line_id]
        line["unfulfilledQuantity"] -= quantity
        unit = line["originalUnitPriceSet"]
        total = money_bag(to_decimal(unit["shopMoney"]["amount"], "unit price") * quantity, currency,
                          to_decimal(unit["presentmentMoney"]["amount"], "unit price") * quantity, presentment)
        item_id, _ = store.new_id("FulfillmentLineItem")
        fulfillment_lines.append({"id": item_id, "quantity": quantity, "lineItemId": line_id,
                                  "originalTotalSet": total, "discountedTotalSet": total})
    fulfillment_id, legacy = store.new_id("Fulfillment")
    fulfillment = {
        "id": fulfillment_id, "legacyResourceId": legacy,
        "name": f"{order['name']}.{len(order['fulfillments']) + 1}",
        "status": "SUCCESS", "displayStatus": "FULFILLED",
        "createdAt": now, "updatedAt": now, "deliveredAt": None, "inTransitAt": None, "estimatedDeliveryAt": None,
        "requiresShipping": any(store.line_items[i]["requiresShipping"] for i in per_line),
        "totalQuantity": sum(per_line.values()),
        "trackingInfo": tracking_entries(fulfillment_input.get("trackingInfo")),
        "fulfillmentLineItems": fulfillment_lines,
        "location": store.location, "originAddress": fulfillment_input.get("originAddress"), "service": None,
        "orderId": order["id"], "_fulfillmentOrderIds": sorted({fo["id"] for fo, _, _ in plan}),
        "_notifyCustomer": bool(fulfillment_input.get("notifyCustomer")), "_message": message,
    }
    for fo_id in fulfillment["_fulfillmentOrderIds"]:
        fo = store.fulfillment_orders[fo_id]
        fo["fulfillments"].append(fulfillment)
        fo["updatedAt"] = now
        if all(line["remainingQuantity"] == 0 for line in fo["lineItems"]):
            fo["status"], fo["supportedActions"] = "CLOSED", []
        else:
            fo["status"] = "IN_PROGRESS"
    order["fulfillments"].append(fulfillment)
    refresh_fulfillment_state(store, order)
    fully = order["displayFulfillmentStatus"] == "FULFILLED"
    order["updatedAt"] = now
    store.fulfillments[fulfillment_id] = fulfillment

    event = store.new_event_id()  # one merchant action: the same X-Shopify-Event-Id on every topic
    store.publish("fulfillments/create", lambda: fulfillment_payload(store, fulfillment), event)
    store.publish("orders/updated", lambda: order_payload(store, order), event)
    store.publish("orders/fulfilled" if fully else "orders/partially_fulfilled", lambda: order_payload(store, order), event)
    return fulfillment
