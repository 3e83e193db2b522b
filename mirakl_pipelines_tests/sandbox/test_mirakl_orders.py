"""build_order: realistic OR11 orders whose money adds up, and clear errors on bad input."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.sandbox.mirakl.orders import build_order, in_tax_mode
from mirakl_pipelines.sandbox.mirakl.wire import to_json
from mirakl_pipelines_tests.mirakl_spec import schema_ref, validate
from mirakl_pipelines_tests.or11_orders import consistency_errors
from mirakl_pipelines_tests.reference import reference_file

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
LINES = [
    {"sku": "ALP-TRAIL-42", "title": "Trail running shoe 42", "quantity": 2, "unit_price": Decimal("89.90")},
    {"sku": "LUM-HEAD-400", "quantity": 1, "unit_price": Decimal("39.95")},
    {"sku": "LUM-BOTTLE-750", "quantity": 3, "unit_price": Decimal("24.50")},
]


def test_money_is_consistent_in_tax_included_mode():
    order = build_order(order_id="M-1-A", lines=LINES, created=T0, shipping_price=Decimal("5.00"))
    lines = order["order_lines"]
    assert [line["price"] for line in lines] == [Decimal("179.80"), Decimal("39.95"), Decimal("73.50")]
    assert [line["shipping_price"] for line in lines] == [Decimal("1.67"), Decimal("1.67"), Decimal("1.66")]
    assert order["shipping_price"] == Decimal("5.00")
    assert order["price"] == Decimal("293.25") and order["total_price"] == Decimal("298.25")
    first = lines[0]
    assert first["taxes"][0]["amount"] == Decimal("29.97")  # 179.80 - 179.80 / 1.2
    assert first["commission_fee"] == Decimal("27.22")  # 15 % of (179.80 + 1.67)
    assert first["commission_vat"] == Decimal("5.44") and first["total_commission"] == Decimal("32.66")
    assert order["total_commission"] == sum(line["total_commission"] for line in lines)
    assert all(isinstance(line["price"], Decimal) for line in lines)
    assert [line["order_line_id"] for line in lines] == ["M-1-A-1", "M-1-A-2", "M-1-A-3"]
    assert order["commercial_id"] == "M-1"
    assert order["shipping_deadline"] == datetime(2026, 5, 6, 23, 59, 59, 999000, tzinfo=timezone.utc)


def test_tax_mode_reexpression_round_trips():
    included = build_order(order_id="M-2-A", lines=LINES, created=T0)
    excluded = in_tax_mode(included, "TAX_EXCLUDED")
    assert excluded["order_tax_mode"] == "TAX_EXCLUDED" and included["order_tax_mode"] == "TAX_INCLUDED"
    line = excluded["order_lines"][0]
    assert line["price"] == Decimal("149.83") and line["price_unit"] == Decimal("74.92")
    assert excluded["total_commission"] == included["total_commission"]  # commissions do not depend on the view
    assert excluded["total_price"] == excluded["price"] + excluded["shipping_price"] < included["total_price"]
    back = in_tax_mode(excluded, "TAX_INCLUDED")
    assert back["total_price"] == included["total_price"] and back["price"] == included["price"]

    native_excluded = build_order(order_id="M-3-A", lines=LINES[:1], created=T0, tax_mode="TAX_EXCLUDED")
    assert native_excluded["order_lines"][0]["taxes"][0]["amount"] == Decimal("35.96")  # 20 % of 179.80
    assert in_tax_mode(native_excluded, "TAX_INCLUDED")["price"] == Decimal("215.76")


def test_addresses_b2b_and_pudo():
    order = build_order(
        order_id="M-4-A", lines=LINES[:1], created=T0, shipping_pudo_id="MR-0042",
        shipping_address={"country_iso_code": "BE", "city": "Bruxelles", "street_1": "Rue Neuve 1", "zip_code": "1000"},
        organization={"name": "Club Alpin"},
    )
    customer = order["customer"]
    assert customer["shipping_address"]["country_iso_code"] == "BEL" and customer["shipping_address"]["country"] == "Belgium"
    assert customer["billing_address"]["country_iso_code"] == "FRA"
    assert customer["organization"]["name"] == "Club Alpin" and customer["organization"]["address"]["country_iso_code"] == "FRA"
    assert (order["shipping_pudo_id"], order["shipping_type_code"], order["shipping_zone_code"]) == ("MR-0042", "PUDO", "INT-BEL")
    assert order["customer_notification_email"].endswith("@notification.mirakl.net")
    assert "@" not in customer["shipping_address"].get("additional_info", "")


def test_later_states_carry_their_dates_and_flags():
    shipped = build_order(order_id="M-5-A", lines=LINES[:1], created=T0, state="SHIPPED")
    assert shipped["acceptance_decision_date"] and shipped["customer_debited_date"]
    assert shipped["order_lines"][0]["shipped_date"] and shipped["order_lines"][0]["can_refund"]
    assert not shipped["can_shop_ship"] and not shipped["can_cancel"]
    pod = build_order(order_id="M-6-A", lines=LINES[:1], created=T0, state="SHIPPING", payment_workflow="PAY_ON_DELIVERY")
    assert pod["customer_debited_date"] is None and pod["can_cancel"] and pod["can_shop_ship"]


def test_the_project_model_reads_a_built_order():
    order = MiraklOrder.model_validate(build_order(order_id="M-7-A", lines=LINES, created=T0, channel="FR_WEB"))
    assert order.order_lines[0].sku == "ALP-TRAIL-42" and order.total_price == Decimal("298.24")  # 293.25 + 4.99
    assert order.shipping_address.country_iso_code == "FRA" and order.channel.code == "FR_WEB"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lines": []}, "order 'B-1-A': lines must be a non-empty list"),
        ({"lines": [{"sku": "X", "quantity": 0, "unit_price": "1"}]}, "line 1 (X): quantity must be a whole number >= 1"),
        ({"lines": [{"sku": "X", "quantity": 1, "unit_price": 9.99}]}, "line 1 (X): unit_price: amounts must be Decimal"),
        ({"lines": [{"sku": "X", "quantity": 1, "unit_price": "-1"}]}, "line 1 (X): unit_price"),
        ({"lines": [{"sku": "X", "quantity": 1}]}, "line 1 (X): unit_price is missing"),
        ({"lines": [{"quantity": 1, "unit_price": "1"}]}, "line 1: sku must be a non-empty string"),
        ({"state": "LOST"}, "state must be one of"),
        ({"tax_mode": "NET"}, "tax_mode must be one of"),
        ({"payment_workflow": "LATER"}, "payment_workflow must be one of"),
        ({"currency": "euro"}, "currency must be an ISO-4217 code"),
        ({"created": datetime(2026, 5, 4)}, "created must be a tz-aware datetime"),
        ({"shipping_address": {"country_iso_code": "XX"}}, "shipping_address: country_iso_code 'XX'"),
        ({"shipping_price": Decimal("NaN")}, "shipping_price"),
    ],
)
def test_bad_input_names_the_order_and_the_reason(change, message):
    kwargs = {"order_id": "B-1-A", "lines": LINES[:1], "created": T0, **change}
    with pytest.raises(ValueError) as e:
        build_order(**kwargs)
    assert message in str(e.value)
    assert "B-1-A" in str(e.value)


def test_delivery_window_follows_the_lead_time():
    order = build_order(order_id="M-8-A", lines=LINES[:1], created=T0, leadtime_to_ship=5)
    assert order["delivery_date"]["earliest"] == T0 + timedelta(days=6)
    assert order["leadtime_to_ship"] == 5


# ---- the spec's variety ---------------------------------------------------------------------------


def wire(order: dict) -> dict:
    """The order as OR11 serves it and a client reads it (json.loads with parse_float=Decimal)."""
    return json.loads(to_json(order), parse_float=Decimal)


def served_ok(order: dict, promotion_configuration: bool = True) -> dict:
    """Valid against the spec's order schema and consistent per the independent checker; returns the wire form."""
    body = wire(order)
    validate(schema_ref("OR11_Response_200_Orders"), body)
    assert consistency_errors(body, reading="keep", promotion_configuration=promotion_configuration) == []
    return body


