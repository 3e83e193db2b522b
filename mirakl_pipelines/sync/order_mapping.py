"""Mirakl order -> the variables of Shopify's `orderCreate(order:, options:)`.

The output is plain JSON (Decimals as strings, dates as ISO-8601 strings) matching
OrderCreateOrderInput / OrderCreateOptionsInput of the Admin API 2026-07. Anything that would make
Shopify's order differ from Mirakl's (unknown SKU, missing address, totals that do not add up, a
foreign currency) raises MappingError with a reason an operator can act on, instead of importing a
wrong order.

Money: Mirakl's `total_price` is lines + shipping, with taxes inside in TAX_INCLUDED mode and on top
in TAX_EXCLUDED mode; Mirakl tax `rate` is a percentage (17.5) while Shopify's is a fraction (0.175).
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Optional

import pycountry

from mirakl_pipelines.config import MarketplaceConfig, ShopifyStoreConfig
from mirakl_pipelines.mirakl.models import Address, MiraklOrder, OrderLine, Tax
from mirakl_pipelines.shopify.models import LINE_ID_PROPERTY, Variant
from mirakl_pipelines.sync.eligibility import is_complete_address, is_paid, live_lines

MAPPING_ERROR_KINDS = ("unknown_sku", "missing_address", "malformed", "currency")
TAX_MODES = ("TAX_INCLUDED", "TAX_EXCLUDED")
CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.000001")
# E.164: "+", country code, up to 15 digits in all. Separators are tolerated and stripped.
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()/]")
# Countries whose Shopify addresses carry a province (zone) code; elsewhere the Mirakl state is kept
# in the note only, as Shopify has no zone to put it in (list inferred from Shopify's checkout zones).
PROVINCE_COUNTRIES = frozenset({"AE", "AR", "AU", "BR", "CA", "CL", "CN", "CO", "ES", "ID", "IE", "IN", "IT", "JP",
                                "KR", "MX", "MY", "NZ", "PE", "PH", "PT", "RO", "TH", "US"})


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

    @property
    def variables(self) -> dict:
        """The GraphQL variables of `orderCreate(order: $order, options: $options)`."""
        return {"order": self.order, "options": self.options}


def source_identifier(marketplace_code: str, order_id: str) -> str:
    """The Shopify sourceIdentifier: Mirakl order ids are only unique within one marketplace."""
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


def _rate(tax: Tax, amount: Decimal, base: Decimal) -> str:
    """Shopify's fractional rate: Mirakl's percentage when given, else amount / taxable base."""
    if tax.rate is not None:
        rate = tax.rate / 100
    elif base > 0:
        rate = amount / base
    else:
        rate = Decimal(0)
    return _money(rate.quantize(RATE_PLACES).normalize() if rate else Decimal(0))


def _tax_lines(taxes: Iterable[Tax], gross: Decimal, taxes_included: bool, currency: str) -> list[dict]:
    """Shopify tax lines for Mirakl taxes levied on `gross` (the price as Mirakl states it).

    Taxes with the same code and rate are summed (shipping taxes arrive once per order line).
    """
    grouped: dict[tuple[str, Optional[Decimal]], tuple[Tax, Decimal]] = {}
    for tax in taxes:
        amount = tax.amount or Decimal(0)
        key = (tax.code or "Tax", tax.rate)
        first, total = grouped.get(key, (tax, Decimal(0)))
        grouped[key] = (first, total + amount)
    all_taxes = sum((total for _, total in grouped.values()), Decimal(0))
    base = gross - all_taxes if taxes_included else gross
    return [
        {"title": title, "rate": _rate(first, total, base), "priceSet": _money_bag(total, currency)}
        for (title, _), (first, total) in grouped.items()
    ]


def _e164(phone: Optional[str]) -> Optional[str]:
    if not phone:
        return None
    compact = _PHONE_SEPARATORS.sub("", phone)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if _E164.match(compact) else None


def _province_code(state: Optional[str], alpha2: str) -> Optional[str]:
    """Shopify wants the subdivision code ("CA" for California); Mirakl sends a code or a name."""
    if not state or not state.strip() or alpha2 not in PROVINCE_COUNTRIES:
        return None
    state = state.strip()
    subdivisions = pycountry.subdivisions.get(country_code=alpha2) or []
    for subdivision in subdivisions:
        suffix = subdivision.code.split("-", 1)[1]
        if state.upper() in (suffix, subdivision.code) or state.casefold() == subdivision.name.casefold():
            return suffix
    return None


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
        "provinceCode": _province_code(address.state, alpha2),
        "countryCode": alpha2,
    }
    if address.state and mapped["provinceCode"] is None:
        notes.note(f"{role.capitalize()} address state/province: {address.state}")
    phone = _e164(address.phone) or _e164(address.phone_secondary)
    if phone:
        mapped["phone"] = phone
    elif address.phone or address.phone_secondary:
        # Shopify rejects phones that are not E.164; the carrier still needs the number.
        raw = address.phone or address.phone_secondary
        notes.attribute(f"{role}_phone", raw)
        notes.note(f"{role.capitalize()} phone: {raw}")
    return {key: value for key, value in mapped.items() if value not in (None, "")}


def _check_lines(order: MiraklOrder, lines: list[OrderLine], variants: Mapping[str, Variant]) -> None:
    malformed = []
    for line in lines:
        if line.quantity <= 0:
            malformed.append(f"line {line.order_line_id} has quantity {line.quantity}")
        if line.price_unit is None or line.price_unit < 0:
            malformed.append(f"line {line.order_line_id} has unit price {line.price_unit}")
        if not line.sku:
            malformed.append(f"line {line.order_line_id} has no offer SKU")
    if malformed:
        raise MappingError(order.order_id, "malformed", "; ".join(malformed))
    unknown = [
        f"{line.sku} (line {line.order_line_id}, ×{line.quantity})" for line in lines if line.sku not in variants
    ]
    if unknown:
        raise MappingError(
            order.order_id,
            "unknown_sku",
            f"no Shopify variant has SKU {', '.join(unknown)}: create the variant or fix the offer SKU in Mirakl",
        )


def _lines_total(lines: Iterable[OrderLine]) -> Decimal:
    return sum((line.price_unit * line.quantity for line in lines if line.price_unit is not None), Decimal(0))


def _check_total(order: MiraklOrder, lines: list[OrderLine], shipping: Decimal) -> None:
    if order.total_price is None:
        raise MappingError(order.order_id, "malformed", "total_price is missing")
    lines_total = _lines_total(lines)
    computed = lines_total + shipping
    # After a partial refusal Mirakl's total may still cover every line (unverified on a live
    # instance): the document is consistent if either reading adds up.
    whole = _lines_total(order.order_lines) + (order.shipping_price if order.shipping_price is not None else shipping)
    if order.total_price.quantize(CENT) not in (computed.quantize(CENT), whole.quantize(CENT)):
        raise MappingError(
            order.order_id,
            "malformed",
            f"lines ({_money(lines_total)}) + shipping ({_money(shipping)}) = {_money(computed)} but Mirakl "
            f"total_price is {_money(order.total_price)} {order.currency_iso_code}: the Shopify order would not match "
            "(discounts, fees or canceled quantities are not imported)",
        )


def _line_item(line: OrderLine, variant: Variant, taxes_included: bool, currency: str) -> dict:
    item = {
        "variantId": variant.id,
        "sku": line.sku,
        "quantity": line.quantity,
        "priceSet": _money_bag(line.price_unit, currency),
        "requiresShipping": True,
        "properties": [{"name": LINE_ID_PROPERTY, "value": line.order_line_id}],
    }
    if line.product_title:
        item["title"] = line.product_title
    if line.taxes:
        item["taxLines"] = _tax_lines(line.taxes, line.price_unit * line.quantity, taxes_included, currency)
    return item


def _shipping_line(
    order: MiraklOrder, lines: list[OrderLine], shipping: Decimal, taxes_included: bool, currency: str,
    marketplace_code: str,
) -> dict:
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


def _tax_total(tax_lines: Iterable[dict]) -> Decimal:
    return sum((Decimal(t["priceSet"]["shopMoney"]["amount"]) for t in tax_lines), Decimal(0))


@dataclass(frozen=True)
class _Checked:
    """What the checks established about an order that can be imported."""

    currency: str
    taxes_included: bool
    lines: list[OrderLine]
    shipping: Decimal


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
    lines = live_lines(order)
    if not lines:
        raise MappingError(oid, "malformed", "no order line to import (none, or all refused or canceled)")
    if not is_complete_address(order.shipping_address):
        raise MappingError(
            oid, "missing_address",
            "the shipping address is missing or lacks street, city or country "
            "(Mirakl hides it before acceptance on some marketplaces): import once Mirakl shows it",
        )
    _check_lines(order, lines, variants)
    shipping = _shipping_price(order, lines)
    _check_total(order, lines, shipping)
    return _Checked(store.currency.upper(), tax_mode == "TAX_INCLUDED", lines, shipping)


def _shipping_price(order: MiraklOrder, lines: list[OrderLine]) -> Decimal:
    """Shipping of the lines imported: the order's, unless refused/canceled lines took their share with them."""
    partial = len(lines) < len(order.order_lines)
    if order.shipping_price is not None and not (partial and all(line.shipping_price is not None for line in lines)):
        return order.shipping_price
    return sum((line.shipping_price or Decimal(0) for line in lines), Decimal(0))


