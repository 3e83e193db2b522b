"""The fulfilment sweep's read over loopback: orders updated since a moment, their fulfilments, tracking and the
Mirakl order line each fulfilled line comes from."""

from datetime import datetime, timedelta, timezone

from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
from mirakl_pipelines.shopify.models import LINE_ID_PROPERTY
from mirakl_pipelines_tests.shopify.test_client_loopback import OPTIONS, client_for, order_input, sandbox  # noqa: F401


def test_fulfilments_of_orders_updated_since(sandbox):  # noqa: F811
    store, server = sandbox
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    with client_for(server) as client:
        variant = client.variants_by_sku(["ALP-MERINO-S"])["ALP-MERINO-S"]
        order = order_input("mk:F-1-A", variant, quantity=2)
        order["lineItems"][0]["properties"] = [{"name": LINE_ID_PROPERTY, "value": "F-1-A-1"}]
        ref = client.create_order(order, OPTIONS)
        assert client.fulfilments_of_orders_updated_since(before) == []  # not fulfilled yet

        shipped = Warehouse(store, seed=3, delay_seconds=0, partial_share=0, unknown_carrier_share=0).step(
            datetime.now(timezone.utc) + timedelta(seconds=1))
        assert len(shipped) == 1
        [fulfilment] = client.fulfilments_of_orders_updated_since(before)
    assert fulfilment.order_id == ref.id and fulfilment.counts
    assert fulfilment.tracking_number == shipped[0].number and fulfilment.tracking_company == shipped[0].company
    assert fulfilment.lines == {"F-1-A-1": 2}


def test_a_fulfilment_with_two_tracking_numbers_carries_both(sandbox):  # noqa: F811
    store, server = sandbox
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    with client_for(server) as client:
        variant = client.variants_by_sku(["ALP-TRAIL-44"])["ALP-TRAIL-44"]
        order = order_input("mk:F-2-A", variant)
        order["lineItems"][0]["properties"] = [{"name": LINE_ID_PROPERTY, "value": "F-2-A-1"}]
        client.create_order(order, OPTIONS)
        [parcel] = Warehouse(store, seed=3, delay_seconds=0, partial_share=0, unknown_carrier_share=0,
                             two_numbers_share=1.0).step(datetime.now(timezone.utc) + timedelta(seconds=1))
        [fulfilment] = client.fulfilments_of_orders_updated_since(before)
    assert len(parcel.numbers) == 2
    assert (fulfilment.tracking_numbers, fulfilment.tracking_urls) == (parcel.numbers, parcel.urls)
    assert (fulfilment.tracking_number, fulfilment.tracking_url) == (parcel.number, parcel.url)  # the first, as before
    assert fulfilment.tracking_company == parcel.company and fulfilment.lines == {"F-2-A-1": 1}
