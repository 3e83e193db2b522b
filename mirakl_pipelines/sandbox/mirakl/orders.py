"""Builder of realistic OR11 orders, and the derived fields every state change must keep right.

Money (per line, in the order's tax mode):
- price = unit price x quantity; the order's shipping price is split over the lines in cents;
- taxes / shipping_taxes at `tax_rate` (contained in the price in TAX_INCLUDED, added to it in TAX_EXCLUDED);
- commission_fee = commission_rate x (price + shipping) taken tax included, whatever the order's mode,
  commission VAT at the French 20 %, total_commission = fee + VAT;
- total_price = price + shipping (no fees); the order's price, shipping_price, total_price and
  total_commission are the sums of its lines.
"""

import copy
import hashlib
import zlib
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pycountry

ORDER_STATES = (
    "STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED",
    "TO_COLLECT", "RECEIVED", "CLOSED", "REFUSED", "CANCELED",
)
TAX_MODES = ("TAX_INCLUDED", "TAX_EXCLUDED")
PAYMENT_WORKFLOWS = (
    "PAY_ON_ACCEPTANCE", "PAY_ON_DELIVERY", "PAY_ON_DUE_DATE", "PAY_ON_SHIPMENT", "NO_CUSTOMER_PAYMENT_CONFIRMATION",
)
# States an order only reaches after the shop accepted it, and those where the customer was debited
# (PAY_ON_ACCEPTANCE debits before SHIPPING).
ACCEPTED_STATES = {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
DEBITED_STATES = {"SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
COMMISSION_VAT_RATE = Decimal("0.20")
CENT = Decimal("0.01")

_FIRST_NAMES = ["Camille", "Louis", "Léa", "Hugo", "Chloé", "Lucas", "Manon", "Jules", "Inès", "Arthur"]
_LAST_NAMES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau"]
_STREETS = [
    ("12 rue de la République", "69002", "Lyon"), ("4 avenue Jean Médecin", "06000", "Nice"),
    ("27 boulevard Voltaire", "75011", "Paris"), ("8 place du Capitole", "31000", "Toulouse"),
    ("15 quai des Chartrons", "33000", "Bordeaux"), ("3 rue Sainte-Catherine", "54000", "Nancy"),
    ("41 rue Nationale", "59000", "Lille"), ("9 cours Julien", "13006", "Marseille"),
]


def money(value: Any, what: str) -> Decimal:
    """A non-negative amount as Decimal; floats are refused so that no amount ever passed through binary."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{what}: amounts must be Decimal, int or a decimal string, not {type(value).__name__} {value!r}")
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{what}: {value!r} is not an amount") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{what}: {value!r} must be a finite amount >= 0")
    return amount


def q2(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def build_order(
    *,
    order_id: str,
    lines: list[dict],
    created: datetime,
    state: str = "WAITING_ACCEPTANCE",
    customer: dict | None = None,
    shipping_address: dict | None = None,
    billing_address: dict | None = None,
    tax_mode: str = "TAX_INCLUDED",
    currency: str = "EUR",
    shipping_price: Decimal = Decimal("4.99"),
    tax_rate: Decimal = Decimal("0.20"),
    commission_rate: Decimal = Decimal("0.15"),
    shipping_pudo_id: str | None = None,
    organization: dict | None = None,
    payment_workflow: str = "PAY_ON_ACCEPTANCE",
    leadtime_to_ship: int = 2,
    channel: str | None = None,
) -> dict:
    """A full OR11 order (addresses included) whose money adds up; ValueError naming the order and field."""
    where = f"order {order_id!r}"
    if not isinstance(order_id, str) or not order_id.strip():
        raise ValueError(f"order_id must be a non-empty string (got {order_id!r})")
    if not isinstance(created, datetime) or created.tzinfo is None:
        raise ValueError(f"{where}: created must be a tz-aware datetime (got {created!r})")
    _one_of(state, ORDER_STATES, f"{where}: state")
    _one_of(tax_mode, TAX_MODES, f"{where}: tax_mode")
    _one_of(payment_workflow, PAYMENT_WORKFLOWS, f"{where}: payment_workflow")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()):
        raise ValueError(f"{where}: currency must be an ISO-4217 code such as EUR (got {currency!r})")
    if isinstance(leadtime_to_ship, bool) or not isinstance(leadtime_to_ship, int) or leadtime_to_ship < 0:
        raise ValueError(f"{where}: leadtime_to_ship must be a whole number of days >= 0 (got {leadtime_to_ship!r})")
    if not isinstance(lines, list) or not lines:
        raise ValueError(f"{where}: lines must be a non-empty list")
    shipping_total = money(shipping_price, f"{where}: shipping_price")
    rate = money(tax_rate, f"{where}: tax_rate")
    commission = money(commission_rate, f"{where}: commission_rate")

    seed = int(hashlib.sha256(order_id.encode()).hexdigest(), 16)
    person = customer or {}
    firstname = person.get("firstname") or _FIRST_NAMES[seed % len(_FIRST_NAMES)]
    lastname = person.get("lastname") or _LAST_NAMES[(seed // 7) % len(_LAST_NAMES)]
    street, zip_code, city = _STREETS[(seed // 11) % len(_STREETS)]
    default_address = {
        "civility": person.get("civility", "Mme" if seed % 2 else "M."), "firstname": firstname, "lastname": lastname,
        "company": None, "company_2": None, "street_1": street, "street_2": None, "zip_code": zip_code, "city": city,
        "state": None, "country": "FRA", "country_iso_code": "FRA", "phone": f"06{seed % 10**8:08d}",
        "phone_secondary": None,
    }
    shipping = _address({**default_address, "additional_info": None, **(shipping_address or {})}, f"{where}: shipping_address")
    billing = _address({**default_address, **(billing_address or {})}, f"{where}: billing_address")
    if shipping_pudo_id:
        shipping["additional_info"] = shipping.get("additional_info") or f"Point relais {shipping_pudo_id}"

    shares = _split(shipping_total, len(lines))
    built_lines = [
        _line(order_id, index, spec, shares[index - 1], created, state, tax_mode, rate, commission, where)
        for index, spec in enumerate(lines, start=1)
    ]
    commercial_id = order_id[:-2] if len(order_id) > 2 and order_id[-2] == "-" and order_id[-1].isalpha() else order_id
    country = shipping["country_iso_code"]
    digest = hashlib.sha1(order_id.encode()).hexdigest()
    order = {
        "acceptance_decision_date": None,
        "can_cancel": False,
        "can_shop_ship": False,
        "channel": {"code": channel, "label": channel.replace("_", " ").title()} if channel else None,
        "commercial_id": commercial_id,
        "created_date": created,
        "currency_iso_code": currency,
        "customer": {
            "customer_id": person.get("customer_id") or f"CUST-{seed % 10**9:09d}",
            "civility": shipping["civility"],
            "firstname": firstname,
            "lastname": lastname,
            "locale": person.get("locale", "fr_FR"),
            "billing_address": billing,
            "shipping_address": shipping,
            "organization": _organization(organization, billing, where) if organization is not None else None,
        },
        "customer_debited_date": None,
        "customer_directly_pays_seller": False,
        "customer_notification_email": f"notification+{digest[:24]}.{digest[24:32]}@notification.mirakl.net",
        "delivery_date": {
            "earliest": created + timedelta(days=leadtime_to_ship + 1),
            "latest": created + timedelta(days=leadtime_to_ship + 4),
        },
        "fulfillment": {"center": {"code": "DEFAULT"}},
        "fully_refunded": False,
        "has_customer_message": False,
        "has_incident": False,
        "has_invoice": False,
        "last_updated_date": created,
        "leadtime_to_ship": leadtime_to_ship,
        "order_additional_fields": [],
        "order_id": order_id,
        "order_lines": built_lines,
        "order_state": state,
        "order_state_reason_code": None,
        "order_state_reason_label": None,
        "order_tax_mode": tax_mode,
        "paymentType": "CB",
        "payment_type": "CB",
        "payment_workflow": payment_workflow,
        "price": Decimal(0),
        "promotions": {"applied_promotions": [], "total_deduced_amount": Decimal("0.00")},
        "quote_id": None,
        "references": {"order_reference_for_customer": commercial_id, "order_reference_for_seller": None},
        "shipping_carrier_code": None,
        "shipping_carrier_standard_code": None,
        "shipping_company": None,
        "shipping_deadline": _end_of_day(created + timedelta(days=leadtime_to_ship)),
        "shipping_price": Decimal(0),
        "shipping_pudo_id": shipping_pudo_id,
        "shipping_tracking": None,
        "shipping_tracking_url": None,
        "shipping_type_code": "PUDO" if shipping_pudo_id else "STD",
        "shipping_type_label": "Point relais" if shipping_pudo_id else "Livraison standard",
        "shipping_type_standard_code": "PUDO" if shipping_pudo_id else "STD",
        "shipping_zone_code": "FR-MAINLAND" if country == "FRA" else f"INT-{country}",
        "shipping_zone_label": "France métropolitaine" if country == "FRA" else f"International ({country})",
        "total_commission": Decimal(0),
        "total_price": Decimal(0),
        "transaction_date": None,
        "transaction_number": None,
    }
    if state in ACCEPTED_STATES:
        order["acceptance_decision_date"] = created + timedelta(minutes=5)
    if state in DEBITED_STATES and payment_workflow == "PAY_ON_ACCEPTANCE":
        debited = created + timedelta(minutes=6)
        order["customer_debited_date"] = debited
        order["transaction_date"] = debited
        order["transaction_number"] = f"TR-{digest[:10].upper()}"
        for line in built_lines:
            line["debited_date"] = debited
    if state in {"SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}:
        for line in built_lines:
            line["shipped_date"] = created + timedelta(days=1)
    refresh_totals(order)
    refresh_flags(order)
    return order


def refresh_totals(order: dict) -> None:
    """Order amounts are the sums of the line amounts (Mirakl's definition of price and total_price)."""
    lines = order["order_lines"]
    for line in lines:
        line["total_price"] = line["price"] + line["shipping_price"]
    order["price"] = sum((line["price"] for line in lines), Decimal("0.00"))
    order["shipping_price"] = sum((line["shipping_price"] for line in lines), Decimal("0.00"))
    order["total_price"] = sum((line["total_price"] for line in lines), Decimal("0.00"))
    order["total_commission"] = sum((line["total_commission"] for line in lines), Decimal("0.00"))


def refresh_flags(order: dict) -> None:
    """The booleans that follow from the state: what the shop may do next."""
    state = order["order_state"]
    debited = order.get("customer_debited_date") is not None
    # OR29 cancels "an order which is not yet debited to the customer" (Magento connector docblock).
    order["can_cancel"] = state in {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"} or (state == "SHIPPING" and not debited)
    order["can_shop_ship"] = state == "SHIPPING"
    for line in order["order_lines"]:
        line["can_refund"] = line["order_line_state"] in {"SHIPPED", "TO_COLLECT", "RECEIVED"} or (
            line["order_line_state"] == "SHIPPING" and debited
        )


def in_tax_mode(order: dict, tax_mode: str) -> dict:
    """A copy of `order` with its prices re-expressed in `tax_mode` (OR11 `order_tax_mode`).

    Taxes and commissions keep their amounts; prices lose (TAX_EXCLUDED) or gain (TAX_INCLUDED)
    the tax amounts of their line.
    """
    _one_of(tax_mode, TAX_MODES, "order_tax_mode")
    result = copy.deepcopy(order)
    if order["order_tax_mode"] == tax_mode:
        return result
    sign = -1 if tax_mode == "TAX_EXCLUDED" else 1
    for line in result["order_lines"]:
        tax = sum((t["amount"] for t in line.get("taxes") or []), Decimal(0))
        shipping_tax = sum((t["amount"] for t in line.get("shipping_taxes") or []), Decimal(0))
        line["price"] = line["price"] + sign * tax
        line["price_unit"] = q2(line["price"] / line["quantity"])
        if line.get("origin_unit_price") is not None:
            line["origin_unit_price"] = line["price_unit"]
        line["shipping_price"] = line["shipping_price"] + sign * shipping_tax
    result["order_tax_mode"] = tax_mode
    refresh_totals(result)
    return result


def _line(order_id, index, spec, shipping_share, created, state, tax_mode, rate, commission_rate, where) -> dict:
    what = f"{where} line {index}"
    if not isinstance(spec, dict):
        raise ValueError(f"{what}: expected an object with sku, quantity and unit_price (got {spec!r})")
    sku = spec.get("sku")
    if not isinstance(sku, str) or not sku.strip():
        raise ValueError(f"{what}: sku must be a non-empty string (got {sku!r})")
    quantity = spec.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ValueError(f"{what} ({sku}): quantity must be a whole number >= 1 (got {quantity!r})")
    if "unit_price" not in spec:
        raise ValueError(f"{what} ({sku}): unit_price is missing")
    unit_price = q2(money(spec["unit_price"], f"{what} ({sku}): unit_price"))
    price = unit_price * quantity
    tax = _tax_in(price, rate, tax_mode)
    shipping_tax = _tax_in(shipping_share, rate, tax_mode)
    included = (price + shipping_share) if tax_mode == "TAX_INCLUDED" else (price + shipping_share + tax + shipping_tax)
    fee = q2(included * commission_rate)
    fee_vat = q2(fee * COMMISSION_VAT_RATE)
    pct = q2(rate * 100)
    tax_code = f"TVA{pct.normalize():f}"
    title = spec.get("title") or sku
    return {
        "can_refund": False,
        "cancelations": [],
        "category_code": spec.get("category_code", "sport-outdoor"),
        "category_label": spec.get("category_label", "Sport et plein air"),
        "commission_fee": fee,
        "commission_rate_vat": Decimal("20.0000"),
        "commission_taxes": [{"amount": fee_vat, "code": "TVAFR", "rate": Decimal("20.0000")}],
        "commission_vat": fee_vat,
        "created_date": created,
        "debited_date": None,
        "description": spec.get("description") or title,
        "eco_contributions": [],
        "fees": [],
        "last_updated_date": created,
        "offer_id": zlib.crc32(sku.encode()) + 100000,
        "offer_sku": sku,
        "offer_state_code": "11",  # Mirakl's default offer state: new
        "order_line_additional_fields": [],
        "order_line_id": f"{order_id}-{index}",
        "order_line_index": index,
        "order_line_state": state,
        "order_line_state_reason_code": None,
        "order_line_state_reason_label": None,
        "origin_unit_price": unit_price,
        "price": price,
        "price_additional_info": None,
        "price_unit": unit_price,
        "product_medias": [
            {"media_url": f"/media/product/image/{hashlib.md5(sku.encode()).hexdigest()}", "mime_type": "JPEG", "type": "LARGE"}
        ],
        "product_shop_sku": sku,
        "product_sku": f"MP-{zlib.crc32(sku.encode('utf-8')):010d}",
        "product_title": title,
        "quantity": quantity,
        "received_date": None,
        "refunds": [],
        "shipped_date": None,
        "shipping_price": shipping_share,
        "shipping_taxes": [
            {"amount": shipping_tax, "code": tax_code, "rate": pct, "tax_calculation_rule": "PROPORTIONAL_TO_AMOUNT"}
        ],
        "taxes": [{"amount": tax, "code": tax_code, "rate": pct, "tax_calculation_rule": "PROPORTIONAL_TO_AMOUNT"}],
        "total_commission": fee + fee_vat,
        "total_price": price + shipping_share,
    }


def _tax_in(amount: Decimal, rate: Decimal, tax_mode: str) -> Decimal:
    if tax_mode == "TAX_INCLUDED":
        return q2(amount - amount / (1 + rate))
    return q2(amount * rate)


def _split(total: Decimal, parts: int) -> list[Decimal]:
    """Split an amount in cents; the first lines take the leftover cents."""
    cents = int(q2(total) * 100)
    base, extra = divmod(cents, parts)
    return [Decimal(base + (1 if i < extra else 0)) / 100 for i in range(parts)]


def _address(address: dict, what: str) -> dict:
    for field in ("lastname", "street_1", "city"):
        if not address.get(field):
            raise ValueError(f"{what}: {field} is required")
    alpha3, name = _country(address.get("country_iso_code") or address.get("country") or "", what)
    return {**address, "country_iso_code": alpha3, "country": address.get("country") if len(str(address.get("country") or "")) > 3 else name}


def _country(code: str, what: str) -> tuple[str, str]:
    """ISO-3166 alpha-3 (what Mirakl sends) from an alpha-2 or alpha-3 code."""
    found = pycountry.countries.get(alpha_3=code.upper()) if len(code) == 3 else (
        pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else None
    )
    if found is None:
        raise ValueError(f"{what}: country_iso_code {code!r} is not an ISO-3166 alpha-2 or alpha-3 country code")
    return found.alpha_3, found.name


def _organization(organization: dict, billing: dict, where: str) -> dict:
    if not isinstance(organization, dict):
        raise ValueError(f"{where}: organization must be an object (got {organization!r})")
    name = organization.get("name") or billing.get("company") or "Entreprise Sandbox SAS"
    seed = zlib.crc32(name.encode())
    address = organization.get("address") or {
        key: billing.get(key) for key in ("street_1", "street_2", "zip_code", "city", "state", "country_iso_code")
    }
    alpha3, _ = _country(address.get("country_iso_code") or "", f"{where}: organization.address")
    return {
        "organization_id": organization.get("organization_id") or f"ORG-{seed % 10**6:06d}",
        "name": name,
        "identification_number": organization.get("identification_number") or f"{seed % 10**14:014d}",  # SIRET
        "tax_identification_number": organization.get("tax_identification_number") or f"FR{seed % 10**11:011d}",
        "address": {**address, "country_iso_code": alpha3},
    }


def _end_of_day(moment: datetime) -> datetime:
    return moment.replace(hour=23, minute=59, second=59, microsecond=999000)


def _one_of(value: Any, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)} (got {value!r})")