def test_promotions_of_every_type_deduce_from_the_line_price():
    order = build_order(order_id="P-1-A", created=T0, lines=[
        {"sku": "A", "quantity": 3, "unit_price": "10.00", "promotions": [{"type": "FREE_ITEMS", "free_items_quantity": 1}]},
        {"sku": "B", "quantity": 2, "unit_price": "50.00",
         "promotions": [{"type": "PERCENTAGE_OFF", "percentage_off": "10", "promo_code": "ETE10", "campaign": "SOLDES"}]},
        {"sku": "C", "quantity": 1, "unit_price": "39.95", "promotions": [{"type": "REDUCED_UNIT_PRICE", "reduced_unit_price": "35.00"}]},
        {"sku": "D", "quantity": 1, "unit_price": "20.00", "promotions": [{"type": "AMOUNT_OFF", "amount_off": "2.50", "id": "WELCOME"}]},
    ])
    lines = order["order_lines"]
    assert [line["price"] for line in lines] == [Decimal("20.00"), Decimal("90.00"), Decimal("35.00"), Decimal("17.50")]
    assert [line["price_unit"] for line in lines] == [Decimal("10.00"), Decimal("50.00"), Decimal("39.95"), Decimal("20.00")]
    free, percent, reduced, amount = (line["promotions"][0] for line in lines)
    assert (free["deduced_amount"], free["offered_quantity"], free["configuration"]["free_items_quantity"]) == (Decimal("10.00"), 1, 1)
    assert lines[0]["quantity"] == 3  # the free unit is part of the quantity
    assert (percent["deduced_amount"], percent["promo_code"], percent["campaign"]) == (Decimal("10.00"), "ETE10", {"identifier": "SOLDES"})
    assert reduced["deduced_amount"] == Decimal("4.95") and reduced["configuration"]["reduced_unit_price"] == Decimal("35.00")
    assert (amount["id"], amount["deduced_amount"], amount["apportioned"]) == ("WELCOME", Decimal("2.50"), False)
    for promotion in (free, percent, reduced, amount):  # "null otherwise": only the type's own parameter is set
        config = promotion["configuration"]
        assert sum(config[f] is not None for f in ("amount_off", "percentage_off", "free_items_quantity", "reduced_unit_price")) == 1
        assert (promotion["offered_quantity"] is None) == (config["type"] != "FREE_ITEMS")
    summary = order["promotions"]
    assert summary["total_deduced_amount"] == Decimal("27.45") and len(summary["applied_promotions"]) == 4
    assert order["price"] == Decimal("162.50")
    served_ok(order)


