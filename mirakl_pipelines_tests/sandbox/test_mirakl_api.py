"""The Mirakl sandbox over real HTTP on 127.0.0.1: auth, quirks, limits, control routes, wire format."""

import json
import re
import socket
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import serve_in_thread

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
KEY = "api-test-key"
SCALE = 0.002  # OR11's minute becomes 120 ms


@pytest.fixture
def sandbox():
    sim = MarketplaceSim(MarketplaceSettings(api_key=KEY, shop_id=2042, rate_limit_scale=SCALE), clock=lambda: T0)
    server = serve_in_thread(create_mirakl_app(sim))
    with httpx.Client(base_url=server.url, headers={"Authorization": KEY}, timeout=10) as client:
        yield sim, client
    server.stop()


def next_listing() -> None:
    """Let the scaled OR11 minute pass before starting a new listing."""
    time.sleep(60 * SCALE + 0.01)


def decimal_json(response: httpx.Response):
    return json.loads(response.content, parse_float=Decimal)


def add(sim: MarketplaceSim, order_id: str, **kwargs) -> None:
    lines = [{"sku": "ALP-TRAIL-42", "quantity": 3, "unit_price": Decimal("89.90")}]
    sim.add_order(build_order(order_id=order_id, lines=lines, created=sim.now(), **kwargs))


def test_auth_is_the_raw_key_and_shop_id_is_checked(sandbox):
    _, client = sandbox
    assert client.get("/api/shipping/carriers", params={"shop_id": "2042"}).status_code == 200
    for headers in ({"Authorization": f"Bearer {KEY}"}, {"Authorization": "other"}):
        response = client.get("/api/orders", headers=headers)
        assert response.status_code == 401 and response.json()["status"] == 401
    response = httpx.get(f"{client.base_url}/api/orders")
    assert response.status_code == 401
    assert client.get("/api/orders", params={"shop_id": "7"}).status_code == 403
    assert client.get("/api/orders", params={"shop_id": "abc"}).status_code == 400
    assert client.get("/api/nothing-here").json() == {"status": 404, "message": "Not Found: GET /api/nothing-here"}


def test_accept_pay_ship_over_http(sandbox):
    sim, client = sandbox
    add(sim, "H-1-A")
    response = client.put("/api/orders/H-1-A/accept", json={"order_lines": [{"id": "H-1-A-1", "accepted": True}]})
    assert response.status_code == 204 and response.content == b""
    again = client.put("/api/orders/H-1-A/accept", json={"order_lines": [{"id": "H-1-A-1", "accepted": True}]})
    assert again.status_code == 400
    assert again.json()["code"] == "ORDER_INVALID_STATE" and again.json()["message"].startswith("ORDER_INVALID_STATE: ")
    early = client.put("/api/orders/H-1-A/ship")
    assert early.status_code == 400 and "Current status is WAITING_DEBIT" in early.json()["message"]
    assert client.post("/_sandbox/clock", json={"advance_seconds": 31}).json()["now"] == "2026-05-04T08:00:31.000Z"
    assert client.put("/api/orders/H-1-A/tracking", json={"carrier_code": "DPD_FR", "tracking_number": "250"}).status_code == 204
    assert client.put("/api/orders/H-1-A/ship").status_code == 204
    order = client.get("/_sandbox/orders/H-1-A").json()
    assert order["order_state"] == "SHIPPED" and order["shipped_date"] == "2026-05-04T08:00:31.000Z"
    assert order["shipping_tracking_url"] == "https://trace.dpd.fr/fr/trace/250"
    assert client.put("/api/orders/NOPE-A/ship").status_code == 404


def test_put_without_content_length_is_411(sandbox):
    sim, client = sandbox
    add(sim, "Q-1-A", payment_workflow="PAY_ON_DELIVERY", state="SHIPPING")
    url = client.base_url
    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        sock.sendall(f"PUT /api/orders/Q-1-A/ship HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 411 ")
    assert b'"status":411' in reply
    assert sim.get_order("Q-1-A")["order_state"] == "SHIPPING"
    # httpx sends Content-Length: 0 on a body-less PUT, which is the documented workaround
    assert client.put("/api/orders/Q-1-A/ship").status_code == 204


def test_or11_is_limited_to_one_listing_per_scaled_minute_with_retry_after(sandbox):
    sim, client = sandbox
    for i in range(3):
        add(sim, f"R-{i}-A")
    assert client.get("/api/orders", params={"max": "2"}).status_code == 200
    assert client.get("/api/orders", params={"max": "2", "offset": "2"}).status_code == 200  # same listing: free
    limited = client.get("/api/orders", params={"max": "2"})
    assert limited.status_code == 429
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert limited.json()["status"] == 429
    time.sleep(retry_after * SCALE + 0.01)
    assert client.get("/api/orders").status_code == 200
    stats = client.get("/_sandbox/stats").json()
    assert stats["calls"]["OR11"] == 3 and stats["rejected_429"] == {"OR11": 1}