def _order_facts(order: MiraklOrder, marketplace: MarketplaceConfig) -> _Notes:
    """The Mirakl references and delivery facts an operator or the warehouse needs on the Shopify order."""
    notes = _Notes()
    cart = f" (cart {order.commercial_id})" if order.commercial_id else ""
    notes.note(f"Mirakl order {order.order_id} on {marketplace.name}{cart}")
    notes.attribute("marketplace", marketplace.code)
    notes.attribute("mirakl_order_id", order.order_id)
    notes.attribute("commercial_id", order.commercial_id)
    notes.attribute("channel", order.channel.code if order.channel else None)
    notes.attribute("shipping_deadline", _iso(order.shipping_deadline) if order.shipping_deadline else None)
    if order.shipping_pudo_id:
        notes.attribute("shipping_pudo_id", order.shipping_pudo_id)
        service = order.shipping_type_label or order.shipping_type_code or "pick-up"
        notes.note(f"Deliver to relay point {order.shipping_pudo_id} ({service})")
    return notes


def _addresses(order: MiraklOrder, notes: _Notes) -> dict:
    """shippingAddress and billingAddress; the billing address falls back to the shipping one when incomplete."""
    organization = order.customer.organization if order.customer else None
    company = organization.name if organization and organization.name else None  # B2B: the buyer's company
    if organization and organization.tax_identification_number:
        notes.attribute("customer_tax_id", organization.tax_identification_number)
    shipping = _address(order, order.shipping_address, "shipping", company, notes)
    billing = order.billing_address
    if order.shipping_address.additional_info:
        notes.note(f"Delivery instructions: {order.shipping_address.additional_info}")
    return {
        "shippingAddress": shipping,
        "billingAddress": _address(order, billing, "billing", company, notes)
        if is_complete_address(billing) else dict(shipping),
    }


