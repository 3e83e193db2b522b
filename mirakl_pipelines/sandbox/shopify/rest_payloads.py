"""Store records as Shopify's REST JSON, the body of webhook deliveries (NOTES §4.5).

REST is not GraphQL: snake_case keys, numeric ids next to `admin_graphql_api_id`, money as
strings with two decimals ("89.99"), timestamps in the shop's time zone with an offset
("2021-12-31T19:00:00-05:00"), tags as one comma-separated string, line item properties as
[{name, value}], lower-case statuses ("success", "partial").
"""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from mirakl_pipelines.sandbox.shopify.money import CENT

SHOP_TIME_ZONE = ZoneInfo("Europe/Paris")  # the sandbox shop's ianaTimezone


def numeric_id(gid: str | None) -> int | None:
    """gid://shopify/Order/5000000001 → 5000000001 (composite ids keep only the path's number)."""
    if not gid:
        return None
    return int(gid.rsplit("/", 1)[-1].split("?", 1)[0])


def rest_amount(amount) -> str:
    return f"{Decimal(str(amount)).quantize(CENT)}"


def rest_time(iso_utc: str | None) -> str | None:
    if not iso_utc:
        return None
    moment = datetime.fromisoformat(iso_utc.replace("Z", "+00:00"))
    return moment.astimezone(SHOP_TIME_ZONE).isoformat()


def rest_money_set(bag: dict | None) -> dict | None:
    if not bag:
        return None
    return {side: {"amount": rest_amount(bag[key]["amount"]), "currency_code": bag[key]["currencyCode"]}
            for side, key in (("shop_money", "shopMoney"), ("presentment_money", "presentmentMoney"))}


def _line_fulfillment_status(line: dict) -> str | None:
    if line["unfulfilledQuantity"] == 0:
        return "fulfilled"
    return "partial" if line["unfulfilledQuantity"] < line["quantity"] else None


def line_item_payload(store, line: dict, quantity: int | None = None) -> dict:
    """A REST line item; `quantity` overrides the ordered quantity (a fulfilment's share of the line)."""
    variant = store.variant_record(line["_variantId"]) if line.get("_variantId") else None
    unit = line["originalUnitPriceSet"]
    discount = line.get("totalDiscountSet")
    return {
        "id": numeric_id(line["id"]),
        "variant_id": numeric_id(line.get("_variantId")),
        "title": line["title"],
        "quantity": line["quantity"] if quantity is None else quantity,
        "sku": line.get("sku"),
        "variant_title": line.get("variantTitle"),
        "vendor": line.get("vendor"),
        "fulfillment_service": "manual",
        "product_id": numeric_id(line.get("_productId")),
        "requires_shipping": line["requiresShipping"],
        "taxable": line["taxable"],
        "gift_card": line["isGiftCard"],
        "name": line["name"],
        "variant_inventory_management": "shopify" if variant and variant["inventoryItem"]["tracked"] else None,
        "properties": [{"name": a["key"], "value": a["value"]} for a in line.get("customAttributes") or []],
        "product_exists": line.get("_productId") is not None,
        "fulfillable_quantity": line["unfulfilledQuantity"],
        "current_quantity": line["currentQuantity"],
        "grams": 0,
        "price": rest_amount(unit["shopMoney"]["amount"]),
        "total_discount": rest_amount(discount["shopMoney"]["amount"]) if discount else "0.00",
        "fulfillment_status": _line_fulfillment_status(line),
        "price_set": rest_money_set(unit),
        "total_discount_set": rest_money_set(discount),
        "discount_allocations": [_discount_allocation_payload(a) for a in line.get("discountAllocations") or []],
        "duties": [],
        "admin_graphql_api_id": line["id"],
        "tax_lines": [_tax_line_payload(t) for t in line.get("taxLines") or []],
    }


def _discount_allocation_payload(allocation: dict) -> dict:
    return {"amount": rest_amount(allocation["allocatedAmountSet"]["shopMoney"]["amount"]),
            "amount_set": rest_money_set(allocation["allocatedAmountSet"]),
            "discount_application_index": allocation["discountApplication"]["index"]}


def _discount_application_payload(application: dict) -> dict:
    value = application["value"]
    percentage = value["__typename"] == "PricingPercentageValue"
    return {"target_type": application["targetType"].lower(), "type": "discount_code",
            "value": f"{Decimal(str(value['percentage'])):.1f}" if percentage else value["amount"],
            "value_type": "percentage" if percentage else "fixed_amount",
            "allocation_method": application["allocationMethod"].lower(),
            "target_selection": application["targetSelection"].lower(), "code": application["code"]}


def _discount_codes_payload(order: dict) -> list[dict]:
    """REST `discount_codes`: [{code, amount, type}], type "shipping" for a free-shipping code."""
    return [{"code": application["code"], "amount": rest_amount(order["totalDiscountsSet"]["shopMoney"]["amount"]),
             "type": "shipping" if application["targetType"] == "SHIPPING_LINE"
             else _discount_application_payload(application)["value_type"]}
            for application in order.get("discountApplications") or []]


def _tax_line_payload(tax: dict) -> dict:
    return {"title": tax["title"], "price": rest_amount(tax["priceSet"]["shopMoney"]["amount"]), "rate": tax["rate"],
            "channel_liable": tax.get("channelLiable"), "price_set": rest_money_set(tax["priceSet"])}


