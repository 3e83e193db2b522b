"""Paid means Mirakl shows the customer's debit; every other workflow is imported pending, with why."""

import pytest

from mirakl_pipelines.sync.payments import awaits_debit_before_shipping, payment_status
from mirakl_pipelines_tests.sync.orders import order, tax_included_order

DEBITED = "2026-03-14T10:02:11Z"


@pytest.mark.parametrize(
    ("changes", "paid", "reason"),
    [
        ({"customer_debited_date": DEBITED}, True, "debited on 2026-03-14T10:02:11"),
        ({"customer_debited_date": None, "payment_workflow": "PAY_ON_DELIVERY"}, False, "pay on delivery"),
        ({"customer_debited_date": None, "payment_workflow": "PAY_ON_DUE_DATE", "payment_duration": 30}, False,
         "pay on due date (30 days)"),
        ({"customer_debited_date": None, "payment_workflow": "PAY_ON_SHIPMENT"}, False, "once the order ships"),
        ({"customer_debited_date": None, "payment_workflow": "NO_CUSTOMER_PAYMENT_CONFIRMATION"}, False,
         "does not confirm customer payments"),
        ({"customer_debited_date": None, "customer_directly_pays_seller": True}, False, "pays the seller directly"),
        # SHIPPING alone is not a debit: booked pending until Mirakl shows it
        ({"customer_debited_date": None, "payment_workflow": "PAY_ON_ACCEPTANCE"}, False, "not been debited yet"),
    ],
)
def test_payment_status(changes, paid, reason):
    status = payment_status(order(**changes))
    assert status.paid is paid
    assert reason in status.reason


def test_every_live_line_debited_counts_as_paid():
    data = tax_included_order()
    for line in data["order_lines"]:
        line["debited_date"] = DEBITED
    assert payment_status(order(data, customer_debited_date=None)).paid
    data["order_lines"][1]["debited_date"] = None
    assert not payment_status(order(data, customer_debited_date=None)).paid


@pytest.mark.parametrize(
    ("state", "debited", "expected"),
    [("WAITING_DEBIT", None, True), ("WAITING_DEBIT_PAYMENT", None, True), ("WAITING_DEBIT", DEBITED, False),
     ("SHIPPING", None, False), ("WAITING_ACCEPTANCE", None, True)],
)
def test_awaits_debit_before_shipping(state, debited, expected):
    assert awaits_debit_before_shipping(order(order_state=state, customer_debited_date=debited)) is expected
