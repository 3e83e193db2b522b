"""Mirakl order -> the variables of Shopify's `orderCreate(order:, options:)`.

The output is plain JSON (Decimals as strings, dates as ISO-8601 strings) matching
OrderCreateOrderInput / OrderCreateOptionsInput of the Admin API 2026-07. Anything that would make
Shopify's order differ from what the customer paid (unknown SKU, missing address, amounts that do not
add up, a foreign currency) raises MappingError with a reason naming the line, the amounts and the rule.

Money, from the live lines (order_lines.py: after promotions and cancellations, refused lines left out):
- each line shows its price before promotions; the promotions come off as one discount code (Shopify
  takes one per imported order); a price that does not divide by its quantity is split over two
  Shopify lines of the same variant, one cent apart, so the line total is exact;
- line fees (in Mirakl's total) become custom, non-shipping line items;
- TAX_INCLUDED: taxes are inside the prices; TAX_EXCLUDED: on top. Mirakl's tax `rate` is a
  percentage (17.5), Shopify's a fraction (0.175). Taxes the marketplace collects itself are
  channel-liable;
- the customer's payment is a successful sale only once Mirakl shows the debit (payments.py).
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Optional

import pycountry

from mirakl_pipelines.config import MarketplaceConfig, ShopifyStoreConfig
from mirakl_pipelines.mirakl.models import Address, MiraklOrder, OrderLine, Promotion
from mirakl_pipelines.shopify.models import LINE_ID_PROPERTY, Variant, order_ref_metafield
from mirakl_pipelines.sync.addresses import province_code, shopify_phone
from mirakl_pipelines.sync.eligibility import is_complete_address
from mirakl_pipelines.sync.order_lines import (
    CANCELLATION_AMOUNTS, CENT, ZERO, LineAmountError, LiveLine, TaxAmount, is_dead, live_lines, split_in_cents,
)
from mirakl_pipelines.sync.payments import payment_status

MAPPING_ERROR_KINDS = ("unknown_sku", "missing_address", "malformed", "currency")
TAX_MODES = ("TAX_INCLUDED", "TAX_EXCLUDED")
RATE_PLACES = Decimal("0.000001")
# Property of a fee line item: the Mirakl line the fee belongs to (not LINE_ID_PROPERTY: a fee ships nothing).
FEE_OF_PROPERTY = "_mirakl_fee_of_line"
DISCOUNT_CODE_MAX = 255


class MappingError(Exception):
    """A Mirakl order that cannot become a faithful Shopify order; `reason` tells the operator what to fix."""

    def __init__(self, order_id: str, kind: str, reason: str):
        if kind not in MAPPING_ERROR_KINDS:
            raise ValueError(f"unknown MappingError kind {kind!r}; expected one of {MAPPING_ERROR_KINDS}")
        super().__init__(f"Mirakl order {order_id}: {reason}")
        self.order_id = order_id
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class OrderCreateRequest:
    order: dict  # OrderCreateOrderInput
    options: dict  # OrderCreateOptionsInput
    paid: bool = True  # booked PAID (the debit is known); else PENDING, to mark paid when the debit arrives
    total: Decimal = ZERO  # what Shopify's order totals: what the customer pays
    quantities: Mapping[str, int] = field(default_factory=dict)  # Mirakl line id -> units created in Shopify
    with_address: bool = True  # False: imported before Mirakl showed the address

    @property
    def variables(self) -> dict:
        """The GraphQL variables of `orderCreate(order: $order, options: $options)`."""
        return {"order": self.order, "options": self.options}


def source_identifier(marketplace_code: str, order_id: str) -> str:
    """The Shopify sourceIdentifier, and the value of the order's unique `mirakl.order_ref` metafield: Mirakl
    order ids are only unique within one marketplace."""
    return f"{marketplace_code}:{order_id}"


def country_alpha2(alpha3: str) -> str:
    """ISO-3166 alpha-3 (Mirakl) -> alpha-2 (Shopify CountryCode). ValueError naming the code if unknown."""
    code = (alpha3 or "").strip().upper()
    country = pycountry.countries.get(alpha_3=code) if len(code) == 3 else None
    if country is None:
        raise ValueError(f"country code {alpha3!r} is not an ISO-3166 alpha-3 code")
    return country.alpha_2


def _money(amount: Decimal) -> str:
    return format(amount, "f")


def _money_bag(amount: Decimal, currency: str) -> dict:
    return {"shopMoney": {"amount": _money(amount), "currencyCode": currency}}


def _iso(moment: datetime) -> str:
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


# -- taxes -------------------------------------------------------------------------------------------


def _rate(rate_percent: Optional[Decimal], amount: Decimal, base: Decimal) -> str:
    """Shopify's fractional rate: Mirakl's percentage when given, else amount / taxable base."""
    if rate_percent is not None:
        rate = rate_percent / 100
    elif base > 0:
        rate = amount / base
    else:
        rate = ZERO
    return _money(rate.quantize(RATE_PLACES).normalize() if rate else ZERO)


def _tax_lines(taxes: Iterable[TaxAmount], gross: Decimal, taxes_included: bool, currency: str) -> list[dict]:
    """Shopify tax lines for taxes levied on `gross` (the amount as Mirakl states it), summed per code,
    rate and liability (shipping taxes arrive once per order line)."""
    grouped: dict[tuple[str, Optional[Decimal], bool], Decimal] = {}
    for tax in taxes:
        key = (tax.code, tax.rate, tax.channel_liable)
        grouped[key] = grouped.get(key, ZERO) + tax.amount
    all_taxes = sum(grouped.values(), ZERO)
    base = gross - all_taxes if taxes_included else gross
    lines = []
    for (title, rate, liable), total in grouped.items():
        line = {"title": title, "rate": _rate(rate, total, base), "priceSet": _money_bag(total, currency)}
        if liable:
            line["channelLiable"] = True
        lines.append(line)
    return lines


def _tax_total(tax_lines: Iterable[dict]) -> Decimal:
    return sum((Decimal(t["priceSet"]["shopMoney"]["amount"]) for t in tax_lines), ZERO)


# -- addresses ---------------------------------------------------------------------------------------


class _Notes:
    """Facts Shopify has no field for: kept as custom attributes and as lines of the order note."""

    def __init__(self) -> None:
        self.attributes: list[dict] = []
        self.lines: list[str] = []

    def attribute(self, key: str, value: object) -> None:
        if value is not None and str(value).strip():
            self.attributes.append({"key": key, "value": str(value)})

    def note(self, text: str) -> None:
        self.lines.append(text)


def _address(
    order: MiraklOrder, address: Address, role: str, company: Optional[str], notes: _Notes
) -> dict:
    try:
        alpha2 = country_alpha2(address.country_iso_code or "")
    except ValueError as e:
        raise MappingError(order.order_id, "malformed", f"{role} address: {e}") from None
    customer = order.customer
    mapped = {
        "firstName": address.firstname or (customer.firstname if customer else None),
        "lastName": address.lastname or (customer.lastname if customer else None),
        "company": address.company or company,
        "address1": address.street_1,
        "address2": address.street_2,
        "city": address.city,
        "zip": address.zip_code,
        "provinceCode": province_code(address.state, alpha2),
        "countryCode": alpha2,
    }
    if address.state and mapped["provinceCode"] is None:
        notes.note(f"{role.capitalize()} address state/province: {address.state}")
    phone = shopify_phone(address.phone, alpha2) or shopify_phone(address.phone_secondary, alpha2)
    if phone:
        mapped["phone"] = phone
    elif address.phone or address.phone_secondary:
        # Shopify takes only E.164 phones (a number that is not valid is not made one); the carrier still needs it.
        raw = address.phone or address.phone_secondary
        notes.attribute(f"{role}_phone", raw)
        notes.note(f"{role.capitalize()} phone: {raw}")
    return {key: value for key, value in mapped.items() if value not in (None, "")}


def _addresses(order: MiraklOrder, notes: _Notes, allow_missing: bool) -> dict:
    """shippingAddress and billingAddress; the billing address falls back to the shipping one when incomplete.

    With `allow_missing`, an order whose address Mirakl still hides (before acceptance) gets none: the
    importer holds its fulfilment and completes the address once Mirakl shows it.
    """
    organization = order.customer.organization if order.customer else None
    company = organization.name if organization and organization.name else None  # B2B: the buyer's company
    if organization and organization.tax_identification_number:
        notes.attribute("customer_tax_id", organization.tax_identification_number)
    if not is_complete_address(order.shipping_address):
        if not allow_missing:
            raise MappingError(
                order.order_id, "missing_address",
                "the shipping address is missing or lacks street, city or country "
                "(Mirakl hides it before acceptance on some marketplaces): import once Mirakl shows it",
            )
        notes.note("Shipping address: hidden by the marketplace until the order is accepted; "
                   "completed automatically once Mirakl shows it (the fulfilment is on hold until then)")
        return {}
    shipping = _address(order, order.shipping_address, "shipping", company, notes)
    billing = order.billing_address
    if order.shipping_address.additional_info:
        notes.note(f"Delivery instructions: {order.shipping_address.additional_info}")
    return {
        "shippingAddress": shipping,
        "billingAddress": _address(order, billing, "billing", company, notes)
        if is_complete_address(billing) else dict(shipping),
    }


def addresses_update(order: MiraklOrder) -> dict:
    """shippingAddress/billingAddress for an order imported before Mirakl showed its address (orderUpdate)."""
    return _addresses(order, _Notes(), allow_missing=False)


# -- checks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Checked:
    """What the checks established about an order that can be imported."""

    currency: str
    taxes_included: bool
    lines: list[LiveLine]
    fees_paid: bool  # the line fees are in Mirakl's total_price, so the customer paid them


def _check(order: MiraklOrder, variants: Mapping[str, Variant], marketplace: MarketplaceConfig,
           store: ShopifyStoreConfig) -> _Checked:
    oid = order.order_id
    currency = order.currency_iso_code
    if not currency:
        raise MappingError(oid, "malformed", "currency_iso_code is missing")
    if currency.upper() != store.currency.upper():
        raise MappingError(
            oid,
            "currency",
            f"order currency {currency} differs from the Shopify store {store.name!r} currency {store.currency}; "
            "multi-currency import is not supported: sell on this marketplace in the store currency "
            "or import it into another store",
        )
    tax_mode = order.order_tax_mode or marketplace.orders.tax_mode
    if tax_mode not in TAX_MODES:
        raise MappingError(oid, "malformed", f"order_tax_mode {tax_mode!r} is not one of {TAX_MODES}")
    try:
        lines = live_lines(order, CANCELLATION_AMOUNTS[marketplace.orders.cancellation_amounts])
    except LineAmountError as e:
        raise MappingError(oid, "malformed", e.reason) from None
    if not lines:
        raise MappingError(oid, "malformed", "no order line to import (none, or every unit refused or canceled)")
    _check_skus(oid, lines, variants)
    fees_paid = _check_totals(order)
    return _Checked(store.currency.upper(), tax_mode == "TAX_INCLUDED", lines, fees_paid)


def _check_skus(order_id: str, lines: list[LiveLine], variants: Mapping[str, Variant]) -> None:
    no_sku = [line.order_line_id for line in lines if not line.sku]
    if no_sku:
        raise MappingError(order_id, "malformed", "; ".join(f"line {lid} has no offer SKU" for lid in no_sku))
    unknown = [f"{line.sku} (line {line.order_line_id}, ×{line.quantity})" for line in lines if line.sku not in variants]
    if unknown:
        raise MappingError(
            order_id,
            "unknown_sku",
            f"no Shopify variant has SKU {', '.join(unknown)}: create the variant or fix the offer SKU in Mirakl",
        )


def _stated_total(line: OrderLine, with_fees: bool = True) -> Decimal:
    fees = sum((f.amount or ZERO for f in line.fees), ZERO) if with_fees else ZERO
    return (line.price or ZERO) + (line.shipping_price or ZERO) + fees


def _check_totals(order: MiraklOrder) -> bool:
    """Mirakl's order figures are the sums of its lines' (spec: total = price + shipping + fees); True when the
    fees are in the total (the customer paid them).

    After a partial refusal Mirakl's sums may or may not still cover the refused lines (unverified on a
    live instance): the document is consistent if either reading adds up. The spec's own OR11 example leaves
    its line fees out of total_price (173 = 165 + 8 with 0.65 of fees): a total without the fees is read as
    fees the customer did not pay.
    """
    oid = order.order_id
    if order.total_price is None:
        raise MappingError(oid, "malformed", "total_price is missing (the spec requires it: price + shipping + fees)")
    readings = [order.order_lines, [line for line in order.order_lines if line.order_line_state != "REFUSED"],
                [line for line in order.order_lines if not is_dead(line)]]

    def fits(stated: Optional[Decimal], of_line) -> bool:
        return stated is None or any(
            stated.quantize(CENT) == sum((of_line(line) for line in lines), ZERO).quantize(CENT) for lines in readings)

    if not fits(order.price, lambda line: line.price or ZERO):
        all_lines = sum((line.price or ZERO for line in order.order_lines), ZERO)
        raise MappingError(oid, "malformed", f"order price {_money(order.price)} is not the sum of its lines' prices "
                                             f"({_money(all_lines)}; spec: price = Σ line price)")
    if not fits(order.shipping_price, lambda line: line.shipping_price or ZERO):
        all_lines = sum((line.shipping_price or ZERO for line in order.order_lines), ZERO)
        raise MappingError(oid, "malformed", f"order shipping_price {_money(order.shipping_price)} is not the sum of its "
                                             f"lines' shipping prices ({_money(all_lines)}; spec: Σ line shipping_price)")
    if fits(order.total_price, _stated_total):
        fees_paid = True
    elif any(line.fees for line in order.order_lines) and fits(order.total_price, lambda line: _stated_total(line, False)):
        fees_paid = False
    else:
        fees_paid = None
    wrong = [line for line in order.order_lines if line.total_price is not None
             and line.total_price.quantize(CENT) != _stated_total(line, fees_paid is not False).quantize(CENT)]
    if not wrong and fees_paid is not None:
        return fees_paid
    if wrong:
        line = wrong[0]
        fees = sum((f.amount or ZERO for f in line.fees), ZERO) if fees_paid is not False else ZERO
        raise MappingError(
            oid, "malformed",
            f"line {line.order_line_id}: total_price {_money(line.total_price)} ≠ price {_money(line.price or ZERO)} + "
            f"shipping {_money(line.shipping_price or ZERO)} + fees {_money(fees)} = "
            f"{_money(_stated_total(line, fees_paid is not False))} (spec: a line's total is its price with shipping "
            "and fees): which of them the customer paid cannot be told",
        )
    price = sum((line.price or ZERO for line in order.order_lines), ZERO)
    shipping = sum((line.shipping_price or ZERO for line in order.order_lines), ZERO)
    fees = sum((f.amount or ZERO for line in order.order_lines for f in line.fees), ZERO)
    computed = price + shipping + fees
    raise MappingError(
        oid, "malformed",
        f"lines ({_money(price)}) + shipping ({_money(shipping)}) + fees ({_money(fees)}) = {_money(computed)} but "
        f"Mirakl total_price is {_money(order.total_price)} {order.currency_iso_code} (a difference of "
        f"{_money(order.total_price - computed)}): the Shopify order would not match what the customer paid",
    )


# -- lines -------------------------------------------------------------------------------------------


def _unit_prices(total: Decimal, quantity: int) -> list[tuple[Decimal, int]]:
    """(unit price, units) pairs whose sum is exactly `total`: a price that does not divide by its quantity
    is split into units one cent apart (10.00 for 3 → 2 × 3.33 + 1 × 3.34)."""
    cents = int((total / CENT).to_integral_value())
    base, extra = divmod(cents, quantity)
    parts = [(Decimal(base) * CENT, quantity - extra), (Decimal(base + 1) * CENT, extra)]
    return [(price, units) for price, units in parts if units > 0]


def _line_items(line: LiveLine, variant: Variant, taxes_included: bool, currency: str) -> list[dict]:
    parts = _unit_prices(line.list_price, line.quantity)
    weights = [price * units for price, units in parts]
    # Each tax is split over the parts like the price, to the cent, so the parts' taxes sum to Mirakl's.
    shares = [split_in_cents(tax.amount, weights) for tax in line.taxes]
    items = []
    for index, (price, units) in enumerate(parts):
        item = {
            "variantId": variant.id,
            "sku": variant.sku,  # the shop's SKU: the offer's may differ (the SKU mapping file)
            "quantity": units,
            "priceSet": _money_bag(price, currency),
            "requiresShipping": True,
            "properties": [{"name": LINE_ID_PROPERTY, "value": line.order_line_id}],
        }
        if line.title:
            item["title"] = line.title
        taxes = [TaxAmount(t.code, t.rate, share[index], t.channel_liable) for t, share in zip(line.taxes, shares)]
        if taxes:
            gross = line.price * weights[index] / sum(weights, ZERO) if sum(weights, ZERO) else ZERO
            item["taxLines"] = _tax_lines(taxes, gross, taxes_included, currency)
        items.append(item)
    return items


def _fee_items(line: LiveLine, currency: str) -> list[dict]:
    """Fees the customer paid on a line: custom line items that ship nothing and carry no tax."""
    return [{
        "title": f"Marketplace fee {fee.code}",
        "quantity": 1,
        "priceSet": _money_bag(fee.amount, currency),
        "requiresShipping": False,
        "taxable": False,
        "properties": [{"name": FEE_OF_PROPERTY, "value": line.order_line_id}],
    } for fee in line.fees]


def _shipping_line(order: MiraklOrder, lines: list[LiveLine], taxes_included: bool, currency: str,
                   marketplace_code: str) -> dict:
    shipping = _shipping_total(order, lines)
    shipping_line = {
        "title": order.shipping_type_label or order.shipping_type_code or "Marketplace shipping",
        "priceSet": _money_bag(shipping, currency),
        "source": marketplace_code,  # which marketplace priced it
    }
    if order.shipping_type_code:
        shipping_line["code"] = order.shipping_type_code
    shipping_taxes = [tax for line in lines for tax in line.shipping_taxes]
    if shipping_taxes:
        shipping_line["taxLines"] = _tax_lines(shipping_taxes, shipping, taxes_included, currency)
    return shipping_line


def _shipping_total(order: MiraklOrder, lines: list[LiveLine]) -> Decimal:
    """Shipping of the live lines; the order's figure only when no line states its shipping price."""
    if order.shipping_price is not None and all(line.shipping_price is None for line in order.order_lines):
        return order.shipping_price
    return sum((line.shipping for line in lines), ZERO)