def test_a_basket_amount_is_apportioned_over_the_lines():
    lines = [{"sku": "A", "quantity": 1, "unit_price": "10.00"}, {"sku": "B", "quantity": 2, "unit_price": "5.00"},
             {"sku": "C", "quantity": 1, "unit_price": "10.00"}]
    order = build_order(order_id="P-2-A", created=T0, lines=lines,
                        basket_promotions=[{"type": "AMOUNT_OFF", "amount_off": "10.00", "id": "B10", "promo_code": "BIENVENUE"}])
    shares = [line["promotions"][0]["deduced_amount"] for line in order["order_lines"]]
    assert shares == [Decimal("3.34"), Decimal("3.33"), Decimal("3.33")]  # by price, the leftover cent to the first
    assert all(line["promotions"][0]["apportioned"] for line in order["order_lines"])
    (applied,) = order["promotions"]["applied_promotions"]
    assert (applied["id"], applied["deduced_amount"], applied["apportioned"]) == ("B10", Decimal("10.00"), True)
    served_ok(order)

    single = build_order(order_id="P-3-A", created=T0, lines=lines[:1],
                         basket_promotions=[{"type": "AMOUNT_OFF", "amount_off": "10.00"}])
    assert single["order_lines"][0]["promotions"][0]["apportioned"] is False  # the whole amount on one line
    percent = build_order(order_id="P-4-A", created=T0, lines=lines[:2],
                          basket_promotions=[{"type": "PERCENTAGE_OFF", "percentage_off": "15"}])
    assert [line["promotions"][0]["deduced_amount"] for line in percent["order_lines"]] == [Decimal("1.50"), Decimal("1.50")]
    assert not any(line["promotions"][0]["apportioned"] for line in percent["order_lines"])  # one-step percentage off
    served_ok(percent)


