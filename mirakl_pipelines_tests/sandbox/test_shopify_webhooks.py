"""Webhook deliveries of the sandbox store to a real receiver on loopback: shape, signature, faults."""

import base64
import hashlib
import hmac
import json
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mirakl_pipelines.sandbox.server import free_port, serve_in_thread
from mirakl_pipelines.sandbox.shopify.fulfillment_create import fulfillment_create, fulfillment_tracking_info_update
from mirakl_pipelines.sandbox.shopify.harness import running_store
from mirakl_pipelines.sandbox.shopify.order_create import order_create
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines.sync.order_mapping import LINE_ID_PROPERTY
from mirakl_pipelines_tests.reference import reference_file

CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "sandbox" / "catalogue.yaml"
SECRET = "whsec_sandbox_test"
TOPICS = ["fulfillments/create", "fulfillments/update", "orders/create", "orders/updated"]


class Receiver:
    """A webhook endpoint that records every request (raw body, headers); can fail the first N with 500."""

    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.received: list[dict] = []
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hooks", self.endpoint, methods=["POST"])])

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append({"headers": {k.lower(): v for k, v in request.headers.items()}, "body": body,
                                  "at": time.monotonic()})
            if len(self.received) <= self.fail_first:
                return Response(status_code=500)
        return Response(status_code=200)

    def of_topic(self, topic: str) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["headers"]["x-shopify-topic"] == topic]


@pytest.fixture()
def receiver():
    made = []

    def start(fail_first: int = 0) -> tuple[Receiver, str]:
        r = Receiver(fail_first)
        server = serve_in_thread(r.app, name="webhook-receiver")
        made.append(server)
        return r, f"{server.url}/hooks"

    yield start
    for server in made:
        server.stop()


@pytest.fixture()
def store():
    s = ShopifyStore.from_catalogue_file(CATALOGUE)
    s.webhook_settings.time_scale = 0.0001  # the 4 h retry schedule in 1.4 s
    try:
        yield s
    finally:
        s.close()


def place_order(store: ShopifyStore, lines=(("ALP-TRAIL-42", 2), ("LUM-HEAD-400", 1)), source="decathlon_fr:MKP-9") -> dict:
    payload = order_create(store, {
        "sourceName": "mirakl", "sourceIdentifier": source, "tags": ["mirakl", "decathlon_fr"], "email": "zoe@example.com",
        "shippingAddress": {"firstName": "Zoë", "lastName": "Lefèvre", "address1": "12 rue de la République",
                            "city": "Lyon", "zip": "69002", "countryCode": "FR"},
        "lineItems": [{"variantId": store.variant_by_sku(sku)["id"], "quantity": q,
                       "properties": [{"name": LINE_ID_PROPERTY, "value": f"{source}-{n + 1}"}]}
                      for n, (sku, q) in enumerate(lines)],
    }, {"inventoryBehaviour": "BYPASS"}, "2026-07")
    assert payload["userErrors"] == []
    return payload["order"]


def ship(store: ShopifyStore, order: dict, number: str = "6A10000000001") -> dict:
    result = fulfillment_create(store, {
        "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": order["fulfillmentOrders"][0]["id"]}],
        "trackingInfo": {"number": number, "company": "Colissimo",
                         "url": f"https://www.laposte.fr/outils/suivre-vos-envois?code={number}"}})
    assert result["userErrors"] == []
    return result["fulfillment"]