def _order_tax_lines(order: MiraklOrder, lines: list[LiveLine], taxes_included: bool, currency: str) -> list[dict]:
    """Order-level Mirakl taxes ({code, rate, total_amount}, 'order level tax calculation') as Shopify order tax lines.

    The order's figures may also sum the shipping taxes its lines state (which go on the shipping line): what a
    code's shipping taxes already hold is taken off that code's order figure, so no tax is counted twice.
    """
    shipping = {}
    for line in order.order_lines:
        for tax in line.shipping_taxes:
            shipping[tax.code or "Tax"] = shipping.get(tax.code or "Tax", ZERO) + (tax.amount or ZERO)
    taxes = []
    for tax in order.order_taxes:
        code = tax.code or "Tax"
        amount = Decimal(str(getattr(tax, "total_amount", None) or tax.amount or 0))
        held = min(shipping.get(code, ZERO), amount)
        shipping[code] = shipping.get(code, ZERO) - held
        if amount - held > 0 or amount == 0:
            taxes.append(TaxAmount(code, tax.rate, amount - held))
    gross = sum((line.price for line in lines), ZERO)
    return _tax_lines(taxes, gross, taxes_included, currency)


# -- promotions, payment, facts -----------------------------------------------------------------------


def _promotion_text(promotion: Promotion) -> str:
    config = promotion.configuration
    kind = (config.type if config else None) or "promotion"
    detail = ""
    if config is not None:
        if config.type == "PERCENTAGE_OFF" and config.percentage_off is not None:
            detail = f" {config.percentage_off.normalize():f} %"
        elif config.type == "AMOUNT_OFF" and config.amount_off is not None:
            detail = f" {_money(config.amount_off)}"
        elif config.type == "REDUCED_UNIT_PRICE" and config.reduced_unit_price is not None:
            detail = f" to {_money(config.reduced_unit_price)} a unit"
    if promotion.offered_quantity:
        detail += f", {promotion.offered_quantity} free"
    name = promotion.promo_code or promotion.id or ""
    return f"{kind}{detail}{f' ({name})' if name else ''} −{_money(promotion.deduced_amount or ZERO)}"


