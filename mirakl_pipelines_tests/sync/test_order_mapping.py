import copy
import json
from decimal import Decimal

import pytest

from mirakl_pipelines.sync.order_mapping import (
    LINE_ID_PROPERTY,
    MappingError,
    build_order_create,
    country_alpha2,
    source_identifier,
)
from mirakl_pipelines_tests.sync.orders import (
    SHIPPING_ADDRESS,
    marketplace,
    order,
    store,
    tax_excluded_order,
    tax_included_order,
    variants,
)

D = Decimal


def build(data=None, **changes):
    return build_order_create(order(data, **changes), variants(), marketplace(), store())


def money(bag):
    return D(bag["shopMoney"]["amount"])


def attributes(request):
    return {a["key"]: a["value"] for a in request.order["customAttributes"]}


def with_address(**fields):
    data = tax_included_order()
    data["customer"]["shipping_address"].update(fields)
    return data


# -- identifiers and countries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "order_id", "expected"),
    [("decathlon_fr", "Order_00010-A", "decathlon_fr:Order_00010-A"), ("darty", "8580226802-A", "darty:8580226802-A")],
)
def test_source_identifier_is_scoped_by_marketplace(code, order_id, expected):
    assert source_identifier(code, order_id) == expected
    assert source_identifier("a", order_id) != source_identifier("b", order_id)


@pytest.mark.parametrize(
    ("alpha3", "alpha2"), [("FRA", "FR"), ("DEU", "DE"), ("USA", "US"), ("GBR", "GB"), ("esp", "ES"), (" ITA ", "IT")]
)
def test_country_alpha2(alpha3, alpha2):
    assert country_alpha2(alpha3) == alpha2


@pytest.mark.parametrize("bad", ["XXX", "FR", "", "FRANCE", None])
def test_country_alpha2_rejects_unknown_codes_naming_them(bad):
    with pytest.raises(ValueError, match="not an ISO-3166 alpha-3"):
        country_alpha2(bad)


# -- a full realistic order ------------------------------------------------------------------


def test_tax_included_order_maps_every_field():
    request = build()
    o = request.order
    assert o["currency"] == "EUR"
    assert o["taxesIncluded"] is True
    assert "taxLines" not in o  # taxes are on the lines, never on both
    assert o["processedAt"] == "2026-03-14T09:30:00Z"
    assert o["email"] == "a1b2c3@relay.marketplace.example"
    assert o["sourceName"] == "mirakl"
    assert o["sourceIdentifier"] == "decathlon_fr:Order_00010-A"
    assert o["tags"] == ["mirakl", "decathlon", "decathlon_fr"]

    trail, lamp = o["lineItems"]
    assert trail["variantId"] == variants()["ALP-TRAIL-42"].id
    assert (trail["quantity"], money(trail["priceSet"])) == (2, D("89.90"))
    assert trail["priceSet"]["shopMoney"] == {"amount": "89.90", "currencyCode": "EUR"}
    assert trail["taxLines"] == [
        {"title": "TVA", "rate": "0.2", "priceSet": {"shopMoney": {"amount": "29.97", "currencyCode": "EUR"}}}
    ]
    assert trail["properties"] == [{"name": LINE_ID_PROPERTY, "value": "Order_00010-A-1"}]
    assert lamp["variantId"] == variants()["LUM-HEAD-400"].id
    assert (lamp["quantity"], money(lamp["priceSet"])) == (1, D("39.95"))
    # no rate from Mirakl: 6.66 of tax on a 39.95 price that includes it -> 6.66 / 33.29
    assert D(lamp["taxLines"][0]["rate"]) == D("0.20006")

    (shipping,) = o["shippingLines"]
    assert shipping["title"] == "Livraison standard"
    assert shipping["code"] == "STD"
    assert money(shipping["priceSet"]) == D("4.95")
    assert [(t["rate"], money(t["priceSet"])) for t in shipping["taxLines"]] == [("0.2", D("0.83"))]

    assert o["financialStatus"] == "PAID"
    (transaction,) = o["transactions"]
    assert (transaction["kind"], transaction["status"], transaction["gateway"]) == ("SALE", "SUCCESS", "mirakl")
    assert money(transaction["amountSet"]) == D("224.70")  # taxes are inside the Mirakl total
    assert transaction["processedAt"] == "2026-03-14T10:02:11Z"  # when Mirakl debited the customer
    assert (request.paid, request.total) == (True, D("224.70"))
    fields = {m["key"]: m for m in o["metafields"]}
    assert fields["commission"] == {"namespace": "mirakl", "key": "commission", "type": "number_decimal", "value": "26.37"}
    assert json.loads(fields["commission_lines"]["value"]) == [
        {"order_line_id": "Order_00010-A-1", "commission_fee": "0", "commission_vat": "0", "commission_vat_rate": None,
         "total_commission": "21.58"},
        {"order_line_id": "Order_00010-A-2", "commission_fee": "0", "commission_vat": "0", "commission_vat_rate": None,
         "total_commission": "4.79"},
    ]
    assert fields["shipping_zone_code"]["value"] == "FR-METRO"
    assert fields["shipping_type_code"]["value"] == "STD"
    assert "discountCode" not in o  # no promotion
    assert attributes(request) == {
        "marketplace": "decathlon_fr",
        "mirakl_order_id": "Order_00010-A",
        "commercial_id": "Order_00010",
        "channel": "FR",
        "shipping_deadline": "2026-03-17T23:59:59Z",
        "shipping_zone_code": "FR-METRO",
    }
    assert "Code porte 4721" in o["note"]
    assert request.options == {
        "inventoryBehaviour": "DECREMENT_IGNORING_POLICY", "sendReceipt": False, "sendFulfillmentReceipt": False,
    }
    json.dumps(request.variables)  # plain JSON: no Decimal, no datetime left


