"""`orderCreate`: Shopify's validation, totals, naming, inventory claims and automatic fulfilment orders.

Validation messages and codes follow the recorded responses in ../shared/reference/shopify/fixtures
where one exists (empty line items, redundant customer fields, future processedAt, missing tax
rates); the others are marked "not captured" and worded after Shopify's style.
"""

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

import pycountry

from mirakl_pipelines.sandbox.shopify.money import bag_amount, money_bag, to_decimal
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, utc_now_iso

CENT = Decimal("0.01")
FRESH_FO_ACTIONS = ("CREATE_FULFILLMENT", "MOVE", "HOLD", "SPLIT")  # captured on a fresh fulfilment order
PROCESSED_AT_CLAMPED_SINCE = "2026-07"  # earlier versions answer PROCESSED_AT_INVALID for a future processedAt


def user_error(field: list, message: str, code: str | None) -> dict:
    # Input list indexes are strings in Shopify's `field` paths (captured inventory errors; the schema types it [String!]).
    return {"field": [str(part) for part in field], "message": message, "code": code}


def order_create(store: ShopifyStore, order_input: dict, options: dict | None, api_version: str) -> dict:
    """Run one `orderCreate`: the payload `{order, userErrors}` (order is the stored record or None)."""
    options = options or {}
    with store.lock:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        errors = _validate(store, order_input, api_version, now)
        if errors:
            return {"order": None, "userErrors": errors}
        behaviour = options.get("inventoryBehaviour") or "BYPASS"
        claims, errors = _inventory_claims(store, order_input["lineItems"], behaviour)
        if errors:
            return {"order": None, "userErrors": errors}
        order = _build_order(store, order_input, now)
        for inventory, quantity in claims:
            inventory["available"] -= quantity
            inventory["committed"] += quantity
        store.add_order(order)
        return {"order": order, "userErrors": []}


# --- validation ---------------------------------------------------------------------------------

def _validate(store: ShopifyStore, order: dict, api_version: str, now: datetime) -> list[dict]:
    errors = []
    lines = order.get("lineItems") or []
    if not lines:
        errors.append(user_error(["order", "lineItems"], "Line items must have at least one line item", "INVALID"))
    if order.get("customerId") and order.get("customer"):
        # not captured: the message (the code and field are)
        errors.append(user_error(["order"], "Cannot specify both customerId and customer", "REDUNDANT_CUSTOMER_FIELDS"))
    processed_at = order.get("processedAt")
    if processed_at:
        try:
            future = _parse_time(processed_at) > now
        except ValueError:
            errors.append(user_error(["order", "processedAt"], f"Processed at {processed_at!r} is not a valid date-time", "INVALID"))
        else:
            if future and api_version < PROCESSED_AT_CLAMPED_SINCE:
                # not captured: the message (the code and field are)
                errors.append(user_error(["order", "processedAt"], "Processed at must not be in the future", "PROCESSED_AT_INVALID"))
    if order.get("taxLines") and any(line.get("taxLines") for line in lines):
        errors.append(user_error(["order", "taxLines"],
                                 "Tax lines can be specified on the order or on line items, but not both", "INVALID"))
    for i, line in enumerate(lines):
        path = ["order", "lineItems", i]
        if line.get("quantity", 0) < 1:
            errors.append(user_error(path + ["quantity"], "Quantity must be greater than or equal to 1", "INVALID"))
        variant_id = line.get("variantId")
        if variant_id and store.variant_record(variant_id) is None:
            errors.append(user_error(path + ["variantId"], f"Variant {variant_id} does not exist", "INVALID"))
        if not variant_id and not line.get("title"):
            errors.append(user_error(path + ["title"], "Title can't be blank", "INVALID"))
        errors += _tax_line_errors(line.get("taxLines"), path)
    for i, shipping in enumerate(order.get("shippingLines") or []):
        errors += _tax_line_errors(shipping.get("taxLines"), ["order", "shippingLines", i])
    errors += _tax_line_errors(order.get("taxLines"), ["order"])
    return errors


