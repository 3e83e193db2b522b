"""The sandbox warehouse (delays, carriers, partial parcels, determinism) and the invoice PDFs it goes with."""

import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mirakl_pipelines.sandbox.shopify.harness import running_store
from mirakl_pipelines.sandbox.shopify.order_create import order_create
from mirakl_pipelines.sandbox.shopify.rest_payloads import fulfillment_payload
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines.sandbox.shopify.tracking import FRENCH_CARRIERS, UNMAPPED_CARRIERS
from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
from mirakl_pipelines_tests.reference import reference_file

CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "sandbox" / "catalogue.yaml"
LATER = timedelta(days=1)


def new_store(orders: int = 12) -> ShopifyStore:
    """A store with `orders` orders of one to three lines (same orders, same ids for every call)."""
    store = ShopifyStore.from_catalogue_file(CATALOGUE)
    skus = sorted(store._variant_by_sku)[:6]
    for n in range(orders):
        lines = [{"variantId": store.variant_by_sku(skus[(n + k) % len(skus)])["id"], "quantity": 1 + (n + k) % 3}
                 for k in range(1 + n % 3)]
        payload = order_create(store, {"sourceIdentifier": f"decathlon_fr:W{n}", "lineItems": lines},
                               {"inventoryBehaviour": "BYPASS"}, "2026-07")
        assert payload["userErrors"] == []
    return store


def now() -> datetime:
    return datetime.now(timezone.utc)


def outcome(warehouse: Warehouse, steps: int = 3) -> list[tuple]:
    for n in range(steps):
        warehouse.step(now() + LATER * (n + 1))
    return [(s.order_name, s.company, s.number, s.partial, s.quantity) for s in warehouse.shipments]


def test_same_seed_same_parcels_other_seed_other_parcels():
    settings = dict(delay_seconds=60, partial_share=0.4, unknown_carrier_share=0.2)
    first = outcome(Warehouse(new_store(), seed=11, **settings))
    again = outcome(Warehouse(new_store(), seed=11, **settings))
    other = outcome(Warehouse(new_store(), seed=12, **settings))
    assert first == again
    assert first != other
    assert len({company for _, company, *_ in first}) > 2  # a mix of carriers, not one


def test_nothing_ships_before_the_delay():
    store = new_store(3)
    warehouse = Warehouse(store, seed=1, delay_seconds=3600, partial_share=0)
    assert warehouse.step(now()) == []
    assert all(fo["status"] == "OPEN" for fo in store.fulfillment_orders.values())
    shipped = warehouse.step(now() + timedelta(hours=2))
    assert len(shipped) == 3
    assert all(fo["status"] == "CLOSED" for fo in store.fulfillment_orders.values())
    assert all(o["displayFulfillmentStatus"] == "FULFILLED" for o in store.orders())
    assert warehouse.step(now() + LATER) == []  # nothing left


def test_partial_parcel_first_and_the_rest_one_delay_later_with_the_same_carrier():
    store = new_store(6)
    units = {fo_id: sum(line["totalQuantity"] for line in fo["lineItems"]) for fo_id, fo in store.fulfillment_orders.items()}
    warehouse = Warehouse(store, seed=5, delay_seconds=600, partial_share=1.0, unknown_carrier_share=0)
    shipped = warehouse.step(now() + timedelta(hours=1))
    assert len(shipped) == 6
    # A single unit cannot be split: it ships whole; everything else ships in two parcels.
    assert [s.partial for s in shipped] == [units[s.fulfillment_order_id] >= 2 for s in shipped]
    first = [s for s in shipped if s.partial]
    assert len(first) >= 4
    for shipment in first:
        fo = store.fulfillment_orders[shipment.fulfillment_order_id]
        assert fo["status"] == "IN_PROGRESS"
        assert 0 < sum(line["remainingQuantity"] for line in fo["lineItems"]) < sum(line["totalQuantity"] for line in fo["lineItems"])
        assert store.order_record(fo["orderId"])["displayFulfillmentStatus"] == "PARTIALLY_FULFILLED"
    assert warehouse.step(now() + timedelta(hours=1)) == []  # the rest waits a delay after the first parcel
    rest = warehouse.step(now() + timedelta(hours=2))
    assert sorted(s.fulfillment_order_id for s in rest) == sorted(s.fulfillment_order_id for s in first)
    by_fo = {s.fulfillment_order_id: s for s in first}
    for shipment in rest:
        assert not shipment.partial
        assert shipment.company == by_fo[shipment.fulfillment_order_id].company
        assert shipment.number != by_fo[shipment.fulfillment_order_id].number
        assert store.fulfillment_orders[shipment.fulfillment_order_id]["status"] == "CLOSED"
    assert {len(o["fulfillments"]) for o in store.orders() if o["name"] in {s.order_name for s in first}} == {2}


def test_unknown_carrier_share_uses_a_carrier_nobody_mapped():
    store = new_store(4)
    shipped = Warehouse(store, seed=2, delay_seconds=0, unknown_carrier_share=1.0, partial_share=0).step(now() + LATER)
    (company, template), = UNMAPPED_CARRIERS
    assert {s.company for s in shipped} == {company}
    for shipment in shipped:
        info = store.fulfillments[shipment.fulfillment_id]["trackingInfo"]
        assert info == [{"number": shipment.number, "company": company, "url": template.format(number=shipment.number)}]