def test_fees_count_in_the_line_and_order_totals():
    order = build_order(order_id="F-1-A", created=T0, shipping_price=Decimal("5.00"), lines=[
        {"sku": "A", "quantity": 1, "unit_price": "30.00", "fees": [{"code": "CARD_FEE", "amount": "0.50"}, {"code": "GIFT_WRAP", "amount": "3.90"}]},
        {"sku": "B", "quantity": 1, "unit_price": "10.00"},
    ])
    first, second = order["order_lines"]
    assert first["fees"] == [{"amount": Decimal("0.50"), "code": "CARD_FEE"}, {"amount": Decimal("3.90"), "code": "GIFT_WRAP"}]
    assert first["total_price"] == Decimal("30.00") + Decimal("2.50") + Decimal("4.40")
    assert second["total_price"] == Decimal("12.50")
    assert order["total_price"] == order["price"] + order["shipping_price"] + Decimal("4.40") == Decimal("49.40")
    served_ok(order)
    assert in_tax_mode(order, "TAX_EXCLUDED")["order_lines"][0]["fees"] == first["fees"]  # fees carry no tax here


@pytest.mark.parametrize("tax_mode, other_price, other_unit", [
    ("TAX_EXCLUDED", Decimal("12.00"), Decimal("4.00")),  # 10.00 + 20 % VAT
    ("TAX_INCLUDED", Decimal("8.33"), Decimal("2.78")),  # 10.00 - 1.67 VAT
])
def test_a_line_price_that_does_not_divide_keeps_price_exact(tax_mode, other_price, other_unit):
    order = build_order(order_id="V-1-A", created=T0, tax_mode=tax_mode,
                        lines=[{"sku": "LOT", "quantity": 3, "line_price": "10.00", "price_additional_info": "Lot de 3"}])
    line = order["order_lines"][0]
    assert (line["price"], line["price_unit"], line["quantity"]) == (Decimal("10.00"), Decimal("3.33"), 3)
    assert line["price_additional_info"] == "Lot de 3"
    other = in_tax_mode(order, "TAX_INCLUDED" if tax_mode == "TAX_EXCLUDED" else "TAX_EXCLUDED")
    converted = other["order_lines"][0]
    assert (converted["price"], converted["price_unit"]) == (other_price, other_unit)
    back = in_tax_mode(other, tax_mode)["order_lines"][0]
    assert (back["price"], back["price_unit"]) == (Decimal("10.00"), Decimal("3.33"))  # only price_unit is rounded
    served_ok(order)
    served_ok(other, promotion_configuration=False)