def _tax_line_errors(tax_lines, path: list) -> list[dict]:
    return [
        user_error(path + ["taxLines", j, "rate"], "Tax line rate must be provided", "TAX_LINE_RATE_MISSING")
        for j, tax_line in enumerate(tax_lines or [])
        if tax_line.get("rate") in ("", None)
    ]


def _inventory_claims(store: ShopifyStore, lines: list[dict], behaviour: str):
    """[(inventory record, quantity)] to decrement, or userErrors when a DENY variant is short (DECREMENT_OBEYING_POLICY)."""
    if behaviour == "BYPASS":
        return [], []
    wanted: dict[str, int] = {}
    first_line: dict[str, int] = {}
    for i, line in enumerate(lines):
        variant_id = line.get("variantId")
        if variant_id:
            wanted[variant_id] = wanted.get(variant_id, 0) + line["quantity"]
            first_line.setdefault(variant_id, i)
    claims, errors = [], []
    for variant_id, quantity in wanted.items():
        variant = store.variant_record(variant_id)
        if not variant["inventoryItem"]["tracked"]:
            continue
        inventory = store.inventory_of(variant)
        obeys = behaviour == "DECREMENT_OBEYING_POLICY" and variant["inventoryPolicy"] == "DENY"
        if obeys and inventory["available"] < quantity:
            # not captured: the message; the code is the schema's INVENTORY_CLAIM_FAILED
            errors.append(user_error(
                ["order", "lineItems", first_line[variant_id]],
                f"Unable to claim inventory for {variant['sku']}: {quantity} requested, {inventory['available']} available",
                "INVENTORY_CLAIM_FAILED",
            ))
        claims.append((inventory, quantity))
    return claims, errors


# --- building the order -------------------------------------------------------------------------

