"""The spec's variety served over HTTP: promotions, fees, odd divisions, tax breakdowns, every payment workflow,
cancellations in both readings, B2B, relay points and addresses abroad. Every OR11 page validates against the
official spec and adds up per the spec's definitions (the independent checker of or11_orders.py), in both
tax modes; the control routes for the new events (cancel_lines, receive) answer like the others."""

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines_tests.mirakl_spec import CLASSIC_ERROR, schema_ref, validate
from mirakl_pipelines_tests.or11_orders import consistency_errors

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
KEY = "variety-key"
QUEBEC = {"country_iso_code": "CAN", "state": "Québec", "city": "Montréal", "street_1": "1200 rue Sainte-Catherine O",
          "zip_code": "H3B 1K9", "phone": "(514) 555-0123"}
ROMA = {"country_iso_code": "ITA", "state": "Lazio", "city": "Roma", "street_1": "Via del Corso 120", "zip_code": "00186",
        "phone": "+39 06 6982 1234"}
TOKYO = {"country_iso_code": "JPN", "state": "東京都", "city": "Shibuya-ku", "street_1": "1-2-3 Shibuya", "zip_code": "150-0002",
         "phone": "03-1234-5678"}


def _populate(sim: MarketplaceSim, tax_mode: str) -> None:
    def add(order_id, lines, **kwargs):
        sim.add_order(build_order(order_id=order_id, lines=lines, created=sim.now(), tax_mode=tax_mode, **kwargs))

    add("V-PROMO-A", [
        {"sku": "A", "quantity": 3, "unit_price": "24.50", "promotions": [{"type": "FREE_ITEMS", "free_items_quantity": 1}]},
        {"sku": "B", "quantity": 2, "unit_price": "39.95", "promotions": [{"type": "REDUCED_UNIT_PRICE", "reduced_unit_price": "34.95"}]},
        {"sku": "C", "quantity": 1, "unit_price": "89.90", "fees": [{"code": "GIFT_WRAP", "amount": "3.90"}]},
    ], basket_promotions=[{"type": "AMOUNT_OFF", "amount_off": "10.00", "promo_code": "BIENVENUE"}])
    add("V-LOT-A", [{"sku": "LOT", "quantity": 3, "line_price": "10.00", "price_additional_info": "Lot de 3"}],
        payment_workflow="PAY_ON_SHIPMENT")
    add("V-QC-A", [{"sku": "A", "quantity": 2, "unit_price": "54.00"}], shipping_address=QUEBEC, billing_address=QUEBEC,
        taxes=[{"code": "GST", "rate": "5", "payable_to_shop": False}, {"code": "QST", "rate": "9.975", "payable_to_shop": False}],
        payment_workflow="PAY_ON_DELIVERY")
    add("V-B2B-A", [{"sku": "A", "quantity": 4, "unit_price": "119.00"}], shipping_address=ROMA, billing_address=ROMA,
        organization={"name": "Club Alpino Roma", "identification_number": "IT01234567890"},
        payment_workflow="PAY_ON_DUE_DATE", payment_duration=30, taxes=[{"code": "VAT-IT", "rate": "22", "payable_to_shop": True}])
    add("V-JP-A", [{"sku": "A", "quantity": 1, "unit_price": "89.90"}], shipping_address=TOKYO, billing_address=TOKYO,
        payment_workflow="NO_CUSTOMER_PAYMENT_CONFIRMATION", taxes=[{"code": "JCT", "rate": "10", "payable_to_shop": False}])
    add("V-COD-A", [{"sku": "A", "quantity": 1, "unit_price": "39.95"}], payment_workflow="PAY_ON_DELIVERY",
        customer_directly_pays_seller=True, shipping_pudo_id="MR-004512", shipping_zone_code="FR-RELAIS",
        shipping_zone_label="Points relais Mondial Relay")
    add("V-CANCEL-A", [{"sku": "A", "quantity": 3, "unit_price": "10.00", "fees": [{"code": "CARD_FEE", "amount": "0.50"}]},
                       {"sku": "B", "quantity": 1, "unit_price": "20.00"}])
    for order in sim.orders():
        sim.accept(order["order_id"], {"order_lines": [{"id": line["order_line_id"], "accepted": True} for line in order["order_lines"]]})
    sim.advance(timedelta(minutes=1))  # PAY_ON_ACCEPTANCE debited, PAY_ON_DUE_DATE (1 s a day) too
    sim.cancel_lines("V-CANCEL-A", {"V-CANCEL-A-1": 1})
    sim.cancel_lines("V-PROMO-A", {"V-PROMO-A-2": 2})
    for order_id in ("V-LOT-A", "V-QC-A", "V-JP-A", "V-COD-A"):
        sim.ship(order_id)
    sim.advance(timedelta(minutes=2))  # received (receive_delay) then debited (deferred_debit_delay)


