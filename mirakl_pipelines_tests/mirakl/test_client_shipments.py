"""MiraklClient's shipment methods (ST01/ST11/ST23/ST24) against the Mirakl sandbox over loopback HTTP:
parcels, per-shipment errors as data, seek pagination, and ST01 never resent once it may have arrived."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.mirakl.errors import MiraklBadRequest, MiraklOutcomeUnknown, MiraklServerError
from mirakl_pipelines.mirakl.shipments import NewShipment, ShipmentTracking
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import free_port
from mirakl_pipelines_tests.mirakl.test_client_sandbox import KEY, SCALE, make_client, server  # noqa: F401  (fixtures)

UPS = ShipmentTracking(carrier_code="UPS", tracking_number="1Z1")


@pytest.fixture
def sim():
    sim = MarketplaceSim(MarketplaceSettings(api_key=KEY, rate_limit_scale=SCALE, multiple_shipments=True))
    for order_id, quantities in {"S-1-A": (2, 1), "S-2-A": (1,)}.items():
        _add(sim, order_id, *quantities)
    return sim


def _add(sim: MarketplaceSim, order_id: str, *quantities: int, state: str = "SHIPPING") -> None:
    sim.add_order(build_order(order_id=order_id, state=state, created=datetime.now(UTC) - timedelta(hours=1), lines=[
        {"sku": f"SKU-{i}", "quantity": q, "unit_price": Decimal("12.50")} for i, q in enumerate(quantities, start=1)]))


def test_parcels_of_one_order_ship_it(sim, make_client):
    client = make_client()
    first = NewShipment(order_id="S-1-A", lines={"S-1-A-1": 1}, tracking=UPS, package_reference="F-1", shipped=True)
    second = NewShipment(order_id="S-1-A", lines={"S-1-A-1": 1, "S-1-A-2": 1}, package_reference="F-2",
                         tracking=ShipmentTracking.from_order_tracking({"carrier_name": "Coursier", "carrier_url": "https://c.example/9"}))
    other = NewShipment(order_id="S-2-A", lines={"S-2-A-1": 1})
    results = client.create_shipments([first, second, other])
    assert client.calls["ST01"] == 2  # one shipment per order and call: every answer names its shipment
    assert [o.request for o in results.outcomes] == [first, second, other] and not results.failed  # as given
    shipped, pending, _ = results.created
    assert (shipped.status, pending.status) == ("SHIPPED", "SHIPPING")
    assert pending.quantities == {"S-1-A-1": 1, "S-1-A-2": 1} and pending.package_references == {"F-2"}
    assert pending.tracking.tracking_url == "https://c.example/9"
    assert client.list_orders(order_ids=["S-1-A"])[0].order_state == "SHIPPING"

    ship = client.ship_shipments([pending.id])
    assert (ship.succeeded, ship.errors, ship.already_shipped) == ([pending.id], [], [])
    order = client.list_orders(order_ids=["S-1-A"])[0]
    assert order.order_state == "SHIPPED" and order.shipping_company == "Coursier"
    again = client.ship_shipments([pending.id, shipped.id])  # a repeat after a lost answer is not an error
    assert (again.succeeded, again.errors, again.already_shipped) == ([], [], [pending.id, shipped.id])


def test_refusals_come_back_as_data(sim, make_client):
    _add(sim, "S-WAIT-A", 1, state="WAITING_ACCEPTANCE")
    client = make_client()
    results = client.create_shipments([
        NewShipment(order_id="S-2-A", lines={"S-2-A-1": 5}),
        NewShipment(order_id="S-WAIT-A", lines={"S-WAIT-A-1": 1}),
        NewShipment(order_id="S-1-A", lines={"S-1-A-2": 1}, tracking=UPS),
    ])
    assert [o.error for o in results.outcomes[:2]] == [
        "Shipment quantity is invalid. Order line 'S-2-A-1': 5 to ship, 1 left to ship.",
        "The order status must be 'SHIPPING' but it is 'WAITING_ACCEPTANCE'.",
    ]
    assert results.outcomes[2].shipment.order_id == "S-1-A" and client.calls["ST01"] == 1


def test_tracking_update_and_unknown_ids(sim, make_client):
    client = make_client()
    shipment = client.create_shipments([NewShipment(order_id="S-2-A", lines={"S-2-A-1": 1})]).created[0]
    result = client.update_shipment_tracking({shipment.id: UPS, "missing": UPS})
    assert result.succeeded == [shipment.id]
    assert [(e.id, e.message) for e in result.errors] == [("missing", "No shipment with id 'missing'.")]
    (listed,) = client.list_shipments(order_ids=["S-2-A"])
    assert listed.tracking.tracking_number == "1Z1" and listed.tracking.carrier_name == "UPS"
    with pytest.raises(ValueError, match="no tracking field"):
        client.update_shipment_tracking({shipment.id: ShipmentTracking()})


def test_list_follows_page_tokens_and_filters(sim, make_client):
    for index in range(25):
        _add(sim, f"P-{index:02d}-A", 1)
    client = make_client()
    client.create_shipments([NewShipment(order_id=f"P-{i:02d}-A", lines={f"P-{i:02d}-A-1": 1}, shipped=i < 5) for i in range(25)])
    everything = client.list_shipments(page_size=10)
    assert len(everything) == 25 and client.calls["ST11"] == 3
    assert len(client.list_shipments(states=["SHIPPED"])) == 5
    assert {s.order_id for s in client.list_shipments(order_ids=["P-03-A", "P-20-A"])} == {"P-03-A", "P-20-A"}
    assert client.list_shipments(order_ids=[]) == []


def test_later_pages_send_only_the_token_and_shop_id(stub):
    pages = {None: {"data": [_wire_shipment("a")], "next_page_token": "dG9rZW4="}, "dG9rZW4=": {"data": [_wire_shipment("b")]}}
    stub.handler = lambda r: (200, pages[r.query.get("page_token")], {})
    client = MiraklClient(stub.url, KEY, shop_id=7, rate_limit_scale=SCALE)
    assert [s.id for s in client.list_shipments(order_ids=["O-1-A"], page_size=1)] == ["a", "b"]
    first, second = stub.by_path("/api/shipments")
    assert first.query == {"limit": "1", "sort": "dateCreated,ASC", "order_id": "O-1-A", "shop_id": "7"}
    assert second.query == {"page_token": "dG9rZW4=", "shop_id": "7"}
    client.close()


# ---- ST01 is not idempotent ----------------------------------------------------------------------


class _LosingAnswers(httpx.HTTPTransport):
    """Delivers the first ST01 request to the server, then loses its answer (a read timeout)."""

    def __init__(self):
        super().__init__()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path == "/api/shipments" and not self.lost:
            self.lost += 1
            response.read()
            response.close()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


def test_a_lost_answer_is_not_resent_and_the_shipment_is_found(sim, make_client):
    transport = _LosingAnswers()
    client = make_client(transport=transport)
    parcel = NewShipment(order_id="S-1-A", lines={"S-1-A-1": 2}, package_reference="gid-F-77", tracking=UPS)
    with pytest.raises(MiraklOutcomeUnknown):
        client.create_shipments([parcel])
    assert client.calls["ST01"] == 1 and len(sim.shipments.of_order("S-1-A")) == 1  # created once, not resent
    found = client.find_shipment("S-1-A", "gid-F-77")
    assert found is not None and found.quantities == {"S-1-A-1": 2}
    assert client.find_shipment("S-1-A", "gid-F-78") is None


def test_5xx_on_st01_is_an_unknown_outcome_but_429_and_refused_connections_are_retried(sim, make_client):
    sim.faults.update(error_5xx_rate=1.0)
    client = make_client(max_retries=3)
    with pytest.raises(MiraklOutcomeUnknown) as caught:
        client.create_shipments([NewShipment(order_id="S-2-A", lines={"S-2-A-1": 1})])
    assert caught.value.status == 503 and client.calls["ST01"] == 1
    assert not isinstance(caught.value, MiraklServerError)  # generic "transient" handlers must not resend it

    sim.faults.update(error_5xx_rate=0.0, burst_429=2, retry_after_seconds=1)
    assert len(client.create_shipments([NewShipment(order_id="S-2-A", lines={"S-2-A-1": 1})]).created) == 1
    assert client.calls["ST01"] == 4  # 1 + the two 429s + the success

    closed = MiraklClient(f"http://127.0.0.1:{free_port()}", KEY, rate_limit_scale=SCALE, max_retries=2)
    with pytest.raises(MiraklServerError):  # nothing ever arrived: retried, then a plain server error
        closed.create_shipments([NewShipment(order_id="S-2-A", lines={"S-2-A-1": 1})])
    assert closed.calls["ST01"] == 3
    closed.close()


def test_feature_off_is_a_bad_request(sim, make_client):
    sim.apply_settings(multiple_shipments=False)
    client = make_client()
    with pytest.raises(MiraklBadRequest) as caught:
        client.create_shipments([NewShipment(order_id="S-2-A", lines={"S-2-A-1": 1})])
    assert caught.value.code == "MULTIPLE_SHIPMENTS_DISABLED" and client.calls["ST01"] == 1
    with pytest.raises(MiraklBadRequest):
        client.list_shipments()


def _wire_shipment(shipment_id: str) -> dict:
    return {"id": shipment_id, "order_id": "O-1-A", "status": "SHIPPING", "status_customer_debit": "NO_DEBIT",
            "created_date": "2026-05-04T08:00:00.000Z", "last_updated_date": "2026-05-04T08:00:00.000Z",
            "shipment_lines": [{"order_line_id": "O-1-A-1", "quantity": 1}]}
