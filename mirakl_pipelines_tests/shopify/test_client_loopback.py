"""ShopifyClient over real loopback HTTP against the sandbox Shopify store (schema-validated, cost-metered)."""

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines.shopify.client import ShopifyClient
from mirakl_pipelines.shopify.errors import ShopifyAuthError, ShopifyUserError
from mirakl_pipelines.shopify.models import order_ref_metafield
from mirakl_pipelines_tests.reference import reference_file

sandbox_app = pytest.importorskip("mirakl_pipelines.sandbox.shopify.app",
                                  reason="the Shopify sandbox (mirakl_pipelines.sandbox.shopify.app) is not importable")
sandbox_store = pytest.importorskip("mirakl_pipelines.sandbox.shopify.store")

CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "sandbox" / "catalogue.yaml"
CATALOGUE_SKUS = ["ALP-TRAIL-42", "ALP-TRAIL-43", "ALP-TRAIL-44", "ALP-MERINO-S", "ALP-MERINO-M",
                  "ALP-MERINO-L", "ALP-VEST-12", "LUM-HEAD-400", "LUM-BOTTLE-750"]
TOKEN = "t"


def start_store(app=None, **settings):
    reference_file("shopify/admin-2026-07.schema.graphql")  # the sandbox executes the saved SDL
    settings.setdefault("access_token", TOKEN)
    store = sandbox_store.ShopifyStore.from_catalogue_file(CATALOGUE, sandbox_store.StoreSettings(**settings))
    asgi = sandbox_app.create_shopify_app(store)
    server = serve_in_thread(app(asgi) if app else asgi, name="shopify-sandbox")
    return store, server


@pytest.fixture
def sandbox():
    store, server = start_store(bucket_size=2000, restore_rate=1000)
    yield store, server
    server.stop()


def client_for(server, **kw):
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("timeout", 5.0)
    return ShopifyClient(server.url, kw.pop("token", TOKEN), **kw)


def order_input(source_identifier: str, variant, quantity: int = 1) -> dict:
    total = variant.price * quantity
    return {
        "sourceName": "mirakl",
        "sourceIdentifier": source_identifier,
        "currency": "EUR",
        "email": "buyer@example.com",
        "tags": ["mirakl", "decathlon"],
        "metafields": [order_ref_metafield(source_identifier)],
        "lineItems": [{"variantId": variant.id, "quantity": quantity,
                       "priceSet": {"shopMoney": {"amount": variant.price, "currencyCode": "EUR"}}}],
        "transactions": [{"kind": "SALE", "status": "SUCCESS", "gateway": "mirakl",
                          "amountSet": {"shopMoney": {"amount": total, "currencyCode": "EUR"}}}],
    }


OPTIONS = {"inventoryBehaviour": "DECREMENT_IGNORING_POLICY", "sendReceipt": False, "sendFulfillmentReceipt": False}


def orders_with(store, source_identifier):
    return [o for o in store.orders() if o.get("sourceIdentifier") == source_identifier]


# ---------------------------------------------------------------- reads

def test_variant_lookup_is_batched_and_cached(sandbox):
    store, server = sandbox
    with client_for(server, variant_batch_size=4) as client:
        variants = client.variants_by_sku(CATALOGUE_SKUS + ["ALP-DISCONTINUED-01", "LEGACY-SKU-9"])
        assert sorted(variants) == sorted(CATALOGUE_SKUS)
        assert client.calls["VariantsBySku"] == 3  # 11 SKUs in batches of 4
        trail = variants["ALP-TRAIL-44"]
        assert trail.id.startswith("gid://shopify/ProductVariant/")
        assert trail.price == Decimal("89.90") and trail.available == 3
        assert trail.product_title == "Trail running shoe" and trail.tracked and trail.inventory_policy == "DENY"
        assert variants["ALP-MERINO-L"].available == 0 and not variants["ALP-MERINO-L"].can_serve(1)

        again = client.variants_by_sku(["ALP-TRAIL-44", "LEGACY-SKU-9", "ALP-VEST-12"])
        assert client.calls["VariantsBySku"] == 3  # hits and misses both cached
        assert sorted(again) == ["ALP-TRAIL-44", "ALP-VEST-12"]
        assert client.cost_spent > 0