@pytest.fixture(params=[("TAX_INCLUDED", False), ("TAX_EXCLUDED", True)], ids=["included-keep", "excluded-reduce"])
def served(request):
    tax_mode, reduce = request.param
    settings = MarketplaceSettings(api_key=KEY, rate_limit_scale=1e-6, cancelations_reduce_line_price=reduce,
                                   deferred_debit_delay=timedelta(seconds=30), receive_delay=timedelta(seconds=30),
                                   payment_duration_day=timedelta(seconds=1))
    now = {"value": T0}
    sim = MarketplaceSim(settings, clock=lambda: now["value"])
    _populate(sim, tax_mode)
    server = serve_in_thread(create_mirakl_app(sim))
    with httpx.Client(base_url=server.url, headers={"Authorization": KEY}, timeout=10) as client:
        yield sim, client, tax_mode, "reduce" if reduce else "keep"
    server.stop()


def _get(client: httpx.Client, **params) -> dict:
    response = client.get("/api/orders", params={"max": "100", **params})
    assert response.status_code == 200, response.text
    body = json.loads(response.content, parse_float=Decimal)
    validate(schema_ref("OR11_Response_200"), body)
    return body


def test_or11_serves_the_variety_valid_and_consistent_in_both_tax_modes(served):
    _, client, native, reading = served
    for tax_mode in ("TAX_INCLUDED", "TAX_EXCLUDED"):
        body = _get(client, order_tax_mode=tax_mode)
        assert body["total_count"] == 7
        for order in body["orders"]:
            assert order["order_tax_mode"] == tax_mode
            assert consistency_errors(order, reading=reading, promotion_configuration=tax_mode == native) == [], order["order_id"]
            MiraklOrder.model_validate(order)  # the project's own model reads every shape


def test_each_shape_is_served_as_built(served):
    _, client, native, reading = served
    orders = {o["order_id"]: o for o in _get(client)["orders"]}
    promo = orders["V-PROMO-A"]
    kinds = {p["configuration"]["type"] for line in promo["order_lines"] for p in line["promotions"]}
    assert kinds == {"FREE_ITEMS", "REDUCED_UNIT_PRICE", "AMOUNT_OFF"}
    assert {p["id"] for p in promo["promotions"]["applied_promotions"]} >= {"V-PROMO-A-B1"}
    assert promo["order_lines"][2]["fees"] == [{"amount": Decimal("3.90"), "code": "GIFT_WRAP"}]
    cancelled = promo["order_lines"][1]
    assert cancelled["order_line_state"] == "CANCELED" and cancelled["cancelations"][0]["quantity"] == 2
    assert (cancelled["price"] == 0) == (reading == "reduce")
    lot = orders["V-LOT-A"]["order_lines"][0]
    assert (lot["price"], lot["price_unit"], lot["quantity"]) == (Decimal("10.00"), Decimal("3.33"), 3)
    qc = orders["V-QC-A"]
    assert qc["customer"]["shipping_address"]["state"] == "Québec" and qc["customer"]["shipping_address"]["country_iso_code"] == "CAN"
    assert [part["payable_to_shop"] for t in qc["order_lines"][0]["taxes"] for part in t["amount_breakdown"]["parts"]] == [False, False]
    b2b = orders["V-B2B-A"]
    assert b2b["customer"]["organization"]["name"] == "Club Alpino Roma" and b2b["payment_duration"] == 30
    assert b2b["customer"]["shipping_address"]["state"] == "Lazio"
    assert orders["V-JP-A"]["customer"]["shipping_address"]["state"] == "東京都"
    cod = orders["V-COD-A"]
    assert cod["customer_directly_pays_seller"] is True and cod["shipping_pudo_id"] == "MR-004512"
    assert cod["shipping_zone_code"] == "FR-RELAIS"


