"""Money as the Admin API writes it: Decimal amounts normalised ("20.00" → "20.0", "0" → "0.0")."""

from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")


def to_decimal(value, what: str) -> Decimal:
    """A Decimal from an input amount, or a ValueError naming the field."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        value = repr(value)  # shortest round-trip text, never the binary expansion
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{what}: {value!r} is not a decimal amount") from None


def shopify_amount(value: Decimal) -> str:
    """Shopify's Decimal text: no trailing zeros but always one decimal place."""
    text = f"{value.normalize():f}"
    if "." not in text:
        text += ".0"
    return text


def money(amount: Decimal, currency: str) -> dict:
    return {"amount": shopify_amount(amount), "currencyCode": currency}


def money_bag(shop_amount: Decimal, shop_currency: str, presentment_amount: Decimal | None = None,
              presentment_currency: str | None = None) -> dict:
    """A MoneyBag; presentment falls back to the shop money when the order has one currency."""
    return {
        "shopMoney": money(shop_amount, shop_currency),
        "presentmentMoney": money(
            shop_amount if presentment_amount is None else presentment_amount,
            presentment_currency or shop_currency,
        ),
    }


def bag_amount(bag: dict, side: str = "shopMoney") -> Decimal:
    """The Decimal amount of one side of a stored MoneyBag."""
    return Decimal(bag[side]["amount"])


def allocate_cents(amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`amount` (whole cents) spread over `weights` in proportion, to the cent, summing exactly.

    Largest remainders get the leftover cents (ties: the earlier weight), so no share exceeds its weight
    when `amount` ≤ sum(weights) and the weights are cent amounts. The sandbox keeps its own copy of this
    arithmetic on purpose: it plays Shopify against the connector's own split, so the two must not share code.
    """
    total = sum(weights, Decimal("0"))
    if not weights or total <= 0:
        return [Decimal("0.00")] * len(weights)
    cents = int((amount / CENT).to_integral_value())
    exact = [Decimal(cents) * weight / total for weight in weights]
    floors = [int(share) for share in exact]  # int() truncates: shares are ≥ 0
    by_remainder = sorted(range(len(weights)), key=lambda i: (floors[i] - exact[i], i))
    for i in by_remainder[:cents - sum(floors)]:
        floors[i] += 1
    return [Decimal(units) * CENT for units in floors]


def bag_plus(bag: dict, shop_delta: Decimal, presentment_delta: Decimal) -> dict:
    """A new MoneyBag: `bag` with each side moved by its delta, currencies kept."""
    return money_bag(bag_amount(bag) + shop_delta, bag["shopMoney"]["currencyCode"],
                     bag_amount(bag, "presentmentMoney") + presentment_delta, bag["presentmentMoney"]["currencyCode"])