def _build_order(store: ShopifyStore, order_input: dict, now: datetime) -> dict:
    currency = order_input.get("currency") or store.settings.currency
    presentment = order_input.get("presentmentCurrency") or currency
    order_id, legacy = store.new_id("Order")
    name = order_input.get("name") or store.next_order_name()
    created = utc_now_iso()
    processed_at = order_input.get("processedAt")
    if processed_at and _parse_time(processed_at) > now:
        processed_at = created  # 2026-07+: a future processedAt is clamped to now
    taxes_included = bool(order_input.get("taxesIncluded"))

    lines = [_line_item(store, line, currency, presentment) for line in order_input["lineItems"]]
    shipping_lines = [_shipping_line(store, s, currency, presentment) for s in order_input.get("shippingLines") or []]
    order_tax_lines = [_tax_line(t, currency, presentment, base=None) for t in order_input.get("taxLines") or []]

    subtotal = sum((bag_amount(line["originalTotalSet"]) for line in lines), Decimal("0"))
    subtotal_presentment = sum((bag_amount(line["originalTotalSet"], "presentmentMoney") for line in lines), Decimal("0"))
    shipping = sum((bag_amount(s["originalPriceSet"]) for s in shipping_lines), Decimal("0"))
    discount_code, discount = _discount(order_input.get("discountCode"), subtotal, shipping)
    tax = sum(
        (bag_amount(t["priceSet"]) for t in order_tax_lines + [t for x in lines + shipping_lines for t in x["taxLines"]]),
        Decimal("0"),
    )
    subtotal_after_discount = subtotal - discount
    total = subtotal_after_discount + shipping + (Decimal("0") if taxes_included else tax)
    # Presentment totals scale with the line prices (one exchange rate per order, as Shopify applies).
    rate = (subtotal_presentment / subtotal) if subtotal else Decimal("1")

    transactions = [_transaction(store, t, currency, presentment, created) for t in order_input.get("transactions") or []]
    paid = sum((bag_amount(t["amountSet"]) for t in transactions
                if t["status"] == "SUCCESS" and t["kind"] in ("SALE", "CAPTURE")), Decimal("0"))

    def bag(amount: Decimal) -> dict:
        return money_bag(amount, currency, (amount * rate).quantize(CENT, ROUND_HALF_UP), presentment)

    fulfilled = order_input.get("fulfillmentStatus") == "FULFILLED"
    order = {
        "id": order_id, "legacyResourceId": legacy, "name": name,
        "number": int(name.lstrip("#")) if name.lstrip("#").isdigit() else 0,
        "email": order_input.get("email"), "phone": order_input.get("phone"), "note": order_input.get("note"),
        "poNumber": order_input.get("poNumber"),
        "tags": sorted({tag.strip() for tag in order_input.get("tags") or [] if tag.strip()}),
        "sourceName": order_input.get("sourceName"), "sourceIdentifier": order_input.get("sourceIdentifier"),
        "sourceUrl": order_input.get("sourceUrl"), "registeredSourceUrl": order_input.get("sourceUrl"),
        "customAttributes": [{"key": a["key"], "value": a["value"]} for a in order_input.get("customAttributes") or []],
        "metafields": [_metafield(store, m, created) for m in order_input.get("metafields") or []],
        "billingAddress": _address(store, order_input.get("billingAddress")),
        "shippingAddress": _address(store, order_input.get("shippingAddress")),
        "createdAt": created, "updatedAt": created, "processedAt": processed_at or created,
        "cancelledAt": None, "cancelReason": None, "closed": bool(order_input.get("closedAt")),
        "closedAt": order_input.get("closedAt"), "confirmed": True, "edited": False,
        "test": bool(order_input.get("test")), "taxesIncluded": taxes_included, "taxExempt": False,
        "currencyCode": currency, "presentmentCurrencyCode": presentment,
        "discountCode": discount_code, "discountCodes": [discount_code] if discount_code else [],
        "displayFinancialStatus": order_input.get("financialStatus") or _financial_status(transactions, paid, total),
        "displayFulfillmentStatus": _fulfillment_status(order_input.get("fulfillmentStatus")),
        "subtotalLineItemsQuantity": sum(line["quantity"] for line in lines),
        "currentSubtotalLineItemsQuantity": sum(line["quantity"] for line in lines),
        "subtotalPriceSet": bag(subtotal_after_discount), "currentSubtotalPriceSet": bag(subtotal_after_discount),
        "totalShippingPriceSet": bag(shipping), "currentShippingPriceSet": bag(shipping),
        "totalTaxSet": bag(tax), "currentTotalTaxSet": bag(tax),
        "totalDiscountsSet": bag(discount), "currentTotalDiscountsSet": bag(discount),
        "totalPriceSet": bag(total), "currentTotalPriceSet": bag(total), "originalTotalPriceSet": bag(total),
        "totalReceivedSet": bag(paid), "netPaymentSet": bag(paid),
        "totalOutstandingSet": bag(max(total - paid, Decimal("0"))),
        "totalRefundedSet": bag(Decimal("0")), "totalRefundedShippingSet": bag(Decimal("0")),
        "totalCapturableSet": bag(Decimal("0")), "totalTipReceivedSet": bag(Decimal("0")),
        "fullyPaid": paid >= total, "unpaid": paid == 0 and total > 0,
        "taxLines": order_tax_lines, "currentTaxLines": order_tax_lines,
        "lineItems": lines, "shippingLines": shipping_lines,
        "shippingLine": shipping_lines[0] if shipping_lines else None,
        "transactions": transactions,
        "paymentGatewayNames": sorted({t["gateway"] for t in transactions if t.get("gateway")}),
        "fulfillments": [], "refunds": [], "returnStatus": "NO_RETURN",
        "requiresShipping": any(line["requiresShipping"] for line in lines),
    }
    order["fulfillmentOrders"] = [_fulfillment_order(store, order, fulfilled, created)]
    if fulfilled:
        for line in lines:
            line["unfulfilledQuantity"] = 0
    return order


