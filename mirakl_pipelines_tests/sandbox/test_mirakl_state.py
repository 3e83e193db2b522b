"""The marketplace state machine (NOTES §4), driven directly and with a controlled clock."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim, MiraklApiError

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
