"""ShopifyClient's order changes over loopback HTTP against the sandbox store: marking paid (at most once, lost
answers included) and completing the shipping address."""

import pytest

from mirakl_pipelines.shopify.errors import ShopifyUserError
from mirakl_pipelines_tests.shopify.test_client_fulfilment_orders import import_order
from mirakl_pipelines_tests.shopify.test_client_loopback import (  # noqa: F401
    OPTIONS,
    LoseAnswers,
    client_for,
    order_input,
    sandbox,
    start_store,
)

LYON = {"firstName": "Zoë", "lastName": "Lefèvre", "address1": "12 rue de la République", "city": "Lyon", "zip": "69002",
        "countryCode": "FR", "phone": "+33612345678"}


def test_mark_order_paid_twice_pays_once(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        order_id = import_order(client, "PAY-1", [("ALP-TRAIL-42", 1)])
        first = client.mark_order_paid(order_id)
        second = client.mark_order_paid(order_id)
        state = client.order_fulfilment_state(order_id)
    assert (first.order_id, first.newly_paid, first.already_paid, first.financial_status) == (order_id, True, False, "PAID")
    assert (second.newly_paid, second.already_paid, second.financial_status) == (False, True, "PAID")
    assert (state.financial_status, state.outstanding) == ("PAID", 0)
    transactions = store.order(order_id)["transactions"]
    assert [(t["kind"], t["gateway"], t["amountSet"]["shopMoney"]["amount"]) for t in transactions] == [
        ("SALE", "manual", "89.9")]


def test_an_order_imported_paid_is_already_paid(sandbox):
    _, server = sandbox
    with client_for(server) as client:
        variant = client.variants_by_sku(["LUM-HEAD-400"])["LUM-HEAD-400"]
        order_id = client.create_order(order_input("PAY-2", variant), OPTIONS).id  # with a SUCCESS SALE for its total
        assert client.mark_order_paid(order_id).already_paid


def test_mark_order_paid_of_an_unknown_order_raises(sandbox):
    _, server = sandbox
    with client_for(server) as client, pytest.raises(ShopifyUserError):
        client.mark_order_paid("gid://shopify/Order/1")


def test_lost_answer_to_mark_as_paid_is_resent_without_paying_twice():
    store, server = start_store(app=lambda asgi: LoseAnswers(asgi, n=1, operation="OrderMarkAsPaid"),
                                bucket_size=2000, restore_rate=1000)
    try:
        with client_for(server) as client:
            order_id = import_order(client, "PAY-3", [("ALP-MERINO-M", 2)])
            payment = client.mark_order_paid(order_id)
            assert client.calls["OrderMarkAsPaid"] == 2
        assert payment.already_paid and payment.financial_status == "PAID"  # the lost first attempt paid it
        assert [t["kind"] for t in store.order(order_id)["transactions"]] == ["SALE"]
    finally:
        server.stop()


def test_update_order_addresses_sets_the_shipping_address(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        order_id = import_order(client, "ADDR-1", [("ALP-VEST-12", 1)])
        assert client.update_order_addresses(order_id, shipping_address=LYON) is True
        assert client.update_order_addresses(order_id, shipping_address=LYON) is True  # the same again: same order
        sent = client.calls["OrderUpdate"]
        assert client.update_order_addresses(order_id, shipping_address=None) is True  # nothing to send
        assert client.calls["OrderUpdate"] == sent == 2
    order = store.order(order_id)
    assert (order["shippingAddress"]["city"], order["shippingAddress"]["name"]) == ("Lyon", "Zoë Lefèvre")
    assert order["fulfillmentOrders"][0]["destination"]["zip"] == "69002"


def test_a_billing_address_cannot_change_after_creation(sandbox, caplog):
    store, server = sandbox
    with client_for(server) as client:
        order_id = import_order(client, "ADDR-2", [("ALP-VEST-12", 1)])
        applied = client.update_order_addresses(order_id, shipping_address=LYON, billing_address={**LYON, "city": "Paris"})
    assert applied is False and "billing address" in caplog.text
    order = store.order(order_id)
    assert order["shippingAddress"]["city"] == "Lyon" and order["billingAddress"] is None


def test_a_refused_address_raises(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        order_id = import_order(client, "ADDR-3", [("ALP-VEST-12", 1)])
        with pytest.raises(ShopifyUserError) as refused:
            client.update_order_addresses(order_id, shipping_address={**LYON, "lastName": ""})
    assert refused.value.user_errors == [{"field": ["shippingAddress", "lastName"], "message": "Enter a last name",
                                          "code": None}]
    assert store.order(order_id)["shippingAddress"] is None


def test_lost_answer_to_an_address_update_is_resent():
    store, server = start_store(app=lambda asgi: LoseAnswers(asgi, n=1, operation="OrderUpdate"),
                                bucket_size=2000, restore_rate=1000)
    try:
        with client_for(server) as client:
            order_id = import_order(client, "ADDR-4", [("ALP-VEST-12", 1)])
            client.update_order_addresses(order_id, shipping_address=LYON)
            assert client.calls["OrderUpdate"] == 2
        assert store.order(order_id)["shippingAddress"]["city"] == "Lyon"
    finally:
        server.stop()
