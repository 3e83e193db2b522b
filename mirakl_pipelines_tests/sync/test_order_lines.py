"""A line's live quantity and amounts: promotions, rounding, fees, both readings of cancellations, liability."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirakl_pipelines.mirakl.models import OrderLine
from mirakl_pipelines.sync.order_lines import (
    LineAmountError,
    TaxAmount,
    live_line,
    live_quantity,
    split_in_cents,
)

D = Decimal


def line(**fields) -> OrderLine:
    data = {"order_line_id": "O-1-1", "order_line_state": "SHIPPING", "offer_sku": "SKU", "quantity": 3,
            "price_unit": D("55"), "price": D("165"), "shipping_price": D("8"), "total_price": D("173")}
    data.update(fields)
    return OrderLine.model_validate(data)


def test_a_plain_line_is_live_as_stated():
    live = live_line(line(taxes=[{"code": "TVA", "amount": D("27.50"), "rate": D("20")}]))
    assert (live.quantity, live.price, live.discount, live.shipping, live.reading) == (3, D("165"), 0, D("8"), "gross")
    assert live.taxes == (TaxAmount("TVA", D("20"), D("27.50"), False),)


@pytest.mark.parametrize(
    ("promotion", "fields", "price", "discount"),
    [
        ({"type": "AMOUNT_OFF", "amount_off": "5"}, {"price": D("160")}, D("160"), D("5")),
        ({"type": "PERCENTAGE_OFF", "percentage_off": "10"}, {"price": D("148.50")}, D("148.50"), D("16.50")),
        ({"type": "REDUCED_UNIT_PRICE", "reduced_unit_price": "50"}, {"price": D("150")}, D("150"), D("15")),
    ],
)
def test_promotions_come_off_the_list_price(promotion, fields, price, discount):
    promo = {"id": "P1", "deduced_amount": discount, "apportioned": False,
             "configuration": {"internal_description": "spring", **promotion}}
    live = live_line(line(promotions=[promo], **fields))
    assert (live.price, live.discount, live.list_price) == (price, discount, D("165"))
    assert live.promotions[0].id == "P1"


def test_free_items_are_units_of_the_line():
    promo = {"id": "3FOR2", "deduced_amount": D("10"), "apportioned": False, "offered_quantity": 1,
             "configuration": {"type": "FREE_ITEMS", "internal_description": "3 for 2", "free_items_quantity": 1}}
    live = live_line(line(quantity=3, price_unit=D("10"), price=D("20"), promotions=[promo]))
    assert (live.quantity, live.price, live.discount, live.list_price) == (3, D("20"), D("10"), D("30"))


def test_tax_excluded_rounding_keeps_the_exact_price():
    live = live_line(line(quantity=3, price_unit=D("3.33"), price=D("10.00"), shipping_price=D("0")))
    assert (live.quantity, live.price) == (3, D("10.00"))


def test_fees_are_kept_per_code():
    live = live_line(line(fees=[{"code": "CARD_FEE", "amount": D("0.65")}, {"code": "CARD_FEE", "amount": D("0.35")},
                                 {"code": "ECO", "amount": D("2")}]))
    assert {(f.code, f.amount) for f in live.fees} == {("CARD_FEE", D("1.00")), ("ECO", D("2"))}
    assert live.fee_total == D("3.00")


def _cancel(**fields):
    return {"id": "C1", "created_date": "2026-03-14T10:00:00Z", "commission_amount": D("0"),
            "commission_total_amount": D("0"), "commission_taxes": [], **fields}


def test_gross_reading_subtracts_cancellations():
    cancel = _cancel(quantity=1, amount=D("55"), shipping_amount=D("2"),
                     taxes=[{"code": "TVA", "amount": D("9.17")}], commission_amount=D("7.10"),
                     commission_taxes=[{"code": "TVAFR", "amount": D("1.42"), "rate": D("20")}],
                     fees=[{"code": "CARD_FEE", "amount": D("0.20")}])
    live = live_line(line(cancelations=[cancel], taxes=[{"code": "TVA", "amount": D("27.50")}],
                          fees=[{"code": "CARD_FEE", "amount": D("0.60")}], commission_fee=D("21.30"),
                          commission_taxes=[{"code": "TVAFR", "amount": D("4.26"), "rate": D("20")}],
                          total_commission=D("25.56")))
    assert live.reading == "gross"
    assert (live.ordered, live.cancelled, live.quantity) == (3, 1, 2)
    assert (live.price, live.shipping, live.fee_total) == (D("110"), D("6"), D("0.40"))
    assert live.taxes[0].amount == D("18.33")
    assert (live.commission.fee, live.commission.vat, live.commission.total) == (D("14.20"), D("2.84"), D("17.04"))
    assert live.commission.vat_rate == D("20")


def test_net_reading_takes_the_line_as_stated():
    cancel = _cancel(quantity=1, amount=D("55"), shipping_amount=D("2"))
    live = live_line(line(price=D("110"), shipping_price=D("6"), cancelations=[cancel]))
    assert live.reading == "net"
    assert (live.quantity, live.price, live.shipping) == (2, D("110"), D("6"))


def test_an_amount_only_cancellation_keeps_the_units():
    """The spec's own example: 12.34 cancelled with quantity 0 on a 55 × 3 = 165 line."""
    live = live_line(line(cancelations=[_cancel(quantity=0, amount=D("12.34"), shipping_amount=D("1.23"))]))
    assert (live.quantity, live.price, live.shipping, live.reading) == (3, D("152.66"), D("6.77"), "gross")


