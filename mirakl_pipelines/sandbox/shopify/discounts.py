"""The one discount code of an imported order: its DiscountCodeApplication and its allocations to lines.

orderCreate takes at most one code (OrderCreateDiscountCodeInput). Shopify records it as a discount
application and allocates its amount across the entitled lines in proportion to their totals, the
cents placed so the allocations add up exactly to the discount: line items for an item code (gift
cards are never discounted), shipping lines for a free-shipping code.

Not captured (no recorded response shows allocations), so chosen after the SDL and Shopify's REST payloads:
- the application is a DiscountCodeApplication with allocationMethod ACROSS, targetSelection ALL, index 0;
  its value is a MoneyV2 (fixed code) or a PricingPercentageValue with a positive percentage (the SDL's
  description says "-100 … 0", Shopify's documentation examples show 50 for 50 % off);
- a code spread over the whole order is not a line-level discount: LineItem.totalDiscountSet,
  discountedUnitPriceSet and discountedTotalSet (without `withCodeDiscounts`) leave it out, as their SDL
  descriptions say (REST payloads likewise show `total_discount: "0.00"` beside the `discount_allocations`);
  discountAllocations, discountedTotalSet(withCodeDiscounts: true), discountedUnitPriceAfterAllDiscountsSet
  and priceAfterAllDiscountsBeforeTaxesSet include it.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from mirakl_pipelines.sandbox.shopify.money import CENT, allocate_cents, bag_amount, bag_plus, money, money_bag, to_decimal

ZERO = Decimal("0")


@dataclass(frozen=True)
class DiscountCode:
    code: str
    target_type: str  # LINE_ITEM | SHIPPING_LINE
    amount: Decimal  # what is taken off, shop money
    value: dict  # the application's PricingValue (what the code promised)


def discount_code(discount_input: dict | None, entitled_items: Decimal, shipping: Decimal, currency: str) -> DiscountCode | None:
    """The code of OrderCreateDiscountCodeInput, its amount capped by what it can discount (None without a code)."""
    if not discount_input:
        return None
    if fixed := discount_input.get("itemFixedDiscountCode"):
        promised = to_decimal(fixed["amountSet"]["shopMoney"]["amount"], "discountCode.itemFixedDiscountCode.amountSet") \
            if fixed.get("amountSet") else ZERO
        return DiscountCode(fixed["code"], "LINE_ITEM", min(promised, entitled_items),
                            {"__typename": "MoneyV2", **money(promised, currency)})
    if percentage := discount_input.get("itemPercentageDiscountCode"):
        share = to_decimal(percentage.get("percentage") or 0, "discountCode.itemPercentageDiscountCode.percentage")
        amount = min((entitled_items * share / 100).quantize(CENT, ROUND_HALF_UP), entitled_items)
        return DiscountCode(percentage["code"], "LINE_ITEM", amount,
                            {"__typename": "PricingPercentageValue", "percentage": float(share)})
    if free_shipping := discount_input.get("freeShippingDiscountCode"):
        return DiscountCode(free_shipping["code"], "SHIPPING_LINE", shipping,
                            {"__typename": "PricingPercentageValue", "percentage": 100.0})
    return None


def discountable(line: dict) -> bool:
    return not line["isGiftCard"]


def apply_discount_code(discount: DiscountCode, line_items: list[dict], shipping_lines: list[dict],
                        presentment_amount: Decimal, currency: str, presentment: str) -> dict:
    """Allocate `discount` to its lines (in place) and return its DiscountCodeApplication record."""
    application = {"__typename": "DiscountCodeApplication", "code": discount.code, "index": 0,
                   "allocationMethod": "ACROSS", "targetSelection": "ALL", "targetType": discount.target_type,
                   "value": discount.value}
    if discount.target_type == "LINE_ITEM":
        lines, total_key = [line for line in line_items if discountable(line)], "originalTotalSet"
    else:
        lines, total_key = shipping_lines, "originalPriceSet"
    shop_shares = allocate_cents(discount.amount, [bag_amount(line[total_key]) for line in lines])
    presentment_shares = allocate_cents(presentment_amount,
                                        [bag_amount(line[total_key], "presentmentMoney") for line in lines])
    for line, shop_share, presentment_share in zip(lines, shop_shares, presentment_shares):
        if not shop_share and not presentment_share:
            continue
        allocated = money_bag(shop_share, currency, presentment_share, presentment)
        line["discountAllocations"].append({"allocatedAmountSet": allocated, "allocatedAmount": allocated["shopMoney"],
                                            "discountApplication": application})
        if discount.target_type == "LINE_ITEM":
            _discount_line_item(line, shop_share, presentment_share, currency, presentment)
        else:
            after = bag_plus(line["originalPriceSet"], -shop_share, -presentment_share)
            line["discountedPriceSet"] = line["currentDiscountedPriceSet"] = after
    return application


def _discount_line_item(line: dict, shop_share: Decimal, presentment_share: Decimal, currency: str,
                        presentment: str) -> None:
    after = bag_plus(line["originalTotalSet"], -shop_share, -presentment_share)
    line["_discountedTotalWithCodesSet"] = line["priceAfterAllDiscountsBeforeTaxesSet"] = after
    quantity = line["quantity"]
    line["discountedUnitPriceAfterAllDiscountsSet"] = money_bag(
        (bag_amount(after) / quantity).quantize(CENT, ROUND_HALF_UP), currency,
        (bag_amount(after, "presentmentMoney") / quantity).quantize(CENT, ROUND_HALF_UP), presentment)