def test_or11_pagination_and_id_limit_over_http(sandbox):
    sim, client = sandbox
    for i in range(25):
        sim.add_order(build_order(order_id=f"G-{i:02d}-A", lines=[{"sku": "A", "quantity": 1, "unit_price": 1}],
                                  created=T0 + timedelta(seconds=i)))
    body = client.get("/api/orders").json()
    assert body["total_count"] == 25 and len(body["orders"]) == 10
    next_listing()
    too_many = client.get("/api/orders", params={"order_ids": ",".join(f"G-{i}" for i in range(101))})
    assert too_many.status_code == 400
    assert "The limit of 100 is exceeded for the parameter : order_ids" in too_many.json()["message"]
    next_listing()
    exactly_100 = client.get("/api/orders", params={"order_ids": ",".join(f"G-{i:02d}-A" for i in range(100)), "max": "100"})
    assert exactly_100.status_code == 200 and exactly_100.json()["total_count"] == 25


def test_wire_format_money_numbers_and_millisecond_utc_dates(sandbox):
    sim, client = sandbox
    add(sim, "W-1-A", tax_mode="TAX_INCLUDED")
    raw = client.get("/api/orders").text
    assert '"price":269.70' in raw and '"price_unit":89.90' in raw  # numbers with their cents, not strings
    next_listing()
    order = decimal_json(client.get("/api/orders", params={"order_ids": "W-1-A", "order_tax_mode": "TAX_EXCLUDED"}))["orders"][0]
    line = order["order_lines"][0]
    assert line["price"] + line["taxes"][0]["amount"] == Decimal("269.70")
    assert order["total_price"] == order["price"] + order["shipping_price"]
    for value in (order["created_date"], order["last_updated_date"], order["shipping_deadline"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value), value


def test_control_routes_create_pay_cancel_and_clock(sandbox):
    sim, client = sandbox
    created = client.post("/_sandbox/orders", json={
        "lines": [{"sku": "ALP-VEST-12", "quantity": 1, "unit_price": "119.00"}],
        "shipping_price": "0", "never_pay": True,
    })
    assert created.status_code == 201
    order_id = created.json()["order_id"]
    assert re.fullmatch(r"SANDBOX_FR-\d{6}-A", order_id)
    assert decimal_json(created)["total_price"] == Decimal("119.00")
    client.put(f"/api/orders/{order_id}/accept", json={"order_lines": [{"id": f"{order_id}-1", "accepted": True}]})
    client.post("/_sandbox/clock", json={"advance_seconds": 3600})
    assert client.get(f"/_sandbox/orders/{order_id}").json()["order_state"] == "WAITING_DEBIT"
    assert client.post(f"/_sandbox/orders/{order_id}/pay").json()["order_state"] == "SHIPPING"
    assert client.post(f"/_sandbox/orders/{order_id}/cancel").json()["order_state"] == "CANCELED"
    refused = client.post(f"/_sandbox/orders/{order_id}/pay")
    assert refused.status_code == 409 and "cannot be paid" in refused.json()["message"]
    assert client.post("/_sandbox/orders/NOPE-A/cancel").status_code == 404
    bad = client.post("/_sandbox/orders", json={"lines": [{"sku": "X", "quantity": 0, "unit_price": "1"}]})
    assert bad.status_code == 400 and "line 1 (X): quantity" in bad.json()["message"]
    assert client.post("/_sandbox/orders", json={"lines": [], "colour": "red"}).status_code == 400
    assert client.post("/_sandbox/clock", json={"advance_seconds": -5}).status_code == 400
    assert client.get("/_sandbox/stats").json()["orders_by_state"] == {"CANCELED": 1}


def test_faults_hit_the_api_but_not_the_control_routes(sandbox):
    sim, client = sandbox
    # Set directly: POST /_sandbox/faults currently answers 500 (Faults.as_dict deep-copies its lock; reported).
    sim.faults.update(burst_429=2, retry_after_seconds=3)
    assert client.get("/_sandbox/stats").status_code == 200  # control routes are never fault-injected
    first = client.get("/api/shipping/carriers")
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    assert client.get("/api/shipping/carriers").status_code == 429
    assert client.get("/api/shipping/carriers").status_code == 200
    assert sim.calls["SH21"] == 1  # injected faults never reach the operation