def test_tax_excluded_order_adds_taxes_to_the_paid_amount():
    o = build(tax_excluded_order()).order
    assert o["taxesIncluded"] is False
    trail, lamp = o["lineItems"]
    assert money(trail["priceSet"]) == D("74.92")
    assert D(lamp["taxLines"][0]["rate"]) == D("0.20006")  # 6.66 / 33.29, the base is the price itself
    assert money(o["shippingLines"][0]["priceSet"]) == D("4.13")
    # 187.26 before tax + 29.97 + 6.66 + 0.83 of VAT
    assert money(o["transactions"][0]["amountSet"]) == D("224.72")


def test_missing_tax_mode_falls_back_to_the_marketplace_configuration():
    request = build_order_create(
        order(tax_excluded_order(), order_tax_mode=None), variants(),
        marketplace(orders={"tax_mode": "TAX_EXCLUDED"}), store(),
    )
    assert request.order["taxesIncluded"] is False


def test_rate_derived_from_amount_when_the_base_is_zero_is_zero():
    data = tax_included_order()
    line = data["order_lines"][1]
    line.update(price_unit=D("0"), price=D("0"), total_price=D("0"), taxes=[{"code": "TVA", "amount": D("0")}])
    data.update(price=D("179.80"), total_price=D("184.75"))
    assert build(data).order["lineItems"][1]["taxLines"][0]["rate"] == "0"


def test_shipping_taxes_of_several_lines_are_summed_per_code_and_rate():
    data = tax_included_order()
    data["order_lines"][1]["shipping_taxes"] = [
        {"code": "TVA", "amount": D("0.17"), "rate": D("20")},
        {"code": "ECO", "amount": D("0.10"), "rate": D("2")},
    ]
    taxes = build(data).order["shippingLines"][0]["taxLines"]
    assert [(t["title"], t["rate"], money(t["priceSet"])) for t in taxes] == [
        ("TVA", "0.2", D("1.00")), ("ECO", "0.02", D("0.10")),
    ]


