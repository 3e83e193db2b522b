"""build_order: realistic OR11 orders whose money adds up, and clear errors on bad input."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.sandbox.mirakl.orders import build_order, in_tax_mode

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