def test_some_parcels_carry_two_tracking_numbers_in_one_fulfilment():
    settings = dict(seed=8, delay_seconds=0, partial_share=0, unknown_carrier_share=0)
    single = Warehouse(new_store(4), two_numbers_share=0, **settings).step(now() + LATER)
    store = new_store(4)
    double = Warehouse(store, two_numbers_share=1.0, **settings).step(now() + LATER)
    # The second number has its own generator: everything else is what the same seed ships without it.
    assert [(s.company, s.number) for s in double] == [(s.company, s.number) for s in single]
    assert all(len(s.numbers) == 1 and s.numbers == (s.number,) for s in single)
    for shipment in double:
        assert len(shipment.numbers) == 2 and shipment.numbers[0] == shipment.number
        assert shipment.urls == tuple(dict(FRENCH_CARRIERS)[shipment.company].format(number=n) for n in shipment.numbers)
        info = store.fulfillments[shipment.fulfillment_id]["trackingInfo"]
        assert [(t["number"], t["url"], t["company"]) for t in info] == [
            (n, u, shipment.company) for n, u in zip(shipment.numbers, shipment.urls)]
        with store.lock:
            rest = fulfillment_payload(store, store.fulfillments[shipment.fulfillment_id])
        assert (rest["tracking_numbers"], rest["tracking_urls"]) == (list(shipment.numbers), list(shipment.urls))
        assert (rest["tracking_number"], rest["tracking_url"]) == (shipment.number, shipment.url)
    with pytest.raises(ValueError, match="two_numbers_share"):
        Warehouse(store, two_numbers_share=2)


@pytest.mark.parametrize("company, pattern", [
    ("Colissimo", r"(6A|6C|8R)\d{11}"), ("Chronopost", r"XW\d{9}FR"), ("DPD", r"250\d{11}"), ("GLS", r"\d{11}"),
    ("UPS", r"1Z[A-Z0-9]{6}\d{10}"), ("DHL Express", r"\d{10}"), ("Mondial Relay", r"\d{8}"),
])
def test_tracking_numbers_follow_each_carriers_format(company, pattern):
    store = new_store(3)
    template = dict(FRENCH_CARRIERS)[company]
    shipped = Warehouse(store, seed=3, delay_seconds=0, unknown_carrier_share=0, partial_share=0,
                        carriers=[(company, template)]).step(now() + LATER)
    assert len(shipped) == 3
    for shipment in shipped:
        assert re.fullmatch(pattern, shipment.number), shipment.number
        assert shipment.url == template.format(number=shipment.number)


def test_carrier_names_are_shopifys_exact_tracking_companies():
    sdl = reference_file("shopify/admin-2026-07.schema.graphql").read_text(encoding="utf-8")
    start = sdl.index("type FulfillmentTrackingInfo {")
    listed = set(re.findall(r"^\s+\* (.+)$", sdl[start:sdl.index("company: String", start)], re.M))
    for company, _ in FRENCH_CARRIERS:
        assert company in listed, f"{company!r} is not in FulfillmentTrackingInfo.company's list"
    for company, _ in UNMAPPED_CARRIERS:
        assert company not in listed


def test_warehouse_fulfils_through_the_mutation_path_and_emits_webhooks():
    store = new_store(2)
    store.subscribe("http://127.0.0.1:9/unused", "secret", ["fulfillments/create"])
    store.webhook_faults.update(drop=True)  # count what is published without a receiver
    try:
        Warehouse(store, seed=4, delay_seconds=0, partial_share=0).step(now() + LATER)
        assert store.webhooks.stats()["by_topic"] == {"fulfillments/create": 2}
    finally:
        store.close()


def test_background_thread_ships_and_stops():
    store = new_store(3)
    warehouse = Warehouse(store, seed=6, delay_seconds=0, partial_share=0)
    warehouse.start(interval_seconds=0.02)
    try:
        deadline = time.monotonic() + 5
        while len(warehouse.shipments) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        warehouse.stop()
    assert len(warehouse.shipments) == 3 and warehouse.stats()["errors"] == {}


def test_bad_settings_are_refused():
    store = new_store(0)
    with pytest.raises(ValueError, match="partial_share"):
        Warehouse(store, partial_share=1.5)
    with pytest.raises(ValueError, match="delay_seconds"):
        Warehouse(store, delay_seconds=-1)


def _check_pdf(pdf: bytes) -> None:
    """Header, trailer and every xref offset pointing at its object: a PDF a reader can open."""
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    assert pdf[startxref:].startswith(b"xref")
    lines = pdf[startxref:].split(b"\n")
    count = int(lines[1].split()[1])
    for number, entry in enumerate(lines[3:3 + count - 1], start=1):
        offset = int(entry.split()[0])
        assert pdf[offset:].startswith(b"%d 0 obj" % number)
    length = int(re.search(rb"/Length (\d+)", pdf).group(1))
    stream_start = pdf.index(b"stream\n") + len(b"stream\n")
    assert pdf[stream_start + length:].startswith(b"\nendstream")


def test_invoice_pdf_is_served_for_an_order():
    reference_file("shopify/admin-2026-07.schema.graphql")
    store = new_store(1)
    order = store.orders()[0]
    order_record = store.order_record(order["id"])
    order_record["shippingAddress"] = {"name": "Zoë Lefèvre (Lyon)", "zip": "69002", "city": "Lyon"}
    with running_store(store) as sandbox:
        for path in (f"/_sandbox/invoices/{order['name'].lstrip('#')}.pdf", "/_sandbox/invoices/%23" + order["name"][1:] + ".pdf"):
            response = sandbox.http.get(path)
            assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
            _check_pdf(response.content)
            assert f"Invoice {order['name']}".encode() in response.content
            assert b"Zo\\353 Lef\\350vre \\(Lyon\\)" in response.content  # Windows-1252, escaped
        missing = sandbox.http.get("/_sandbox/invoices/999999.pdf")
        assert missing.status_code == 404 and "999999" in missing.json()["errors"]
