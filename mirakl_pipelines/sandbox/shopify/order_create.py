"""`orderCreate`: Shopify's validation, totals, naming, inventory claims and automatic fulfilment orders.

Validation messages and codes follow the recorded responses in ../shared/reference/shopify/fixtures
where one exists (empty line items, redundant customer fields, future processedAt, missing tax
rates); the others are marked "not captured" and worded after Shopify's style. The order's one
discount code is allocated to its lines by discounts.py; imported tax lines with an amount are kept
as given (Shopify does not recompute them, recorded in the parity fixture).
"""

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from mirakl_pipelines.sandbox.shopify.addresses import mailing_address
from mirakl_pipelines.sandbox.shopify.discounts import apply_discount_code, discount_code, discountable
from mirakl_pipelines.sandbox.shopify.fulfillment_orders import new_fulfillment_order
from mirakl_pipelines.sandbox.shopify.inventory import commit_for_order
from mirakl_pipelines.sandbox.shopify.money import CENT, bag_amount, money_bag, to_decimal
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, utc_now_iso

DEFAULT_METAFIELD_NAMESPACE = "custom"
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
        for variant, quantity in claims:  # at the primary location, the one its fulfilment orders are assigned to
            commit_for_order(store, variant, quantity)
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
    errors += _unique_metafield_errors(store, order.get("metafields") or [])
    return errors


def _unique_metafield_errors(store: ShopifyStore, metafields: list[dict]) -> list[dict]:
    """A value of a unique-valued metafield definition that another order holds already (or given twice)."""
    errors, seen = [], set()
    for i, metafield in enumerate(metafields):
        value_key = (metafield.get("namespace") or DEFAULT_METAFIELD_NAMESPACE, metafield["key"], metafield["value"])
        if not store.unique_definition("ORDER", *value_key[:2]):
            continue
        if value_key in seen or store.owner_of_unique_value("ORDER", *value_key):
            # not captured: the message; the code is the one OrderCreateUserErrorCode offers (it has no TAKEN)
            errors.append(user_error(["order", "metafields", i, "value"], "Value has already been taken", "INVALID"))
        seen.add(value_key)
    return errors


def _tax_line_errors(tax_lines, path: list) -> list[dict]:
    return [
        user_error(path + ["taxLines", j, "rate"], "Tax line rate must be provided", "TAX_LINE_RATE_MISSING")
        for j, tax_line in enumerate(tax_lines or [])
        if tax_line.get("rate") in ("", None)
    ]


def _inventory_claims(store: ShopifyStore, lines: list[dict], behaviour: str):
    """[(variant, quantity)] to claim, or userErrors when a DENY variant is short (DECREMENT_OBEYING_POLICY)."""
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
        claims.append((variant, quantity))
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
    entitled = sum((bag_amount(line["originalTotalSet"]) for line in lines if discountable(line)), Decimal("0"))
    code = discount_code(order_input.get("discountCode"), entitled, shipping, currency)
    discount = code.amount if code else Decimal("0")
    item_discount = discount if code and code.target_type == "LINE_ITEM" else Decimal("0")
    tax = sum(
        (bag_amount(t["priceSet"]) for t in order_tax_lines + [t for x in lines + shipping_lines for t in x["taxLines"]]),
        Decimal("0"),
    )
    subtotal_after_discount = subtotal - item_discount
    total = subtotal_after_discount + shipping - (discount - item_discount) + (Decimal("0") if taxes_included else tax)
    # Presentment totals scale with the line prices (one exchange rate per order, as Shopify applies).
    rate = (subtotal_presentment / subtotal) if subtotal else Decimal("1")
    applications = [apply_discount_code(code, lines, shipping_lines, (discount * rate).quantize(CENT, ROUND_HALF_UP),
                                        currency, presentment)] if code else []

    transactions = [transaction_record(store, t, currency, presentment, created)
                    for t in order_input.get("transactions") or []]
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
        "metafields": [metafield_record(store, m, created) for m in order_input.get("metafields") or []],
        "billingAddress": mailing_address(store, order_input.get("billingAddress")),
        "shippingAddress": mailing_address(store, order_input.get("shippingAddress")),
        "createdAt": created, "updatedAt": created, "processedAt": processed_at or created,
        "cancelledAt": None, "cancelReason": None, "closed": bool(order_input.get("closedAt")),
        "closedAt": order_input.get("closedAt"), "confirmed": True, "edited": False,
        "test": bool(order_input.get("test")), "taxesIncluded": taxes_included, "taxExempt": False,
        "currencyCode": currency, "presentmentCurrencyCode": presentment,
        "discountCode": code.code if code else None, "discountCodes": [code.code] if code else [],
        "discountApplications": applications, "cartDiscountAmountSet": bag(item_discount) if code else None,
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
    order["fulfillmentOrders"] = [new_fulfillment_order(store, order, [(line, line["quantity"]) for line in lines],
                                                        created, fulfilled=fulfilled)]
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
            "channelLiable": tax.get("channelLiable"), "source": None}  # null = unknown liability (SDL): kept as given


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


def transaction_record(store: ShopifyStore, transaction: dict, currency: str, presentment: str, created: str) -> dict:
    amount = to_decimal(transaction["amountSet"]["shopMoney"]["amount"], "transactions.amountSet.shopMoney.amount")
    amount_presentment = to_decimal(transaction["amountSet"]["presentmentMoney"]["amount"],
                                    "transactions.amountSet.presentmentMoney.amount") \
        if transaction["amountSet"].get("presentmentMoney") else amount
    transaction_id, _ = store.new_id("OrderTransaction")
    return {
        "id": transaction_id, "kind": transaction.get("kind") or "SALE", "status": transaction.get("status") or "SUCCESS",
        "gateway": transaction.get("gateway") or "manual", "formattedGateway": transaction.get("gateway") or "manual",
        "amountSet": money_bag(amount, currency, amount_presentment, presentment),
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


def metafield_record(store: ShopifyStore, metafield: dict, created: str) -> dict:
    metafield_id, legacy = store.new_id("Metafield")
    namespace = metafield.get("namespace") or DEFAULT_METAFIELD_NAMESPACE
    definition = store.metafield_definition("ORDER", namespace, metafield["key"])
    kind = metafield.get("type") or (definition["type"]["name"] if definition else "single_line_text_field")
    return {"id": metafield_id, "legacyResourceId": legacy, "namespace": namespace, "key": metafield["key"],
            "type": kind, "value": metafield["value"], "createdAt": created, "updatedAt": created, "ownerType": "ORDER"}


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