def test_order_level_taxes_are_used_only_when_lines_carry_none():
    data = tax_excluded_order()
    for line in data["order_lines"]:
        line["taxes"] = []
    data["order_taxes"] = [{"code": "SALES_TAX", "rate": D("8.25"), "total_amount": D("15.11")}]
    o = build(data).order
    assert all("taxLines" not in item for item in o["lineItems"])
    assert o["taxLines"] == [
        {"title": "SALES_TAX", "rate": "0.0825", "priceSet": {"shopMoney": {"amount": "15.11", "currencyCode": "EUR"}}}
    ]
    assert money(o["transactions"][0]["amountSet"]) == D("187.26") + D("15.11") + D("0.83")

    data["order_lines"][0]["taxes"] = [{"code": "TVA", "amount": D("29.97"), "rate": D("20")}]
    o = build(data).order
    assert "taxLines" not in o and "taxLines" in o["lineItems"][0]


def test_relay_point_is_kept_as_attribute_and_note():
    request = build(shipping_pudo_id="PUDO-FR-004512", shipping_type_label="Point Relais")
    assert attributes(request)["shipping_pudo_id"] == "PUDO-FR-004512"
    assert "relay point PUDO-FR-004512 (Point Relais)" in request.order["note"]


def test_b2b_organisation_becomes_the_company_of_both_addresses():
    data = tax_included_order()
    data["customer"]["organization"] = {
        "organization_id": "ORG-1", "name": "Clubs Montagne SARL", "tax_identification_number": "FR12345678901",
    }
    request = build(data)
    assert request.order["shippingAddress"]["company"] == "Clubs Montagne SARL"
    assert request.order["billingAddress"]["company"] == "Clubs Montagne SARL"
    assert attributes(request)["customer_tax_id"] == "FR12345678901"
    data["customer"]["shipping_address"]["company"] = "Entrepôt Nord"
    assert build(data).order["shippingAddress"]["company"] == "Entrepôt Nord"  # the address's own company wins


def test_non_ascii_names_are_kept_as_is():
    data = with_address(firstname="Łukasz", lastname="Żółć-Ångström", city="Kraków", country_iso_code="POL")
    address = build(data).order["shippingAddress"]
    assert (address["firstName"], address["lastName"], address["city"]) == ("Łukasz", "Żółć-Ångström", "Kraków")
    assert address["countryCode"] == "PL"


@pytest.mark.parametrize(
    ("phone", "secondary", "expected", "kept_aside"),
    [
        ("+33 6 12 34 56 78", None, "+33612345678", None),
        ("0033 (6) 12.34.56.78", None, "+33612345678", None),
        ("06 12 34 56 78", None, "+33612345678", None),  # national format, read with the address's country (FR)
        ("12 34", "+33 4 78 00 00 00", "+33478000000", None),
        ("12 34", None, None, "12 34"),  # not a valid number: kept as typed for the carrier
        ("+44 (0)20 7946 0958", None, "+442079460958", None),  # the "(0)" is dropped, not dialled
        (None, None, None, None),
        ("", None, None, None),
    ],
)
def test_phone_as_e164_else_kept_in_note_and_attribute(phone, secondary, expected, kept_aside):
    request = build(with_address(phone=phone, phone_secondary=secondary))
    assert request.order["shippingAddress"].get("phone") == expected
    assert attributes(request).get("shipping_phone") == kept_aside
    assert (kept_aside in request.order["note"]) if kept_aside else ("phone" not in request.order["note"].lower())


@pytest.mark.parametrize(
    ("country", "state", "province", "noted"),
    [
        ("USA", "California", "CA", False),
        ("USA", "NY", "NY", False),
        ("CAN", "ON", "ON", False),
        ("ESP", "Madrid", "M", False),
        ("CAN", "Quebec", "QC", False),
        ("JPN", "Tokyo", "JP-13", False),
        ("ITA", "Milano", "MI", False),
        ("ITA", "Lombardia", None, True),  # a region: Shopify's Italian zones are provinces
        ("USA", "Atlantis", None, True),
        ("FRA", "Rhône", None, True),  # Shopify has no provinces for France: kept in the note only
        ("FRA", None, None, False),
    ],
)
def test_province_code(country, state, province, noted):
    request = build(with_address(country_iso_code=country, state=state))
    assert request.order["shippingAddress"].get("provinceCode") == province
    assert (f"state/province: {state}" in request.order["note"]) is noted


