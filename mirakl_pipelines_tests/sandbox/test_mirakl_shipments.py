"""The sandbox's multiple-shipments API (ST01, ST11, ST23, ST24) over real HTTP: parcels, quantities,
states, tracking, seek pagination and the feature switch. Every response is checked against the
official spec by test_mirakl_contract's `check` (declared status and schema, or the classic error body).
"""

import base64
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines_tests.sandbox.test_mirakl_contract import check  # noqa: F401  (the spec check fixture)

KEY = "shipments-key"
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)


def _order(sim: MarketplaceSim, order_id: str, *quantities: int, state: str = "SHIPPING") -> None:
    """An order with one line per quantity (SKU-1, SKU-2…)."""
    sim.add_order(build_order(order_id=order_id, state=state, created=T0, lines=[
        {"sku": f"SKU-{i}", "quantity": q, "unit_price": Decimal("20.00")} for i, q in enumerate(quantities, start=1)]))


@pytest.fixture
def sim():
    settings = MarketplaceSettings(api_key=KEY, rate_limit_scale=1e-6, multiple_shipments=True)
    sim = MarketplaceSim(settings, clock=lambda: T0 + timedelta(minutes=10))
    _order(sim, "M-1-A", 2, 1)
    _order(sim, "M-2-A", 3)
    _order(sim, "M-3-A", 3)
    _order(sim, "M-WAIT-A", 1, state="WAITING_ACCEPTANCE")
    _order(sim, "M-DONE-A", 1, state="SHIPPED")
    return sim


@pytest.fixture
def client(sim):
    server = serve_in_thread(create_mirakl_app(sim))
    with httpx.Client(base_url=server.url, headers={"Authorization": KEY}, timeout=10) as http:
        yield http
    server.stop()


def _create(client, check, *shipments: dict) -> dict:
    response = client.post("/api/shipments", json={"shipments": list(shipments)})
    assert response.status_code == 201, response.text
    check("ST01", response)
    return response.json()


def _parcel(order_id: str, *lines: tuple[int, int], tracking: dict | None = None, shipped: bool = False) -> dict:
    """A shipment of (line index, quantity) pairs of `order_id`."""
    parcel = {"order_id": order_id, "shipped": shipped,
              "shipment_lines": [{"order_line_id": f"{order_id}-{index}", "quantity": q} for index, q in lines]}
    if tracking:
        parcel["tracking"] = tracking
    return parcel


def _order_view(client, order_id: str) -> dict:
    return client.get(f"/_sandbox/orders/{order_id}").json()


# ---- parcels and the order's state ---------------------------------------------------------------


def test_two_parcels_covering_every_unit_ship_the_order(sim, client, check):
    first = _create(client, check, _parcel("M-1-A", (1, 1), tracking={"carrier_code": "UPS", "tracking_number": "1Z1"},
                                           shipped=True))
    assert first["shipment_errors"] == []
    [created] = first["shipment_success"]
    assert created["status"] == "SHIPPED" and created["shipped_date"] == "2026-05-04T08:10:00.000Z"
    assert created["tracking"]["tracking_url"].endswith("1Z1") and created["tracking"]["carrier_name"] == "UPS"
    order = _order_view(client, "M-1-A")
    assert order["order_state"] == "SHIPPING"  # one unit of line 1 and all of line 2 are still to ship
    assert [line["order_line_state"] for line in order["order_lines"]] == ["SHIPPING", "SHIPPING"]
    assert order["shipping_tracking"] == "1Z1"

    sim.advance(timedelta(minutes=5))
    second = _create(client, check, _parcel("M-1-A", (1, 1), (2, 1), tracking={"carrier_code": "COLISSIMO_FR", "tracking_number": "6A2"}))
    shipment_id = second["shipment_success"][0]["id"]
    assert _order_view(client, "M-1-A")["order_state"] == "SHIPPING"  # created, not shipped yet

    sim.advance(timedelta(minutes=5))
    response = client.put("/api/shipments/ship", json={"shipments": [{"id": shipment_id}]})
    check("ST24", response)
    assert response.json() == {"shipment_errors": [], "shipment_success": [{"id": shipment_id}]}
    shipped_at = "2026-05-04T08:20:00.000Z"
    listed = client.get("/api/orders", params={"order_ids": "M-1-A"})
    check("OR11", listed)
    order = listed.json()["orders"][0]
    assert order["order_state"] == "SHIPPED" and order["last_updated_date"] == shipped_at
    assert {(line["order_line_state"], line["shipped_date"]) for line in order["order_lines"]} == {("SHIPPED", shipped_at)}
    assert (order["shipping_carrier_code"], order["shipping_company"], order["shipping_tracking"]) == ("COLISSIMO_FR", "Colissimo", "6A2")
    assert order["shipping_tracking_url"].endswith("code=6A2")
    assert order["can_shop_ship"] is False


