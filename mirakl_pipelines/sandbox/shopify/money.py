"""Money as the Admin API writes it: Decimal amounts normalised ("20.00" → "20.0", "0" → "0.0")."""

from decimal import Decimal, InvalidOperation


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