def test_billing_address_falls_back_to_the_shipping_address_when_incomplete():
    data = tax_included_order()
    data["customer"]["billing_address"] = {"firstname": "Zoé", "lastname": "Lefèvre-Müller", "city": "Lyon"}
    o = build(data).order
    assert o["billingAddress"] == o["shippingAddress"]


def test_unpaid_order_imported_before_debit_is_pending_without_transaction():
    request = build(order_state="WAITING_ACCEPTANCE", customer_debited_date=None)
    assert request.order["financialStatus"] == "PENDING"
    assert "transactions" not in request.order
    assert request.paid is False and request.total == D("224.70")


@pytest.mark.parametrize("workflow", ["PAY_ON_DELIVERY", "PAY_ON_DUE_DATE", "NO_CUSTOMER_PAYMENT_CONFIRMATION",
                                      "PAY_ON_ACCEPTANCE"])
def test_an_order_cleared_to_ship_but_not_debited_is_pending(workflow):
    request = build(customer_debited_date=None, payment_workflow=workflow)
    assert request.order["financialStatus"] == "PENDING" and "transactions" not in request.order
    assert "Payment pending:" in request.order["note"]
    assert attributes(request)["payment_workflow"] == workflow


def test_order_without_commission_has_no_commission_metafield():
    data = tax_included_order()
    for line in data["order_lines"]:
        line["total_commission"] = None
    keys = {m["key"] for m in build(data, total_commission=None).order["metafields"]}
    assert "commission" not in keys and "commission_lines" not in keys


def test_refused_lines_are_not_imported():
    data = tax_included_order()
    data["order_lines"][1]["order_line_state"] = "REFUSED"
    data.update(price=D("179.80"), total_price=D("184.75"))
    items = build(data).order["lineItems"]
    assert [item["sku"] for item in items] == ["ALP-TRAIL-42"]


def test_refused_line_still_in_mirakls_total_imports_and_charges_only_the_accepted_lines():
    data = tax_included_order()
    data["order_lines"][1]["order_line_state"] = "REFUSED"  # totals still cover both lines
    request = build(data)
    assert [item["sku"] for item in request.order["lineItems"]] == ["ALP-TRAIL-42"]
    assert money(request.order["shippingLines"][0]["priceSet"]) == D("4.95")
    assert money(request.order["transactions"][0]["amountSet"]) == D("184.75")  # 2 × 89.90 + 4.95, not 224.70


def test_configuration_drives_tags_source_gateway_namespace_and_options():
    mp = marketplace(
        code="leroymerlin_fr",
        orders={
            "tags": ["mirakl", "mirakl"], "source_name": "channel:leroymerlin", "gateway": "leroy-merlin",
            "commission_metafield_namespace": "marketplace_fees", "inventory_behaviour": "BYPASS", "send_receipt": True,
        },
    )
    request = build_order_create(order(), variants(), mp, store())
    o = request.order
    assert o["tags"] == ["mirakl", "leroymerlin_fr"]
    assert o["sourceName"] == "channel:leroymerlin"
    assert o["sourceIdentifier"] == "leroymerlin_fr:Order_00010-A"
    assert o["transactions"][0]["gateway"] == "leroy-merlin"
    assert o["metafields"][0]["namespace"] == "marketplace_fees"
    assert request.options == {"inventoryBehaviour": "BYPASS", "sendReceipt": True, "sendFulfillmentReceipt": False}


def test_input_order_is_not_mutated():
    data = tax_included_order()
    before = copy.deepcopy(data)
    mirakl_order = order(data)
    snapshot = mirakl_order.model_dump()
    build_order_create(mirakl_order, variants(), marketplace(), store())
    assert mirakl_order.model_dump() == snapshot and data == before