def address_payload(address: dict | None) -> dict | None:
    if not address:
        return None
    return {
        "first_name": address.get("firstName"), "address1": address.get("address1"), "phone": address.get("phone"),
        "city": address.get("city"), "zip": address.get("zip"), "province": address.get("province"),
        "country": address.get("country"), "last_name": address.get("lastName"), "address2": address.get("address2"),
        "company": address.get("company"), "latitude": address.get("latitude"), "longitude": address.get("longitude"),
        "name": address.get("name"), "country_code": address.get("countryCodeV2"),
        "province_code": address.get("provinceCode"),
    }


def fulfillment_payload(store, fulfillment: dict) -> dict:
    """`fulfillments/create` and `fulfillments/update` body; line_items carry the quantities of this fulfilment."""
    order = store.order_record(fulfillment["orderId"])
    tracking = fulfillment["trackingInfo"]
    numbers = [t["number"] for t in tracking if t.get("number")]
    urls = [t["url"] for t in tracking if t.get("url")]
    return {
        "id": numeric_id(fulfillment["id"]),
        "order_id": numeric_id(order["id"]),
        "status": fulfillment["status"].lower(),
        "created_at": rest_time(fulfillment["createdAt"]),
        "service": "manual",
        "updated_at": rest_time(fulfillment["updatedAt"]),
        "tracking_company": tracking[0]["company"] if tracking else None,
        "shipment_status": None,
        "location_id": numeric_id(fulfillment["location"]["id"]) if fulfillment.get("location") else None,
        "origin_address": None,
        "email": order.get("email"),
        "destination": address_payload(order.get("shippingAddress")),
        "line_items": [line_item_payload(store, store.line_items[item["lineItemId"]], quantity=item["quantity"])
                       for item in fulfillment["fulfillmentLineItems"]],
        "tracking_number": numbers[0] if numbers else None,
        "tracking_numbers": numbers,
        "tracking_url": urls[0] if urls else None,
        "tracking_urls": urls,
        "receipt": {},
        "name": fulfillment["name"],
        "admin_graphql_api_id": fulfillment["id"],
    }


def _order_fulfillment_status(order: dict) -> str | None:
    return {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(order["displayFulfillmentStatus"])


def order_payload(store, order: dict) -> dict:
    """`orders/create`, `orders/updated`, `orders/fulfilled`… body: the REST order with the fields a connector reads."""
    def amount(key: str) -> str:
        return rest_amount(order[key]["shopMoney"]["amount"])

    return {
        "id": numeric_id(order["id"]),
        "admin_graphql_api_id": order["id"],
        "name": order["name"],
        "order_number": order["number"],
        "number": order["number"] - 1000 if order["number"] > 1000 else order["number"],
        "email": order.get("email"),
        "contact_email": order.get("email"),
        "phone": order.get("phone"),
        "created_at": rest_time(order["createdAt"]),
        "updated_at": rest_time(order["updatedAt"]),
        "processed_at": rest_time(order["processedAt"]),
        "cancelled_at": rest_time(order.get("cancelledAt")),
        "cancel_reason": (order.get("cancelReason") or "").lower() or None,
        "closed_at": rest_time(order.get("closedAt")),
        "confirmed": order["confirmed"],
        "test": order["test"],
        "currency": order["currencyCode"],
        "presentment_currency": order["presentmentCurrencyCode"],
        "financial_status": (order.get("displayFinancialStatus") or "").lower() or None,
        "fulfillment_status": _order_fulfillment_status(order),
        "source_name": order.get("sourceName"),
        "source_identifier": order.get("sourceIdentifier"),
        "source_url": order.get("sourceUrl"),
        "tags": ", ".join(order["tags"]),
        "note": order.get("note"),
        "note_attributes": [{"name": a["key"], "value": a["value"]} for a in order.get("customAttributes") or []],
        "taxes_included": order["taxesIncluded"],
        "total_price": amount("totalPriceSet"),
        "subtotal_price": amount("subtotalPriceSet"),
        "total_tax": amount("totalTaxSet"),
        "total_discounts": amount("totalDiscountsSet"),
        "total_outstanding": amount("totalOutstandingSet"),
        "discount_codes": _discount_codes_payload(order),
        "discount_applications": [_discount_application_payload(a) for a in order.get("discountApplications") or []],
        "total_price_set": rest_money_set(order["totalPriceSet"]),
        "subtotal_price_set": rest_money_set(order["subtotalPriceSet"]),
        "total_tax_set": rest_money_set(order["totalTaxSet"]),
        "total_discounts_set": rest_money_set(order["totalDiscountsSet"]),
        "total_shipping_price_set": rest_money_set(order["totalShippingPriceSet"]),
        "line_items": [line_item_payload(store, line) for line in order["lineItems"]],
        "shipping_lines": [{"id": numeric_id(s["id"]), "title": s["title"], "code": s.get("code"),
                            "source": s.get("source"), "price": rest_amount(s["originalPriceSet"]["shopMoney"]["amount"]),
                            "price_set": rest_money_set(s["originalPriceSet"])} for s in order["shippingLines"]],
        "shipping_address": address_payload(order.get("shippingAddress")),
        "billing_address": address_payload(order.get("billingAddress")),
        "fulfillments": [fulfillment_payload(store, f) for f in order["fulfillments"]],
        "refunds": [],
        "returns": [],
        "line_item_groups": [],
    }


def inventory_level_payload(store, level: dict) -> dict:
    """`inventory_levels/update`: the official sample's five fields, `available` only (NOTES §4.5)."""
    return {
        "inventory_item_id": numeric_id(level["_itemId"]),
        "location_id": numeric_id(level["_locationId"]),
        "available": level["quantities"]["available"],
        "updated_at": rest_time(level["updatedAt"]),
        "admin_graphql_api_id": level["id"],
    }