def test_a_fully_shipped_line_ships_while_the_order_waits_for_the_other(client, check):
    _create(client, check, _parcel("M-1-A", (2, 1), shipped=True))
    order = _order_view(client, "M-1-A")
    assert order["order_state"] == "SHIPPING"
    assert [line["order_line_state"] for line in order["order_lines"]] == ["SHIPPING", "SHIPPED"]
    assert order["order_lines"][1]["shipped_date"] == "2026-05-04T08:10:00.000Z"


def test_quantities_beyond_what_is_left_are_refused_per_shipment(client, check):
    body = _create(
        client, check,
        _parcel("M-2-A", (1, 2)),
        _parcel("M-2-A", (1, 2)),  # only one unit is left once the first parcel has booked two
        _parcel("M-2-A", (1, 0)),
        _parcel("M-1-A", (1, 1), (3, 1)),  # M-1-A has no line 3
        _parcel("M-1-A", (1, 1)),
    )
    assert [s["order_id"] for s in body["shipment_success"]] == ["M-2-A", "M-1-A"]
    messages = [(e["order_id"], e["message"]) for e in body["shipment_errors"]]
    assert messages[0] == ("M-2-A", "Shipment quantity is invalid. Order line 'M-2-A-1': 2 to ship, 1 left to ship.")
    assert messages[1][1].startswith("Shipment quantity is invalid.")
    assert messages[2] == ("M-1-A", "The order line 'M-1-A-3' does not belong to order 'M-1-A'.")
    assert len(_order_view(client, "M-1-A")["shipments"]) == 1  # the refused shipment left nothing behind


def test_orders_not_in_shipping_are_refused_with_the_spec_message(client, check):
    body = _create(client, check, _parcel("M-DONE-A", (1, 1)), _parcel("M-WAIT-A", (1, 1)), _parcel("NOPE-A", (1, 1)))
    assert body["shipment_success"] == []
    assert body["shipment_errors"] == [
        {"message": "The order status must be 'SHIPPING' but it is 'SHIPPED'.", "order_id": "M-DONE-A"},
        {"message": "The order status must be 'SHIPPING' but it is 'WAITING_ACCEPTANCE'.", "order_id": "M-WAIT-A"},
        {"message": "No order with id 'NOPE-A'.", "order_id": "NOPE-A"},
    ]


def test_cancelled_units_cannot_ship_and_a_cancellation_can_complete_the_order(sim, client, check):
    sim.cancel_lines("M-3-A", {"M-3-A-1": 1})
    refused = _create(client, check, _parcel("M-3-A", (1, 3)))
    assert refused["shipment_errors"][0]["message"].endswith("'M-3-A-1': 3 to ship, 2 left to ship.")
    _create(client, check, _parcel("M-3-A", (1, 1), shipped=True))
    assert _order_view(client, "M-3-A")["order_state"] == "SHIPPING"  # 3 ordered, 1 cancelled, 1 shipped, 1 to go
    sim.cancel_lines("M-3-A", {"M-3-A-1": 1})  # the last unit is cancelled: every live unit has shipped
    listed = client.get("/api/orders", params={"order_ids": "M-3-A"})
    check("OR11", listed)
    order = listed.json()["orders"][0]
    assert order["order_state"] == "SHIPPED" and order["order_lines"][0]["order_line_state"] == "SHIPPED"


def test_lines_by_deprecated_offer_sku_and_echoed_fields(client, check):
    body = _create(client, check, {
        "order_id": "M-1-A", "invoice_reference": "INV-2026_05",
        "shipment_lines": [{"offer_sku": "SKU-1", "quantity": 2, "package_reference": "PKG-1"}],
        "shipping_from": {"warehouse": {"code": "LYON"}},
        "shipment_additional_information": [{"code": "DELIVERY_BILL_DATE", "type": "DATE", "value": "2026-05-04"}],
        "tracking": {"carrier_name": "Coursier Lyon", "tracking_url": "https://coursier.example/t/77", "tracking_number": "77"},
    })
    [shipment] = body["shipment_success"]
    assert shipment["shipment_lines"] == [{"offer_sku": "SKU-1", "order_line_id": "M-1-A-1", "package_reference": "PKG-1", "quantity": 2}]
    assert shipment["shipping_from"]["warehouse"] == {"code": "LYON"} and shipment["invoice_reference"] == "INV-2026_05"
    assert shipment["tracking"]["validity_status"] == "UNCOVERED"  # an unregistered carrier
    assert _order_view(client, "M-1-A")["shipping_company"] == "Coursier Lyon"