# -- errors an operator must act on ----------------------------------------------------------


def _error(data=None, vs=None, currency="EUR", **changes) -> MappingError:
    with pytest.raises(MappingError) as caught:
        build_order_create(order(data, **changes), vs if vs is not None else variants(), marketplace(), store(currency))
    error = caught.value
    assert error.order_id == "Order_00010-A"
    assert "Order_00010-A" in str(error)
    return error


def test_unknown_skus_are_all_listed():
    data = tax_included_order()
    data["order_lines"].append(
        {"order_line_id": "Order_00010-A-3", "offer_sku": "GHOST-2", "quantity": 3, "price_unit": D("1"),
         "price": D("3"), "shipping_price": D("0")}
    )
    data["price"] = D("222.75")
    data["total_price"] = D("227.70")
    error = _error(data, vs={k: v for k, v in variants().items() if k != "LUM-HEAD-400"})
    assert error.kind == "unknown_sku"
    assert "LUM-HEAD-400 (line Order_00010-A-2, ×1)" in error.reason
    assert "GHOST-2 (line Order_00010-A-3, ×3)" in error.reason
    assert "ALP-TRAIL-42" not in error.reason


@pytest.mark.parametrize(
    "address",
    [None, {**SHIPPING_ADDRESS, "street_1": ""}, {**SHIPPING_ADDRESS, "city": None},
     {**SHIPPING_ADDRESS, "country_iso_code": None}],
)
def test_missing_or_incomplete_shipping_address(address):
    data = tax_included_order()
    data["customer"]["shipping_address"] = address
    error = _error(data)
    assert error.kind == "missing_address"
    assert "shipping address" in error.reason


def test_order_without_customer_is_missing_its_address():
    assert _error(customer=None).kind == "missing_address"


def test_unknown_country_is_malformed_and_named():
    error = _error(with_address(country_iso_code="ZZZ"))
    assert error.kind == "malformed"
    assert "'ZZZ'" in error.reason and "shipping address" in error.reason


@pytest.mark.parametrize(("currency", "store_currency"), [("GBP", "EUR"), ("EUR", "PLN")])
def test_currency_mismatch(currency, store_currency):
    error = _error(currency=store_currency, currency_iso_code=currency)
    assert error.kind == "currency"
    assert currency in error.reason and store_currency in error.reason
    assert "multi-currency" in error.reason


def test_currency_case_is_ignored():
    assert build(currency_iso_code="eur").order["currency"] == "EUR"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"total_price": D("224.71")}, "224.70 but Mirakl total_price is 224.71"),
        ({"total_price": D("200")}, "= 224.70"),
        ({"shipping_price": D("5.95")}, "order shipping_price 5.95 is not the sum of its lines' shipping prices (4.95"),
        ({"price": D("219.70")}, "order price 219.70 is not the sum of its lines' prices (219.75"),
        ({"total_price": None}, "total_price is missing"),
    ],
)
def test_money_mismatch_is_malformed(changes, expected):
    error = _error(**changes)
    assert error.kind == "malformed"
    assert expected in error.reason


def test_total_matching_to_the_cent_is_accepted():
    assert build(total_price=D("224.700")).order["lineItems"]


@pytest.mark.parametrize(
    ("line_changes", "expected"),
    [
        ({"quantity": 0}, "line Order_00010-A-1: quantity is 0"),
        ({"price": None}, "line Order_00010-A-1: price is missing"),
        ({"offer_sku": None, "product_shop_sku": None}, "line Order_00010-A-1 has no offer SKU"),
    ],
)
def test_malformed_lines(line_changes, expected):
    data = tax_included_order()
    data["order_lines"][0].update(line_changes)
    error = _error(data)
    assert error.kind == "malformed"
    assert expected in error.reason


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"order_lines": []}, "no order line"),
        ({"currency_iso_code": None}, "currency_iso_code is missing"),
        ({"order_tax_mode": "TAX_MAYBE"}, "order_tax_mode 'TAX_MAYBE'"),
    ],
)
def test_malformed_orders(changes, expected):
    error = _error(**changes)
    assert error.kind == "malformed"
    assert expected in error.reason


