"""orderCreate with a discount code: allocations to the cent, the line discount fields, the code's application,
fee lines, tax lines kept as given, and the REST payload webhooks carry."""

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirakl_pipelines.sandbox.shopify.harness import running_store
from mirakl_pipelines.sandbox.shopify.money import allocate_cents
from mirakl_pipelines.sandbox.shopify.order_create import order_create
from mirakl_pipelines.sandbox.shopify.rest_payloads import order_payload
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines_tests.reference import reference_file

CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "sandbox" / "catalogue.yaml"
MONEY = "shopMoney { amount } presentmentMoney { amount }"
CREATE = f"""mutation($order: OrderCreateOrderInput!) {{ orderCreate(order: $order) {{
  order {{
    id discountCode discountCodes
    subtotalPriceSet {{ {MONEY} }} totalDiscountsSet {{ {MONEY} }} totalShippingPriceSet {{ {MONEY} }}
    totalTaxSet {{ {MONEY} }} totalPriceSet {{ {MONEY} }} totalOutstandingSet {{ {MONEY} }} cartDiscountAmountSet {{ {MONEY} }}
    discountApplications(first: 5) {{ nodes {{ __typename allocationMethod targetSelection targetType index
      value {{ __typename ... on MoneyV2 {{ amount currencyCode }} ... on PricingPercentageValue {{ percentage }} }}
      ... on DiscountCodeApplication {{ code }} }} }}
    shippingLines(first: 5) {{ nodes {{ discountedPriceSet {{ {MONEY} }}
      discountAllocations {{ allocatedAmountSet {{ {MONEY} }} }} }} }}
    lineItems(first: 20) {{ nodes {{
      title sku quantity requiresShipping taxable isGiftCard
      originalTotalSet {{ {MONEY} }} totalDiscountSet {{ {MONEY} }} discountedUnitPriceSet {{ {MONEY} }}
      discountedTotalSet {{ {MONEY} }} withCodes: discountedTotalSet(withCodeDiscounts: true) {{ {MONEY} }}
      discountedUnitPriceAfterAllDiscountsSet {{ {MONEY} }} priceAfterAllDiscountsBeforeTaxesSet {{ {MONEY} }}
      taxLines {{ title rate channelLiable priceSet {{ {MONEY} }} }}
      discountAllocations {{ allocatedAmountSet {{ {MONEY} }} allocatedAmount {{ amount currencyCode }}
        discountApplication {{ index ... on DiscountCodeApplication {{ code }} }} }}
    }} }}
  }}
  userErrors {{ field message code }} }} }}"""


@pytest.fixture(scope="module")
def sandbox():
    reference_file("shopify/admin-2026-07.schema.graphql")
    with running_store(ShopifyStore.from_catalogue_file(CATALOGUE)) as connection:
        yield connection


def eur(amount: str) -> dict:
    return {"shopMoney": {"amount": amount, "currencyCode": "EUR"}}


def line(sandbox, sku: str, quantity: int, unit: str, **extra) -> dict:
    return {"variantId": sandbox.store.variant_by_sku(sku)["id"], "quantity": quantity, "priceSet": eur(unit), **extra}


def fee(title: str, amount: str, **extra) -> dict:
    """A custom line without a variant: how a marketplace fee is imported."""
    return {"title": title, "quantity": 1, "priceSet": eur(amount), **extra}


def create(sandbox, order: dict) -> dict:
    body = sandbox.graphql(CREATE, {"order": {"currency": "EUR", **order}})
    assert "errors" not in body, body.get("errors")
    payload = body["data"]["orderCreate"]
    assert payload["userErrors"] == []
    return payload["order"]


def shop(bag: dict) -> Decimal:
    return Decimal(bag["shopMoney"]["amount"])


def allocated(line_node: dict) -> Decimal:
    return sum((shop(a["allocatedAmountSet"]) for a in line_node["discountAllocations"]), Decimal("0"))