def test_in_tax_mode_converts_deduced_amounts_and_keeps_the_definitions():
    order = build_order(order_id="V-2-A", created=T0, lines=[
        {"sku": "A", "quantity": 3, "unit_price": "10.00", "promotions": [{"type": "FREE_ITEMS", "free_items_quantity": 1}]}])
    excluded = in_tax_mode(order, "TAX_EXCLUDED")
    line = excluded["order_lines"][0]
    assert line["price"] == Decimal("16.67") and line["promotions"][0]["deduced_amount"] == Decimal("8.34")
    assert line["price_unit"] == Decimal("8.34")  # (16.67 + 8.34) / 3, rounded
    assert excluded["promotions"]["total_deduced_amount"] == Decimal("8.34")
    assert line["promotions"][0]["configuration"] == order["order_lines"][0]["promotions"][0]["configuration"]
    served_ok(excluded, promotion_configuration=False)


def test_taxes_the_marketplace_collects_carry_a_breakdown():
    order = build_order(order_id="T-1-A", created=T0, tax_mode="TAX_EXCLUDED", shipping_price=Decimal("10.00"),
                        lines=[{"sku": "A", "quantity": 1, "unit_price": "100.00"}],
                        taxes=[{"code": "GST", "rate": "5", "payable_to_shop": False},
                               {"code": "QST", "rate": "9.975", "payable_to_shop": False, "tax_calculation_rule": "NONE"}],
                        shipping_address={"country_iso_code": "CA", "state": "Québec", "city": "Montréal",
                                          "street_1": "1200 rue Sainte-Catherine O", "zip_code": "H3B 1K9", "phone": "(514) 555-0123"})
    gst, qst = order["order_lines"][0]["taxes"]
    assert (gst["amount"], qst["amount"]) == (Decimal("5.00"), Decimal("9.98"))
    assert (gst["rate"], qst["rate"]) == (Decimal("5"), Decimal("9.975"))
    assert qst["tax_calculation_rule"] == "NONE" and gst["tax_calculation_rule"] == "PROPORTIONAL_TO_AMOUNT"
    assert gst["amount_breakdown"] == {"parts": [{"amount": Decimal("5.00"), "commissionable": False,
                                                  "debitable_from_customer": True, "payable_to_shop": False}]}
    assert [t["code"] for t in order["order_lines"][0]["shipping_taxes"]] == ["GST", "QST"]
    assert order["customer"]["shipping_address"]["state"] == "Québec"
    served_ok(order)
    included = in_tax_mode(order, "TAX_INCLUDED")
    assert included["order_lines"][0]["price"] == Decimal("114.98")
    served_ok(included, promotion_configuration=False)

    shop_vat = build_order(order_id="T-2-A", created=T0, lines=[{"sku": "A", "quantity": 1, "unit_price": "119.00"}],
                           taxes=[{"code": "VAT-DE", "rate": "19", "payable_to_shop": True}], shipping_taxes=[])
    line = shop_vat["order_lines"][0]
    assert line["taxes"][0]["amount"] == Decimal("19.00") and line["taxes"][0]["amount_breakdown"]["parts"][0]["payable_to_shop"]
    assert line["shipping_taxes"] == []
    served_ok(shop_vat)


@pytest.mark.parametrize("workflow", ["PAY_ON_ACCEPTANCE", "PAY_ON_DELIVERY", "PAY_ON_DUE_DATE", "PAY_ON_SHIPMENT",
                                      "NO_CUSTOMER_PAYMENT_CONFIRMATION"])
@pytest.mark.parametrize("state", ["WAITING_ACCEPTANCE", "SHIPPING", "SHIPPED", "RECEIVED", "CLOSED"])
def test_every_payment_workflow_is_debited_when_it_must_be(workflow, state):
    order = build_order(order_id="W-1-A", created=T0, lines=LINES[:1], payment_workflow=workflow, state=state)
    debited = {
        "PAY_ON_ACCEPTANCE": {"SHIPPING", "SHIPPED", "RECEIVED", "CLOSED"}, "PAY_ON_SHIPMENT": {"SHIPPED", "RECEIVED", "CLOSED"},
        "PAY_ON_DELIVERY": {"RECEIVED", "CLOSED"}, "PAY_ON_DUE_DATE": {"CLOSED"}, "NO_CUSTOMER_PAYMENT_CONFIRMATION": set(),
    }[workflow]
    assert (order["customer_debited_date"] is not None) == (state in debited)
    assert (order["transaction_number"] is not None) == (state in debited)
    assert order["payment_duration"] == (30 if workflow == "PAY_ON_DUE_DATE" else None)
    if state in {"RECEIVED", "CLOSED"}:
        assert order["order_lines"][0]["received_date"] > order["order_lines"][0]["shipped_date"]
    served_ok(order)