def _discount_code(lines: list[LiveLine], currency: str) -> Optional[dict]:
    """The promotions still applying, as the one fixed discount code Shopify takes on an imported order."""
    total = sum((line.discount for line in lines), ZERO)
    if total <= 0:
        return None
    names = [p.promo_code or p.id or "MIRAKL_PROMOTION" for line in lines for p in line.promotions]
    code = "+".join(dict.fromkeys(names))[:DISCOUNT_CODE_MAX] or "MIRAKL_PROMOTION"
    return {"itemFixedDiscountCode": {"code": code, "amountSet": _money_bag(total, currency)}}


def _payment(order: MiraklOrder, marketplace: MarketplaceConfig, amount: Decimal, currency: str,
             notes: _Notes) -> tuple[bool, dict]:
    """Paid orders carry the marketplace's payment as a successful sale; the others stay pending."""
    status = payment_status(order)
    notes.attribute("payment_workflow", order.payment_workflow)
    if not status.paid:
        notes.note(f"Payment pending: {status.reason}")
        return False, {"financialStatus": "PENDING"}
    transaction = {
        "kind": "SALE",
        "status": "SUCCESS",
        "gateway": marketplace.orders.gateway,
        "amountSet": _money_bag(amount, currency),
        "processedAt": _iso(status.paid_at),
    }
    if order.transaction_number:
        transaction["authorizationCode"] = order.transaction_number
    return True, {"financialStatus": "PAID", "transactions": [transaction]}