def test_debits_per_workflow_are_served(served):
    _, client, _, _ = served
    orders = {o["order_id"]: o for o in _get(client)["orders"]}
    debited = {order_id for order_id, o in orders.items() if o["customer_debited_date"]}
    # LOT: shipped then debited; QC: shipped, received, then debited; B2B: 30 one-second days after acceptance;
    # JP (no confirmation) and COD (paid to the seller) never; the paid-on-acceptance ones after debit_delay.
    assert debited == {"V-PROMO-A", "V-CANCEL-A", "V-LOT-A", "V-QC-A", "V-B2B-A"}
    assert {o["order_state"] for o in (orders["V-QC-A"], orders["V-COD-A"], orders["V-JP-A"])} == {"RECEIVED"}
    assert _get(client, payment_workflow="PAY_ON_SHIPMENT", customer_debited="true")["total_count"] == 1
    assert _get(client, customer_debited="false")["total_count"] == 2


def test_control_routes_cancel_lines_and_receive(served):
    sim, client, _, reading = served
    response = client.post("/_sandbox/orders/V-CANCEL-A/cancel_lines", json={"lines": {"V-CANCEL-A-1": 2}, "reason_code": "42"})
    assert response.status_code == 200, response.text
    line = response.json()["order_lines"][0]
    assert line["order_line_state"] == "CANCELED" and [c["reason_code"] for c in line["cancelations"]] == ["34", "42"]
    response = client.post("/_sandbox/orders/V-CANCEL-A/cancel_lines", json={"lines": {"V-CANCEL-A-2": 1}})
    assert response.json()["order_state"] == "CANCELED"
    for path, body, status in [
        ("/_sandbox/orders/V-CANCEL-A/cancel_lines", {"lines": {"V-CANCEL-A-2": 1}}, 409),  # nothing left
        ("/_sandbox/orders/NOPE-A/cancel_lines", {"lines": {"x": 1}}, 404),
        ("/_sandbox/orders/V-PROMO-A/cancel_lines", {"V-PROMO-A-1": 1}, 400),  # not {"lines": ...}
        ("/_sandbox/orders/V-PROMO-A/receive", None, 409),  # not shipped
        ("/_sandbox/orders/NOPE-A/receive", None, 404),
    ]:
        response = client.post(path, json=body) if body is not None else client.post(path)
        assert response.status_code == status, (path, response.text)
        validate(CLASSIC_ERROR, response.json())
    for order in _get(client)["orders"]:
        assert consistency_errors(order, reading=reading, promotion_configuration=False) == [], order["order_id"]


def test_orders_with_the_new_shapes_can_be_created_over_http(served):
    sim, client, _, _ = served
    response = client.post("/_sandbox/orders", json={
        "order_id": "V-HTTP-A",
        "lines": [{"sku": "A", "quantity": 3, "unit_price": "10.00", "promotions": [{"type": "FREE_ITEMS", "free_items_quantity": 1}],
                   "fees": [{"code": "CARD_FEE", "amount": "0.50"}]}],
        "taxes": [{"code": "UK-VAT", "rate": "20", "payable_to_shop": False}],
        "basket_promotions": [{"type": "PERCENTAGE_OFF", "percentage_off": "5"}],
        "payment_workflow": "PAY_ON_DUE_DATE", "payment_duration": 45,
        "shipping_address": {"country_iso_code": "GB", "city": "London", "street_1": "221B Baker Street", "zip_code": "NW1 6XE",
                             "phone": "+44 (0)20 7946 0958"},
    })
    assert response.status_code == 201, response.text
    order = _get(client, order_ids="V-HTTP-A")["orders"][0]
    assert order["payment_duration"] == 45 and order["order_lines"][0]["promotions"][1]["deduced_amount"] == Decimal("1.00")
    assert consistency_errors(order, reading="keep") == []
    bad = client.post("/_sandbox/orders", json={"lines": [{"sku": "A", "quantity": 1, "unit_price": "1"}], "payment_duration": 3})
    assert bad.status_code == 400 and "payment_duration is only for PAY_ON_DUE_DATE" in bad.json()["message"]