def _line_item(store: ShopifyStore, line: dict, currency: str, presentment: str) -> dict:
    variant = store.variant_record(line["variantId"]) if line.get("variantId") else None
    product = store.products.get(variant["_productId"]) if variant else None
    quantity = line["quantity"]
    price_set = line.get("priceSet")
    if price_set:
        unit = to_decimal(price_set["shopMoney"]["amount"], "lineItems.priceSet.shopMoney.amount")
        unit_presentment = to_decimal(price_set["presentmentMoney"]["amount"], "lineItems.priceSet.presentmentMoney.amount") \
            if price_set.get("presentmentMoney") else unit
    else:
        unit = unit_presentment = Decimal(variant["price"]) if variant else Decimal("0")
    title = line.get("title") or (product["title"] if product else "")
    variant_title = line.get("variantTitle") or (variant["title"] if variant and variant["title"] != "Default Title" else None)
    line_id, legacy = store.new_id("LineItem")
    unit_bag = money_bag(unit, currency, unit_presentment, presentment)
    total_bag = money_bag(unit * quantity, currency, unit_presentment * quantity, presentment)
    zero = money_bag(Decimal("0"), currency, Decimal("0"), presentment)
    return {
        "id": line_id, "legacyResourceId": legacy, "title": title,
        "name": f"{title} - {variant_title}" if variant_title else title,
        "variantTitle": variant_title, "sku": line.get("sku") or (variant["sku"] if variant else None),
        "vendor": line.get("vendor") or (product["vendor"] if product else None),
        "quantity": quantity, "currentQuantity": quantity, "unfulfilledQuantity": quantity,
        "refundableQuantity": quantity, "nonFulfillableQuantity": 0, "fulfillableQuantity": quantity,
        "originalUnitPriceSet": unit_bag, "discountedUnitPriceSet": unit_bag,
        "discountedUnitPriceAfterAllDiscountsSet": unit_bag,
        "originalTotalSet": total_bag, "discountedTotalSet": total_bag, "priceAfterAllDiscountsBeforeTaxesSet": total_bag,
        "unfulfilledOriginalTotalSet": total_bag, "unfulfilledDiscountedTotalSet": total_bag,
        "totalDiscountSet": zero, "discountAllocations": [], "duties": [],
        "taxLines": [_tax_line(t, currency, presentment, base=unit * quantity) for t in line.get("taxLines") or []],
        "taxable": bool(line.get("taxable", True)),
        "customAttributes": [{"key": p["name"], "value": p["value"]} for p in line.get("properties") or []],
        "requiresShipping": variant["inventoryItem"]["requiresShipping"] if variant else bool(line.get("requiresShipping")),
        "restockable": variant is not None, "isGiftCard": bool(line.get("giftCard")), "merchantEditable": True,
        "_variantId": variant["id"] if variant else None, "_productId": product["id"] if product else None,
    }


def _tax_line(tax: dict, currency: str, presentment: str, base: Decimal | None) -> dict:
    rate = to_decimal(tax["rate"], "taxLines.rate")
    if tax.get("priceSet"):
        amount = to_decimal(tax["priceSet"]["shopMoney"]["amount"], "taxLines.priceSet.shopMoney.amount")
        amount_presentment = to_decimal(tax["priceSet"]["presentmentMoney"]["amount"], "taxLines.priceSet.presentmentMoney.amount") \
            if tax["priceSet"].get("presentmentMoney") else amount
    else:
        amount = amount_presentment = ((base or Decimal("0")) * rate).quantize(CENT, ROUND_HALF_UP)
    return {"title": tax["title"], "rate": float(rate), "ratePercentage": float(rate * 100),
            "priceSet": money_bag(amount, currency, amount_presentment, presentment),
            "channelLiable": bool(tax.get("channelLiable")), "source": None}