def _metafield(namespace: str, key: str, kind: str, value: str) -> dict:
    return {"namespace": namespace, "key": key, "type": kind, "value": value}


def _metafields(order: MiraklOrder, lines: list[LiveLine], marketplace: MarketplaceConfig) -> list[dict]:
    """Facts other systems read by key: the commission per live line (payout reconciliation) and the
    delivery point (warehouse and carrier integrations)."""
    ns = marketplace.orders.commission_metafield_namespace
    fields = []
    # number_decimal, not money: the amount is in the order currency, which the checks tie to the store's.
    if order.total_commission is not None or any(line.commission.total for line in lines):
        fields.append(_metafield(ns, "commission", "number_decimal",
                                 _money(sum((line.commission.total for line in lines), ZERO))))
        fields.append(_metafield(ns, "commission_lines", "json", json.dumps([{
            "order_line_id": line.order_line_id,
            "commission_fee": _money(line.commission.fee),
            "commission_vat": _money(line.commission.vat),
            "commission_vat_rate": None if line.commission.vat_rate is None else _money(line.commission.vat_rate),
            "total_commission": _money(line.commission.total),
        } for line in lines])))
    for key in ("shipping_pudo_id", "shipping_zone_code", "shipping_type_code"):
        value = getattr(order, key)
        if value:
            fields.append(_metafield(ns, key, "single_line_text_field", str(value)))
    return fields


