import pytest

from mirakl_pipelines.sync.eligibility import SKIP_REASONS, skip_reason, summarize_skips
from mirakl_pipelines.sync.order_lines import live_order_lines
from mirakl_pipelines_tests.sync.orders import SHIPPING_ADDRESS, marketplace, order

DEBITED = "2026-03-14T10:02:11Z"
NO_STREET = {**SHIPPING_ADDRESS, "street_1": None}
NO_CITY = {**SHIPPING_ADDRESS, "city": "  "}
NO_COUNTRY = {**SHIPPING_ADDRESS, "country_iso_code": None}
DEFAULT = marketplace(orders={})  # states [SHIPPING], paid only, shipping address required
EARLY = marketplace(orders={"states": ["WAITING_ACCEPTANCE", "SHIPPING"], "paid_only": False,
                            "require_shipping_address": False})
PAID_EARLY = marketplace(orders={"states": ["WAITING_DEBIT", "WAITING_ACCEPTANCE", "SHIPPING"]})
WITH_REFUSED = marketplace(orders={"states": ["SHIPPING", "REFUSED", "CANCELED"], "paid_only": False})
# Import before acceptance on a marketplace that hides addresses until then: the address follows.
AFTER_IMPORT = marketplace(orders={"states": ["WAITING_ACCEPTANCE", "SHIPPING"], "paid_only": False},
                           acceptance={"mode": "after_import"})


def _order(state, debited, address, lines=None):
    customer = {"firstname": "Zoé", "lastname": "L", "shipping_address": address}
    changes = {"order_state": state, "customer_debited_date": debited, "customer": customer}
    if lines is not None:
        changes["order_lines"] = lines
    return order(**changes)


@pytest.mark.parametrize(
    ("state", "debited", "address", "cfg", "expected"),
    [
        # state × paid × address under the default configuration
        ("SHIPPING", DEBITED, SHIPPING_ADDRESS, DEFAULT, None),
        # cleared to ship but not debited (pay on delivery, due date…): imported, booked pending
        ("SHIPPING", None, SHIPPING_ADDRESS, DEFAULT, None),
        ("SHIPPED", DEBITED, SHIPPING_ADDRESS, DEFAULT, "state_not_imported"),
        ("WAITING_ACCEPTANCE", None, None, DEFAULT, "state_not_imported"),
        ("WAITING_DEBIT", None, SHIPPING_ADDRESS, DEFAULT, "state_not_imported"),
        ("SHIPPING", DEBITED, None, DEFAULT, "no_shipping_address"),
        ("SHIPPING", DEBITED, NO_STREET, DEFAULT, "no_shipping_address"),
        ("SHIPPING", DEBITED, NO_CITY, DEFAULT, "no_shipping_address"),
        ("SHIPPING", DEBITED, NO_COUNTRY, DEFAULT, "no_shipping_address"),
        ("REFUSED", None, SHIPPING_ADDRESS, DEFAULT, "refused"),
        ("CANCELED", DEBITED, SHIPPING_ADDRESS, DEFAULT, "canceled"),
        # import before acceptance: unpaid and addressless orders pass
        ("WAITING_ACCEPTANCE", None, None, EARLY, None),
        ("WAITING_DEBIT", None, None, EARLY, "state_not_imported"),
        # paid_only with early states: waiting states are unpaid unless a debit date is set
        ("WAITING_DEBIT", None, SHIPPING_ADDRESS, PAID_EARLY, "not_paid"),
        ("WAITING_DEBIT", DEBITED, SHIPPING_ADDRESS, PAID_EARLY, None),
        ("WAITING_ACCEPTANCE", None, None, PAID_EARLY, "not_paid"),  # unpaid is reported before the address
        ("WAITING_ACCEPTANCE", DEBITED, None, PAID_EARLY, "no_shipping_address"),
        # after_import: an order awaiting acceptance is imported without its hidden address, not one that shipped
        ("WAITING_ACCEPTANCE", None, None, AFTER_IMPORT, None),
        ("SHIPPING", DEBITED, None, AFTER_IMPORT, "no_shipping_address"),
        # refused and canceled are never eligible, whatever the configuration says
        ("REFUSED", DEBITED, SHIPPING_ADDRESS, WITH_REFUSED, "refused"),
        ("CANCELED", DEBITED, SHIPPING_ADDRESS, WITH_REFUSED, "canceled"),
    ],
)
def test_eligibility_matrix(state, debited, address, cfg, expected):
    assert skip_reason(_order(state, debited, address), cfg) == expected


@pytest.mark.parametrize(
    ("line_states", "expected"),
    [
        ([], "no_lines"),
        (["REFUSED", "CANCELED"], "no_lines"),
        (["REFUSED", "SHIPPING"], None),
    ],
)
def test_orders_without_live_lines_are_skipped(line_states, expected):
    lines = [
        {"order_line_id": f"L-{i}", "order_line_state": s, "offer_sku": "ALP-TRAIL-42", "quantity": 1}
        for i, s in enumerate(line_states)
    ]
    assert skip_reason(_order("SHIPPING", DEBITED, SHIPPING_ADDRESS, lines), DEFAULT) == expected


def test_live_lines_drop_refused_canceled_and_fully_cancelled_lines():
    lines = [
        {"order_line_id": "A", "order_line_state": "SHIPPING", "quantity": 1},
        {"order_line_id": "B", "order_line_state": "REFUSED", "quantity": 1},
        {"order_line_id": "C", "order_line_state": "CANCELED", "quantity": 1},
        {"order_line_id": "D", "order_line_state": "INCIDENT_OPEN", "quantity": 1},
        {"order_line_id": "E", "order_line_state": "SHIPPING", "quantity": 2,
         "cancelations": [{"id": "c1", "quantity": 2, "amount": "20"}]},
    ]
    assert [line.order_line_id for line in live_order_lines(order(order_lines=lines))] == ["A", "D"]


def test_every_returned_code_is_explained():
    cfgs = [DEFAULT, EARLY, PAID_EARLY, AFTER_IMPORT]
    states = ["STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "SHIPPING", "REFUSED", "CANCELED"]
    seen = {
        skip_reason(_order(s, d, a), cfg)
        for cfg in cfgs for s in states for d in (None, DEBITED) for a in (None, SHIPPING_ADDRESS)
    }
    seen.discard(None)
    assert seen <= set(SKIP_REASONS)
    assert all(text for text in SKIP_REASONS.values())


def test_summarize_skips_counts_reasons_and_ignores_eligible_orders():
    reasons = ["not_paid", None, "refused", "not_paid", None, "state_not_imported"]
    assert summarize_skips(reasons) == {"not_paid": 2, "refused": 1, "state_not_imported": 1}
    assert list(summarize_skips(reasons)) == ["not_paid", "refused", "state_not_imported"]
    assert summarize_skips(iter([None, None])) == {}
