"""orderMarkAsPaid on the sandbox store over loopback HTTP: the payment, the refusal of a second one, webhooks.

Expected values are those of the real responses recorded by airhorns/shopify-draft-proxy
(fixtures/conformance/harry-test-heelo.myshopify.com/2026-04/orders/orderMarkAsPaid-state-and-money.json;
not in ../shared, so quoted here).
"""

import json
import time
from pathlib import Path

import pytest

from mirakl_pipelines.sandbox.shopify.harness import running_store
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines_tests.reference import reference_file
from mirakl_pipelines_tests.sandbox.conftest import ok
from mirakl_pipelines_tests.sandbox.test_shopify_webhooks import SECRET, receiver  # noqa: F401

CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "sandbox" / "catalogue.yaml"
MONEY = "shopMoney { amount currencyCode } presentmentMoney { amount currencyCode }"
ORDER_FIELDS = f"""id presentmentCurrencyCode displayFinancialStatus paymentGatewayNames fullyPaid
  totalOutstandingSet {{ {MONEY} }} totalReceivedSet {{ {MONEY} }}
  transactions {{ kind status gateway amountSet {{ {MONEY} }} parentTransaction {{ kind }} }}"""
CREATE = f"""mutation($order: OrderCreateOrderInput!) {{ orderCreate(order: $order) {{
  order {{ {ORDER_FIELDS} }} userErrors {{ field message }} }} }}"""
MARK_PAID = f"""mutation($input: OrderMarkAsPaidInput!) {{ orderMarkAsPaid(input: $input) {{
  order {{ {ORDER_FIELDS} }} userErrors {{ field message }} }} }}"""


@pytest.fixture()
def sandbox():
    reference_file("shopify/admin-2026-07.schema.graphql")
    store = ShopifyStore.from_catalogue_file(CATALOGUE)
    store.webhook_settings.time_scale = 0.0001
    try:
        with running_store(store) as connection:
            yield connection
    finally:
        store.close()


def create(sandbox, shop: str, presentment: str | None = None, **extra) -> dict:
    """The recorded setup: one custom line, not taxable, no shipping; CAD shop money, maybe USD presentment."""
    price = {"shopMoney": {"amount": shop, "currencyCode": "CAD"}}
    if presentment:
        price["presentmentMoney"] = {"amount": presentment, "currencyCode": "USD"}
    order = {"currency": "CAD", "presentmentCurrency": "USD" if presentment else "CAD", "test": True,
             "lineItems": [{"title": "Mark-as-paid line", "quantity": 1, "priceSet": price, "requiresShipping": False,
                            "taxable": False}], **extra}
    payload = ok(sandbox.graphql(CREATE, {"order": order}))["orderCreate"]
    assert payload["userErrors"] == []
    return payload["order"]


def mark_paid(sandbox, order_id: str) -> dict:
    return ok(sandbox.graphql(MARK_PAID, {"input": {"id": order_id}}))["orderMarkAsPaid"]


def bag(shop: str, shop_currency: str, presentment: str, presentment_currency: str) -> dict:
    return {"shopMoney": {"amount": shop, "currencyCode": shop_currency},
            "presentmentMoney": {"amount": presentment, "currencyCode": presentment_currency}}


def test_unpaid_order_is_paid_by_a_manual_sale_for_what_is_outstanding(sandbox):
    created = create(sandbox, "12.50")
    assert (created["displayFinancialStatus"], created["transactions"]) == (None, [])
    payload = mark_paid(sandbox, created["id"])
    assert payload["userErrors"] == []
    order = payload["order"]
    assert (order["displayFinancialStatus"], order["paymentGatewayNames"], order["fullyPaid"]) == ("PAID", ["manual"], True)
    assert order["totalOutstandingSet"] == bag("0.0", "CAD", "0.0", "CAD")
    assert order["totalReceivedSet"] == bag("12.5", "CAD", "12.5", "CAD")
    assert order["transactions"] == [{"kind": "SALE", "status": "SUCCESS", "gateway": "manual", "parentTransaction": None,
                                      "amountSet": bag("12.5", "CAD", "12.5", "CAD")}]


def test_a_second_mark_as_paid_is_refused_as_recorded_with_the_order(sandbox):
    created = create(sandbox, "12.50")
    first = mark_paid(sandbox, created["id"])
    second = mark_paid(sandbox, created["id"])
    assert second["userErrors"] == [{"field": ["id"], "message": "Order cannot be marked as paid."}]
    assert second["order"] == first["order"]  # returned, unchanged: one payment only


def test_an_order_created_paid_cannot_be_marked_as_paid(sandbox):
    created = create(sandbox, "12.50", transactions=[{"kind": "SALE", "status": "SUCCESS", "gateway": "manual", "test": True,
                                                      "amountSet": {"shopMoney": {"amount": "12.50", "currencyCode": "CAD"}}}])
    payload = mark_paid(sandbox, created["id"])
    assert payload["userErrors"] == [{"field": ["id"], "message": "Order cannot be marked as paid."}]
    assert len(payload["order"]["transactions"]) == 1


def test_multi_currency_payment_carries_both_moneys(sandbox):
    order = mark_paid(sandbox, create(sandbox, "16.99", "12.50")["id"])["order"]
    assert order["presentmentCurrencyCode"] == "USD"
    assert order["transactions"][0]["amountSet"] == bag("16.99", "CAD", "12.5", "USD")  # as recorded
    assert order["totalOutstandingSet"] == bag("0.0", "CAD", "0.0", "USD")


def test_an_open_authorization_is_captured(sandbox):
    created = create(sandbox, "18.00", transactions=[{
        "kind": "AUTHORIZATION", "status": "SUCCESS", "gateway": "manual",
        "amountSet": {"shopMoney": {"amount": "18.00", "currencyCode": "CAD"}}}])
    assert created["displayFinancialStatus"] == "AUTHORIZED"
    order = mark_paid(sandbox, created["id"])["order"]
    assert [(t["kind"], t["parentTransaction"]) for t in order["transactions"]] == [
        ("AUTHORIZATION", None), ("CAPTURE", {"kind": "AUTHORIZATION"})]
    assert order["displayFinancialStatus"] == "PAID"


def test_unknown_order_is_a_user_error(sandbox):
    payload = mark_paid(sandbox, "gid://shopify/Order/1")
    assert payload["order"] is None and payload["userErrors"][0]["field"] == ["id"]


def test_payment_sends_orders_paid_and_orders_updated_as_one_event(sandbox, receiver):  # noqa: F811
    listener, url = receiver()
    sandbox.store.subscribe(url, SECRET, ["orders/paid", "orders/updated"])
    order_id = create(sandbox, "12.50")["id"]
    mark_paid(sandbox, order_id)
    mark_paid(sandbox, order_id)  # refused: nothing more is sent
    deadline = time.monotonic() + 5
    while len(listener.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    paid, updated = listener.of_topic("orders/paid"), listener.of_topic("orders/updated")
    assert len(paid) == len(updated) == 1
    assert paid[0]["headers"]["x-shopify-event-id"] == updated[0]["headers"]["x-shopify-event-id"]
    body = json.loads(paid[0]["body"])
    assert (body["admin_graphql_api_id"], body["financial_status"], body["total_outstanding"]) == (order_id, "paid", "0.00")