def fixed_code(code: str, amount: str) -> dict:
    return {"itemFixedDiscountCode": {"code": code, "amountSet": eur(amount)}}


def test_fixed_code_is_spread_over_the_lines_to_the_cent(sandbox):
    order = create(sandbox, {
        "lineItems": [line(sandbox, "ALP-TRAIL-42", 3, "33.33"), line(sandbox, "ALP-MERINO-S", 1, "0.01"),
                      line(sandbox, "LUM-HEAD-400", 1, "12.50")],
        "shippingLines": [{"title": "Colissimo", "priceSet": eur("4.90")}],
        "discountCode": fixed_code("MKP-PROMO-10", "10.00"),
    })
    lines = order["lineItems"]["nodes"]
    shares = [allocated(n) for n in lines]
    assert sum(shares) == Decimal("10.00")
    # 99.99 / 0.01 / 12.50 of 112.50: 8.888 / 0.0009 / 1.111 → the leftover cent goes to the largest remainder
    assert shares == [Decimal("8.89"), Decimal("0"), Decimal("1.11")]
    assert lines[1]["discountAllocations"] == []  # nothing allocated, no allocation listed

    [application] = order["discountApplications"]["nodes"]
    assert application == {"__typename": "DiscountCodeApplication", "allocationMethod": "ACROSS", "targetSelection": "ALL",
                           "targetType": "LINE_ITEM", "index": 0, "code": "MKP-PROMO-10",
                           "value": {"__typename": "MoneyV2", "amount": "10.0", "currencyCode": "EUR"}}
    first = lines[0]
    assert first["discountAllocations"][0]["discountApplication"] == {"index": 0, "code": "MKP-PROMO-10"}
    assert first["discountAllocations"][0]["allocatedAmount"] == {"amount": "8.89", "currencyCode": "EUR"}
    # A code spread over the order is not a line-level discount (SDL): left out of these…
    assert shop(first["totalDiscountSet"]) == 0
    assert shop(first["discountedTotalSet"]) == shop(first["originalTotalSet"]) == Decimal("99.99")
    assert shop(first["discountedUnitPriceSet"]) == Decimal("33.33")
    # …and counted in these.
    assert shop(first["withCodes"]) == shop(first["priceAfterAllDiscountsBeforeTaxesSet"]) == Decimal("91.10")
    assert shop(first["discountedUnitPriceAfterAllDiscountsSet"]) == Decimal("30.37")  # 91.10 / 3, rounded

    # The order totals stay: subtotal − discount + shipping.
    assert order["discountCode"] == "MKP-PROMO-10" and order["discountCodes"] == ["MKP-PROMO-10"]
    assert shop(order["subtotalPriceSet"]) == Decimal("102.50")
    assert shop(order["totalDiscountsSet"]) == shop(order["cartDiscountAmountSet"]) == Decimal("10.0")
    assert shop(order["totalPriceSet"]) == shop(order["totalOutstandingSet"]) == Decimal("107.40")


def test_percentage_code_names_its_percentage_and_allocates_what_it_takes(sandbox):
    order = create(sandbox, {
        "lineItems": [line(sandbox, "ALP-TRAIL-43", 3, "19.99"), fee("Frais de préparation", "5.01")],
        "discountCode": {"itemPercentageDiscountCode": {"code": "SOLDES15", "percentage": 15}},
    })
    lines = order["lineItems"]["nodes"]
    assert shop(order["totalDiscountsSet"]) == Decimal("9.75")  # 15 % of 64.98, rounded
    assert sum(allocated(n) for n in lines) == Decimal("9.75")
    assert [allocated(n) for n in lines] == [Decimal("9.00"), Decimal("0.75")]
    [application] = order["discountApplications"]["nodes"]
    assert application["value"] == {"__typename": "PricingPercentageValue", "percentage": 15.0}