def test_mapping_error_kinds_are_closed():
    with pytest.raises(ValueError, match="unknown MappingError kind"):
        MappingError("X", "oops", "reason")


# -- the spec's variety: promotions, rounding, fees, cancellations, liability ------------------------


def _shopify_total(o):
    """What Shopify totals for these inputs (subtotal − discount + shipping, + taxes when not included)."""
    subtotal = sum(money(i["priceSet"]) * i["quantity"] for i in o["lineItems"])
    discount = money(o["discountCode"]["itemFixedDiscountCode"]["amountSet"]) if "discountCode" in o else D(0)
    shipping = sum(money(s["priceSet"]) for s in o["shippingLines"])
    taxes = sum(money(t["priceSet"]) for x in [*o["lineItems"], *o["shippingLines"]] for t in x.get("taxLines", []))
    return subtotal - discount + shipping + (D(0) if o["taxesIncluded"] else taxes)


def _promoted_order():
    data = tax_included_order()
    trail = data["order_lines"][0]
    trail["promotions"] = [{"id": "SPRING", "promo_code": "SPRING10", "deduced_amount": D("17.98"), "apportioned": False,
                            "configuration": {"type": "PERCENTAGE_OFF", "percentage_off": D("10"),
                                              "internal_description": "spring sale"}}]
    trail.update(price=D("161.82"), total_price=D("166.77"))
    data.update(price=D("201.77"), total_price=D("206.72"))
    return data


def test_promotions_show_list_prices_and_one_discount_code():
    request = build(_promoted_order())
    o = request.order
    trail = o["lineItems"][0]
    assert (trail["quantity"], money(trail["priceSet"])) == (2, D("89.90"))  # before the promotion
    code = o["discountCode"]["itemFixedDiscountCode"]
    assert code["code"] == "SPRING10" and money(code["amountSet"]) == D("17.98")
    assert request.total == money(o["transactions"][0]["amountSet"]) == _shopify_total(o) == D("206.72")
    assert "PERCENTAGE_OFF 10 % (SPRING10) −17.98" in o["note"]


def test_free_items_promotion():
    data = tax_included_order()
    lamp = data["order_lines"][1]
    lamp.update(quantity=3, price=D("79.90"), total_price=D("79.90"), promotions=[{
        "id": "3FOR2", "deduced_amount": D("39.95"), "apportioned": False, "offered_quantity": 1,
        "configuration": {"type": "FREE_ITEMS", "free_items_quantity": 1, "internal_description": "3 for 2"}}])
    data.update(price=D("259.70"), total_price=D("264.65"))
    o = build(data).order
    assert (o["lineItems"][1]["quantity"], money(o["lineItems"][1]["priceSet"])) == (3, D("39.95"))
    assert _shopify_total(o) == D("264.65")


def test_a_price_that_does_not_divide_is_split_to_the_cent():
    data = tax_excluded_order()
    lamp = data["order_lines"][1]
    lamp.update(quantity=3, price_unit=D("3.33"), price=D("10.00"), total_price=D("10.00"),
                taxes=[{"code": "TVA", "amount": D("2.00"), "rate": D("20")}])
    data.update(price=D("159.84"), total_price=D("163.97"))
    o = build(data).order
    parts = [i for i in o["lineItems"] if i["sku"] == "LUM-HEAD-400"]
    assert [(i["quantity"], money(i["priceSet"])) for i in parts] == [(2, D("3.33")), (1, D("3.34"))]
    assert all(i["properties"] == [{"name": LINE_ID_PROPERTY, "value": "Order_00010-A-2"}] for i in parts)
    assert sum(money(t["priceSet"]) for i in parts for t in i["taxLines"]) == D("2.00")
    assert _shopify_total(o) == D("163.97") + D("29.97") + D("2.00") + D("0.83")