def test_promotions_are_prorated_over_the_units_left():
    promo = {"id": "P", "deduced_amount": D("15"), "apportioned": False, "configuration": {"type": "AMOUNT_OFF",
                                                                                         "internal_description": "x"}}
    live = live_line(line(price=D("150"), promotions=[promo], cancelations=[_cancel(quantity=1, amount=D("50"))]))
    assert (live.quantity, live.price, live.discount) == (2, D("100"), D("10.00"))


def test_a_price_neither_reading_explains_is_named():
    with pytest.raises(LineAmountError) as caught:
        live_line(line(price=D("120"), cancelations=[_cancel(quantity=1, amount=D("55"))]))
    reason = caught.value.reason
    assert "line O-1-1" in reason and "120" in reason and "55" in reason and "165" in reason


def test_cancellations_above_the_line_are_named():
    with pytest.raises(LineAmountError, match=r"line O-1-1: .*take 170 off a price of 165"):
        live_line(line(price_unit=None, cancelations=[_cancel(quantity=3, amount=D("170"))]))


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"quantity": 0}, "quantity is 0"), ({"price": None}, "price is missing"),
     ({"shipping_price": D("-1")}, "shipping_price is -1")],
)
def test_unreadable_lines_are_named(fields, message):
    with pytest.raises(LineAmountError, match=message):
        live_line(line(**fields))


def test_taxes_the_marketplace_keeps_are_channel_liable():
    tax = {"code": "VAT", "amount": D("4.00"), "rate": D("20"), "amount_breakdown": {"parts": [
        {"amount": D("3.00"), "payable_to_shop": True}, {"amount": D("1.00"), "payable_to_shop": False}]}}
    live = live_line(line(taxes=[tax]))
    assert live.taxes == (TaxAmount("VAT", D("20"), D("3.00"), False), TaxAmount("VAT", D("20"), D("1.00"), True))


def test_live_quantity_of_dead_and_cancelled_lines():
    assert live_quantity(line(order_line_state="REFUSED")) == 0
    assert live_quantity(line(order_line_state="CANCELED")) == 0
    assert live_quantity(line(cancelations=[_cancel(quantity=5, amount=D("1"))])) == 0
    assert live_quantity(line(cancelations=[_cancel(quantity=1, amount=D("1"))])) == 2


@settings(max_examples=200, deadline=None)
@given(cents=st.integers(0, 10**7), weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
def test_split_in_cents_sums_exactly_and_follows_the_weights(cents, weights):
    amount = D(cents) / 100
    parts = split_in_cents(amount, [D(w) for w in weights])
    assert sum(parts) == amount and all(p >= 0 for p in parts)
    total = sum(weights)
    if total:
        for part, weight in zip(parts, weights):
            assert abs(part - amount * weight / total) < D("0.01")