def test_b2b_on_payment_terms_and_customers_paying_the_seller():
    order = build_order(order_id="W-2-A", created=T0, lines=LINES[:1], payment_workflow="PAY_ON_DUE_DATE", payment_duration=45,
                        organization={"name": "Bergsport GmbH", "identification_number": "HRB 12345",
                                      "tax_identification_number": "DE123456789"},
                        payment_type="VIREMENT", state="SHIPPING")
    assert order["payment_duration"] == 45 and order["invoice_details"]["payment_terms"] == {"days": 45, "type": "NET"}
    assert order["customer"]["organization"]["tax_identification_number"] == "DE123456789"
    assert order["payment_type"] == order["paymentType"] == "VIREMENT"
    served_ok(order)
    cod = build_order(order_id="W-3-A", created=T0, lines=LINES[:1], payment_workflow="PAY_ON_DELIVERY",
                      customer_directly_pays_seller=True, state="CLOSED")
    assert cod["customer_directly_pays_seller"] is True and cod["customer_debited_date"] is None
    assert cod["order_lines"][0]["can_refund"] is False  # CLOSED: no refund; paid outside Mirakl otherwise refundable
    received = build_order(order_id="W-4-A", created=T0, lines=LINES[:1], payment_workflow="PAY_ON_DELIVERY",
                           customer_directly_pays_seller=True, state="RECEIVED")
    assert received["order_lines"][0]["can_refund"] is True
    served_ok(cod)


@pytest.mark.parametrize("address", [
    {"country_iso_code": "ITA", "state": "TO", "city": "Torino", "street_1": "Via Roma 10", "zip_code": "10121", "phone": "+39 011 123 4567"},
    {"country_iso_code": "ITA", "state": "Lazio", "city": "Roma", "street_1": "Via del Corso 120", "zip_code": "00186"},
    {"country_iso_code": "JPN", "state": "東京都", "city": "Shibuya-ku", "street_1": "1-2-3 Shibuya", "zip_code": "150-0002", "phone": "03-1234-5678"},
    {"country_iso_code": "CAN", "state": "QC", "city": "Québec", "street_1": "300 Grande Allée E", "zip_code": "G1R 2H5"},
    {"country_iso_code": "USA", "state": "NY", "city": "New York", "street_1": "113 MacDougal Street", "zip_code": "10012", "phone": "(212) 555-0142"},
    {"country_iso_code": "GB", "city": "London", "street_1": "221B Baker Street", "zip_code": "NW1 6XE", "phone": "+44 (0)20 7946 0958"},
    {"country_iso_code": "DE", "city": "Berlin", "street_1": "Friedrichstraße 43", "zip_code": "10117", "phone": "030 1234567"},
], ids=lambda a: f"{a['country_iso_code']}-{a.get('state')}")
def test_addresses_abroad_keep_their_state_and_phone_as_sent(address):
    order = build_order(order_id="A-1-A", created=T0, lines=LINES[:1], shipping_address=address, billing_address=address)
    shipping = order["customer"]["shipping_address"]
    assert shipping["state"] == address.get("state") and shipping["phone"] == address.get("phone", shipping["phone"])
    assert len(shipping["country_iso_code"]) == 3 and shipping["zip_code"] == address["zip_code"]
    served_ok(order)