def _order_facts(order: MiraklOrder, lines: list[LiveLine], marketplace: MarketplaceConfig) -> _Notes:
    """The Mirakl references and delivery facts an operator or the warehouse needs on the Shopify order."""
    notes = _Notes()
    cart = f" (cart {order.commercial_id})" if order.commercial_id else ""
    notes.note(f"Mirakl order {order.order_id} on {marketplace.name}{cart}")
    notes.attribute("marketplace", marketplace.code)
    notes.attribute("mirakl_order_id", order.order_id)
    notes.attribute("commercial_id", order.commercial_id)
    notes.attribute("channel", order.channel.code if order.channel else None)
    notes.attribute("shipping_deadline", _iso(order.shipping_deadline) if order.shipping_deadline else None)
    notes.attribute("shipping_zone_code", order.shipping_zone_code)
    if order.shipping_pudo_id:
        notes.attribute("shipping_pudo_id", order.shipping_pudo_id)
        service = order.shipping_type_label or order.shipping_type_code or "pick-up"
        notes.note(f"Deliver to relay point {order.shipping_pudo_id} ({service})")
    for line in lines:
        for promotion in line.promotions:
            notes.note(f"Promotion on line {line.order_line_id} ({line.sku}): {_promotion_text(promotion)}")
        if line.cancelled:
            notes.note(f"Line {line.order_line_id} ({line.sku}): {line.cancelled} of {line.ordered} units canceled "
                       "on the marketplace before import")
    return notes


