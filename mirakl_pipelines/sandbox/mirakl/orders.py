"""Builder of realistic OR11 orders, and the derived fields every state change must keep right.

Definitions, read in the spec's OR11 schema (`OR11_Response_200_Orders` and its line schema), all money
as Decimal quantized to cents, in the order's tax mode (`order_tax_mode`):
- line `price` is the line's price without shipping, after its promotions:
  `price = price_unit x quantity - sum(promotions[].deduced_amount)`. When a line price does not divide
  by its quantity (a volume price such as 10.00 for 3, given as `line_price`), `price_unit` is the
  rounded unit price and `price` stays exact; in every case `price_unit = q2((price + deduced) / quantity)`;
- FREE_ITEMS: the free units are part of `quantity`; `offered_quantity` of them are deduced at the unit price;
- line `total_price = price + shipping_price + sum(fees[].amount)`; the order's `price`, `shipping_price`,
  `total_price` and `total_commission` are the sums over its lines (so the order total includes fees);
- `promotions` (order level) summarises the lines' promotions per promotion id: `deduced_amount` and
  `offered_quantity` summed over the lines, `total_deduced_amount` the sum over all of them;
- taxes / shipping_taxes: one entry per tax spec (code, rate in %, `tax_calculation_rule`); contained in
  the amount in TAX_INCLUDED (the total tax split over the codes by rate, the last one taking the leftover
  cent), added to it in TAX_EXCLUDED; a tax spec with `payable_to_shop` set carries an `amount_breakdown`
  with one part (`payable_to_shop: false` = a tax the marketplace collects and remits itself, e.g. OSS VAT);
- commission_fee = commission_rate x (price + shipping) taken tax included, whatever the order's mode;
  commission VAT at the French 20 %; total_commission = fee + VAT.

Cancellations (`cancelations[]`, see state.py `cancel_lines`) are read one of two ways, chosen by the
marketplace setting `cancelations_reduce_line_price`: kept as ordered (the spec's own OR11 example: price
165 = 55 x 3 with a 12.34 cancellation listed), or deducted from the line's price, shipping, taxes, fees
and commission (quantity and price_unit unchanged). `line_price_before_cancelations` gives the line price
as ordered in both readings.

`in_tax_mode` re-expresses an order in the other tax mode: price, shipping, cancellation and refund
amounts gain or lose their own tax amounts (exact: the taxes are stored); promotions' deduced amounts are
converted by the line's price ratio and rounded; `price_unit` is derived again from the definition above,
so only it (and deduced amounts) are rounded. Promotion configurations (amount_off, reduced_unit_price)
are the shop's settings and are not converted. Fees and commissions do not depend on the tax mode.
"""

