"""Every response the Mirakl sandbox serves validates against the official seller OpenAPI spec
(with the two adjustments documented in mirakl_spec.py). The spec declares no 4xx for these
operations; error bodies are checked against the classic MMP shape (NOTES §2.6a), after checking
that the spec indeed declares nothing else for that status.
"""

import copy
import json
import re
import socket
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.ratelimits import MIN_INTERVAL_SECONDS
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines_tests.mirakl_spec import SPEC_URI, declared_content, schema_ref, validate
from mirakl_pipelines_tests.reference import reference_file

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
KEY = "contract-key"
ROUTES = {
    "OR11": ("GET", "/api/orders"),
    "OR21": ("PUT", "/api/orders/{order_id}/accept"),
    "OR23": ("PUT", "/api/orders/{order_id}/tracking"),
    "OR24": ("PUT", "/api/orders/{order_id}/ship"),
    "SH21": ("GET", "/api/shipping/carriers"),
    "ST01": ("POST", "/api/shipments"),
    "ST11": ("GET", "/api/shipments"),
    "ST23": ("POST", "/api/shipments/tracking"),
    "ST24": ("PUT", "/api/shipments/ship"),
}
@pytest.fixture(scope="session")
def check():
    """check(op, response): the response's status is declared by the spec and its body matches the declared schema."""

    def _check(operation: str, response: httpx.Response) -> None:
        content = declared_content(operation, *ROUTES[operation], response)
        if content is None:
            return
        schema = content["application/json"]["schema"]
        assert response.headers["content-type"].startswith("application/json")
        validate({"$ref": f"{SPEC_URI}{schema['$ref']}"}, response.json())

    return _check


# ---- a marketplace with orders in many states ---------------------------------------------------


def _lines(*skus: str) -> list[dict]:
    prices = {"ALP-TRAIL-42": "89.90", "ALP-MERINO-M": "54.00", "LUM-HEAD-400": "39.95", "ALP-VEST-12": "119.00"}
    return [{"sku": sku, "title": f"Product {sku}", "quantity": i + 1, "unit_price": Decimal(prices[sku])} for i, sku in enumerate(skus)]


def _populate(sim: MarketplaceSim) -> None:
    add = sim.add_order
    add(build_order(order_id="C-WAIT-A", lines=_lines("ALP-TRAIL-42", "LUM-HEAD-400"), created=T0))
    add(build_order(order_id="C-B2B-A", lines=_lines("ALP-VEST-12"), created=T0 + timedelta(minutes=1),
                    organization={"name": "Club Alpin Lyon"}, billing_address={"company": "Club Alpin Lyon"}))
    add(build_order(order_id="C-PUDO-A", lines=_lines("ALP-MERINO-M"), created=T0 + timedelta(minutes=2),
                    shipping_pudo_id="MR-004512", channel="FR_WEB"))
    add(build_order(order_id="C-EXCL-A", lines=_lines("ALP-TRAIL-42"), created=T0 + timedelta(minutes=3), tax_mode="TAX_EXCLUDED"))
    add(build_order(order_id="C-POD-A", lines=_lines("LUM-HEAD-400"), created=T0 + timedelta(minutes=4),
                    payment_workflow="PAY_ON_DELIVERY"))
    add(build_order(order_id="C-SHIPPED-A", lines=_lines("ALP-TRAIL-42"), created=T0 - timedelta(days=1), state="SHIPPED"))
    add(build_order(order_id="C-OLD-A", lines=_lines("ALP-MERINO-M"), created=T0 - timedelta(days=4)))  # auto-refused
    add(build_order(order_id="C-CANCEL-A", lines=_lines("ALP-VEST-12"), created=T0 + timedelta(minutes=5)))
    sim.cancel("C-CANCEL-A")
    sim.accept("C-B2B-A", {"order_lines": [{"id": "C-B2B-A-1", "accepted": True}]})  # WAITING_DEBIT
    sim.accept("C-PUDO-A", {"order_lines": [{"id": "C-PUDO-A-1", "accepted": True}]})
    sim.pay("C-PUDO-A")  # SHIPPING
    sim.accept("C-POD-A", {"order_lines": [{"id": "C-POD-A-1", "accepted": True}]})  # SHIPPING, not debited


@pytest.fixture(params=[False, True], ids=["addresses-visible", "addresses-hidden"])
def served(request):
    settings = MarketplaceSettings(api_key=KEY, hide_addresses_before_acceptance=request.param, rate_limit_scale=1e-6)
    sim = MarketplaceSim(settings, clock=lambda: T0 + timedelta(minutes=10))
    _populate(sim)
    server = serve_in_thread(create_mirakl_app(sim))
    with httpx.Client(base_url=server.url, headers={"Authorization": KEY}, timeout=10) as client:
        yield sim, client
    server.stop()


# ---- the tests ----------------------------------------------------------------------------------


def test_or11_pages_validate_in_both_tax_modes(served, check):
    sim, client = served
    states = set()
    for tax_mode in (None, "TAX_INCLUDED", "TAX_EXCLUDED"):
        params = {"max": "100", **({"order_tax_mode": tax_mode} if tax_mode else {})}
        response = client.get("/api/orders", params=params)
        assert response.status_code == 200
        check("OR11", response)
        body = response.json()
        assert body["total_count"] == len(body["orders"]) == 8
        states |= {o["order_state"] for o in body["orders"]}
    assert states == {"WAITING_ACCEPTANCE", "WAITING_DEBIT", "SHIPPING", "SHIPPED", "REFUSED", "CANCELED"}
    hidden = sim.settings.hide_addresses_before_acceptance
    waiting = next(o for o in body["orders"] if o["order_id"] == "C-WAIT-A")
    assert (waiting["customer"]["shipping_address"] is None) == hidden
    b2b = next(o for o in body["orders"] if o["order_id"] == "C-B2B-A")
    assert b2b["customer"]["organization"]["address"]["country_iso_code"] == "FRA"