def test_a_discount_above_the_lines_is_capped_and_gift_cards_are_never_discounted(sandbox):
    order = create(sandbox, {
        "lineItems": [line(sandbox, "LUM-BOTTLE-750", 1, "8.00"), fee("Carte cadeau", "20.00", giftCard=True)],
        "discountCode": fixed_code("TOO-MUCH", "50.00"),
    })
    bottle, gift_card = order["lineItems"]["nodes"]
    assert gift_card["isGiftCard"] and gift_card["discountAllocations"] == []
    assert allocated(bottle) == Decimal("8.00") and shop(order["totalDiscountsSet"]) == Decimal("8.0")
    assert shop(bottle["withCodes"]) == 0
    assert order["discountApplications"]["nodes"][0]["value"]["amount"] == "50.0"  # what the code promised


def test_fee_lines_keep_their_flags_and_tax_lines_are_kept_as_given(sandbox):
    order = create(sandbox, {
        "lineItems": [
            line(sandbox, "ALP-VEST-12", 1, "59.90", taxLines=[
                {"title": "TVA 20%", "rate": "0.2", "priceSet": eur("9.98"), "channelLiable": None}]),
            fee("Frais de service", "1.50", requiresShipping=False, taxable=False),
            fee("Éco-participation", "0.30", requiresShipping=False, taxLines=[
                {"title": "TVA 20%", "rate": "0.2", "priceSet": eur("0.05"), "channelLiable": True}]),
        ],
        "discountCode": fixed_code("MKP-5", "5.00"),
    })
    vest, service, eco = order["lineItems"]["nodes"]
    assert (service["requiresShipping"], service["taxable"], service["sku"]) == (False, False, None)
    assert (eco["requiresShipping"], eco["taxable"]) == (False, True)
    # Shopify does not recompute an imported tax line, even on a discounted line.
    assert vest["taxLines"] == [{"title": "TVA 20%", "rate": Decimal("0.2"), "channelLiable": None,
                                 "priceSet": {"shopMoney": {"amount": "9.98"}, "presentmentMoney": {"amount": "9.98"}}}]
    assert eco["taxLines"][0]["channelLiable"] is True
    assert shop(order["totalTaxSet"]) == Decimal("10.03")
    assert sum(allocated(n) for n in (vest, service, eco)) == Decimal("5.00")
    assert shop(order["totalPriceSet"]) == Decimal("59.90") + Decimal("1.50") + Decimal("0.30") - 5 + Decimal("10.03")


def test_free_shipping_code_discounts_the_shipping_not_the_items(sandbox):
    order = create(sandbox, {
        "lineItems": [line(sandbox, "LUM-HEAD-400", 1, "39.00")],
        "shippingLines": [{"title": "Colissimo", "priceSet": eur("4.90")}, {"title": "Assurance", "priceSet": eur("1.10")}],
        "discountCode": {"freeShippingDiscountCode": {"code": "LIVRAISON-OFFERTE"}},
    })
    assert shop(order["subtotalPriceSet"]) == Decimal("39.0")
    assert shop(order["totalDiscountsSet"]) == Decimal("6.0") and shop(order["totalPriceSet"]) == Decimal("39.0")
    assert shop(order["cartDiscountAmountSet"]) == 0  # an order-wide discount on the items only
    shipping = order["shippingLines"]["nodes"]
    assert [shop(s["discountAllocations"][0]["allocatedAmountSet"]) for s in shipping] == [Decimal("4.90"), Decimal("1.10")]
    assert [shop(s["discountedPriceSet"]) for s in shipping] == [0, 0]
    assert order["lineItems"]["nodes"][0]["discountAllocations"] == []
    assert order["discountApplications"]["nodes"][0]["targetType"] == "SHIPPING_LINE"