def _payment(order: MiraklOrder, marketplace: MarketplaceConfig, amount: Decimal, currency: str) -> dict:
    """Paid orders carry the marketplace's payment as a successful sale; unpaid ones stay pending."""
    if not is_paid(order):
        # Imported before the debit (acceptance after import): Shopify shows the payment as pending.
        return {"financialStatus": "PENDING"}
    transaction = {
        "kind": "SALE",
        "status": "SUCCESS",
        "gateway": marketplace.orders.gateway,
        "amountSet": _money_bag(amount, currency),
    }
    paid_at = order.customer_debited_date or order.created_date
    if paid_at:
        transaction["processedAt"] = _iso(paid_at)
    return {"financialStatus": "PAID", "transactions": [transaction]}


def _commission_metafields(order: MiraklOrder, marketplace: MarketplaceConfig) -> list[dict]:
    # number_decimal, not money: the amount is in the order currency, which the checks tie to the store's.
    if order.total_commission is None:
        return []
    return [{
        "namespace": marketplace.orders.commission_metafield_namespace,
        "key": "commission",
        "type": "number_decimal",
        "value": _money(order.total_commission),
    }]


def _order_tax_lines(order: MiraklOrder, lines: list[OrderLine], taxes_included: bool, currency: str) -> list[dict]:
    """Order-level Mirakl taxes ({code, rate, total_amount}) as Shopify order tax lines."""
    taxes = [
        Tax(code=tax.code, rate=tax.rate, amount=Decimal(str(getattr(tax, "total_amount", None) or tax.amount or 0)))
        for tax in order.order_taxes
    ]
    gross = sum((line.price_unit * line.quantity for line in lines), Decimal(0))
    return _tax_lines(taxes, gross, taxes_included, currency)