def expected_signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_fulfillment_webhook_is_signed_and_shaped_like_shopify(store, receiver):
    r, url = receiver()
    store.subscribe(url, SECRET, TOPICS)
    order = place_order(store)
    fulfillment = ship(store, order)
    assert store.webhooks.wait_idle(5)

    (delivery,) = r.of_topic("fulfillments/create")
    headers, body = delivery["headers"], delivery["body"]
    assert hmac.compare_digest(headers["x-shopify-hmac-sha256"], expected_signature(body))
    assert not hmac.compare_digest(headers["x-shopify-hmac-sha256"], expected_signature(body, "another secret"))
    assert headers["x-shopify-shop-domain"] == store.settings.shop_domain
    assert headers["x-shopify-api-version"] == store.settings.api_version
    assert headers["content-type"] == "application/json"
    for name in ("x-shopify-webhook-id", "x-shopify-event-id", "x-shopify-triggered-at"):
        assert headers[name]
    assert headers["x-shopify-triggered-at"].endswith("Z") and "." in headers["x-shopify-triggered-at"]

    payload = json.loads(body, parse_float=Decimal)
    assert payload["id"] == int(fulfillment["legacyResourceId"])
    assert payload["admin_graphql_api_id"] == fulfillment["id"]
    assert payload["order_id"] == int(order["legacyResourceId"])
    assert payload["name"] == f"{order['name']}.1" and payload["status"] == "success"
    assert payload["tracking_company"] == "Colissimo"
    assert payload["tracking_number"] == "6A10000000001" and payload["tracking_numbers"] == ["6A10000000001"]
    assert payload["tracking_url"].endswith("6A10000000001") and payload["tracking_urls"] == [payload["tracking_url"]]
    assert payload["created_at"][-6] in "+-" and payload["updated_at"]  # shop time zone offset, REST style
    assert payload["destination"]["city"] == "Lyon" and payload["destination"]["country_code"] == "FR"
    lines = payload["line_items"]
    assert [(line["sku"], line["quantity"]) for line in lines] == [("ALP-TRAIL-42", 2), ("LUM-HEAD-400", 1)]
    assert lines[0]["properties"] == [{"name": LINE_ID_PROPERTY, "value": "decathlon_fr:MKP-9-1"}]
    assert isinstance(lines[0]["id"], int) and lines[0]["admin_graphql_api_id"] == order["lineItems"][0]["id"]
    assert isinstance(lines[0]["price"], str) and lines[0]["price"].count(".") == 1 and len(lines[0]["price"].split(".")[1]) == 2
    assert lines[0]["fulfillment_status"] == "fulfilled"

    # One merchant action, two topics: the same event id, distinct webhook ids.
    (updated,) = r.of_topic("orders/updated")
    assert updated["headers"]["x-shopify-event-id"] == headers["x-shopify-event-id"]
    assert updated["headers"]["x-shopify-webhook-id"] != headers["x-shopify-webhook-id"]
    order_body = json.loads(updated["body"])
    assert order_body["fulfillment_status"] == "fulfilled" and order_body["tags"] == "decathlon_fr, mirakl"
    assert order_body["source_identifier"] == "decathlon_fr:MKP-9"
    assert [f["name"] for f in order_body["fulfillments"]] == [f"{order['name']}.1"]


def test_order_create_and_tracking_update_are_delivered(store, receiver):
    r, url = receiver()
    store.subscribe(url, SECRET, TOPICS)
    order = place_order(store)
    fulfillment = ship(store, order)
    result = fulfillment_tracking_info_update(store, fulfillment["id"], {"numbers": ["XW1FR", "XW2FR"], "company": "Chronopost"})
    assert result["userErrors"] == []
    assert store.webhooks.wait_idle(5)

    (created,) = r.of_topic("orders/create")
    created_body = json.loads(created["body"])
    assert created_body["name"] == order["name"] and created_body["fulfillment_status"] is None
    assert created_body["line_items"][1]["properties"] == [{"name": LINE_ID_PROPERTY, "value": "decathlon_fr:MKP-9-2"}]
    (update,) = r.of_topic("fulfillments/update")
    body = json.loads(update["body"])
    assert body["id"] == int(fulfillment["legacyResourceId"])
    assert body["tracking_company"] == "Chronopost" and body["tracking_numbers"] == ["XW1FR", "XW2FR"]
    assert len(r.of_topic("orders/updated")) == 2


def test_only_subscribed_topics_are_delivered_and_nothing_is_built_without_subscribers(store, receiver):
    assert store.publish("orders/create", lambda: pytest.fail("payload built with no subscriber")) == []
    r, url = receiver()
    store.subscribe(url, SECRET, ["fulfillments/create"])
    ship(store, place_order(store))
    assert store.webhooks.wait_idle(5)
    assert [d["headers"]["x-shopify-topic"] for d in r.received] == ["fulfillments/create"]


def test_failed_deliveries_are_retried_with_the_original_body_and_id(store, receiver):
    r, url = receiver(fail_first=2)
    store.subscribe(url, SECRET, ["fulfillments/create"])
    ship(store, place_order(store))
    assert store.webhooks.wait_idle(5)
    assert len(r.received) == 3
    assert len({d["headers"]["x-shopify-webhook-id"] for d in r.received}) == 1
    assert len({d["body"] for d in r.received}) == 1
    stats = store.webhooks.stats()
    assert stats["retries"] == 2 and stats["delivered"] == 1 and stats["failed_attempts"] == 2


def test_unreachable_subscriber_is_retried_eight_times_then_given_up(store):
    store.webhook_settings.time_scale = 0.00001  # 4 h in 0.14 s
    store.subscribe(f"http://127.0.0.1:{free_port()}/nobody", SECRET, ["fulfillments/create"])
    ship(store, place_order(store))
    assert store.webhooks.wait_idle(10)
    stats = store.webhooks.stats()
    assert stats["attempts"] == 9 and stats["retries"] == 8 and stats["given_up"] == 1 and stats["delivered"] == 0


