"""One definition of a Mirakl order line's live quantity and amounts, for every flow (import, acceptance,
shipments, stock, refunds, payouts).

What a line still owes and still has to ship follows from what Mirakl states about it:
- promotions: `price` is after promotions (`price_unit` × `quantity` − Σ `deduced_amount`); the free
  units of a FREE_ITEMS promotion are part of `quantity`;
- cancellations (`cancelations[]`, by the operator or OR30) each list the units (the spec calls them
  informative), the amount, shipping, taxes, fees and commission taken off. The spec does not say
  whether a line's `price` (and its shipping, taxes, fees, commission) still include them afterwards.
  Its own OR11 example keeps the ordered figures (price 165 = 55 × 3 with 12.34 cancelled): the
  "gross" reading, live = stated − cancelled. An instance may state the line already net of its
  cancellations: the "net" reading. `price_unit` tells them apart: gross when `price` ≈ `price_unit`
  × `quantity` − promotions, net when `price` + cancelled ≈ that. When the cancellations take nothing off
  the price (free units, a shipping-only cancellation), nothing in the line tells: the marketplace's
  configured reading decides (`orders.cancellation_amounts`), else the line is refused as ambiguous
  rather than guessed. `quantity` is the ordered quantity in both readings;
- rounding: in TAX_EXCLUDED mode `price_unit` is rounded while `price` is exact, so `price` is the
  truth and `price_unit` may differ from it by half a cent per unit; a larger difference nothing
  explains (no promotion, no cancellation) refuses the line instead of guessing which is right;
- taxes whose `amount_breakdown` parts are not payable to the shop are collected by the marketplace
  itself (channel-liable).
Refused and cancelled lines (`order_line_state`) are not live: they owe nothing and ship nothing.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Optional

from mirakl_pipelines.mirakl.models import Cancelation, MiraklOrder, OrderLine, Promotion, Tax

CENT = Decimal("0.01")
ZERO = Decimal("0")
# Line states that will never be shipped: such lines are neither imported nor decided.
DEAD_LINE_STATES = frozenset({"REFUSED", "CANCELED"})
# orders.cancellation_amounts: "auto" tells the reading from each line's figures (module docstring).
CANCELLATION_AMOUNTS = {"auto": None, "as_ordered": "gross", "net_of_cancellations": "net"}


class LineAmountError(ValueError):
    """A line whose amounts cannot be read without guessing; `reason` names the line, the amounts and the rule."""

    def __init__(self, order_line_id: str, reason: str):
        super().__init__(f"line {order_line_id}: {reason}")
        self.order_line_id = order_line_id
        self.reason = f"line {order_line_id}: {reason}"


@dataclass(frozen=True)
class TaxAmount:
    code: str
    rate: Optional[Decimal]  # a percentage (20 for 20 %), None when Mirakl gave none
    amount: Decimal
    channel_liable: bool = False  # collected and remitted by the marketplace, not by the shop


@dataclass(frozen=True)
class FeeAmount:
    code: str
    amount: Decimal


@dataclass(frozen=True)
class Commission:
    fee: Decimal
    vat: Decimal
    vat_rate: Optional[Decimal]  # a percentage
    total: Decimal


@dataclass(frozen=True)
class LiveLine:
    """A line as it stands now: what is still to ship and what the customer pays for it."""

    order_line_id: str
    sku: Optional[str]
    title: Optional[str]
    state: Optional[str]
    ordered: int
    cancelled: int  # units cancelled (Σ cancelations[].quantity, at most `ordered`)
    quantity: int  # units still to ship
    price: Decimal  # goods, after promotions and cancellations
    discount: Decimal  # promotions that apply to the live units (shown as a discount in Shopify)
    shipping: Decimal
    fees: tuple[FeeAmount, ...]
    taxes: tuple[TaxAmount, ...]  # on the price
    shipping_taxes: tuple[TaxAmount, ...]
    commission: Commission
    promotions: tuple[Promotion, ...]
    reading: str  # "gross" | "net": how Mirakl's figures were read (see the module docstring)

    @property
    def list_price(self) -> Decimal:
        """The goods before promotions: what Shopify shows on the line, the discount coming off it."""
        return self.price + self.discount

    @property
    def fee_total(self) -> Decimal:
        return sum((fee.amount for fee in self.fees), ZERO)

    @property
    def tax_total(self) -> Decimal:
        return sum((tax.amount for tax in (*self.taxes, *self.shipping_taxes)), ZERO)


def is_dead(line: OrderLine) -> bool:
    return line.order_line_state in DEAD_LINE_STATES


def cancelled_quantity(line: OrderLine) -> int:
    return min(sum(max(c.quantity or 0, 0) for c in line.cancelations), max(line.quantity, 0))


def live_quantity(line: OrderLine) -> int:
    """Units of the line still to ship: 0 for a refused or cancelled line, else ordered minus cancelled."""
    if is_dead(line):
        return 0
    return max(line.quantity - cancelled_quantity(line), 0)


def live_order_lines(order: MiraklOrder) -> list[OrderLine]:
    """The lines with units still to ship, as Mirakl sent them."""
    return [line for line in order.order_lines if live_quantity(line) > 0]


def live_lines(order: MiraklOrder, reading: Optional[str] = None) -> list[LiveLine]:
    """The live lines' amounts; LineAmountError names the first line that cannot be read.

    Every line not refused or cancelled is read, so a line whose units were all cancelled while money
    is still owed on it is an error, not a line silently dropped.
    """
    lines = [live_line(line, reading) for line in order.order_lines if not is_dead(line)]
    for line in lines:
        owed = line.price + line.shipping + line.fee_total
        if line.quantity == 0 and owed != 0:
            raise LineAmountError(line.order_line_id, f"all {line.ordered} units are cancelled, yet {_m(owed)} of its "
                                                      "price, shipping and fees is still owed")
    return [line for line in lines if line.quantity > 0]


def live_line(line: OrderLine, reading: Optional[str] = None) -> LiveLine:
    """The line's live figures; `reading` ("gross" | "net") when the marketplace's is known, else told per line."""
    lid = line.order_line_id
    if line.quantity <= 0:
        raise LineAmountError(lid, f"quantity is {line.quantity}: a line orders at least one unit")
    if line.price is None:
        raise LineAmountError(lid, "price is missing (the spec requires it: the line's price without shipping)")
    for name, value in (("price", line.price), ("shipping_price", line.shipping_price), ("price_unit", line.price_unit)):
        if value is not None and value < 0:
            raise LineAmountError(lid, f"{name} is {_m(value)}, below zero")
    promotions = tuple(p for p in line.promotions if (p.deduced_amount or ZERO) != ZERO)
    promoted = sum((p.deduced_amount or ZERO for p in promotions), ZERO)
    if promoted < 0:
        raise LineAmountError(lid, f"promotions deduce {_m(promoted)}, below zero")
    reading = _reading(line, promoted, reading)
    cancels = line.cancelations if reading == "gross" else []
    price = line.price - _sum(c.amount for c in cancels)
    shipping = (line.shipping_price or ZERO) - _sum(c.shipping_amount for c in cancels)
    if price < 0 or shipping < 0:
        what, stated, left = ("price", line.price, price) if price < 0 else ("shipping", line.shipping_price, shipping)
        raise LineAmountError(
            lid, f"its cancellations take {_m(stated - left)} off a {what} of {_m(stated)}: more than the line holds")
    ordered, cancelled = line.quantity, cancelled_quantity(line)
    quantity = live_quantity(line)
    discount = promoted if not cancelled else (promoted * quantity / ordered).quantize(CENT)
    return LiveLine(
        order_line_id=lid, sku=line.sku, title=line.product_title, state=line.order_line_state,
        ordered=ordered, cancelled=cancelled, quantity=quantity, price=price, discount=discount, shipping=shipping,
        fees=_live_fees(line, cancels), taxes=_live_taxes(lid, line.taxes, [c.taxes for c in cancels]),
        shipping_taxes=_live_taxes(lid, line.shipping_taxes, [c.shipping_taxes for c in cancels]),
        commission=_live_commission(line, cancels), promotions=promotions, reading=reading,
    )


def _reading(line: OrderLine, promoted: Decimal, configured: Optional[str]) -> str:
    """How Mirakl states the line ("gross" as ordered, "net" of its cancellations): the marketplace's `configured`
    reading, else told from the figures (module docstring). Either way the price must be `price_unit` × `quantity`
    − promotions to within the rounding of `price_unit` (before cancellations for gross, after for net): a price
    that nothing explains is refused, not imported as if it were right."""
    cancelled = _sum(c.amount for c in line.cancelations)
    if configured is None and cancelled == 0:
        others = [c for c in line.cancelations if _sum([c.shipping_amount]) or c.fees or c.taxes or c.shipping_taxes
                  or c.commission_amount]
        if others:
            raise LineAmountError(
                line.order_line_id,
                "its cancellations take shipping, fees or taxes but nothing off the price, so nothing tells whether "
                "Mirakl's figures for the line are still as ordered or already net of them: set "
                "orders.cancellation_amounts (as_ordered or net_of_cancellations) for this marketplace")
    if line.price_unit is None:
        return configured or "gross"
    expected = line.price_unit * line.quantity - promoted
    slack = CENT / 2 * line.quantity  # price_unit is rounded to the cent
    fits = {"gross": abs(line.price - expected) <= slack, "net": abs(line.price + cancelled - expected) <= slack}
    if configured is not None and fits[configured]:
        return configured
    if configured is None and (fits["gross"] or fits["net"]):
        return "gross" if fits["gross"] else "net"
    if not cancelled:
        raise LineAmountError(
            line.order_line_id,
            f"price {_m(line.price)} ≠ price_unit {_m(line.price_unit)} × {line.quantity} − promotions {_m(promoted)} "
            f"= {_m(expected)}, a difference of {_m(line.price - expected)}, more than rounding price_unit explains: "
            "cannot tell what the customer paid for this line")
    readings = {"gross": "before cancellations", "net": "after them"}
    which = f"the configured reading ({readings[configured]})" if configured else "either reading"
    raise LineAmountError(
        line.order_line_id,
        f"price {_m(line.price)} with {_m(cancelled)} cancelled fits {which} of price_unit {_m(line.price_unit)} × "
        f"{line.quantity} − promotions {_m(promoted)} = {_m(expected)} (the price should equal it before cancellations, "
        f"or equal it minus the cancelled amount after): cannot tell what the customer still pays for this line",
    )


def _live_fees(line: OrderLine, cancels: list[Cancelation]) -> tuple[FeeAmount, ...]:
    amounts: dict[str, Decimal] = {}
    for fee in line.fees:
        code = fee.code or "FEE"
        amounts[code] = amounts.get(code, ZERO) + (fee.amount or ZERO)
    for cancel in cancels:
        for fee in cancel.fees:
            code = fee.code or "FEE"
            amounts[code] = amounts.get(code, ZERO) - (fee.amount or ZERO)
    bad = {code: amount for code, amount in amounts.items() if amount < 0}
    if bad:
        code, amount = next(iter(bad.items()))
        raise LineAmountError(line.order_line_id, f"fee {code} is {_m(amount)} after its cancellations, below zero")
    return tuple(FeeAmount(code, amount) for code, amount in amounts.items() if amount != 0)


def _live_taxes(line_id: str, taxes: list[Tax], cancelled: list[list[Tax]]) -> tuple[TaxAmount, ...]:
    """Live tax per code, split into what the shop remits and what the marketplace collects itself."""
    stated: dict[str, Tax] = {}
    amounts: dict[str, Decimal] = {}
    for tax in taxes:
        code = tax.code or "Tax"
        stated.setdefault(code, tax)
        amounts[code] = amounts.get(code, ZERO) + (tax.amount or ZERO)
    for group in cancelled:
        for tax in group:
            code = tax.code or "Tax"
            amounts[code] = amounts.get(code, ZERO) - (tax.amount or ZERO)
    result = []
    for code, amount in amounts.items():
        if amount < 0:
            raise LineAmountError(line_id, f"tax {code} is {_m(amount)} after its cancellations, below zero")
        first = stated.get(code) or Tax(code=code)
        liable = _channel_liable_share(taxes, code)
        liable_amount = (amount * liable).quantize(CENT) if liable not in (0, 1) else amount * liable
        for part, channel_liable in ((amount - liable_amount, False), (liable_amount, True)):
            if part != 0 or (amount == 0 and not channel_liable):
                result.append(TaxAmount(code, first.rate, part, channel_liable))
    return tuple(result)


def _channel_liable_share(taxes: list[Tax], code: str) -> Decimal:
    """Share of a tax code the marketplace keeps (breakdown parts not payable to the shop): 0 without breakdown."""
    payable = kept = ZERO
    for tax in taxes:
        if (tax.code or "Tax") != code or tax.amount_breakdown is None:
            continue
        for part in tax.amount_breakdown.parts:
            if part.payable_to_shop is False:
                kept += part.amount or ZERO
            else:
                payable += part.amount or ZERO
    whole = payable + kept
    return kept / whole if whole else ZERO


def _live_commission(line: OrderLine, cancels: list[Cancelation]) -> Commission:
    vat_taxes = line.commission_taxes
    fee = (line.commission_fee or ZERO) - _sum(c.commission_amount for c in cancels)
    stated_vat = _sum(t.amount for t in vat_taxes) if vat_taxes else (line.commission_vat or ZERO)
    vat = stated_vat - _sum(t.amount for c in cancels for t in c.commission_taxes)
    if line.total_commission is not None and not cancels:
        total = line.total_commission  # Mirakl's own sum, kept as stated
    else:
        total = fee + vat
    rate = vat_taxes[0].rate if vat_taxes and vat_taxes[0].rate is not None else line.commission_rate_vat
    return Commission(fee=fee, vat=vat, vat_rate=rate, total=total)


def split_in_cents(amount: Decimal, weights: Iterable[Decimal]) -> list[Decimal]:
    """`amount` split in proportion to `weights`, to the cent, summing exactly (largest remainders get the cents)."""
    weights = list(weights)
    total_weight = sum(weights, ZERO)
    if not weights:
        return []
    if total_weight == 0:
        return [amount] + [ZERO] * (len(weights) - 1)
    sign = -1 if amount < 0 else 1
    cents = int((abs(amount) / CENT).to_integral_value())
    exact = [Decimal(cents) * w / total_weight for w in weights]
    floors = [int(e.to_integral_value(rounding=ROUND_DOWN)) for e in exact]
    left = cents - sum(floors)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in by_remainder[:left]:
        floors[i] += 1
    return [sign * Decimal(f) * CENT for f in floors]


def _sum(values: Iterable[Optional[Decimal]]) -> Decimal:
    return sum((v for v in values if v is not None), ZERO)


def _m(amount: Optional[Decimal]) -> str:
    return "none" if amount is None else format(amount, "f")


__all__ = [
    "Commission", "DEAD_LINE_STATES", "FeeAmount", "LineAmountError", "LiveLine", "TaxAmount", "cancelled_quantity",
    "is_dead", "live_line", "live_lines", "live_order_lines", "live_quantity", "split_in_cents",
]