def test_carrier_rules_are_or23s(sim, client, check):
    body = _create(client, check, _parcel("M-1-A", (1, 1), tracking={"carrier_code": "UPS"}))  # UPS needs a number
    assert body["shipment_errors"] == [{"message": "tracking_number is mandatory for carrier UPS on order M-1-A", "order_id": "M-1-A"}]
    sim.apply_settings(accepts_unregistered_carriers=False)
    body = _create(client, check, _parcel("M-1-A", (1, 1), tracking={"carrier_name": "Coursier Lyon"}))
    assert "only accepts registered carriers" in body["shipment_errors"][0]["message"]


# ---- tracking and shipping by id -----------------------------------------------------------------


def test_tracking_update_by_id(sim, client, check):
    shipment_id = _create(client, check, _parcel("M-2-A", (1, 3)))["shipment_success"][0]["id"]
    sim.advance(timedelta(minutes=1))
    response = client.post("/api/shipments/tracking", json={"shipments": [
        {"id": shipment_id, "tracking": {"carrier_code": "DPD_FR", "tracking_number": "DPD-9"}},
        {"id": "no-such-shipment", "tracking": {"carrier_code": "DPD_FR", "tracking_number": "DPD-9"}},
    ]})
    check("ST23", response)
    assert response.json() == {
        "shipment_errors": [{"id": "no-such-shipment", "message": "No shipment with id 'no-such-shipment'."}],
        "shipment_success": [{"id": shipment_id}],
    }
    listed = client.get("/api/shipments", params={"order_id": "M-2-A"})
    check("ST11", listed)
    [shipment] = listed.json()["data"]
    assert shipment["tracking"]["tracking_number"] == "DPD-9" and shipment["tracking"]["carrier_name"] == "DPD France"
    assert shipment["last_updated_date"] == "2026-05-04T08:11:00.000Z" and shipment["status"] == "SHIPPING"
    order = _order_view(client, "M-2-A")
    assert (order["shipping_tracking"], order["last_updated_date"]) == ("DPD-9", "2026-05-04T08:11:00.000Z")


def test_shipping_twice_is_a_per_shipment_error(client, check):
    shipment_id = _create(client, check, _parcel("M-2-A", (1, 3), shipped=True))["shipment_success"][0]["id"]
    response = client.put("/api/shipments/ship", json={"shipments": [{"id": shipment_id}]})
    check("ST24", response)
    assert response.json()["shipment_errors"] == [
        {"id": shipment_id, "message": "The shipment status must be 'SHIPPING' but it is 'SHIPPED'."}]


def test_or24_still_ships_the_whole_order_and_its_open_shipments(client, check):
    shipment_id = _create(client, check, _parcel("M-1-A", (1, 1)))["shipment_success"][0]["id"]
    assert client.put("/api/orders/M-1-A/ship").status_code == 204
    order = _order_view(client, "M-1-A")
    assert order["order_state"] == "SHIPPED"
    assert [(s["id"], s["status"]) for s in order["shipments"]] == [(shipment_id, "SHIPPED")]


def test_an_operator_cancellation_cancels_open_shipments(sim, client, check):
    _create(client, check, _parcel("M-2-A", (1, 1)))
    sim.cancel("M-2-A")
    listed = client.get("/api/shipments", params={"shipment_state_code": "CANCELED"})
    check("ST11", listed)
    assert [s["order_id"] for s in listed.json()["data"]] == ["M-2-A"]


# ---- ST11 seek pagination ------------------------------------------------------------------------


def test_seek_pagination_walks_forward_and_back(sim, client, check):
    for index in range(23):
        sim.add_order(build_order(order_id=f"P-{index:02d}-A", state="SHIPPING", created=T0,
                                  lines=[{"sku": "SKU-1", "quantity": 1, "unit_price": Decimal("9.90")}]))
        _create(client, check, _parcel(f"P-{index:02d}-A", (1, 1)))
        sim.advance(timedelta(seconds=1))
    pages, params = [], {"limit": "10"}
    while True:
        response = client.get("/api/shipments", params=params)
        check("ST11", response)
        pages.append(response.json())
        if "next_page_token" not in pages[-1]:
            break
        params = {"page_token": pages[-1]["next_page_token"], "limit": "2"}  # other parameters are ignored
    assert [len(p["data"]) for p in pages] == [10, 10, 3]
    assert [s["order_id"] for p in pages for s in p["data"]] == [f"P-{i:02d}-A" for i in range(23)]
    assert "previous_page_token" not in pages[0] and "previous_page_token" in pages[2]
    assert base64.b64decode(pages[0]["next_page_token"]).decode().startswith("limit=10&after=2026-05-04T08:10:09.000Z&")
    back = client.get("/api/shipments", params={"page_token": pages[2]["previous_page_token"]})
    check("ST11", back)
    assert back.json()["data"] == pages[1]["data"]

    newest_first = client.get("/api/shipments", params={"limit": "3", "sort": "dateCreated,DESC"}).json()
    assert [s["order_id"] for s in newest_first["data"]] == ["P-22-A", "P-21-A", "P-20-A"]
    following = client.get("/api/shipments", params={"page_token": newest_first["next_page_token"]}).json()
    assert [s["order_id"] for s in following["data"]] == ["P-19-A", "P-18-A", "P-17-A"]