def test_relay_point_zone_and_type_can_be_named():
    order = build_order(order_id="R-1-A", created=T0, lines=LINES[:1], shipping_pudo_id="MR-004512",
                        shipping_zone_code="FR-RELAIS", shipping_zone_label="Points relais Mondial Relay",
                        shipping_type_code="MONDIAL_RELAY", shipping_type_label="Mondial Relay")
    assert (order["shipping_zone_code"], order["shipping_type_code"], order["shipping_pudo_id"]) == ("FR-RELAIS", "MONDIAL_RELAY", "MR-004512")
    served_ok(order)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lines": [{"sku": "X", "quantity": 2, "unit_price": "1", "line_price": "2"}]}, "give unit_price or line_price, not both"),
        ({"lines": [{"sku": "X", "quantity": 2, "unit_price": "5", "promotions": [{"type": "BOGO"}]}]}, "type must be one of"),
        ({"lines": [{"sku": "X", "quantity": 1, "unit_price": "5", "promotions": [{"type": "FREE_ITEMS", "free_items_quantity": 1}]}]},
         "at least one unit is paid"),
        ({"lines": [{"sku": "X", "quantity": 1, "unit_price": "5", "promotions": [{"type": "AMOUNT_OFF", "amount_off": "6"}]}]},
         "promotions deduce 6.00, more than the line's 5.00"),
        ({"lines": [{"sku": "X", "quantity": 1, "unit_price": "5", "promotions": [{"type": "PERCENTAGE_OFF", "percentage_off": "120"}]}]},
         "percentage_off is a percentage"),
        ({"lines": [{"sku": "X", "quantity": 1, "unit_price": "5", "promotions": [{"type": "REDUCED_UNIT_PRICE", "reduced_unit_price": "5"}]}]},
         "is not below the unit price"),
        ({"lines": [{"sku": "X", "quantity": 1, "unit_price": "5", "fees": [{"amount": "1"}]}]}, "fee 1 must be an object with a code"),
        ({"basket_promotions": [{"type": "FREE_ITEMS", "free_items_quantity": 1}]}, "a basket promotion is AMOUNT_OFF or PERCENTAGE_OFF"),
        ({"basket_promotions": [{"type": "AMOUNT_OFF", "amount_off": "1000"}]}, "exceeds the basket"),
        ({"taxes": [{"code": "T", "rate": "5"}, {"code": "T", "rate": "6"}]}, "tax code 'T' appears twice"),
        ({"taxes": [{"code": "T", "rate": 5.5}]}, "amounts must be Decimal"),
        ({"taxes": [{"code": "T", "rate": "5", "tax_calculation_rule": "SOMETIMES"}]}, "tax_calculation_rule must be one of"),
        ({"taxes": [{"code": "T", "rate": "5", "payable_to_shop": "no"}]}, "payable_to_shop must be true, false or absent"),
        ({"payment_duration": 30}, "payment_duration is only for PAY_ON_DUE_DATE orders"),
        ({"payment_workflow": "PAY_ON_DUE_DATE", "payment_duration": -1}, "payment_duration must be a whole number of days"),
        ({"customer_directly_pays_seller": "yes"}, "customer_directly_pays_seller must be true or false"),
    ],
)
def test_bad_variety_input_names_the_order_and_the_reason(change, message):
    kwargs = {"order_id": "B-2-A", "lines": LINES[:1], "created": T0, **change}
    with pytest.raises(ValueError) as e:
        build_order(**kwargs)
    assert message in str(e.value) and "B-2-A" in str(e.value)


# ---- property: whatever the builder is given, the spec's definitions hold --------------------------

_promotion = st.one_of(
    st.builds(lambda a: {"type": "AMOUNT_OFF", "amount_off": a}, st.decimals("0.01", "5.00", places=2)),
    st.builds(lambda p: {"type": "PERCENTAGE_OFF", "percentage_off": p}, st.sampled_from(["5", "10", "12.5", "50"])),
    st.just({"type": "FREE_ITEMS", "free_items_quantity": 1}),
    st.builds(lambda f: {"type": "REDUCED_UNIT_PRICE", "reduced_unit_price_factor": f}, st.sampled_from(["0.5", "0.9"])),
)