def build_order_create(
    order: MiraklOrder,
    variants: Mapping[str, Variant],
    marketplace: MarketplaceConfig,
    store: ShopifyStoreConfig,
    *,
    allow_missing_address: bool = False,
) -> OrderCreateRequest:
    """The orderCreate variables for `order`; `variants` is keyed by SKU. Raises MappingError.

    `allow_missing_address`: import without addresses an order whose address Mirakl hides until acceptance.
    """
    checked = _check(order, variants, marketplace, store)
    currency, taxes_included, lines = checked.currency, checked.taxes_included, checked.lines
    notes = _order_facts(order, lines, marketplace)
    addresses = _addresses(order, notes, allow_missing_address)
    line_items = [item for line in lines for item in _line_items(line, variants[line.sku], taxes_included, currency)]
    fee_items = [item for line in lines for item in _fee_items(line, currency)] if checked.fees_paid else []
    if not checked.fees_paid:
        notes.note("Line fees are not in Mirakl's total_price: not charged to the customer, so not on this order")
    shipping_line = _shipping_line(order, lines, taxes_included, currency, marketplace.code)
    # Taxes go on lines when Mirakl gives them per line (order_taxes then only sums them), on the order only when
    # it gives none per line, product or shipping ('order level tax calculation'): Shopify refuses both.
    order_tax_lines = []
    if not any(line.taxes for line in order.order_lines) and order.order_taxes:
        order_tax_lines = _order_tax_lines(order, lines, taxes_included, currency)
    all_tax_lines = [tax for item in [*line_items, shipping_line] for tax in item.get("taxLines", [])]
    taxes = _tax_total([*all_tax_lines, *order_tax_lines])
    # What the customer pays for the live lines (Mirakl's total_price unless lines were refused or canceled).
    fees = sum((line.fee_total for line in lines), ZERO) if checked.fees_paid else ZERO
    goods = sum((line.price for line in lines), ZERO) + fees + _shipping_total(order, lines)
    total = goods if taxes_included else goods + taxes
    paid, payment = _payment(order, marketplace, total, currency, notes)

    order_input: dict = {
        "currency": currency,
        "processedAt": _iso(order.created_date) if order.created_date else None,
        "email": order.customer_notification_email,
        "sourceName": marketplace.orders.source_name,
        "sourceIdentifier": source_identifier(marketplace.code, order.order_id),
        "tags": list(dict.fromkeys([*marketplace.orders.tags, marketplace.code])),
        "taxesIncluded": taxes_included,
        "lineItems": line_items + fee_items,
        "shippingLines": [shipping_line],
        "taxLines": order_tax_lines or None,
        "discountCode": _discount_code(lines, currency),
        **addresses,
        **payment,
        # Last, after the facts: the reference that makes the import exactly-once (ShopifyClient.create_order).
        "metafields": [*_metafields(order, lines, marketplace),
                       order_ref_metafield(source_identifier(marketplace.code, order.order_id))],
        "customAttributes": notes.attributes,
        "note": "\n".join(notes.lines),
    }
    options = {
        "inventoryBehaviour": marketplace.orders.inventory_behaviour,
        "sendReceipt": marketplace.orders.send_receipt,
        "sendFulfillmentReceipt": False,
    }
    return OrderCreateRequest({key: value for key, value in order_input.items() if value is not None}, options,
                              paid=paid, total=total, quantities={line.order_line_id: line.quantity for line in lines},
                              with_address=bool(addresses))


__all__ = [
    "FEE_OF_PROPERTY", "MAPPING_ERROR_KINDS", "MappingError", "OrderCreateRequest", "addresses_update",
    "build_order_create", "country_alpha2", "source_identifier",
]