def test_st11_filters(sim, client, check):
    _create(client, check, _parcel("M-1-A", (1, 1), shipped=True))
    sim.advance(timedelta(minutes=1))
    _create(client, check, _parcel("M-2-A", (1, 1)), _parcel("M-3-A", (1, 1)))

    def ids(**params) -> list[str]:
        response = client.get("/api/shipments", params=params)
        check("ST11", response)
        return [s["order_id"] for s in response.json()["data"]]

    assert ids(order_id=["M-1-A", "M-3-A"]) == ["M-1-A", "M-3-A"]  # repeated keys, the spec's form
    assert ids(order_id="M-2-A,M-3-A") == ["M-2-A", "M-3-A"]  # comma-separated, accepted too
    assert ids(shipment_state_code="SHIPPED") == ["M-1-A"]
    assert ids(last_updated_from="2026-05-04T08:10:30Z") == ["M-2-A", "M-3-A"]
    assert ids(last_updated_to="2026-05-04T08:10:30Z") == ["M-1-A"]
    assert len(client.get("/api/shipments", params={"limit": "1000"}).json()["data"]) == 3  # clamped to 100, not refused
    for params in ({"page_token": "not a token"}, {"shipment_state_code": "LOST"}, {"limit": "0"}, {"sort": "id,ASC"},
                   {"last_updated_from": "yesterday"}):
        response = client.get("/api/shipments", params=params)
        assert response.status_code == 400, params
        check("ST11", response)


# ---- whole-request errors ------------------------------------------------------------------------


def test_feature_off_answers_400_on_every_st_call(client, check):
    assert client.post("/_sandbox/settings", json={"multiple_shipments": False}).json()["multiple_shipments"] is False
    calls = [
        ("ST01", client.post("/api/shipments", json={"shipments": [_parcel("M-1-A", (1, 1))]})),
        ("ST11", client.get("/api/shipments")),
        ("ST23", client.post("/api/shipments/tracking", json={"shipments": [{"id": "x", "tracking": {"carrier_name": "X"}}]})),
        ("ST24", client.put("/api/shipments/ship", json={"shipments": [{"id": "x"}]})),
    ]
    for operation, response in calls:
        assert response.status_code == 400, operation
        check(operation, response)
        assert response.json()["code"] == "MULTIPLE_SHIPMENTS_DISABLED"
    assert client.put("/api/orders/M-1-A/ship").status_code == 204  # OR24 is the way then


def test_malformed_and_oversized_bodies_are_400(client, check):
    too_many = {"shipments": [_parcel("M-2-A", (1, 1))] * 1001}
    for operation, response in [
        ("ST01", client.post("/api/shipments", json=too_many)),
        ("ST01", client.post("/api/shipments", json={"shipments": []})),
        ("ST01", client.post("/api/shipments", content=b"{not json", headers={"Content-Type": "application/json"})),
        ("ST24", client.put("/api/shipments/ship", json=[{"id": "x"}])),
    ]:
        assert response.status_code == 400, (operation, response.text)
        check(operation, response)
    assert _order_view(client, "M-2-A")["shipments"] == []


def test_an_operator_block_refuses_shipping_parcels_as_it_refuses_or24(sim, client, check):
    shipment_id = _create(client, check, _parcel("M-2-A", (1, 1)))["shipment_success"][0]["id"]
    sim.apply_settings(reject_shipments=True)
    body = _create(client, check, _parcel("M-2-A", (1, 1), shipped=True))
    assert "suspended for your shop by the operator" in body["shipment_errors"][0]["message"]
    response = client.put("/api/shipments/ship", json={"shipments": [{"id": shipment_id}]})
    check("ST24", response)
    assert response.json()["shipment_success"] == [] and _order_view(client, "M-2-A")["shipments"][0]["status"] == "SHIPPING"