def test_or11_empty_and_filtered_pages_validate(served, check):
    _, client = served
    response = client.get("/api/orders", params={"order_ids": "NOPE-A"})
    check("OR11", response)
    assert response.json() == {"orders": [], "total_count": 0}


def test_writes_answer_204_without_body(served, check):
    sim, client = served
    response = client.put("/api/orders/C-WAIT-A/accept", json={"order_lines": [
        {"id": "C-WAIT-A-1", "accepted": True}, {"id": "C-WAIT-A-2", "accepted": False}]})
    assert response.status_code == 204
    check("OR21", response)
    response = client.put("/api/orders/C-PUDO-A/tracking", json={"carrier_code": "MONDIAL_RELAY", "tracking_number": "MR123"})
    assert response.status_code == 204
    check("OR23", response)
    response = client.put("/api/orders/C-PUDO-A/ship")
    assert response.status_code == 204
    check("OR24", response)
    check("OR11", client.get("/api/orders", params={"offset": "1", "max": "100"}))  # after the writes, a free page


def test_sh21_validates_and_is_sorted_by_label(served, check):
    _, client = served
    response = client.get("/api/shipping/carriers")
    check("SH21", response)
    labels = [c["label"] for c in response.json()["carriers"]]
    assert labels == sorted(labels, key=str.casefold) and len(labels) >= 7


def test_error_bodies_are_classic(served, check):
    sim, client = served
    cases = [
        ("OR21", client.put("/api/orders/C-WAIT-A/accept", json={"order_lines": [{"id": "C-WAIT-A-1", "accepted": True}]}), 400),
        ("OR21", client.put("/api/orders/NOPE-A/accept", json={"order_lines": []}), 404),
        ("OR24", client.put("/api/orders/C-WAIT-A/ship"), 400),
        ("OR23", client.put("/api/orders/C-WAIT-A/tracking", json={"carrier_name": "X"}), 400),
        ("OR11", client.get("/api/orders", params={"order_ids": ",".join(f"O{i}" for i in range(101))}), 400),
        ("OR11", client.get("/api/orders", headers={"Authorization": "wrong"}), 401),
        ("SH21", client.get("/api/shipping/carriers"), 200),
        ("SH21", client.get("/api/shipping/carriers"), 429),
        ("OR24", _raw_put_without_length(client, "/api/orders/C-PUDO-A/ship"), 411),
    ]
    for operation, response, status in cases:
        assert response.status_code == status, (operation, response.status_code, response.text)
        check(operation, response)


def test_the_adjusted_schema_still_rejects_wrong_orders(served):
    """The adjustments must not make validation vacuous: broken orders fail."""
    _, client = served
    good = client.get("/api/orders", params={"order_ids": "C-WAIT-A"}).json()
    schema = schema_ref("OR11_Response_200")
    breakages = [
        lambda o: o.update(order_state="SHIPPING_SOON"),
        lambda o: o.update(order_tax_mode="TAX_MAYBE"),
        lambda o: o.update(created_date="04/05/2026"),
        lambda o: o.update(price="183.12"),
        lambda o: o.update(commercial_id=None),
        lambda o: o.pop("order_lines"),
        lambda o: o["order_lines"][0].update(quantity=None),
        lambda o: o["customer"].pop("customer_id"),
    ]
    for breakage in breakages:
        broken = copy.deepcopy(good)
        breakage(broken["orders"][0])
        with pytest.raises(AssertionError):
            validate(schema, broken)


def test_frequency_limits_match_the_operations_index():
    """The intervals encoded in the sandbox are the spec's "Maximum usage" (async) of each operation."""
    with open(reference_file("mirakl/operations-index.json"), encoding="utf-8") as f:
        index = {op["operationId"]: op for op in json.load(f)["operations"]}
    words = {"once per minute": 60.0, "once per day": 86400.0}
    for operation, interval in MIN_INTERVAL_SECONDS.items():
        entry = index[operation]
        assert (entry["method"], entry["path"]) == ROUTES[operation], operation
        text = entry["call_frequency_max"].lower()
        documented = next((seconds for phrase, seconds in words.items() if phrase in text), None)
        if documented is None:
            assert re.search(r"\b(at each|on each|each time)\b", text), f"{operation}: unparsed frequency {text!r}"
        assert interval == documented, f"{operation}: sandbox {interval}, spec says {text!r}"
    assert set(MIN_INTERVAL_SECONDS) == set(ROUTES)


def _raw_put_without_length(client: httpx.Client, path: str) -> httpx.Response:
    """A PUT with neither Content-Length nor Transfer-Encoding, which httpx never sends: write it by hand."""
    url = client.base_url
    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        sock.sendall(f"PUT {path} HTTP/1.1\r\nHost: {url.host}\r\nAuthorization: {KEY}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(h.split(": ", 1)) for h in lines[1:]]
    return httpx.Response(status, headers=headers, content=body)