import copy
import hashlib
import threading
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
PROMOTION_TYPES = ("AMOUNT_OFF", "PERCENTAGE_OFF", "FREE_ITEMS", "REDUCED_UNIT_PRICE")
TAX_CALCULATION_RULES = ("PROPORTIONAL_TO_AMOUNT", "NONE")
# States an order only reaches after the shop accepted it, and those where the customer was debited
# (PAY_ON_ACCEPTANCE debits before SHIPPING).
ACCEPTED_STATES = {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
DEBITED_STATES = {"SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
SHIPPED_STATES = {"SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
RECEIVED_STATES = {"RECEIVED", "CLOSED"}
# Line states in which units may still be cancelled one by one (accepted, not shipped), and the dead ones.
CANCELLABLE_LINE_STATES = {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING"}
DEAD_LINE_STATES = {"REFUSED", "CANCELED"}
# The debit Mirakl confirms, per workflow: the states in which it has necessarily happened (a built order
# in such a state is built debited). NO_CUSTOMER_PAYMENT_CONFIRMATION and customer_directly_pays_seller:
# never (the payment happens outside Mirakl). PAY_ON_DUE_DATE: only once closed (the due date is unknown
# to the builder; the sandbox debits it `payment_duration` days after acceptance).
DEBITED_BY_WORKFLOW = {
    "PAY_ON_ACCEPTANCE": DEBITED_STATES,
    "PAY_ON_SHIPMENT": SHIPPED_STATES,
    "PAY_ON_DELIVERY": RECEIVED_STATES,
    "PAY_ON_DUE_DATE": {"CLOSED"},
    "NO_CUSTOMER_PAYMENT_CONFIRMATION": set(),
}
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
    basket_promotions: list[dict] | None = None,
    taxes: list[dict] | None = None,
    shipping_taxes: list[dict] | None = None,
    payment_duration: int | None = None,
    customer_directly_pays_seller: bool = False,
    payment_type: str = "CB",
    shipping_zone_code: str | None = None,
    shipping_zone_label: str | None = None,
    shipping_type_code: str | None = None,
    shipping_type_label: str | None = None,
) -> dict:
    """A full OR11 order (addresses included) whose money adds up; ValueError naming the order and field.

    Each line is `{"sku", "quantity", "unit_price" | "line_price", "title"?, "promotions"?, "fees"?,
    "origin_unit_price"?, "price_additional_info"?, "category_code"?, "category_label"?, "description"?}`:
    - `line_price`: the price of all the line's units before promotions when it does not divide by the
      quantity (a volume price, e.g. "10.00" for 3): `price_unit` is then its rounded quotient;
    - `promotions`: `[{"type", <its parameter>, "id"?, "promo_code"?, "internal_description"?, "campaign"?}]`
      with AMOUNT_OFF `amount_off`, PERCENTAGE_OFF `percentage_off` (in %), FREE_ITEMS `free_items_quantity`
      (free units among `quantity`), REDUCED_UNIT_PRICE `reduced_unit_price`;
    - `fees`: `[{"code", "amount"}]`, added to the line's and the order's total_price.
    `basket_promotions`: promotions over the whole basket, AMOUNT_OFF (the amount apportioned over the lines
    by their price, `apportioned` true when more than one line shares it) or PERCENTAGE_OFF (the same
    percentage on every line, `apportioned` false).
    `taxes` / `shipping_taxes`: `[{"code", "rate" (in %), "payable_to_shop"?, "tax_calculation_rule"?}]`
    (default: one tax at `tax_rate`; shipping taxes default to `taxes`).
    `payment_duration` (days) is for PAY_ON_DUE_DATE only (default 30 there).
    """
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
    if payment_workflow == "PAY_ON_DUE_DATE":
        payment_duration = 30 if payment_duration is None else payment_duration
        if isinstance(payment_duration, bool) or not isinstance(payment_duration, int) or payment_duration < 0:
            raise ValueError(f"{where}: payment_duration must be a whole number of days >= 0 (got {payment_duration!r})")
    elif payment_duration is not None:
        raise ValueError(f"{where}: payment_duration is only for PAY_ON_DUE_DATE orders (this one is {payment_workflow})")
    if not isinstance(customer_directly_pays_seller, bool):
        raise ValueError(f"{where}: customer_directly_pays_seller must be true or false (got {customer_directly_pays_seller!r})")
    shipping_total = money(shipping_price, f"{where}: shipping_price")
    rate = money(tax_rate, f"{where}: tax_rate")
    commission = money(commission_rate, f"{where}: commission_rate")
    pct = q2(rate * 100)
    default_taxes = [{"code": f"TVA{pct.normalize():f}", "rate": pct}]
    tax_specs = _tax_specs(default_taxes if taxes is None else taxes, f"{where}: taxes")
    shipping_tax_specs = tax_specs if shipping_taxes is None else _tax_specs(shipping_taxes, f"{where}: shipping_taxes")

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

    # Lines: gross amounts and the lines' own promotions, then the basket's, then taxes and commissions.
    drafts = [_draft_line(order_id, index, spec, where) for index, spec in enumerate(lines, start=1)]
    _apply_basket_promotions(drafts, basket_promotions, order_id, where)
    shares = _split(shipping_total, len(lines))
    built_lines = [
        _line(order_id, draft, shares[draft["index"] - 1], created, state, tax_mode, tax_specs, shipping_tax_specs,
              commission, where)
        for draft in drafts
    ]
    commercial_id = order_id[:-2] if len(order_id) > 2 and order_id[-2] == "-" and order_id[-1].isalpha() else order_id
    country = shipping["country_iso_code"]
    digest = hashlib.sha1(order_id.encode()).hexdigest()
    org = _organization(organization, billing, where) if organization is not None else None
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
            "organization": org,
        },
        "customer_debited_date": None,
        "customer_directly_pays_seller": customer_directly_pays_seller,
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
        "paymentType": payment_type,
        "payment_duration": payment_duration,
        "payment_type": payment_type,
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
        "shipping_type_code": shipping_type_code or ("PUDO" if shipping_pudo_id else "STD"),
        "shipping_type_label": shipping_type_label or ("Point relais" if shipping_pudo_id else "Livraison standard"),
        "shipping_type_standard_code": "PUDO" if shipping_pudo_id else "STD",
        "shipping_zone_code": shipping_zone_code or ("FR-MAINLAND" if country == "FRA" else f"INT-{country}"),
        "shipping_zone_label": shipping_zone_label or (
            "France métropolitaine" if country == "FRA" else f"International ({country})"),
        "total_commission": Decimal(0),
        "total_price": Decimal(0),
        "transaction_date": None,
        "transaction_number": None,
    }
    if org is not None and payment_workflow == "PAY_ON_DUE_DATE":
        # A B2B order on payment terms: the operator's invoice is due `payment_duration` days net.
        order["invoice_details"] = {"document_details": [{"format": "PDF"}],
                                    "payment_terms": {"days": payment_duration, "type": "NET"}}
    if state in ACCEPTED_STATES:
        order["acceptance_decision_date"] = created + timedelta(minutes=5)
    shipped_at = created + timedelta(days=1)
    received_at = created + timedelta(days=3)
    if state in SHIPPED_STATES:
        for line in built_lines:
            line["shipped_date"] = shipped_at
    if state in RECEIVED_STATES:
        for line in built_lines:
            line["received_date"] = received_at
    if is_debited_by_mirakl(order) and state in DEBITED_BY_WORKFLOW[payment_workflow]:
        debited = {"PAY_ON_SHIPMENT": shipped_at, "PAY_ON_DELIVERY": received_at}.get(
            payment_workflow, created + timedelta(minutes=6))
        if payment_workflow == "PAY_ON_DUE_DATE":
            debited = created + timedelta(minutes=5, days=payment_duration)
        stamp_debit(order, debited, f"TR-{digest[:10].upper()}")
    refresh_totals(order)
    refresh_flags(order)
    return order


def is_debited_by_mirakl(order: dict) -> bool:
    """False when the customer pays outside Mirakl: no debit is ever confirmed on the order."""
    return not order.get("customer_directly_pays_seller") and order.get("payment_workflow") != "NO_CUSTOMER_PAYMENT_CONFIRMATION"


def stamp_debit(order: dict, at: datetime, transaction_number: str) -> None:
    """The customer's debit: order debit and transaction fields, `debited_date` on its live lines."""
    order["customer_debited_date"] = at
    order["transaction_date"] = at
    order["transaction_number"] = transaction_number
    for line in order["order_lines"]:
        if line["order_line_state"] not in DEAD_LINE_STATES:
            line["debited_date"] = at


def line_price_before_cancelations(line: dict, reduced: bool) -> Decimal:
    """The line's price as ordered: its price, plus what cancellations took off it in the reducing reading."""
    if not reduced:
        return line["price"]
    return line["price"] + sum((c.get("amount") or Decimal(0) for c in line.get("cancelations") or []), Decimal(0))


def refresh_totals(order: dict) -> None:
    """Line totals (price + shipping + fees), the order's sums of its lines and its promotions summary."""
    lines = order["order_lines"]
    for line in lines:
        fees = sum((fee["amount"] for fee in line.get("fees") or []), Decimal(0))
        line["total_price"] = line["price"] + line["shipping_price"] + fees
    order["price"] = sum((line["price"] for line in lines), Decimal("0.00"))
    order["shipping_price"] = sum((line["shipping_price"] for line in lines), Decimal("0.00"))
    order["total_price"] = sum((line["total_price"] for line in lines), Decimal("0.00"))
    order["total_commission"] = sum((line["total_commission"] for line in lines), Decimal("0.00"))
    order["promotions"] = summarise_promotions(lines)


def summarise_promotions(lines: list[dict]) -> dict:
    """OR11's order-level `promotions`: one applied promotion per promotion id, amounts summed over the lines."""
    applied: dict[str, dict] = {}
    for line in lines:
        for promotion in line.get("promotions") or []:
            entry = applied.get(promotion["id"])
            if entry is None:
                applied[promotion["id"]] = copy.deepcopy(promotion)
                continue
            entry["deduced_amount"] += promotion["deduced_amount"]
            if promotion.get("offered_quantity") is not None:
                entry["offered_quantity"] = (entry.get("offered_quantity") or 0) + promotion["offered_quantity"]
            entry["apportioned"] = entry["apportioned"] or promotion["apportioned"]
    total = sum((p["deduced_amount"] for p in applied.values()), Decimal("0.00"))
    return {"applied_promotions": list(applied.values()), "total_deduced_amount": total}


def refresh_flags(order: dict) -> None:
    """The booleans that follow from the state: what the shop may do next.

    can_cancel: OR29 cancels "an order which is not yet debited to the customer" (Magento connector
    docblock), so only before shipment and before a debit. can_refund: a refund gives money back, so the
    customer must have paid: debited by Mirakl, or paying outside Mirakl once the line shipped (before
    shipment such an order is cancelled, not refunded).
    """
    state = order["order_state"]
    debited = order.get("customer_debited_date") is not None
    paid_outside = not is_debited_by_mirakl(order)
    order["can_cancel"] = state in {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"} or (state == "SHIPPING" and not debited)
    order["can_shop_ship"] = state == "SHIPPING"
    for line in order["order_lines"]:
        line_state = line["order_line_state"]
        line["can_refund"] = (line_state in {"SHIPPED", "TO_COLLECT", "RECEIVED"} and (debited or paid_outside)) or (
            line_state == "SHIPPING" and debited
        )


def in_tax_mode(order: dict, tax_mode: str, *, cancelations_reduce_line_price: bool = False) -> dict:
    """A copy of `order` with its prices re-expressed in `tax_mode` (OR11 `order_tax_mode`).

    Taxes and commissions keep their amounts; prices (line price and shipping, cancellation and refund
    amounts) lose (TAX_EXCLUDED) or gain (TAX_INCLUDED) the tax amounts that go with them; promotions'
    deduced amounts follow the line price's ratio, rounded; `price_unit` is derived again
    (`q2((price as ordered + deduced) / quantity)`) and `origin_unit_price` follows it.
    """
    _one_of(tax_mode, TAX_MODES, "order_tax_mode")
    result = copy.deepcopy(order)
    if order["order_tax_mode"] == tax_mode:
        return result
    sign = -1 if tax_mode == "TAX_EXCLUDED" else 1
    for line in result["order_lines"]:
        before = line_price_before_cancelations(line, cancelations_reduce_line_price)
        line["price"] = line["price"] + sign * _tax_sum(line.get("taxes"))
        line["shipping_price"] = line["shipping_price"] + sign * _tax_sum(line.get("shipping_taxes"))
        for entry in (line.get("cancelations") or []) + (line.get("refunds") or []):
            if entry.get("amount") is not None:
                entry["amount"] = entry["amount"] + sign * _tax_sum(entry.get("taxes"))
            if entry.get("shipping_amount") is not None:
                entry["shipping_amount"] = entry["shipping_amount"] + sign * _tax_sum(entry.get("shipping_taxes"))
        after = line_price_before_cancelations(line, cancelations_reduce_line_price)
        factor = _conversion_factor(before, after, line, sign)
        for promotion in line.get("promotions") or []:
            promotion["deduced_amount"] = q2(promotion["deduced_amount"] * factor)
        deduced = sum((p["deduced_amount"] for p in line.get("promotions") or []), Decimal(0))
        old_unit = line["price_unit"]
        line["price_unit"] = q2((after + deduced) / line["quantity"]) if line["quantity"] else line["price_unit"]
        if line.get("origin_unit_price") is not None:
            line["origin_unit_price"] = (
                line["price_unit"] if line["origin_unit_price"] == old_unit else q2(line["origin_unit_price"] * factor))
    result["order_tax_mode"] = tax_mode
    refresh_totals(result)
    return result


def _conversion_factor(before: Decimal, after: Decimal, line: dict, sign: int) -> Decimal:
    """How much one unit of this line's price is worth in the other tax mode."""
    if before:
        return after / before
    rates = [t.get("rate") for t in line.get("taxes") or []]
    if rates and all(r is not None for r in rates):
        total = sum(rates, Decimal(0)) / 100
        return (1 + total) if sign > 0 else 1 / (1 + total)
    return Decimal(1)


def _tax_sum(taxes) -> Decimal:
    return sum((t["amount"] for t in taxes or []), Decimal(0))


# ---- lines ----------------------------------------------------------------------------------------


def _draft_line(order_id: str, index: int, spec: Any, where: str) -> dict:
    """A line's gross amount, unit price and own promotions, validated."""
    what = f"{where} line {index}"
    if not isinstance(spec, dict):
        raise ValueError(f"{what}: expected an object with sku, quantity and unit_price (got {spec!r})")
    sku = spec.get("sku")
    if not isinstance(sku, str) or not sku.strip():
        raise ValueError(f"{what}: sku must be a non-empty string (got {sku!r})")
    what = f"{what} ({sku})"
    quantity = spec.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ValueError(f"{what}: quantity must be a whole number >= 1 (got {quantity!r})")
    if "line_price" in spec:
        if "unit_price" in spec:
            raise ValueError(f"{what}: give unit_price or line_price, not both")
        gross = q2(money(spec["line_price"], f"{what}: line_price"))
        unit_price = q2(gross / quantity)
    elif "unit_price" in spec:
        unit_price = q2(money(spec["unit_price"], f"{what}: unit_price"))
        gross = unit_price * quantity
    else:
        raise ValueError(f"{what}: unit_price is missing (or give line_price, the price of all its units)")
    origin = spec.get("origin_unit_price")
    draft = {
        "index": index, "spec": spec, "sku": sku, "what": what, "quantity": quantity, "gross": gross,
        "unit_price": unit_price, "promotions": [],
        "origin_unit_price": unit_price if origin is None else q2(money(origin, f"{what}: origin_unit_price")),
        "fees": _fees(spec.get("fees"), what),
    }
    for number, promotion in enumerate(_list(spec.get("promotions"), f"{what}: promotions"), start=1):
        draft["promotions"].append(_line_promotion(promotion, draft, f"{order_id}-{index}-P{number}", what))
    _check_deduced(draft)
    return draft


def _line_promotion(spec: Any, draft: dict, default_id: str, what: str) -> dict:
    config = _promotion_config(spec, f"{what}: promotion")
    kind, quantity, gross = config["type"], draft["quantity"], draft["gross"]
    offered = None
    if kind == "AMOUNT_OFF":
        deduced = config["amount_off"]
    elif kind == "PERCENTAGE_OFF":
        deduced = q2(gross * config["percentage_off"] / 100)
    elif kind == "FREE_ITEMS":
        offered = config["free_items_quantity"]
        if offered >= quantity:
            raise ValueError(
                f"{what}: FREE_ITEMS offers {offered} of {quantity} units; the free units are part of the quantity "
                "and at least one unit is paid")
        deduced = q2(gross * offered / quantity)
    else:  # REDUCED_UNIT_PRICE
        if config["reduced_unit_price"] >= draft["unit_price"]:
            raise ValueError(
                f"{what}: REDUCED_UNIT_PRICE {config['reduced_unit_price']} is not below the unit price {draft['unit_price']}")
        deduced = gross - config["reduced_unit_price"] * quantity
    return _promotion_entry(spec, config, default_id, deduced, offered, apportioned=False)


def _apply_basket_promotions(drafts: list[dict], promotions: list[dict] | None, order_id: str, where: str) -> None:
    for number, spec in enumerate(_list(promotions, f"{where}: basket_promotions"), start=1):
        what = f"{where}: basket promotion {number}"
        config = _promotion_config(spec, what)
        default_id = f"{order_id}-B{number}"
        remaining = [d["gross"] - sum((p["deduced_amount"] for p in d["promotions"]), Decimal(0)) for d in drafts]
        if config["type"] == "AMOUNT_OFF":
            total = sum(remaining, Decimal(0))
            if config["amount_off"] > total:
                raise ValueError(f"{what}: AMOUNT_OFF {config['amount_off']} exceeds the basket's {total}")
            shares = _apportion(config["amount_off"], remaining)
            apportioned = sum(1 for share in shares if share) > 1
            for draft, share in zip(drafts, shares):
                if share:
                    draft["promotions"].append(_promotion_entry(spec, config, default_id, share, None, apportioned))
        elif config["type"] == "PERCENTAGE_OFF":
            for draft, amount in zip(drafts, remaining):
                deduced = q2(amount * config["percentage_off"] / 100)
                draft["promotions"].append(_promotion_entry(spec, config, default_id, deduced, None, False))
        else:
            raise ValueError(f"{what}: a basket promotion is AMOUNT_OFF or PERCENTAGE_OFF (got {config['type']})")
    for draft in drafts:
        _check_deduced(draft)


def _check_deduced(draft: dict) -> None:
    deduced = sum((p["deduced_amount"] for p in draft["promotions"]), Decimal(0))
    if deduced > draft["gross"]:
        raise ValueError(f"{draft['what']}: promotions deduce {deduced}, more than the line's {draft['gross']}")


def _promotion_config(spec: Any, what: str) -> dict:
    if not isinstance(spec, dict):
        raise ValueError(f"{what}: expected an object with a type (got {spec!r})")
    kind = spec.get("type")
    _one_of(kind, PROMOTION_TYPES, f"{what}: type")
    config = {"type": kind, "amount_off": None, "free_items_quantity": None, "percentage_off": None,
              "reduced_unit_price": None,
              "internal_description": spec.get("internal_description") or _describe_promotion(kind, spec)}
    if kind == "AMOUNT_OFF":
        config["amount_off"] = q2(money(spec.get("amount_off"), f"{what}: amount_off"))
    elif kind == "PERCENTAGE_OFF":
        config["percentage_off"] = money(spec.get("percentage_off"), f"{what}: percentage_off")
        if config["percentage_off"] > 100:
            raise ValueError(f"{what}: percentage_off is a percentage (0-100), got {config['percentage_off']}")
    elif kind == "FREE_ITEMS":
        free = spec.get("free_items_quantity")
        if isinstance(free, bool) or not isinstance(free, int) or free < 1:
            raise ValueError(f"{what}: free_items_quantity must be a whole number >= 1 (got {free!r})")
        config["free_items_quantity"] = free
    else:
        config["reduced_unit_price"] = q2(money(spec.get("reduced_unit_price"), f"{what}: reduced_unit_price"))
    return config


def _describe_promotion(kind: str, spec: dict) -> str:
    return {
        "AMOUNT_OFF": lambda: f"{spec.get('amount_off')} off",
        "PERCENTAGE_OFF": lambda: f"{spec.get('percentage_off')}% off",
        "FREE_ITEMS": lambda: f"{spec.get('free_items_quantity')} free",
        "REDUCED_UNIT_PRICE": lambda: f"unit price {spec.get('reduced_unit_price')}",
    }[kind]()


def _promotion_entry(spec: dict, config: dict, default_id: str, deduced: Decimal, offered: int | None,
                     apportioned: bool) -> dict:
    entry = {
        "apportioned": apportioned,
        "configuration": dict(config),
        "deduced_amount": q2(deduced),
        "id": str(spec.get("id") or default_id),
        "offered_quantity": offered,
        "promo_code": spec.get("promo_code"),
    }
    if spec.get("campaign"):
        entry["campaign"] = {"identifier": str(spec["campaign"])}
    return entry


def _apportion(amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`amount` split in cents proportionally to `weights` (largest remainders take the leftover cents)."""
    total = sum(weights, Decimal(0))
    cents = int(q2(amount) * 100)
    if total <= 0:
        return [Decimal(0)] * len(weights)
    exact = [Decimal(cents) * w / total for w in weights]
    floors = [int(e) for e in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[: cents - sum(floors)]:
        floors[i] += 1
    return [q2(Decimal(c) / 100) for c in floors]


def _fees(fees: Any, what: str) -> list[dict]:
    result = []
    for number, fee in enumerate(_list(fees, f"{what}: fees"), start=1):
        if not isinstance(fee, dict) or not isinstance(fee.get("code"), str) or not fee["code"].strip():
            raise ValueError(f"{what}: fee {number} must be an object with a code and an amount (got {fee!r})")
        result.append({"amount": q2(money(fee.get("amount"), f"{what}: fee {fee['code']}")), "code": fee["code"]})
    return result


def _tax_specs(specs: Any, what: str) -> list[dict]:
    result, codes = [], set()
    for number, spec in enumerate(_list(specs, what), start=1):
        if not isinstance(spec, dict) or not isinstance(spec.get("code"), str) or not spec["code"].strip():
            raise ValueError(f"{what}: tax {number} must be an object with a code and a rate in % (got {spec!r})")
        if spec["code"] in codes:
            raise ValueError(f"{what}: tax code {spec['code']!r} appears twice")
        codes.add(spec["code"])
        rule = spec.get("tax_calculation_rule", "PROPORTIONAL_TO_AMOUNT")
        _one_of(rule, TAX_CALCULATION_RULES, f"{what}: {spec['code']}: tax_calculation_rule")
        payable = spec.get("payable_to_shop")
        if payable is not None and not isinstance(payable, bool):
            raise ValueError(f"{what}: {spec['code']}: payable_to_shop must be true, false or absent (got {payable!r})")
        rate = money(spec.get("rate"), f"{what}: {spec['code']}: rate")
        if rate > 100:
            raise ValueError(f"{what}: {spec['code']}: rate is a percentage (0-100), got {rate}")
        result.append({"code": spec["code"], "rate": rate, "rule": rule, "payable_to_shop": payable})
    return result


def compute_taxes(amount: Decimal, specs: list[dict], tax_mode: str) -> list[Decimal]:
    """Each tax's amount on `amount`: added to it (TAX_EXCLUDED) or contained in it (TAX_INCLUDED)."""
    if not specs:
        return []
    rates = [s["rate"] / 100 for s in specs]
    if tax_mode == "TAX_EXCLUDED":
        return [q2(amount * r) for r in rates]
    total_rate = sum(rates, Decimal(0))
    if total_rate == 0:
        return [Decimal("0.00")] * len(specs)
    total = q2(amount - amount / (1 + total_rate))
    parts = [q2(total * r / total_rate) for r in rates[:-1]]
    return parts + [total - sum(parts, Decimal(0))]


def _tax_entries(amount: Decimal, specs: list[dict], tax_mode: str) -> list[dict]:
    entries = []
    for spec, value in zip(specs, compute_taxes(amount, specs, tax_mode)):
        entry = {"amount": value, "code": spec["code"], "rate": spec["rate"],  # as precise as given (QST 9.975)
                 "tax_calculation_rule": spec["rule"]}
        if spec["payable_to_shop"] is not None:
            entry["amount_breakdown"] = {"parts": [{
                "amount": value, "commissionable": False, "debitable_from_customer": True,
                "payable_to_shop": spec["payable_to_shop"],
            }]}
        entries.append(entry)
    return entries


def _line(order_id, draft, shipping_share, created, state, tax_mode, tax_specs, shipping_tax_specs,
          commission_rate, where) -> dict:
    spec, sku, quantity = draft["spec"], draft["sku"], draft["quantity"]
    deduced = sum((p["deduced_amount"] for p in draft["promotions"]), Decimal(0))
    price = draft["gross"] - deduced
    taxes = _tax_entries(price, tax_specs, tax_mode)
    shipping_taxes = _tax_entries(shipping_share, shipping_tax_specs, tax_mode)
    tax, shipping_tax = _tax_sum(taxes), _tax_sum(shipping_taxes)
    included = (price + shipping_share) if tax_mode == "TAX_INCLUDED" else (price + shipping_share + tax + shipping_tax)
    fee = q2(included * commission_rate)
    fee_vat = q2(fee * COMMISSION_VAT_RATE)
    title = spec.get("title") or sku
    fees_total = sum((f["amount"] for f in draft["fees"]), Decimal(0))
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
        "fees": draft["fees"],
        "last_updated_date": created,
        "offer_id": zlib.crc32(sku.encode()) + 100000,
        "offer_sku": sku,
        "offer_state_code": "11",  # Mirakl's default offer state: new
        "order_line_additional_fields": [],
        "order_line_id": f"{order_id}-{draft['index']}",
        "order_line_index": draft["index"],
        "order_line_state": state,
        "order_line_state_reason_code": None,
        "order_line_state_reason_label": None,
        "origin_unit_price": draft["origin_unit_price"],
        "price": price,
        "price_additional_info": spec.get("price_additional_info"),
        "price_unit": draft["unit_price"],
        "product_medias": [
            {"media_url": f"/media/product/image/{hashlib.md5(sku.encode()).hexdigest()}", "mime_type": "JPEG", "type": "LARGE"}
        ],
        "product_shop_sku": sku,
        "product_sku": f"MP-{zlib.crc32(sku.encode('utf-8')):010d}",
        "product_title": title,
        "promotions": draft["promotions"],
        "quantity": quantity,
        "received_date": None,
        "refunds": [],
        "shipped_date": None,
        "shipping_price": shipping_share,
        "shipping_taxes": shipping_taxes,
        "taxes": taxes,
        "total_commission": fee + fee_vat,
        "total_price": price + shipping_share + fees_total,
    }


def _split(total: Decimal, parts: int) -> list[Decimal]:
    """Split an amount in cents; the first lines take the leftover cents."""
    cents = int(q2(total) * 100)
    base, extra = divmod(cents, parts)
    return [q2(Decimal(base + (1 if i < extra else 0)) / 100) for i in range(parts)]


def _list(value: Any, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{what}: expected a list (got {value!r})")
    return value


# ---- customer ---------------------------------------------------------------------------------------


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


class ListingInsertions:
    """A paging fault: orders that enter an OR11 listing while it is being paged.

    Each queued batch is added to the marketplace right after one listing's first page (offset 0) is served.
    Built with a past `created_date` and a `last_updated_date` inside the listing's window, they sort ahead of
    the cursor: offset paging misses them unless the client notices `total_count` moved and reads again.
    """

    def __init__(self) -> None:
        self._batches: list[list[dict]] = []
        self._lock = threading.Lock()

    def queue(self, orders: list[dict]) -> None:
        with self._lock:
            self._batches.append(list(orders))

    @property
    def pending(self) -> int:
        """Batches not released yet."""
        return len(self._batches)

    def due(self, offset: int) -> list[dict]:
        """The orders to add after serving a page at `offset`: the next batch after a first page."""
        if offset != 0:
            return []
        with self._lock:
            return self._batches.pop(0) if self._batches else []