def _shipping_line(store: ShopifyStore, shipping: dict, currency: str, presentment: str) -> dict:
    amount = to_decimal(shipping["priceSet"]["shopMoney"]["amount"], "shippingLines.priceSet.shopMoney.amount")
    amount_presentment = to_decimal(shipping["priceSet"]["presentmentMoney"]["amount"], "shippingLines.priceSet.presentmentMoney.amount") \
        if shipping["priceSet"].get("presentmentMoney") else amount
    price = money_bag(amount, currency, amount_presentment, presentment)
    line_id, _ = store.new_id("ShippingLine")
    return {
        "id": line_id, "title": shipping["title"], "code": shipping.get("code"), "source": shipping.get("source"),
        "originalPriceSet": price, "discountedPriceSet": price, "currentDiscountedPriceSet": price,
        "taxLines": [_tax_line(t, currency, presentment, base=amount) for t in shipping.get("taxLines") or []],
        "custom": True, "isRemoved": False, "discountAllocations": [], "carrierIdentifier": None,
        "deliveryCategory": None, "phone": None, "shippingRateHandle": None,
    }


def _discount(discount_input: dict | None, subtotal: Decimal, shipping: Decimal) -> tuple[str | None, Decimal]:
    """(code, shop-money amount) of the one discount code Shopify allows on an imported order."""
    if not discount_input:
        return None, Decimal("0")
    if fixed := discount_input.get("itemFixedDiscountCode"):
        amount = to_decimal(fixed["amountSet"]["shopMoney"]["amount"], "discountCode.itemFixedDiscountCode.amountSet") \
            if fixed.get("amountSet") else Decimal("0")
        return fixed["code"], min(amount, subtotal)
    if percentage := discount_input.get("itemPercentageDiscountCode"):
        share = to_decimal(percentage.get("percentage") or 0, "discountCode.itemPercentageDiscountCode.percentage")
        return percentage["code"], (subtotal * share / 100).quantize(CENT, ROUND_HALF_UP)
    if free_shipping := discount_input.get("freeShippingDiscountCode"):
        return free_shipping["code"], shipping
    return None, Decimal("0")


def _transaction(store: ShopifyStore, transaction: dict, currency: str, presentment: str, created: str) -> dict:
    amount = to_decimal(transaction["amountSet"]["shopMoney"]["amount"], "transactions.amountSet.shopMoney.amount")
    transaction_id, _ = store.new_id("OrderTransaction")
    return {
        "id": transaction_id, "kind": transaction.get("kind") or "SALE", "status": transaction.get("status") or "SUCCESS",
        "gateway": transaction.get("gateway") or "manual", "formattedGateway": transaction.get("gateway") or "manual",
        "amountSet": money_bag(amount, currency, amount, presentment),
        "processedAt": transaction.get("processedAt") or created, "createdAt": created,
        "test": bool(transaction.get("test")), "authorizationCode": transaction.get("authorizationCode"),
        "paymentId": transaction.get("authorizationCode"), "parentTransaction": None, "errorCode": None,
        "manualPaymentGateway": (transaction.get("gateway") or "manual") == "manual",
        "manuallyCapturable": False, "multiCapturable": False, "fees": [],
    }


def _financial_status(transactions: list[dict], paid: Decimal, total: Decimal) -> str | None:
    """Derived from transactions when `financialStatus` is not given (None with no transactions, as captured)."""
    if not transactions:
        return None
    if paid >= total:
        return "PAID"
    if paid > 0:
        return "PARTIALLY_PAID"
    if any(t["kind"] == "AUTHORIZATION" and t["status"] == "SUCCESS" for t in transactions):
        return "AUTHORIZED"
    return "PENDING"


def _fulfillment_status(requested: str | None) -> str:
    return {"FULFILLED": "FULFILLED", "PARTIAL": "PARTIALLY_FULFILLED", "RESTOCKED": "RESTOCKED"}.get(requested or "", "UNFULFILLED")


