"""The marketplace state machine (NOTES §4), driven directly and with a controlled clock."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim, MiraklApiError
from mirakl_pipelines.sandbox.mirakl.wire import to_json
from mirakl_pipelines_tests.mirakl_spec import schema_ref, validate
from mirakl_pipelines_tests.or11_orders import consistency_errors

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
LINES = [
    {"sku": "ALP-TRAIL-42", "quantity": 1, "unit_price": Decimal("89.90")},
    {"sku": "LUM-HEAD-400", "quantity": 2, "unit_price": Decimal("39.95")},
]


def make_sim(**settings) -> MarketplaceSim:
    return MarketplaceSim(MarketplaceSettings(**settings), clock=lambda: T0)


def add(sim: MarketplaceSim, order_id: str = "S-1-A", **kwargs) -> dict:
    return sim.add_order(build_order(order_id=order_id, lines=LINES, created=sim.now(), **kwargs))


def decide(sim: MarketplaceSim, order_id: str, *accepted: bool) -> None:
    sim.accept(order_id, {"order_lines": [{"id": f"{order_id}-{i}", "accepted": a} for i, a in enumerate(accepted, 1)]})


def line_states(order: dict) -> list[str]:
    return [line["order_line_state"] for line in order["order_lines"]]


def test_acceptance_then_debit_delay_then_shipping():
    sim = make_sim(debit_delay=timedelta(seconds=30))
    add(sim)
    sim.advance(timedelta(minutes=5))
    decide(sim, "S-1-A", True, True)
    order = sim.get_order("S-1-A")
    assert order["order_state"] == "WAITING_DEBIT" and line_states(order) == ["WAITING_DEBIT"] * 2
    assert order["acceptance_decision_date"] == T0 + timedelta(minutes=5)
    assert order["customer_debited_date"] is None and order["can_cancel"] and not order["can_shop_ship"]

    sim.advance(timedelta(seconds=29))
    assert sim.get_order("S-1-A")["order_state"] == "WAITING_DEBIT"
    sim.advance(timedelta(seconds=2))
    order = sim.get_order("S-1-A")
    debited = T0 + timedelta(minutes=5, seconds=30)
    assert order["order_state"] == "SHIPPING" and line_states(order) == ["SHIPPING"] * 2
    assert order["customer_debited_date"] == debited == order["last_updated_date"]
    assert all(line["debited_date"] == debited for line in order["order_lines"])
    assert order["can_shop_ship"] and not order["can_cancel"]
    assert all(line["can_refund"] for line in order["order_lines"])


def test_other_payment_workflows_go_straight_to_shipping_undebited():
    sim = make_sim()
    add(sim, payment_workflow="PAY_ON_DELIVERY")
    decide(sim, "S-1-A", True, True)
    order = sim.get_order("S-1-A")
    assert order["order_state"] == "SHIPPING" and order["customer_debited_date"] is None
    assert order["can_cancel"] and order["can_shop_ship"]


def test_refusing_every_line_refuses_the_order():
    sim = make_sim()
    add(sim)
    decide(sim, "S-1-A", False, False)
    order = sim.get_order("S-1-A")
    assert order["order_state"] == "REFUSED" and line_states(order) == ["REFUSED", "REFUSED"]
    assert order["acceptance_decision_date"] == T0
    sim.advance(timedelta(days=10))  # nothing else happens to a refused order
    assert sim.get_order("S-1-A")["order_state"] == "REFUSED"


def test_partial_acceptance_refuses_some_lines_and_the_order_follows_the_rest():
    sim = make_sim()
    add(sim)
    decide(sim, "S-1-A", True, False)
    order = sim.get_order("S-1-A")
    assert order["order_state"] == "WAITING_DEBIT" and line_states(order) == ["WAITING_DEBIT", "REFUSED"]
    sim.advance(timedelta(minutes=1))
    assert line_states(sim.get_order("S-1-A")) == ["SHIPPING", "REFUSED"]


def test_partial_acceptance_can_be_disabled():
    sim = make_sim(partial_acceptance=False)
    add(sim)
    with pytest.raises(MiraklApiError) as e:
        decide(sim, "S-1-A", True, False)
    assert (e.value.status, e.value.code) == (400, "ORDER_PARTIAL_ACCEPTANCE_DISABLED")
    assert sim.get_order("S-1-A")["order_state"] == "WAITING_ACCEPTANCE"


def test_auto_refusal_after_the_acceptance_window_leaves_the_decision_date_null():
    sim = make_sim(acceptance_window=timedelta(days=3))
    add(sim)
    sim.advance(timedelta(days=3) - timedelta(seconds=1))
    assert sim.get_order("S-1-A")["order_state"] == "WAITING_ACCEPTANCE"
    sim.advance(timedelta(days=1))  # far past the deadline: stamped at the deadline, not at "now"
    order = sim.get_order("S-1-A")
    assert order["order_state"] == "REFUSED" and line_states(order) == ["REFUSED", "REFUSED"]
    assert order["acceptance_decision_date"] is None
    assert order["last_updated_date"] == T0 + timedelta(days=3)
    with pytest.raises(MiraklApiError) as e:
        decide(sim, "S-1-A", True, True)
    assert e.value.code == "ORDER_INVALID_STATE" and "Current status is REFUSED" in e.value.message


@pytest.mark.parametrize(
    "body, code",
    [
        ({"order_lines": [{"id": "S-1-A-1", "accepted": True}]}, "ORDER_LINE_ACCEPTANCE_DECISION_MISSING"),
        ({"order_lines": [{"id": "S-1-A-1", "accepted": True}, {"id": "S-1-A-9", "accepted": True}]}, "ORDER_LINE_NOT_FOUND"),
        ({"order_lines": [{"id": "S-1-A-1", "accepted": True}, {"id": "S-1-A-1", "accepted": False}]}, "ORDER_LINE_DUPLICATE_ID"),
        ({"order_lines": [None]}, "ORDER_LINE_NULL_ELEMENT"),
        ({"order_lines": [{"id": "S-1-A-1", "accepted": "yes"}]}, "VALIDATION_ERROR"),
        ({"lines": []}, "VALIDATION_ERROR"),
    ],
)
def test_acceptance_errors_leave_the_order_untouched(body, code):
    sim = make_sim()
    add(sim)
    with pytest.raises(MiraklApiError) as e:
        sim.accept("S-1-A", body)
    assert (e.value.status, e.value.code) == (400, code)
    assert sim.get_order("S-1-A")["order_state"] == "WAITING_ACCEPTANCE"


def test_unknown_order_is_404():
    sim = make_sim()
    with pytest.raises(MiraklApiError) as e:
        sim.accept("NOPE-A", {"order_lines": []})
    assert (e.value.status, e.value.code) == (404, "ORDER_NOT_FOUND")
    with pytest.raises(KeyError, match="NOPE-A"):
        sim.get_order("NOPE-A")


def test_ship_only_from_shipping_and_stamps_shipped_dates():
    sim = make_sim()
    add(sim)
    with pytest.raises(MiraklApiError) as e:
        sim.ship("S-1-A")
    assert e.value.status == 400 and "Current status is WAITING_ACCEPTANCE" in e.value.message
    decide(sim, "S-1-A", True, True)
    sim.pay("S-1-A")
    sim.update_tracking("S-1-A", {"carrier_code": "COLISSIMO_FR", "tracking_number": "6A123", "carrier_name": "", "carrier_url": ""})
    sim.advance(timedelta(hours=2))
    sim.ship("S-1-A")
    order = sim.get_order("S-1-A")
    shipped = T0 + timedelta(hours=2)
    assert order["order_state"] == "SHIPPED" and order["shipped_date"] == shipped
    assert [line["shipped_date"] for line in order["order_lines"]] == [shipped, shipped]
    assert order["shipping_company"] == "Colissimo"
    assert order["shipping_tracking_url"] == "https://www.laposte.fr/outils/suivre-vos-envois?code=6A123"
    with pytest.raises(MiraklApiError) as e:
        sim.ship("S-1-A")
    assert "Current status is SHIPPED" in e.value.message


def test_tracking_rules_for_registered_and_unregistered_carriers():
    sim = make_sim(accepts_unregistered_carriers=False)
    add(sim, payment_workflow="PAY_ON_DELIVERY")
    decide(sim, "S-1-A", True, True)
    for body, fragment in [
        ({"carrier_code": "UPS"}, "tracking_number is mandatory"),
        ({"carrier_code": "FEDEX_XYZ", "tracking_number": "1"}, "not registered"),
        ({"carrier_name": "Coursier Lyon", "tracking_number": "1"}, "only accepts registered carriers"),
        ({"carrier_code": 12}, "carrier_code"),
    ]:
        with pytest.raises(MiraklApiError, match=fragment):
            sim.update_tracking("S-1-A", body)
    sim.update_tracking("S-1-A", {"carrier_code": "LIVRAISON_VENDEUR"})  # no tracking page: no number needed

    open_sim = make_sim()
    add(open_sim, payment_workflow="PAY_ON_DELIVERY")
    decide(open_sim, "S-1-A", True, True)
    with pytest.raises(MiraklApiError, match="carrier_name is mandatory"):
        open_sim.update_tracking("S-1-A", {"tracking_number": "1"})
    open_sim.update_tracking("S-1-A", {"carrier_name": "Coursier Lyon", "carrier_url": "https://c.example/1", "tracking_number": "1"})
    order = open_sim.get_order("S-1-A")
    assert (order["shipping_company"], order["shipping_tracking_url"], order["shipping_carrier_code"]) == (
        "Coursier Lyon", "https://c.example/1", None)


def test_payment_failure_and_never_pay_and_cancel():
    sim = make_sim(debit_delay=timedelta(seconds=30))
    add(sim, "F-1-A")
    add(sim, "N-1-A")
    sim.add_order(build_order(order_id="P-1-A", lines=LINES, created=sim.now()), never_pay=True)
    sim.fail_payment("F-1-A")  # before acceptance: the debit will fail when due
    for order_id in ("F-1-A", "N-1-A", "P-1-A"):
        decide(sim, order_id, True, True)
    sim.fail_payment("N-1-A")  # while waiting for the debit: canceled now
    assert sim.get_order("N-1-A")["order_state"] == "CANCELED"
    sim.advance(timedelta(hours=1))
    failed = sim.get_order("F-1-A")
    assert failed["order_state"] == "CANCELED" and line_states(failed) == ["CANCELED", "CANCELED"]
    assert failed["order_state_reason_code"] == "PAYMENT_REFUSED"
    assert sim.get_order("P-1-A")["order_state"] == "WAITING_DEBIT"  # never pays by itself
    sim.pay("P-1-A")
    assert sim.get_order("P-1-A")["order_state"] == "SHIPPING"
    sim.cancel("P-1-A")
    assert sim.get_order("P-1-A")["order_state"] == "CANCELED"
    with pytest.raises(ValueError, match="cannot be canceled: it is CANCELED"):
        sim.cancel("P-1-A")
    with pytest.raises(ValueError, match="cannot be paid"):
        sim.pay("P-1-A")


def test_clock_only_moves_forward_and_add_order_rejects_duplicates():
    sim = make_sim()
    add(sim)
    with pytest.raises(ValueError, match="already exists"):
        add(sim)
    with pytest.raises(ValueError, match="only moves forward"):
        sim.advance(timedelta(seconds=-1))
    sim.advance(timedelta(hours=1))
    assert sim.now() == T0 + timedelta(hours=1)


def test_or11_filters_on_update_date_with_the_documented_slack():
    sim = make_sim(update_date_slack=timedelta(seconds=60))
    add(sim, "U-1-A")
    sim.advance(timedelta(minutes=10))
    add(sim, "U-2-A")
    since = (T0 + timedelta(minutes=10, seconds=30)).isoformat()
    ids = [o["order_id"] for o in sim.list_orders({"start_update_date": since})["orders"]]
    assert ids == ["U-2-A"]  # updated 30 s before the start: inside the 60 s slack
    later = (T0 + timedelta(minutes=11, seconds=1)).isoformat()
    assert sim.list_orders({"start_update_date": later})["total_count"] == 0
    decide(sim, "U-1-A", True, True)  # an update brings the old order into the window
    assert [o["order_id"] for o in sim.list_orders({"start_update_date": since})["orders"]] == ["U-1-A", "U-2-A"]
    until = (T0 + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    assert sim.list_orders({"end_update_date": until})["total_count"] == 0


def test_or11_other_filters_and_sorting():
    sim = make_sim()
    for i in range(3):
        add(sim, f"O-{i}-A")
        sim.advance(timedelta(minutes=1))
    decide(sim, "O-1-A", True, True)
    sim.pay("O-1-A")
    assert [o["order_id"] for o in sim.list_orders({"order": "desc"})["orders"]] == ["O-2-A", "O-1-A", "O-0-A"]
    assert [o["order_id"] for o in sim.list_orders({"order_state_codes": "SHIPPING,REFUSED"})["orders"]] == ["O-1-A"]
    assert [o["order_id"] for o in sim.list_orders({"customer_debited": "false"})["orders"]] == ["O-0-A", "O-2-A"]
    assert sim.list_orders({"order_ids": "O-2-A, O-0-A"})["total_count"] == 2
    assert sim.list_orders({"start_date": (T0 + timedelta(seconds=30)).isoformat()})["total_count"] == 2
    for params, fragment in [
        ({"order_ids": ",".join(str(i) for i in range(101))}, "The limit of 100 is exceeded for the parameter : order_ids"),
        ({"order_state_codes": "SHIPPING,LOST"}, "order_state_codes"),
        ({"start_update_date": "yesterday"}, "start_update_date"),
        ({"max": "0"}, "max"),
        ({"offset": "-1"}, "offset"),
        ({"sort": "price"}, "sort"),
        ({"customer_debited": "maybe"}, "customer_debited"),
    ]:
        with pytest.raises(MiraklApiError, match=fragment) as e:
            sim.list_orders(params)
        assert e.value.status == 400


def test_or11_pages_default_to_ten_and_cap_at_one_hundred():
    sim = make_sim()
    for i in range(120):
        sim.add_order(build_order(order_id=f"P-{i:03d}-A", lines=LINES[:1], created=T0 + timedelta(seconds=i)))
    first = sim.list_orders({})
    assert first["total_count"] == 120 and len(first["orders"]) == 10
    assert [o["order_id"] for o in first["orders"]] == [f"P-{i:03d}-A" for i in range(10)]
    assert len(sim.list_orders({"max": "500"})["orders"]) == 100
    last = sim.list_orders({"max": "100", "offset": "100"})
    assert [o["order_id"] for o in last["orders"]] == [f"P-{i:03d}-A" for i in range(100, 120)]
    assert len(sim.list_orders({"paginate": "false"})["orders"]) == 120


def test_or11_offset_pages_follow_live_data():
    """A new order created between two page reads shifts the pages, as on the real platform (sdk-php-shop#71)."""
    sim = make_sim()
    for i in range(4):
        sim.add_order(build_order(order_id=f"L-{i}-A", lines=LINES[:1], created=T0 + timedelta(minutes=i)))
    page1 = sim.list_orders({"max": "2", "order": "desc"})
    sim.add_order(build_order(order_id="L-NEW-A", lines=LINES[:1], created=T0 + timedelta(minutes=9)))
    page2 = sim.list_orders({"max": "2", "offset": "2", "order": "desc"})
    assert [o["order_id"] for o in page1["orders"]] == ["L-3-A", "L-2-A"]
    assert [o["order_id"] for o in page2["orders"]] == ["L-2-A", "L-1-A"]  # L-2-A seen twice, L-0-A not yet
    assert page2["total_count"] == 5


def test_hidden_addresses_appear_after_acceptance_only():
    sim = make_sim(hide_addresses_before_acceptance=True)
    add(sim, organization={"name": "Club Alpin"})
    customer = sim.list_orders({})["orders"][0]["customer"]
    assert customer["shipping_address"] is None and customer["billing_address"] is None
    assert "address" not in customer["organization"]
    assert sim.get_order("S-1-A")["customer"]["shipping_address"]["city"]  # the internal view keeps them
    decide(sim, "S-1-A", True, False)
    customer = sim.list_orders({})["orders"][0]["customer"]
    assert customer["shipping_address"]["country_iso_code"] == "FRA" and customer["organization"]["address"]


def test_calls_are_counted_and_or11_later_pages_are_free_of_the_limit():
    clock = {"t": 0.0}
    sim = MarketplaceSim(MarketplaceSettings(rate_limit_scale=0.5), clock=lambda: T0, monotonic=lambda: clock["t"])
    assert sim.admit("OR11") is None
    assert sim.admit("OR11", counts_for_limit=False) is None  # offset > 0: same listing
    assert sim.admit("OR11") == 60  # Retry-After on the API's own time axis
    clock["t"] = 20.0  # 20 real seconds = 40 API seconds at scale 0.5
    assert sim.admit("OR11") == 20
    clock["t"] = 30.0
    assert sim.admit("OR11") is None
    assert sim.admit("OR21") is None and sim.admit("OR21") is None  # no documented limit
    assert sim.admit("SH21") is None and sim.admit("SH21") == 86400
    assert sim.calls == {"OR11": 3, "OR21": 2, "SH21": 1}
    assert sim.rejected == {"OR11": 2, "SH21": 1}


# ---- payments per workflow ------------------------------------------------------------------------

DEFERRED = timedelta(seconds=45)


def accepted(sim: MarketplaceSim, order_id: str = "S-1-A", **kwargs) -> dict:
    add(sim, order_id, **kwargs)
    decide(sim, order_id, True, True)
    return sim.get_order(order_id)


def assert_debited_at(order: dict, at: datetime) -> None:
    assert order["customer_debited_date"] == order["transaction_date"] == at
    assert order["transaction_number"].startswith("TR-")
    assert all(line["debited_date"] == at for line in order["order_lines"] if line["order_line_state"] not in {"CANCELED", "REFUSED"})
    assert order["last_updated_date"] >= at


def test_pay_on_shipment_is_debited_after_the_order_shipped():
    sim = make_sim(deferred_debit_delay=DEFERRED)
    order = accepted(sim, payment_workflow="PAY_ON_SHIPMENT")
    assert order["order_state"] == "SHIPPING" and order["customer_debited_date"] is None and order["can_cancel"]
    sim.advance(timedelta(days=1))
    assert sim.get_order("S-1-A")["customer_debited_date"] is None  # nothing before shipment
    sim.ship("S-1-A")
    shipped = sim.now()
    order = sim.get_order("S-1-A")
    assert order["order_state"] == "SHIPPED" and order["customer_debited_date"] is None
    assert not any(line["can_refund"] for line in order["order_lines"])  # nothing paid yet, nothing to refund
    sim.advance(DEFERRED - timedelta(seconds=1))
    assert sim.get_order("S-1-A")["customer_debited_date"] is None
    sim.advance(timedelta(seconds=5))
    order = sim.get_order("S-1-A")
    assert order["order_state"] == "SHIPPED"  # a later debit changes no state
    assert_debited_at(order, shipped + DEFERRED)
    assert order["last_updated_date"] == shipped + DEFERRED
    assert all(line["can_refund"] for line in order["order_lines"])
    assert sim.list_orders({"customer_debited": "true"})["total_count"] == 1


def test_pay_on_delivery_is_debited_after_receipt_manual_or_automatic():
    sim = make_sim(deferred_debit_delay=DEFERRED, receive_delay=timedelta(days=2))
    accepted(sim, "M-1-A", payment_workflow="PAY_ON_DELIVERY")
    accepted(sim, "A-1-A", payment_workflow="PAY_ON_DELIVERY")
    with pytest.raises(ValueError, match="cannot be received: it is SHIPPING"):
        sim.receive("M-1-A")
    sim.ship("M-1-A")
    sim.ship("A-1-A")
    shipped = sim.now()
    sim.advance(timedelta(hours=5))
    order = sim.receive("M-1-A")
    received = sim.now()
    assert order["order_state"] == "RECEIVED" and [line["received_date"] for line in order["order_lines"]] == [received] * 2
    assert order["customer_debited_date"] is None
    sim.advance(DEFERRED)
    assert_debited_at(sim.get_order("M-1-A"), received + DEFERRED)
    assert sim.get_order("A-1-A")["order_state"] == "SHIPPED"
    sim.advance(timedelta(days=3))
    auto = sim.get_order("A-1-A")
    assert auto["order_state"] == "RECEIVED"
    assert {line["received_date"] for line in auto["order_lines"]} == {shipped + timedelta(days=2)}
    assert_debited_at(auto, shipped + timedelta(days=2) + DEFERRED)


def test_pay_on_due_date_is_debited_payment_duration_days_after_acceptance():
    sim = make_sim(payment_duration_day=timedelta(seconds=2))  # a demo's day lasts two seconds
    sim.advance(timedelta(minutes=1))
    accepted_at = sim.now()
    order = accepted(sim, payment_workflow="PAY_ON_DUE_DATE", payment_duration=30)
    assert order["payment_duration"] == 30 and order["order_state"] == "SHIPPING" and order["can_cancel"]
    sim.advance(timedelta(seconds=59))
    assert sim.get_order("S-1-A")["customer_debited_date"] is None
    sim.advance(timedelta(seconds=1))
    order = sim.get_order("S-1-A")
    assert_debited_at(order, accepted_at + timedelta(seconds=60))
    assert order["order_state"] == "SHIPPING" and not order["can_cancel"]  # debited: no more OR29


@pytest.mark.parametrize("kwargs", [{"payment_workflow": "NO_CUSTOMER_PAYMENT_CONFIRMATION"},
                                    {"payment_workflow": "PAY_ON_DELIVERY", "customer_directly_pays_seller": True}])
def test_orders_paid_outside_mirakl_are_never_debited(kwargs):
    sim = make_sim(receive_delay=timedelta(hours=1), deferred_debit_delay=DEFERRED)
    accepted(sim, **kwargs)
    sim.ship("S-1-A")
    sim.advance(timedelta(days=60))
    order = sim.get_order("S-1-A")
    assert order["order_state"] == "RECEIVED" and order["customer_debited_date"] is None and order["transaction_number"] is None
    assert all(line["can_refund"] for line in order["order_lines"])  # paid to the seller: refundable once shipped
    with pytest.raises(ValueError, match="cannot be paid"):
        sim.pay("S-1-A")


def test_pay_brings_a_deferred_debit_forward_and_never_pay_holds_it_back():
    sim = make_sim(deferred_debit_delay=DEFERRED)
    accepted(sim, "E-1-A", payment_workflow="PAY_ON_SHIPMENT")
    assert_debited_at(sim.pay("E-1-A"), T0)
    with pytest.raises(ValueError, match="cannot be paid"):
        sim.pay("E-1-A")
    sim.add_order(build_order(order_id="N-1-A", lines=LINES, created=sim.now(), payment_workflow="PAY_ON_SHIPMENT"), never_pay=True)
    decide(sim, "N-1-A", True, True)
    sim.ship("N-1-A")
    sim.advance(timedelta(days=1))
    assert sim.get_order("N-1-A")["customer_debited_date"] is None


def test_a_stored_order_of_a_deferred_workflow_gets_its_debit():
    sim = make_sim(deferred_debit_delay=DEFERRED)
    sim.add_order(build_order(order_id="B-1-A", lines=LINES, created=T0 - timedelta(days=2), state="SHIPPED",
                              payment_workflow="PAY_ON_DELIVERY"))
    sim.add_order(build_order(order_id="B-2-A", lines=LINES, created=T0 - timedelta(days=2), state="SHIPPING",
                              payment_workflow="PAY_ON_DUE_DATE", payment_duration=1))
    assert sim.get_order("B-1-A")["customer_debited_date"] is None  # not received yet
    order = sim.get_order("B-2-A")  # accepted 5 minutes after creation, due one day later: already past
    assert_debited_at(order, T0 - timedelta(days=1) + timedelta(minutes=5))


# ---- cancellations of some units ---------------------------------------------------------------------

RICH_LINES = [
    {"sku": "ALP-TRAIL-42", "quantity": 1, "unit_price": Decimal("89.90"), "fees": [{"code": "GIFT_WRAP", "amount": "3.90"}]},
    {"sku": "LUM-HEAD-400", "quantity": 3, "line_price": Decimal("100.00"),
     "promotions": [{"type": "PERCENTAGE_OFF", "percentage_off": "10"}], "fees": [{"code": "CARD_FEE", "amount": "0.50"}]},
]


def rich(sim: MarketplaceSim, order_id: str = "C-1-A", **kwargs) -> dict:
    sim.add_order(build_order(order_id=order_id, lines=RICH_LINES, created=sim.now(), shipping_price=Decimal("10.00"), **kwargs))
    decide(sim, order_id, True, True)
    return sim.get_order(order_id)


def served(sim: MarketplaceSim, reading: str) -> None:
    """OR11 in both tax modes: valid against the spec and consistent per the independent checker."""
    for tax_mode in ("TAX_INCLUDED", "TAX_EXCLUDED"):
        body = json.loads(to_json(sim.list_orders({"paginate": "false", "order_tax_mode": tax_mode})), parse_float=Decimal)
        validate(schema_ref("OR11_Response_200"), body)
        for order in body["orders"]:
            native = order["order_tax_mode"] == next(o for o in sim.orders() if o["order_id"] == order["order_id"])["order_tax_mode"]
            assert consistency_errors(order, reading=reading, promotion_configuration=native) == [], (tax_mode, order["order_id"])


def test_cancel_lines_records_each_cancellation_as_ordered_by_default():
    sim = make_sim()
    rich(sim)
    sim.advance(timedelta(seconds=40))  # debited meanwhile: customer service cancels after the payment
    before = sim.get_order("C-1-A")
    line = before["order_lines"][1]
    assert (line["price"], line["price_unit"], line["quantity"]) == (Decimal("90.00"), Decimal("33.33"), 3)
    order = sim.cancel_lines("C-1-A", {"C-1-A-2": 1})
    (first,) = order["order_lines"][1]["cancelations"]
    assert first["amount"] == Decimal("30.00") and first["shipping_amount"] == Decimal("1.67")  # a third of 90.00 and of 5.00
    assert first["quantity"] == 1 and first["reason_code"] == "34" and first["created_date"] == T0 + timedelta(seconds=40)
    assert first["fees"] == [{"amount": Decimal("0.17"), "code": "CARD_FEE"}]
    assert first["taxes"][0]["amount"] == Decimal("5.00") and first["taxes"][0]["code"] == "TVA20"  # a third of 15.00
    assert first["commission_total_amount"] == first["commission_amount"] + sum(t["amount"] for t in first["commission_taxes"])
    assert order["order_lines"][1] | {"cancelations": [], "last_updated_date": None} == \
        before["order_lines"][1] | {"cancelations": [], "last_updated_date": None}  # the line stays as ordered
    assert order["total_price"] == before["total_price"] and order["order_state"] == "SHIPPING"
    assert order["last_updated_date"] == order["order_lines"][1]["last_updated_date"] == T0 + timedelta(seconds=40)
    served(sim, "keep")

    order = sim.cancel_lines("C-1-A", {"C-1-A-2": 2}, reason_code="42")
    cancelations = order["order_lines"][1]["cancelations"]
    assert [c["amount"] for c in cancelations] == [Decimal("30.00"), Decimal("60.00")]
    for field, total in (("amount", "price"), ("shipping_amount", "shipping_price"), ("commission_amount", "commission_fee")):
        assert sum(c[field] for c in cancelations) == order["order_lines"][1][total]  # all units: exactly the line's amounts
    assert order["order_lines"][1]["order_line_state"] == "CANCELED" and order["order_lines"][1]["order_line_state_reason_code"] == "42"
    assert not order["order_lines"][1]["can_refund"] and order["order_state"] == "SHIPPING"
    assert len({c["id"] for c in cancelations}) == 2
    served(sim, "keep")

    order = sim.cancel_lines("C-1-A", {"C-1-A-1": 1})
    assert order["order_state"] == "CANCELED" and order["order_state_reason_code"] == "34"
    assert not order["can_cancel"] and not order["can_shop_ship"]
    served(sim, "keep")


def test_cancellations_place_odd_cents_and_never_exceed_the_line():
    sim = make_sim()
    sim.add_order(build_order(order_id="O-1-A", lines=[{"sku": "LOT", "quantity": 3, "line_price": Decimal("10.00")}],
                              created=sim.now(), payment_workflow="PAY_ON_DELIVERY"))
    decide(sim, "O-1-A", True)
    amounts = []
    for _ in range(3):
        order = sim.cancel_lines("O-1-A", {"O-1-A-1": 1})
        amounts.append(order["order_lines"][0]["cancelations"][-1]["amount"])
    assert amounts == [Decimal("3.33"), Decimal("3.34"), Decimal("3.33")]
    assert order["order_state"] == "CANCELED"


def test_cancel_lines_can_reduce_the_line_instead():
    sim = make_sim(cancelations_reduce_line_price=True)
    before = rich(sim, tax_mode="TAX_EXCLUDED")
    order = sim.cancel_lines("C-1-A", {"C-1-A-2": 1})
    line, was = order["order_lines"][1], before["order_lines"][1]
    (cancelation,) = line["cancelations"]
    assert line["price"] == was["price"] - cancelation["amount"] == Decimal("60.00")
    assert line["shipping_price"] == was["shipping_price"] - cancelation["shipping_amount"]
    assert line["taxes"][0]["amount"] == was["taxes"][0]["amount"] - cancelation["taxes"][0]["amount"]
    assert line["fees"][0]["amount"] == Decimal("0.33")
    assert line["commission_fee"] == was["commission_fee"] - cancelation["commission_amount"]
    assert line["total_commission"] == line["commission_fee"] + line["commission_vat"]
    assert (line["quantity"], line["price_unit"]) == (3, was["price_unit"])  # as ordered
    assert order["total_price"] == before["total_price"] - cancelation["amount"] - cancelation["shipping_amount"] - Decimal("0.17")
    served(sim, "reduce")
    order = sim.cancel_lines("C-1-A", {"C-1-A-2": 2})
    assert order["order_lines"][1]["price"] == 0 and order["order_lines"][1]["total_price"] == 0
    served(sim, "reduce")


@pytest.mark.parametrize("quantities, message", [
    ({}, "give the units to cancel per order line"),
    ({"C-1-A-9": 1}, "has no order line 'C-1-A-9'"),
    ({"C-1-A-2": 0}, "must be a whole number >= 1"),
    ({"C-1-A-2": True}, "must be a whole number >= 1"),
    ({"C-1-A-2": 4}, "cannot cancel 4 unit(s), only 3 left"),
])
def test_cancel_lines_errors_leave_the_order_untouched(quantities, message):
    sim = make_sim()
    before = rich(sim)
    with pytest.raises(ValueError) as e:
        sim.cancel_lines("C-1-A", quantities)
    assert message in str(e.value)
    assert sim.get_order("C-1-A") == before


def test_cancel_lines_only_between_acceptance_and_shipment():
    sim = make_sim()
    add(sim, "W-1-A")
    with pytest.raises(ValueError, match="cannot be cancelled: it is WAITING_ACCEPTANCE"):
        sim.cancel_lines("W-1-A", {"W-1-A-1": 1})
    rich(sim)
    sim.pay("C-1-A")
    sim.ship("C-1-A")
    with pytest.raises(ValueError, match="cannot be cancelled: it is SHIPPED"):
        sim.cancel_lines("C-1-A", {"C-1-A-2": 1})
    with pytest.raises(KeyError):
        sim.cancel_lines("NOPE-A", {"x": 1})
    with pytest.raises(ValueError, match="reason_code"):
        sim.cancel_lines("W-1-A", {"W-1-A-1": 1}, reason_code="")


def test_cancel_lines_before_the_debit_and_partial_refusal():
    sim = make_sim()
    add(sim)
    decide(sim, "S-1-A", True, False)
    with pytest.raises(ValueError, match="it is REFUSED"):
        sim.cancel_lines("S-1-A", {"S-1-A-2": 1})
    order = sim.cancel_lines("S-1-A", {"S-1-A-1": 1})  # in WAITING_DEBIT: the only live line goes
    assert order["order_state"] == "CANCELED" and [line["order_line_state"] for line in order["order_lines"]] == ["CANCELED", "REFUSED"]
    sim.advance(timedelta(minutes=5))
    assert sim.get_order("S-1-A")["customer_debited_date"] is None  # no debit for a cancelled order


def test_units_in_shipments_are_not_cancellable_and_what_is_left_ships():
    sim = make_sim(multiple_shipments=True)
    rich(sim)
    sim.pay("C-1-A")
    result = sim.shipments.create({"shipments": [{"order_id": "C-1-A", "shipped": True, "shipment_lines": [
        {"order_line_id": "C-1-A-1", "quantity": 1}, {"order_line_id": "C-1-A-2", "quantity": 2}]}]})
    assert not result["shipment_errors"]
    with pytest.raises(ValueError, match="only 1 left to cancel"):
        sim.cancel_lines("C-1-A", {"C-1-A-2": 2})
    order = sim.cancel_lines("C-1-A", {"C-1-A-2": 1})
    assert order["order_lines"][1]["order_line_state"] == "SHIPPED"  # its live units all left in the parcel
    assert order["order_state"] == "SHIPPED"
