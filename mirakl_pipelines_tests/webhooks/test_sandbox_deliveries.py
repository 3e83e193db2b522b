"""The sandbox store's webhook dispatcher (signed like Shopify, written apart from the receiver) against the receiver."""

from mirakl_pipelines.sandbox.shopify.webhooks import DeliverySettings, WebhookDispatcher, WebhookFaults
from mirakl_pipelines_tests.webhooks.deliveries import SECRET, SHOP, fulfilment_payload


def _dispatcher(faults: WebhookFaults) -> WebhookDispatcher:
    settings = DeliverySettings(time_scale=0.0001, reorder_hold_seconds=0.05, concurrency=3)
    return WebhookDispatcher(lambda: SHOP, lambda: "2026-07", settings=settings, faults=faults)


def test_duplicated_and_reordered_sandbox_deliveries_are_stored_once_each(receiver):
    dispatcher = _dispatcher(WebhookFaults(duplicate_rate=0.5, reorder=True, seed=11))
    try:
        dispatcher.subscribe(receiver.url, SECRET, ["fulfillments/create", "fulfillments/update"])
        published = []
        for n in range(30):
            topic = "fulfillments/update" if n % 3 == 0 else "fulfillments/create"
            published += dispatcher.publish(topic, fulfilment_payload(fulfillment_id=7000 + n, order_id=100 + n))
        assert dispatcher.wait_idle(30)
        stats = dispatcher.stats()
    finally:
        dispatcher.stop()
    assert stats["duplicates"] > 0 and stats["reordered"] > 0, stats
    entries = receiver.ledger.inbox_after(0)
    assert sorted(e.webhook_id for e in entries) == sorted(published)
    assert {e.resource_id for e in entries} == {str(7000 + n) for n in range(30)}
    assert all(e.shop_domain == SHOP and e.event_id and e.triggered_at for e in entries)


def test_a_delivery_signed_with_another_secret_is_refused_and_never_stored(receiver):
    dispatcher = _dispatcher(WebhookFaults())
    try:
        dispatcher.subscribe(receiver.url, "some-other-app-secret", ["fulfillments/create"])
        dispatcher.publish("fulfillments/create", fulfilment_payload())
        assert dispatcher.wait_idle(30)
        statuses = {entry["status"] for entry in dispatcher.log}
    finally:
        dispatcher.stop()
    assert statuses == {401}
    assert receiver.ledger.latest_inbox_id() == 0
