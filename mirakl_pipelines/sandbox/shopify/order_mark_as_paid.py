"""`orderMarkAsPaid`: the outstanding amount recorded as paid by a manual payment, as Shopify does it.

Recorded (airhorns/shopify-draft-proxy fixtures/conformance/harry-test-heelo.myshopify.com/2026-04/orders/
orderMarkAsPaid-state-and-money.json; not copied to ../shared): an unpaid order gets one SUCCESS SALE
transaction on the "manual" gateway for its outstanding amount, in shop and presentment money;
displayFinancialStatus becomes PAID, totalOutstandingSet 0.0, paymentGatewayNames ["manual"]. An order
already paid is refused with `{"field": ["id"], "message": "Order cannot be marked as paid."}`, the
order still returned.

Not captured: the unknown-order message; capturing an open authorization ("will either create a new
sale transaction for the full outstanding amount or capture an existing authorized transaction",
SDL) modelled as a CAPTURE child of it; the webhooks, orders/paid and orders/updated as for any payment.
"""

from mirakl_pipelines.sandbox.shopify.money import bag_amount, bag_plus
from mirakl_pipelines.sandbox.shopify.order_create import transaction_record
from mirakl_pipelines.sandbox.shopify.rest_payloads import order_payload
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, utc_now_iso

CANNOT_BE_MARKED_AS_PAID = "Order cannot be marked as paid."
MANUAL_GATEWAY = "manual"


def order_mark_as_paid(store: ShopifyStore, order_id: str) -> dict:
    """Run one `orderMarkAsPaid`: the payload `{order, userErrors}` (UserError has no code)."""
    with store.lock:
        order = store.order_record(order_id)
        if order is None:
            # not captured: the message
            return {"order": None, "userErrors": [{"field": ["id"], "message": "Order does not exist"}]}
        outstanding = order["totalOutstandingSet"]
        if bag_amount(outstanding) <= 0 or order["displayFinancialStatus"] == "PAID":
            return {"order": order, "userErrors": [{"field": ["id"], "message": CANNOT_BE_MARKED_AS_PAID}]}
        now = utc_now_iso()
        authorization = _open_authorization(order["transactions"])
        transaction = transaction_record(store, {
            "kind": "CAPTURE" if authorization else "SALE", "status": "SUCCESS", "gateway": MANUAL_GATEWAY,
            "test": order["test"], "amountSet": outstanding,
        }, order["currencyCode"], order["presentmentCurrencyCode"], now)
        transaction["parentTransaction"] = authorization
        paid_shop, paid_presentment = bag_amount(outstanding), bag_amount(outstanding, "presentmentMoney")
        order["transactions"].append(transaction)
        order["totalReceivedSet"] = bag_plus(order["totalReceivedSet"], paid_shop, paid_presentment)
        order["netPaymentSet"] = bag_plus(order["netPaymentSet"], paid_shop, paid_presentment)
        order["totalOutstandingSet"] = bag_plus(outstanding, -paid_shop, -paid_presentment)
        order["displayFinancialStatus"] = "PAID"
        order["fullyPaid"], order["unpaid"] = True, False
        order["paymentGatewayNames"] = sorted({*order["paymentGatewayNames"], MANUAL_GATEWAY})
        order["updatedAt"] = now
        event = store.new_event_id()  # one merchant action: the same X-Shopify-Event-Id on both topics
        store.publish("orders/paid", lambda: order_payload(store, order), event)
        store.publish("orders/updated", lambda: order_payload(store, order), event)
        return {"order": order, "userErrors": []}


def _open_authorization(transactions: list[dict]) -> dict | None:
    """A successful authorization no capture points at yet."""
    captured = {t["parentTransaction"]["id"] for t in transactions if t["kind"] == "CAPTURE" and t["parentTransaction"]}
    return next((t for t in transactions if t["kind"] == "AUTHORIZATION" and t["status"] == "SUCCESS"
                 and t["id"] not in captured), None)
