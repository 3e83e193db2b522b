"""MiraklClient over real loopback HTTP against a scripted server (see conftest.py): wire format and resilience."""

import logging
import math
import time
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from mirakl_pipelines.mirakl.budget import InMemoryBudget
from mirakl_pipelines.mirakl.client import BUDGET_MARGIN_SECONDS, USER_AGENT, Carrier, MiraklClient
from mirakl_pipelines.mirakl.errors import (
    CallBudgetExceeded,
    MiraklAuthError,
    MiraklBadRequest,
    MiraklInvalidState,
    MiraklRateLimited,
    MiraklResponseError,
    MiraklServerError,
)

KEY = "secret-shop-key-123"
OR11_SLOT = (60 + BUDGET_MARGIN_SECONDS) * 0.001  # OR11's minute on the 1/1000 time scale, plus the margin


def _order(order_id: str, updated: str = "2026-03-01T10:00:00Z", **extra) -> dict:
    return {
        "order_id": order_id,
        "order_state": "SHIPPING",
        "last_updated_date": updated,
        "currency_iso_code": "EUR",
        "order_lines": [{"order_line_id": f"{order_id}-1", "offer_sku": "ALP-TRAIL-42", "quantity": 1}],
        **extra,
    }


def _paged(orders: list[dict], clamp: int = 100):
    """Serve OR11 like Mirakl: offset/max paging (max clamped) with total_count."""

    def handler(request):
        selected = orders
        if "order_ids" in request.query:
            wanted = set(request.query["order_ids"].split(","))
            selected = [o for o in orders if o["order_id"] in wanted]
        offset = int(request.query.get("offset", 0))
        size = min(int(request.query.get("max", 10)), clamp)
        return 200, {"orders": selected[offset:offset + size], "total_count": len(selected)}, {}

    return handler