def test_create_order_round_trip_and_find_by_source_identifier(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        variant = client.variants_by_sku(["ALP-TRAIL-42"])["ALP-TRAIL-42"]
        ref = client.create_order(order_input("DEC-1001-A", variant, quantity=2), OPTIONS)
        assert ref.id.startswith("gid://shopify/Order/") and ref.name.startswith("#")
        assert ref.legacy_id and ref.id.endswith(ref.legacy_id)
        assert ref.source_identifier == "DEC-1001-A"

        [stored] = store.orders()
        assert stored["id"] == ref.id
        assert [line["quantity"] for line in stored["lineItems"]] == [2]

        found = client.find_orders_by_source_identifier("DEC-1001-A")
        assert [o.id for o in found] == [ref.id]
        assert client.find_orders_by_source_identifier("DEC-1001") == []  # prefix is not a match
        assert client.find_orders_by_source_identifier("DEC-9999-Z") == []

        data = client.execute("OrderById", {"id": ref.id})
        assert data["order"]["sourceIdentifier"] == "DEC-1001-A"
        assert Decimal(data["order"]["totalPriceSet"]["shopMoney"]["amount"]) == Decimal("179.80")


def test_batched_lookup_by_order_ref(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        client.ensure_order_ref_definition()
        variant = client.variants_by_sku(["ALP-MERINO-S"])["ALP-MERINO-S"]
        refs = [f"mk:A-{n}" for n in range(27)]
        created = {ref: client.create_order(order_input(ref, variant), OPTIONS) for ref in refs}
        found = client.orders_by_ref(refs + ["mk:A-27", "mk:A", "mk:A-1"])  # two absent, one asked twice
        assert client.calls["OrderByIdentifier"] == 2  # 29 distinct references, 25 per request
    assert {ref: o.id for ref, o in found.items()} == {ref: o.id for ref, o in created.items()}


def test_user_errors_are_typed_with_fields(sandbox):
    store, server = sandbox
    with client_for(server) as client, pytest.raises(ShopifyUserError) as caught:
        client.create_order({"sourceIdentifier": "DEC-EMPTY", "lineItems": []}, OPTIONS)
    assert caught.value.operation == "OrderCreate"
    assert caught.value.user_errors[0]["field"] == ["order", "lineItems"]
    assert caught.value.user_errors[0]["code"] == "INVALID"
    assert store.orders() == []


def test_wrong_token_is_an_auth_error(sandbox):
    store, server = sandbox
    with client_for(server, token="wrong") as client, pytest.raises(ShopifyAuthError):
        client.variants_by_sku(["ALP-TRAIL-42"])


# ---------------------------------------------------------------- throttling

def test_small_bucket_is_paced_not_hammered():
    restore_rate = 400
    store, server = start_store(bucket_size=40, restore_rate=restore_rate)
    try:
        with client_for(server, max_retries=1) as client:  # a second THROTTLED in a row would raise
            variant = client.variants_by_sku(["LUM-HEAD-400"])["LUM-HEAD-400"]
            count, spent_before = 40, client.cost_spent
            start = time.monotonic()
            for n in range(count):
                client.create_order(order_input(f"CAR-{n:04d}", variant), OPTIONS)
            elapsed = time.monotonic() - start
            assert len(store.orders()) == count
            assert client.throttle_wait_seconds > 0  # it paced itself
            assert client.throttled["OrderCreate"] == 0  # paced from the bucket it read, never refused
            # Beyond the first bucket, points flow at (almost) the restore rate: pacing costs ≤ 10 % throughput.
            points = client.cost_spent - spent_before
            ceiling_seconds = max(0.0, points - 40) / restore_rate
            assert elapsed >= 0.9 * ceiling_seconds
            assert elapsed <= ceiling_seconds / 0.9 + 0.2
    finally:
        server.stop()


def test_http_429_bursts_are_recovered(sandbox):
    store, server = sandbox
    store.faults.update(burst_429=3, retry_after_seconds=0)
    with client_for(server, max_retries=5) as client:
        assert "ALP-VEST-12" in client.variants_by_sku(["ALP-VEST-12"])
        assert client.calls["VariantsBySku"] == 4
        assert client.throttled["VariantsBySku"] == 3


def test_5xx_bursts_are_recovered(sandbox):
    store, server = sandbox
    store.faults.update(error_5xx_rate=0.5, seed=3)
    with client_for(server, max_retries=8) as client:
        variants = client.variants_by_sku(CATALOGUE_SKUS)
        assert len(variants) == len(CATALOGUE_SKUS)
        assert client.calls["VariantsBySku"] > 1  # some requests failed and were retried


# ---------------------------------------------------------------- exactly-once orderCreate

class LoseAnswers:
    """Lets the sandbox execute the next `n` requests of `operation`, then drops the connection instead of answering."""

    def __init__(self, app, n: int, operation: str = "OrderCreate"):
        self.app, self.remaining, self.operation = app, n, operation

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.remaining <= 0:
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)

        async def replay():
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            targeted = json.loads(body).get("operationName") == self.operation
        except ValueError:
            targeted = False
        if not targeted:
            return await self.app(scope, replay, send)
        self.remaining -= 1

        async def swallow(message):
            pass

        await self.app(scope, replay, swallow)  # the mutation is applied…
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        raise ConnectionAbortedError(f"test: answer to {self.operation} lost")  # …and the answer never arrives


def test_lost_answer_to_order_create_is_looked_up_not_duplicated():
    store, server = start_store(app=lambda asgi: LoseAnswers(asgi, n=1),
                                bucket_size=2000, restore_rate=1000)
    try:
        store.settings.search_index_lag_seconds = 60  # the search would not see the order: the look-up reads it
        with client_for(server) as client:
            client.ensure_order_ref_definition()
            variant = client.variants_by_sku(["ALP-TRAIL-43"])["ALP-TRAIL-43"]
            ref = client.create_order(order_input("DAR-LOST-1", variant), OPTIONS)
            assert client.calls["OrderCreate"] == 1  # not resent
            assert client.calls["OrderByIdentifier"] == 1
        assert [o["id"] for o in orders_with(store, "DAR-LOST-1")] == [ref.id]
        assert len(store.orders()) == 1
    finally:
        server.stop()


def test_dropped_connections_before_create_are_resent_exactly_once(sandbox):
    store, server = sandbox
    store.settings.search_index_lag_seconds = 60
    with client_for(server, max_retries=8) as client:
        client.ensure_order_ref_definition()
        variant = client.variants_by_sku(["LUM-BOTTLE-750"])["LUM-BOTTLE-750"]
        store.faults.update(drop_rate=0.3, seed=7)
        refs = [client.create_order(order_input(f"LM-{n}", variant), OPTIONS) for n in range(12)]
        store.faults.reset()
        assert client.calls["OrderByIdentifier"] > 0  # some creates had an unknown outcome
    assert len(store.orders()) == 12
    for n, ref in enumerate(refs):
        assert [o["id"] for o in orders_with(store, f"LM-{n}")] == [ref.id]