def test_duplicates_carry_the_same_webhook_id(store, receiver):
    r, url = receiver()
    store.subscribe(url, SECRET, ["fulfillments/create"])
    store.webhook_faults.update(duplicate_rate=1.0)
    ship(store, place_order(store))
    assert store.webhooks.wait_idle(5)
    assert len(r.received) == 2
    first, second = r.received
    assert first["headers"]["x-shopify-webhook-id"] == second["headers"]["x-shopify-webhook-id"]
    assert first["body"] == second["body"]
    assert store.webhooks.stats()["duplicates"] == 1


def test_reorder_swaps_consecutive_deliveries(store, receiver):
    r, url = receiver()
    store.webhook_settings.concurrency = 1
    store.subscribe(url, SECRET, ["fulfillments/create"])
    store.webhook_faults.update(reorder=True)
    first = ship(store, place_order(store, source="decathlon_fr:A"), "6A1")
    second = ship(store, place_order(store, source="decathlon_fr:B"), "6A2")
    assert store.webhooks.wait_idle(5)
    received = [json.loads(d["body"])["admin_graphql_api_id"] for d in r.received]
    assert received == [second["id"], first["id"]]


def test_a_lone_held_delivery_is_released_after_the_hold(store, receiver):
    r, url = receiver()
    store.webhook_settings.reorder_hold_seconds = 0.05
    store.subscribe(url, SECRET, ["fulfillments/create"])
    store.webhook_faults.update(reorder=True)
    ship(store, place_order(store))
    assert store.webhooks.wait_idle(5)
    assert len(r.received) == 1


def test_dropped_deliveries_never_arrive_but_the_fulfilment_exists(store, receiver):
    r, url = receiver()
    store.subscribe(url, SECRET, ["fulfillments/create", "orders/updated"])
    store.webhook_faults.update(drop=True)
    fulfillment = ship(store, place_order(store))
    assert store.webhooks.wait_idle(5)
    time.sleep(0.05)
    assert r.received == []
    assert store.webhooks.stats()["dropped"] == 2
    assert fulfillment["id"] in store.fulfillments


def test_late_redelivery_repeats_the_delivery_later(store, receiver):
    r, url = receiver()
    store.subscribe(url, SECRET, ["fulfillments/create"])
    store.webhook_faults.update(late_redelivery_seconds=0.2)
    ship(store, place_order(store))
    assert store.webhooks.wait_idle(5)
    assert len(r.received) == 2
    first, late = r.received
    assert first["headers"]["x-shopify-webhook-id"] == late["headers"]["x-shopify-webhook-id"]
    assert late["at"] - first["at"] >= 0.2


def test_knobs_and_subscriptions_over_http(store, receiver):
    reference_file("shopify/admin-2026-07.schema.graphql")  # the store's HTTP app validates GraphQL: skip without the SDL
    r, url = receiver()
    with running_store(store) as sandbox:
        http = sandbox.http
        created = http.post("/_sandbox/webhooks/subscriptions",
                            json={"url": url, "secret": SECRET, "topics": ["fulfillments/create"]})
        assert created.status_code == 201 and "secret" not in created.json()
        assert http.post("/_sandbox/webhooks/subscriptions", json={"url": url}).status_code == 400
        knobs = http.post("/_sandbox/webhooks", json={"duplicate_rate": 1, "seed": 3})
        assert knobs.status_code == 200 and knobs.json()["faults"]["duplicate_rate"] == 1.0
        bad = http.post("/_sandbox/webhooks", json={"explode": True})
        assert bad.status_code == 400 and "explode" in bad.json()["message"]
        ship(store, place_order(store))
        assert store.webhooks.wait_idle(5)
        state = http.get("/_sandbox/webhooks").json()
        assert state["stats"]["delivered"] == 2 and state["stats"]["duplicates"] == 1
        assert state["subscriptions"][0]["url"] == url and SECRET not in json.dumps(state)
    assert len(r.received) == 2


def test_subscription_input_is_checked(store):
    with pytest.raises(ValueError, match="http"):
        store.subscribe("ftp://example.com", SECRET, ["fulfillments/create"])
    with pytest.raises(ValueError, match="secret"):
        store.subscribe("http://127.0.0.1:1/x", "", ["fulfillments/create"])
    with pytest.raises(ValueError, match="topics"):
        store.subscribe("http://127.0.0.1:1/x", SECRET, ["fulfillments"])