@pytest.fixture
def make_client(stub, recording_sleep):
    clients = []

    def make(**kwargs) -> MiraklClient:
        options = dict(rate_limit_scale=0.001, sleep=recording_sleep, timeout=5.0, marketplace="test_mp")
        options.update(kwargs)
        client = MiraklClient(stub.url, KEY, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


class CountingBudget(InMemoryBudget):
    def __init__(self):
        super().__init__()
        self.reservations: list[tuple[str, float]] = []

    def reserve(self, key, min_interval, max_wait=math.inf):
        self.reservations.append((key, min_interval))
        return super().reserve(key, min_interval, max_wait)


def test_headers_and_shop_id_on_every_call(stub, make_client):
    stub.handler = lambda r: ((200, {"orders": [], "total_count": 0}, {}) if r.method == "GET" else (204, None, {}))
    client = make_client(shop_id=9179)
    client.list_orders(states=["SHIPPING"])
    client.accept_order("X-1-A", {"X-1-A-1": True})
    client.ship_order("X-1-A")
    assert len(stub.requests) == 3
    for request in stub.requests:
        assert request.headers["authorization"] == KEY  # raw key, no "Bearer"
        assert request.headers["accept"] == "application/json"
        assert request.headers["user-agent"] == USER_AGENT and USER_AGENT.startswith("mirakl-pipelines/")
        assert request.query["shop_id"] == "9179"
    assert KEY not in repr(client)


def test_listing_query_parameters(stub, make_client):
    stub.handler = _paged([])
    make_client().list_orders(
        updated_from=datetime(2026, 3, 1, 10, 0, 0, 460000, tzinfo=timezone.utc),
        updated_to=datetime(2026, 3, 1, 12, 0),
        states=["SHIPPING", "WAITING_ACCEPTANCE"],
        tax_mode="TAX_INCLUDED",
    )
    (request,) = stub.requests
    assert request.path == "/api/orders"
    assert request.query["start_update_date"] == "2026-03-01T10:00:00.460Z"
    assert request.query["end_update_date"] == "2026-03-01T12:00:00.000Z"
    assert request.query["order_state_codes"] == "SHIPPING,WAITING_ACCEPTANCE"
    assert request.query["order_tax_mode"] == "TAX_INCLUDED"
    assert (request.query["max"], request.query["offset"]) == ("100", "0")
    assert "shop_id" not in request.query


def test_pagination_follows_total_count_even_when_the_server_clamps_max(stub, make_client):
    orders = [_order(f"O-{i:03d}-A") for i in range(130)]
    stub.handler = _paged(orders, clamp=50)
    budget = CountingBudget()
    result = make_client(budget=budget).list_orders()
    assert [o.order_id for o in result] == [o["order_id"] for o in orders]
    assert [r.query["offset"] for r in stub.requests] == ["0", "50", "100"]
    assert budget.reservations == [("test_mp:OR11", pytest.approx(OR11_SLOT))]  # pages are one call


def test_money_is_decimal_from_the_json_text(stub, make_client):
    # Written as Mirakl writes it (Jackson, spaces around colons); 89.90 and 13.485 must not go through float.
    body = """{"orders" : [ {"order_id" : "M-1-A", "price" : 89.90, "shipping_price" : 5.95, "total_price" : 95.85,
        "order_lines" : [ {"order_line_id" : "M-1-A-1", "quantity" : 1, "price_unit" : 89.90,
                           "commission_fee" : 13.485} ] } ], "total_count" : 1}"""
    stub.handler = lambda r: (200, body, {})
    (result,) = make_client().list_orders()
    assert isinstance(result.total_price, Decimal) and str(result.total_price) == "95.85"
    assert str(result.price) == "89.90"
    assert str(result.order_lines[0].commission_fee) == "13.485"
    assert result.price + result.shipping_price == Decimal("95.85")


def test_malformed_order_is_rejected_without_losing_the_page(stub, make_client):
    good = _order("G-1-A", order_state="BRAND_NEW_STATE", unknown_field={"kept": True})
    no_lines_id = _order("BAD-1-A")
    no_lines_id["order_lines"] = [{"quantity": 1}]  # order_line_id missing
    stub.handler = lambda r: (200, {"orders": [good, no_lines_id, {"no_id": 1}, _order("G-2-A")], "total_count": 4}, {})
    client = make_client()
    result = client.list_orders()
    assert [o.order_id for o in result] == ["G-1-A", "G-2-A"]
    assert result[0].order_state == "BRAND_NEW_STATE"
    assert result[0].model_extra["unknown_field"] == {"kept": True}
    assert [ref for ref, _ in client.rejected] == ["BAD-1-A", 2]
    assert "order_line_id" in client.rejected[0][1]
    assert "order_id" in client.rejected[1][1]
    stub.handler = _paged([_order("G-3-A")])
    client.list_orders()
    assert client.rejected == []  # reset per listing


def test_duplicates_keep_the_latest_update(stub, make_client):
    pages = {
        "0": [_order("D-1-A", "2026-03-01T10:00:00Z", order_state="WAITING_ACCEPTANCE"), _order("D-2-A")],
        "2": [_order("D-1-A", "2026-03-01T11:00:00Z", order_state="SHIPPING"),
              _order("D-2-A", "2026-02-28T10:00:00Z", order_state="STALE")],
    }
    stub.handler = lambda r: (200, {"orders": pages.get(r.query["offset"], []), "total_count": 4}, {})
    result = make_client().list_orders(page_size=2)
    assert [(o.order_id, o.order_state) for o in result] == [("D-1-A", "SHIPPING"), ("D-2-A", "SHIPPING")]


def test_order_ids_are_batched_by_100_each_batch_budgeted(stub, make_client):
    orders = [_order(f"B-{i:03d}-A") for i in range(250)]
    stub.handler = _paged(orders)
    budget = CountingBudget()
    ids = [o["order_id"] for o in orders] + ["B-000-A"]  # a repeated id is asked once
    result = make_client(budget=budget).list_orders(order_ids=ids)
    assert len(result) == 250
    assert [len(r.query["order_ids"].split(",")) for r in stub.requests] == [100, 100, 50]
    assert budget.reservations == [("test_mp:OR11", pytest.approx(OR11_SLOT))] * 3
    assert make_client().list_orders(order_ids=[]) == []


def test_429_storm_is_recovered_honouring_retry_after(stub, make_client, recording_sleep):
    stub.handler = _paged([_order("R-1-A")])
    stub.faults.update(burst_429=3, retry_after_seconds=2)
    client = make_client(rate_limit_scale=0.01)
    started = time.monotonic()
    assert [o.order_id for o in client.list_orders()] == ["R-1-A"]
    assert client.calls["OR11"] == 4
    assert recording_sleep.waits == [pytest.approx(0.02)] * 3  # Retry-After 2 s on the 1/100 time scale
    assert time.monotonic() - started >= 0.06


def test_429_longer_than_max_wait_fails_at_once(stub, make_client):
    stub.handler = _paged([])
    stub.faults.update(burst_429=5, retry_after_seconds=3600)
    client = make_client(rate_limit_scale=1.0, max_wait=10)
    with pytest.raises(MiraklRateLimited) as caught:
        client.list_orders()
    assert caught.value.retry_after == 3600 and client.calls["OR11"] == 1


def test_persistent_429_gives_up_after_bounded_retries(stub, make_client):
    stub.handler = _paged([])
    stub.faults.update(burst_429=100, retry_after_seconds=1)
    client = make_client(max_retries=3)
    with pytest.raises(MiraklRateLimited):
        client.list_orders()
    assert client.calls["OR11"] == 4


def test_5xx_burst_is_recovered_with_backoff(stub, make_client, recording_sleep):
    failures = iter([503, 502, 500])

    def handler(request):
        status = next(failures, None)
        return (status, {"status": status, "message": "oops"}, {}) if status else (200, {"carriers": []}, {})

    stub.handler = handler
    client = make_client()
    assert client.list_carriers() == []
    assert client.calls["SH21"] == 4
    assert len(recording_sleep.waits) == 3
    assert recording_sleep.waits[2] > recording_sleep.waits[0] / 2  # exponential, jittered
    assert all(w <= client.backoff_max for w in recording_sleep.waits)


def test_persistent_5xx_raises_server_error_after_bounded_retries(stub, make_client):
    stub.handler = lambda r: (503, {"status": 503, "message": "Service Unavailable"}, {})
    client = make_client(max_retries=2)
    started = time.monotonic()
    with pytest.raises(MiraklServerError) as caught:
        client.accept_order("X-1-A", {"X-1-A-1": True})
    assert caught.value.status == 503 and caught.value.operation == "OR21"
    assert client.calls["OR21"] == 3 and len(stub.requests) == 3
    assert time.monotonic() - started < 1


def test_4xx_is_never_retried(stub, make_client):
    stub.handler = lambda r: (400, {"status": 400, "message": "Error with field order_lines."}, {})
    client = make_client()
    with pytest.raises(MiraklBadRequest) as caught:
        client.accept_order("X-1-A", {"X-1-A-1": True})
    assert type(caught.value) is MiraklBadRequest and client.calls["OR21"] == 1


def test_401_is_an_auth_error_and_the_key_is_never_logged(stub, make_client, caplog):
    stub.handler = lambda r: (401, {"status": 401, "message": "Unauthorized"}, {})
    client = make_client()
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(MiraklAuthError):
            client.list_orders()
        stub.handler = lambda r: (503, "", {})
        with pytest.raises(MiraklServerError) as caught:
            client.list_carriers()
    assert client.calls["OR11"] == 1
    assert KEY not in caplog.text and KEY not in str(caught.value)


def test_timeouts_are_retried_then_raised(stub, make_client):
    stub.handler = _paged([])
    stub.faults.update(latency_ms=300)
    client = make_client(timeout=0.05, max_retries=1)
    with pytest.raises(MiraklServerError) as caught:
        client.list_orders()
    assert caught.value.status is None and "Timeout" in caught.value.message
    assert client.calls["OR11"] == 2


def test_dropped_connections_are_retried(stub, make_client):
    stub.handler = _paged([_order("C-1-A")])
    stub.faults.update(drop_rate=1.0)
    client = make_client(max_retries=2)
    with pytest.raises(MiraklServerError) as caught:
        client.list_orders()
    assert caught.value.status is None and client.calls["OR11"] == 3
    stub.faults.update(drop_rate=0.5, seed=7)
    assert [o.order_id for o in make_client(max_retries=10).list_orders()] == ["C-1-A"]


def test_accept_sends_every_line_in_one_call(stub, make_client):
    stub.handler = lambda r: (204, None, {})
    make_client().accept_order("A-1-A", {"A-1-A-1": True, "A-1-A-2": False})
    (request,) = stub.requests
    assert (request.method, request.path) == ("PUT", "/api/orders/A-1-A/accept")
    assert request.json() == {"order_lines": [{"accepted": True, "id": "A-1-A-1"}, {"accepted": False, "id": "A-1-A-2"}]}
    with pytest.raises(ValueError, match="A-1-A"):
        make_client().accept_order("A-1-A", {})


def test_accept_on_a_decided_order_is_invalid_state(stub, make_client):
    stub.handler = lambda r: (400, {"errors": [{"code": "ORDER_INVALID_STATE", "message": "not waiting"}]}, {})
    with pytest.raises(MiraklInvalidState):
        make_client().accept_order("A-1-A", {"A-1-A-1": True})


def test_tracking_sends_only_given_fields(stub, make_client):
    stub.handler = lambda r: (204, None, {})
    make_client().update_tracking("T-1-A", carrier_code="UPS", tracking_number="1Z999")
    (request,) = stub.requests
    assert (request.method, request.path) == ("PUT", "/api/orders/T-1-A/tracking")
    assert request.json() == {"carrier_code": "UPS", "tracking_number": "1Z999"}
    with pytest.raises(ValueError, match="T-1-A"):
        make_client().update_tracking("T-1-A", tracking_number="1Z999")


def test_ship_sends_an_explicit_empty_body(stub, make_client):
    # A server that insists on Content-Length for PUT, as some Mirakl front-ends do (NOTES §2.5).
    stub.handler = lambda r: (204, None, {}) if r.headers.get("content-length") == "0" else (411, "Length Required", {})
    assert make_client().ship_order("S-1-A") is True
    (request,) = stub.requests
    assert (request.method, request.path, request.body) == ("PUT", "/api/orders/S-1-A/ship", b"")


@pytest.mark.parametrize("state", ["SHIPPED", "RECEIVED", "CLOSED"])
def test_ship_on_an_already_shipped_order_returns_false(stub, make_client, state):
    stub.handler = lambda r: (400, {"status": 400, "message": f"Order S-1-A. Current status is {state}"}, {})
    assert make_client().ship_order("S-1-A") is False


def test_ship_in_a_state_before_shipping_raises(stub, make_client):
    stub.handler = lambda r: (400, {"status": 400, "message": "Current status is WAITING_ACCEPTANCE"}, {})
    with pytest.raises(MiraklInvalidState) as caught:
        make_client().ship_order("S-1-A")
    assert caught.value.current_status == "WAITING_ACCEPTANCE"


def test_carriers_and_their_daily_budget(stub, make_client):
    carriers = [
        {"code": "UPS", "label": "UPS", "standard_code": "UPS", "tracking_url": "https://ups.example/{trackingId}"},
        {"code": "COLISSIMO", "label": "Colissimo", "new_field": 1},
    ]
    stub.handler = lambda r: (200, {"carriers": carriers}, {})
    client = make_client(rate_limit_scale=1.0, max_wait=5)
    result = client.list_carriers()
    assert result[0] == Carrier(code="UPS", label="UPS", standard_code="UPS", tracking_url="https://ups.example/{trackingId}")
    assert result[1].standard_code is None and result[1].model_extra == {"new_field": 1}
    with pytest.raises(CallBudgetExceeded) as caught:
        client.list_carriers()
    assert caught.value.wait > 86000 and len(stub.requests) == 1  # refused before sending


def test_second_listing_within_the_interval_waits_for_its_slot(stub, make_client, recording_sleep):
    stub.handler = _paged([])
    client = make_client(rate_limit_scale=0.002)  # OR11: 60 s -> 0.122 s with the margin
    started = time.monotonic()
    client.list_orders()
    client.list_orders()
    assert time.monotonic() - started >= 0.12
    assert len(recording_sleep.waits) == 1 and 0.1 < recording_sleep.waits[0] <= 0.123


def test_shared_budget_paces_two_clients_of_one_marketplace(stub, make_client):
    stub.handler = _paged([])
    budget = InMemoryBudget()
    make_client(budget=budget, rate_limit_scale=1.0, max_wait=1).list_orders()
    with pytest.raises(CallBudgetExceeded):
        make_client(budget=budget, rate_limit_scale=1.0, max_wait=1).list_orders()
    make_client(budget=budget, rate_limit_scale=1.0, max_wait=1, marketplace="other").list_orders()
    partner = make_client(budget=InMemoryBudget(), rate_limit_scale=0.001, persona="external_partner", max_wait=0.5)
    partner.list_orders()
    with pytest.raises(CallBudgetExceeded) as caught:  # 15 min -> 0.945 s on this scale, more than max_wait
        partner.list_orders()
    assert caught.value.wait == pytest.approx((900 + BUDGET_MARGIN_SECONDS) * 0.001, abs=0.05)


def test_non_json_success_is_a_response_error(stub, make_client):
    stub.handler = lambda r: (200, "<html>maintenance</html>", {})
    with pytest.raises(MiraklResponseError, match="OR11"):
        make_client().list_orders()
    stub.handler = lambda r: (200, {"unexpected": []}, {})
    with pytest.raises(MiraklResponseError, match="orders"):
        make_client().list_orders()
