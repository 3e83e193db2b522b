"""`orderUpdate`: what a connector completes on an imported order (shipping address, note, attributes, metafields…).

Recorded (airhorns/shopify-draft-proxy fixtures/conformance/harry-test-heelo.myshopify.com/2026-04/orders/
orderUpdate-input-validation.json; not copied to ../shared): an input with nothing to update is refused
with `{"field": null, "message": "No valid update parameters have been provided"}`, an invalid phone with
`["phone"]: "Phone is invalid"`, a bad shipping address with one error per field (addresses.address_errors);
the order is returned every time, unchanged when refused. OrderInput has no billing address.

Not captured: the unknown-order message; an explicit null taken as "not given"; the destinations of the
fulfilment orders still to ship following the new shipping address.
"""

import phonenumbers

from mirakl_pipelines.sandbox.shopify.addresses import address_errors, fulfillment_order_destination, mailing_address
from mirakl_pipelines.sandbox.shopify.fulfillment_orders import DONE_STATUSES
from mirakl_pipelines.sandbox.shopify.order_create import DEFAULT_METAFIELD_NAMESPACE, metafield_record
from mirakl_pipelines.sandbox.shopify.rest_payloads import order_payload
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, utc_now_iso

# OrderInput fields the sandbox applies; localizationExtensions / localizedFields are accepted and not kept.
UPDATABLE = ("email", "phone", "note", "tags", "shippingAddress", "customAttributes", "metafields", "poNumber")
NOTHING_TO_UPDATE = "No valid update parameters have been provided"


def order_update(store: ShopifyStore, order_input: dict) -> dict:
    """Run one `orderUpdate`: the payload `{order, userErrors}` (UserError has no code)."""
    with store.lock:
        order = store.order_record(order_input["id"])
        if order is None:
            # not captured: the message
            return {"order": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
        updates = {key: value for key, value in order_input.items() if key in UPDATABLE and value is not None}
        errors = _errors(updates)
        if not updates:
            errors = [{"field": None, "message": NOTHING_TO_UPDATE}]
        if errors:
            return {"order": order, "userErrors": errors}
        now = utc_now_iso()
        for key in ("email", "phone", "note", "poNumber"):
            if key in updates:
                order[key] = updates[key]
        if "tags" in updates:
            order["tags"] = sorted({tag.strip() for tag in updates["tags"] if tag.strip()})
        if "customAttributes" in updates:
            order["customAttributes"] = [{"key": a["key"], "value": a["value"]} for a in updates["customAttributes"]]
        for metafield in updates.get("metafields") or []:
            _set_metafield(store, order, metafield, now)
        if "shippingAddress" in updates:
            order["shippingAddress"] = mailing_address(store, updates["shippingAddress"])
            for fo in order["fulfillmentOrders"]:
                if fo["status"] not in DONE_STATUSES:
                    fo["destination"] = fulfillment_order_destination(store, order["shippingAddress"], order["email"])
        order["updatedAt"] = now
        store.publish("orders/updated", lambda: order_payload(store, order))
        return {"order": order, "userErrors": []}


def _errors(updates: dict) -> list[dict]:
    errors = []
    if "phone" in updates and not _is_phone(updates["phone"]):
        errors.append({"field": ["phone"], "message": "Phone is invalid"})
    if "shippingAddress" in updates:
        errors += address_errors(updates["shippingAddress"], ["shippingAddress"])
    return errors


def _is_phone(value: str) -> bool:
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(value, None))  # E.164 expected (MailingAddressInput)
    except phonenumbers.NumberParseException:
        return False


def _set_metafield(store: ShopifyStore, order: dict, metafield: dict, now: str) -> None:
    """"A list of new metafields to add to the existing metafields" (OrderInput): same namespace and key → new value."""
    namespace = metafield.get("namespace") or DEFAULT_METAFIELD_NAMESPACE
    for existing in order["metafields"]:
        if (existing["namespace"], existing["key"]) == (namespace, metafield["key"]):
            existing.update(value=metafield["value"], type=metafield.get("type") or existing["type"], updatedAt=now)
            return
    order["metafields"].append(metafield_record(store, metafield, now))