def test_presentment_allocations_sum_to_the_presentment_discount(sandbox):
    order = create(sandbox, {
        "presentmentCurrency": "GBP",
        "lineItems": [line(sandbox, "ALP-TRAIL-44", 1, "89.90") | {"priceSet": {
            "shopMoney": {"amount": "89.90", "currencyCode": "EUR"}, "presentmentMoney": {"amount": "77.31", "currencyCode": "GBP"}}},
            line(sandbox, "ALP-MERINO-M", 2, "24.95") | {"priceSet": {
                "shopMoney": {"amount": "24.95", "currencyCode": "EUR"}, "presentmentMoney": {"amount": "21.46", "currencyCode": "GBP"}}}],
        "discountCode": fixed_code("MKP-7", "7.00"),
    })
    lines = order["lineItems"]["nodes"]
    presentment = sum((Decimal(a["allocatedAmountSet"]["presentmentMoney"]["amount"])
                       for n in lines for a in n["discountAllocations"]), Decimal("0"))
    assert presentment == Decimal(order["totalDiscountsSet"]["presentmentMoney"]["amount"])
    assert sum(allocated(n) for n in lines) == Decimal("7.00")


def test_rest_payload_carries_the_code_its_application_and_the_allocations(sandbox):
    created = create(sandbox, {"lineItems": [line(sandbox, "ALP-TRAIL-42", 1, "30.00"), fee("Frais", "10.00")],
                               "discountCode": fixed_code("MKP-4", "4.00")})
    with sandbox.store.lock:
        payload = order_payload(sandbox.store, sandbox.store.order_record(created["id"]))
    assert payload["discount_codes"] == [{"code": "MKP-4", "amount": "4.00", "type": "fixed_amount"}]
    assert payload["discount_applications"] == [{
        "target_type": "line_item", "type": "discount_code", "value": "4.0", "value_type": "fixed_amount",
        "allocation_method": "across", "target_selection": "all", "code": "MKP-4"}]
    shoe, fee_line = payload["line_items"]
    assert shoe["total_discount"] == "0.00"  # as Shopify's REST shows for an order-wide code
    assert [a["amount"] for a in shoe["discount_allocations"] + fee_line["discount_allocations"]] == ["3.00", "1.00"]
    assert shoe["discount_allocations"][0]["discount_application_index"] == 0
    assert payload["total_discounts"] == "4.00" and payload["total_outstanding"] == "36.00"


# --- the allocation, for any lines and any discount -------------------------------------------------

cents = st.integers(min_value=0, max_value=5_000_000).map(lambda c: Decimal(c) / 100)


@st.composite
def lines_and_discount(draw):
    totals = draw(st.lists(cents, min_size=1, max_size=25))
    discount_cents = draw(st.integers(min_value=0, max_value=int(sum(totals) * 100)))
    return totals, Decimal(discount_cents) / 100


@settings(max_examples=300, deadline=None)
@given(lines_and_discount())
def test_allocation_is_exact_non_negative_and_never_above_a_line(case):
    totals, discount = case
    shares = allocate_cents(discount, totals)
    assert len(shares) == len(totals)
    assert sum(shares) == discount
    assert all(share >= 0 and share == share.quantize(Decimal("0.01")) for share in shares)
    assert all(share <= total for share, total in zip(shares, totals))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines_and_discount())
def test_order_create_allocates_exactly_what_the_order_discounts(case):
    totals, discount = case
    store = ShopifyStore()  # in process: the property is the sandbox's arithmetic, not its HTTP
    payload = order_create(store, {
        "currency": "EUR",
        "lineItems": [{"title": f"Line {n}", "quantity": 1, "priceSet": eur(str(total))} for n, total in enumerate(totals)],
        "discountCode": fixed_code("ANY", str(discount)),
    }, None, "2026-07")
    order = payload["order"]
    shares = [sum((Decimal(a["allocatedAmountSet"]["shopMoney"]["amount"]) for a in n["discountAllocations"]), Decimal("0"))
              for n in order["lineItems"]]
    assert sum(shares) == discount == Decimal(order["totalDiscountsSet"]["shopMoney"]["amount"])
    assert all(0 <= share <= total for share, total in zip(shares, totals))