def _address(store: ShopifyStore, address: dict | None) -> dict | None:
    if not address:
        return None
    code = address.get("countryCode")
    country = pycountry.countries.get(alpha_2=code) if code else None
    address_id, _ = store.new_id("MailingAddress")
    first, last = address.get("firstName"), address.get("lastName")
    return {
        "id": address_id, "firstName": first, "lastName": last,
        "name": " ".join(part for part in (first, last) if part) or None,
        "company": address.get("company"), "address1": address.get("address1"), "address2": address.get("address2"),
        "city": address.get("city"), "zip": address.get("zip"), "provinceCode": address.get("provinceCode"),
        "province": address.get("province") or address.get("provinceCode"),
        "countryCodeV2": code, "country": country.name if country else address.get("country"),
        "phone": address.get("phone"), "coordinatesValidated": False, "latitude": None, "longitude": None,
        "formatted": [part for part in (address.get("address1"), address.get("address2"),
                                        " ".join(p for p in (address.get("zip"), address.get("city")) if p),
                                        country.name if country else None) if part],
    }


def _metafield(store: ShopifyStore, metafield: dict, created: str) -> dict:
    metafield_id, legacy = store.new_id("Metafield")
    return {"id": metafield_id, "legacyResourceId": legacy, "namespace": metafield.get("namespace") or "custom",
            "key": metafield["key"], "type": metafield.get("type") or "single_line_text_field",
            "value": metafield["value"], "createdAt": created, "updatedAt": created, "ownerType": "ORDER"}


def _fulfillment_order(store: ShopifyStore, order: dict, fulfilled: bool, created: str) -> dict:
    """The fulfilment order Shopify creates with every order, at the store's one location."""
    fo_id, _ = store.new_id("FulfillmentOrder")
    location = store.location
    fo_lines = []
    for line in order["lineItems"]:
        fo_line_id, _ = store.new_id("FulfillmentOrderLineItem")
        variant = store.variant_record(line["_variantId"]) if line["_variantId"] else None
        fo_lines.append({
            "id": fo_line_id, "totalQuantity": line["quantity"], "remainingQuantity": 0 if fulfilled else line["quantity"],
            "sku": line["sku"], "productTitle": line["title"], "variantTitle": line["variantTitle"], "vendor": line["vendor"],
            "inventoryItemId": variant["inventoryItem"]["id"] if variant else None,
            "requiresShipping": line["requiresShipping"], "originalUnitPriceSet": line["originalUnitPriceSet"],
            "financialSummaries": [], "warnings": [],
            "lineItemId": line["id"], "_variantId": line["_variantId"],
        })
    shipping = order["shippingAddress"] or {}
    destination_id, _ = store.new_id("FulfillmentOrderDestination")
    return {
        "id": fo_id, "orderId": order["id"], "orderName": order["name"], "orderProcessedAt": order["processedAt"],
        "status": "CLOSED" if fulfilled else "OPEN", "requestStatus": "UNSUBMITTED",
        "supportedActions": [] if fulfilled else [{"action": a, "externalUrl": None} for a in FRESH_FO_ACTIONS],
        "assignedLocation": {"name": location["name"], "countryCode": location["_countryCode"], "address1": None,
                             "address2": None, "city": None, "province": None, "zip": None, "phone": None,
                             "location": location},
        "destination": {"id": destination_id, **{k: shipping.get(k) for k in (
            "firstName", "lastName", "company", "address1", "address2", "city", "province", "zip", "phone")},
            "countryCode": shipping.get("countryCodeV2"), "email": order["email"]} if shipping else None,
        "deliveryMethod": {"methodType": "SHIPPING"}, "channelId": None,
        "fulfillAt": created, "fulfillBy": None, "fulfillmentHolds": [], "merchantRequests": [],
        "createdAt": created, "updatedAt": created, "lineItems": fo_lines, "fulfillments": [],
    }


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