def test_fees_are_custom_lines_that_ship_nothing():
    data = tax_included_order()
    trail = data["order_lines"][0]
    trail["fees"] = [{"code": "CARD_FEE", "amount": D("0.65")}]
    trail["total_price"] = D("185.40")
    data["total_price"] = D("225.35")
    o = build(data).order
    (fee,) = [i for i in o["lineItems"] if "variantId" not in i]
    assert fee["title"] == "Marketplace fee CARD_FEE" and money(fee["priceSet"]) == D("0.65")
    assert (fee["requiresShipping"], fee["taxable"]) == (False, False)
    assert LINE_ID_PROPERTY not in {p["name"] for p in fee["properties"]}
    assert _shopify_total(o) == D("225.35")


def test_fees_left_out_of_mirakls_total_were_not_paid_by_the_customer():
    """The spec's own OR11 example: line fees of 0.65 and total_price = price + shipping."""
    data = tax_included_order()
    data["order_lines"][0]["fees"] = [{"code": "CARD_FEE", "amount": D("0.65")}]
    request = build(data)
    assert all("variantId" in item for item in request.order["lineItems"])
    assert request.total == _shopify_total(request.order) == D("224.70")
    assert "not charged to the customer" in request.order["note"]


def test_a_line_total_that_fits_no_reading_is_named():
    data = tax_included_order()
    data["order_lines"][0]["fees"] = [{"code": "CARD_FEE", "amount": D("0.65")}]
    data["order_lines"][0]["total_price"] = D("185.00")
    data["total_price"] = D("224.95")
    error = _error(data)
    assert "line Order_00010-A-1: total_price 185.00 ≠ price 179.80 + shipping 4.95 + fees 0.65" in error.reason


def test_partly_cancelled_line_imports_the_units_left():
    data = tax_included_order()
    data["order_lines"][0]["cancelations"] = [{
        "id": "C1", "quantity": 1, "amount": D("89.90"), "shipping_amount": D("0"), "created_date": "2026-03-14T10:00:00Z",
        "commission_amount": D("0"), "commission_total_amount": D("0"), "commission_taxes": [],
        "taxes": [{"code": "TVA", "amount": D("14.98")}]}]
    request = build(data)
    trail = request.order["lineItems"][0]
    assert (trail["quantity"], money(trail["priceSet"])) == (1, D("89.90"))
    assert money(trail["taxLines"][0]["priceSet"]) == D("14.99")
    assert request.total == _shopify_total(request.order) == D("224.70") - D("89.90")
    assert "1 of 2 units canceled" in request.order["note"]


def test_marketplace_collected_taxes_are_channel_liable():
    data = tax_excluded_order()
    data["order_lines"][0]["taxes"] = [{"code": "OSS_VAT", "amount": D("29.97"), "rate": D("20"), "amount_breakdown": {
        "parts": [{"amount": D("29.97"), "payable_to_shop": False, "debitable_from_customer": True}]}}]
    tax = build(data).order["lineItems"][0]["taxLines"][0]
    assert tax["channelLiable"] is True and money(tax["priceSet"]) == D("29.97")


def test_relay_point_and_zone_are_metafields_for_the_warehouse():
    o = build(shipping_pudo_id="PUDO-FR-004512", shipping_zone_code="FR-CORSE").order
    fields = {m["key"]: m["value"] for m in o["metafields"]}
    assert fields["shipping_pudo_id"] == "PUDO-FR-004512" and fields["shipping_zone_code"] == "FR-CORSE"


def test_an_address_hidden_until_acceptance_may_follow():
    data = tax_included_order()
    data["customer"]["shipping_address"] = None
    data["customer"]["billing_address"] = None
    request = build_order_create(order(data, order_state="WAITING_ACCEPTANCE", customer_debited_date=None), variants(),
                                 marketplace(), store(), allow_missing_address=True)
    assert "shippingAddress" not in request.order and "billingAddress" not in request.order
    assert "hidden by the marketplace until the order is accepted" in request.order["note"]