@st.composite
def _build_kwargs(draw) -> dict:
    lines = []
    for index in range(draw(st.integers(1, 4))):
        quantity = draw(st.integers(1, 10))
        line = {"sku": f"SKU-{index}", "quantity": quantity}
        if quantity > 1 and draw(st.booleans()):
            line["line_price"] = draw(st.decimals("1.00", "900.00", places=2))
            unit = line["line_price"] / quantity
        else:
            line["unit_price"] = unit = draw(st.decimals("6.00", "300.00", places=2))
        promotions = []
        for promotion in draw(st.lists(_promotion, max_size=2)):
            if promotion["type"] == "FREE_ITEMS" and quantity < 2:
                continue
            if promotion["type"] == "AMOUNT_OFF":
                promotion["amount_off"] = min(promotion["amount_off"], (unit * quantity / 2).quantize(Decimal("0.01")))
            if promotion["type"] == "REDUCED_UNIT_PRICE":
                promotion = {"type": "REDUCED_UNIT_PRICE", "reduced_unit_price": (unit * Decimal(promotion.pop("reduced_unit_price_factor"))).quantize(Decimal("0.01"))}
            promotions.append(promotion)
        line["promotions"] = promotions[:1]  # several on one line may deduce more than the line
        line["fees"] = draw(st.lists(st.builds(lambda c, a: {"code": c, "amount": a}, st.sampled_from(["CARD_FEE", "GIFT_WRAP"]),
                                               st.decimals("0.01", "5.00", places=2)), max_size=1))
        lines.append(line)
    workflow = draw(st.sampled_from(["PAY_ON_ACCEPTANCE", "PAY_ON_DELIVERY", "PAY_ON_DUE_DATE", "PAY_ON_SHIPMENT",
                                     "NO_CUSTOMER_PAYMENT_CONFIRMATION"]))
    return {
        "lines": lines,
        "tax_mode": draw(st.sampled_from(["TAX_INCLUDED", "TAX_EXCLUDED"])),
        "state": draw(st.sampled_from(["WAITING_ACCEPTANCE", "WAITING_DEBIT", "SHIPPING", "SHIPPED", "RECEIVED", "CLOSED", "REFUSED"])),
        "shipping_price": draw(st.decimals("0.00", "20.00", places=2)),
        "taxes": draw(st.sampled_from([None, [], [{"code": "GST", "rate": "5", "payable_to_shop": False}, {"code": "QST", "rate": "9.975"}],
                                       [{"code": "VAT-IT", "rate": "22", "payable_to_shop": True}]])),
        "basket_promotions": draw(st.sampled_from([None, [{"type": "PERCENTAGE_OFF", "percentage_off": "10"}]])),
        "payment_workflow": workflow,
        "customer_directly_pays_seller": workflow == "PAY_ON_DELIVERY" and draw(st.booleans()),
        "organization": draw(st.sampled_from([None, {"name": "Club Alpin"}])),
        "shipping_pudo_id": draw(st.sampled_from([None, "MR-1"])),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_build_kwargs())
def test_built_orders_follow_the_spec_definitions_in_both_tax_modes(kwargs):
    reference_file("mirakl/mirakl-mmp-seller-openapi.json")
    order = build_order(order_id="H-1-A", created=T0, **kwargs)
    served_ok(order)
    other = in_tax_mode(order, "TAX_EXCLUDED" if order["order_tax_mode"] == "TAX_INCLUDED" else "TAX_INCLUDED")
    served_ok(other, promotion_configuration=False)
    back = in_tax_mode(other, order["order_tax_mode"])
    assert [line["price"] for line in back["order_lines"]] == [line["price"] for line in order["order_lines"]]
    assert back["total_price"] == order["total_price"]