def build_order_create(
    order: MiraklOrder,
    variants: Mapping[str, Variant],
    marketplace: MarketplaceConfig,
    store: ShopifyStoreConfig,
) -> OrderCreateRequest:
    """The orderCreate variables for `order`; `variants` is keyed by SKU. Raises MappingError."""
    checked = _check(order, variants, marketplace, store)
    currency, taxes_included = checked.currency, checked.taxes_included
    notes = _order_facts(order, marketplace)
    addresses = _addresses(order, notes)
    line_items = [_line_item(line, variants[line.sku], taxes_included, currency) for line in checked.lines]
    shipping_line = _shipping_line(order, checked.lines, checked.shipping, taxes_included, currency, marketplace.code)
    # Taxes go on lines when Mirakl gives them per line, on the order only when it gives none per line
    # (Shopify refuses tax lines on both the order and its lines).
    order_tax_lines = []
    if not any(line.taxes for line in checked.lines) and order.order_taxes:
        order_tax_lines = _order_tax_lines(order, checked.lines, taxes_included, currency)
    all_tax_lines = [tax for item in [*line_items, shipping_line] for tax in item.get("taxLines", [])]
    taxes = _tax_total([*all_tax_lines, *order_tax_lines])
    # What the customer paid for the lines imported (equal to Mirakl's total_price unless lines were refused).
    imported_total = _lines_total(checked.lines) + checked.shipping
    paid = imported_total if taxes_included else imported_total + taxes

    order_input: dict = {
        "currency": currency,
        "processedAt": _iso(order.created_date) if order.created_date else None,
        "email": order.customer_notification_email,
        "sourceName": marketplace.orders.source_name,
        "sourceIdentifier": source_identifier(marketplace.code, order.order_id),
        "tags": list(dict.fromkeys([*marketplace.orders.tags, marketplace.code])),
        "taxesIncluded": taxes_included,
        "lineItems": line_items,
        "shippingLines": [shipping_line],
        "taxLines": order_tax_lines or None,
        **addresses,
        **_payment(order, marketplace, paid, currency),
        "metafields": _commission_metafields(order, marketplace) or None,
        "customAttributes": notes.attributes,
        "note": "\n".join(notes.lines),
    }
    options = {
        "inventoryBehaviour": marketplace.orders.inventory_behaviour,
        "sendReceipt": marketplace.orders.send_receipt,
        "sendFulfillmentReceipt": False,
    }
    return OrderCreateRequest({key: value for key, value in order_input.items() if value is not None}, options)


__all__ = [
    "MAPPING_ERROR_KINDS", "MappingError", "OrderCreateRequest", "build_order_create", "country_alpha2",
    "source_identifier",
]
