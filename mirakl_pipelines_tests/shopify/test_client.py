"""ShopifyClient behaviour against scripted answers (httpx.MockTransport): wire format, error mapping,
retries, exactly-once orderCreate, variant batching. The same behaviours are exercised over real
loopback HTTP against the sandbox store in test_client_loopback.py."""

import json
import logging
from decimal import Decimal

import httpx
import pytest

from mirakl_pipelines.shopify.client import ShopifyClient, search_value
from mirakl_pipelines.shopify.models import order_ref_metafield
from mirakl_pipelines.shopify.errors import (
    ShopifyAmbiguousWrite,
    ShopifyAuthError,
    ShopifyError,
    ShopifyGraphQLError,
    ShopifyServerError,
    ShopifyThrottled,
    ShopifyUserError,
)

TOKEN = "shpat_secret_token_value"


def cost(requested=10, actual=10, available=1990, maximum=2000, rate=100):
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                     "throttleStatus": {"maximumAvailable": maximum, "currentlyAvailable": available,
                                        "restoreRate": rate}}}


def ok(data, **cost_kw):
    return httpx.Response(200, json={"data": data, "extensions": cost(**cost_kw)})


def order_node(n, source_identifier="MK-1"):
    return {"id": f"gid://shopify/Order/{n}", "legacyResourceId": str(n), "name": f"#{1000 + n}",
            "sourceName": "mirakl", "sourceIdentifier": source_identifier, "createdAt": "2026-07-01T10:00:00Z"}


def created(n=1, source_identifier="MK-1"):
    return ok({"orderCreate": {"order": order_node(n, source_identifier), "userErrors": []}})


def found(*nodes):
    return ok({"orders": {"nodes": list(nodes), "pageInfo": {"hasNextPage": False, "endCursor": None}}})


def by_ref(*nodes):
    """An answer to the aliased OrderByIdentifier batch: r0, r1… (None: no such order)."""
    return ok({f"r{i}": node for i, node in enumerate(nodes)}, requested=len(nodes), actual=len(nodes))


class Script:
    """Answers each request with the next scripted reply for its operation; records every request."""

    def __init__(self, **replies):
        self.replies = {op: list(r) for op, r in replies.items()}
        self.requests: list[httpx.Request] = []
        self.bodies: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(request)
        self.bodies.append(body)
        queue = self.replies[body["operationName"]]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(request, body) if callable(reply) else reply

    def operations(self) -> list[str]:
        return [b["operationName"] for b in self.bodies]


@pytest.fixture
def slept():
    return []


def make_client(script, slept, **kw):
    kw.setdefault("max_retries", 3)
    return ShopifyClient("https://brand.myshopify.com/", TOKEN, transport=httpx.MockTransport(script),
                         backoff_base=0.01, sleep=slept.append, **kw)


ORDER = {"sourceIdentifier": "MK-1", "sourceName": "mirakl", "metafields": [order_ref_metafield("MK-1")], "lineItems": [
    {"sku": "ALP-TRAIL-42", "quantity": 1,
     "priceSet": {"shopMoney": {"amount": Decimal("89.90"), "currencyCode": "EUR"}}}]}


# ---------------------------------------------------------------- wire format

def test_request_wire_format_and_money_sent_as_exact_strings(slept):
    script = Script(OrderCreate=[created()])
    with make_client(script, slept) as client:
        client.create_order(ORDER, {"inventoryBehaviour": "BYPASS"})
    request, body = script.requests[0], script.bodies[0]
    assert str(request.url) == "https://brand.myshopify.com/admin/api/2026-07/graphql.json"
    assert request.method == "POST"
    assert request.headers["X-Shopify-Access-Token"] == TOKEN
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"].startswith("mirakl-pipelines/")
    assert body["operationName"] == "OrderCreate"
    assert body["query"].lstrip().startswith("#") and "mutation OrderCreate" in body["query"]
    assert body["variables"]["order"]["lineItems"][0]["priceSet"]["shopMoney"]["amount"] == "89.90"
    assert body["variables"]["options"] == {"inventoryBehaviour": "BYPASS"}


def test_numbers_in_answers_are_read_as_decimal(slept):
    script = Script(OrderById=[ok({"order": {"id": "gid://shopify/Order/1", "rate": 0.1}})])
    with make_client(script, slept) as client:
        data = client.execute("OrderById", {"id": "gid://shopify/Order/1"})
    assert data["order"]["rate"] == Decimal("0.1") and isinstance(data["order"]["rate"], Decimal)


def test_token_never_logged_nor_shown(slept, caplog):
    caplog.set_level(logging.DEBUG)
    script = Script(OrderById=[httpx.Response(503, text="down"), ok({"order": None})])
    with make_client(script, slept) as client:
        client.execute("OrderById", {"id": "gid://shopify/Order/1"})
        assert TOKEN not in repr(client)
    assert caplog.records, "the retry should have been logged"
    assert TOKEN not in caplog.text


def test_counts_calls_and_cost(slept):
    script = Script(OrderById=[ok({"order": None}, actual=7), ok({"order": None}, actual=5)])
    with make_client(script, slept) as client:
        client.execute("OrderById", {"id": "gid://shopify/Order/1"})
        client.execute("OrderById", {"id": "gid://shopify/Order/2"})
        assert client.calls["OrderById"] == 2
        assert client.cost_spent == 12


# ---------------------------------------------------------------- error mapping

@pytest.mark.parametrize("status", [401, 403])
def test_http_auth_failures(slept, status):
    script = Script(OrderById=[httpx.Response(status, text="[API] Invalid API key or access token")])
    with make_client(script, slept) as client, pytest.raises(ShopifyAuthError) as caught:
        client.execute("OrderById", {"id": "x"})
    assert caught.value.operation == "OrderById" and caught.value.status_code == status
    assert len(script.requests) == 1  # never retried


def test_access_denied_is_an_auth_error(slept):
    denied = {"message": "Access denied for orderCreate field.", "extensions": {"code": "ACCESS_DENIED"},
              "path": ["orderCreate"]}
    script = Script(OrderCreate=[httpx.Response(200, json={"errors": [denied], "data": {"orderCreate": None}})])
    with make_client(script, slept) as client, pytest.raises(ShopifyAuthError, match="Access denied"):
        client.create_order(ORDER)


def test_top_level_errors_raise_graphql_error_with_the_list(slept):
    error = {"message": "Variable $id of type ID! was provided invalid value",
             "extensions": {"code": "INVALID_VARIABLE", "value": None, "problems": [{"path": [], "explanation": "x"}]}}
    script = Script(OrderById=[httpx.Response(200, json={"errors": [error]})])
    with make_client(script, slept) as client, pytest.raises(ShopifyGraphQLError) as caught:
        client.execute("OrderById", {"id": None})
    assert caught.value.errors == [error]
    assert caught.value.codes == ["INVALID_VARIABLE"]
    assert "INVALID_VARIABLE" in str(caught.value)


def test_user_errors_raise_with_fields_and_codes(slept):
    errors = [{"field": ["order", "lineItems"], "message": "Line items must have at least one line item",
               "code": "INVALID"}]
    script = Script(OrderCreate=[ok({"orderCreate": {"order": None, "userErrors": errors}})])
    with make_client(script, slept) as client, pytest.raises(ShopifyUserError) as caught:
        client.create_order({"sourceIdentifier": "MK-1", "lineItems": []})
    assert caught.value.user_errors == errors
    assert caught.value.codes == ["INVALID"]
    assert "order.lineItems: Line items must have at least one line item" in str(caught.value)
    assert len(script.requests) == 1


def test_unknown_operation_is_refused_before_any_request(slept):
    script = Script()
    with make_client(script, slept) as client, pytest.raises(KeyError, match="Nope"):
        client.execute("Nope")
    assert script.requests == []


def test_non_json_answer_is_a_server_error(slept):
    script = Script(OrderById=[httpx.Response(200, text="<html>maintenance</html>")])
    with make_client(script, slept) as client, pytest.raises(ShopifyServerError, match="not a JSON"):
        client.execute("OrderById", {"id": "x"})


# ---------------------------------------------------------------- throttling

THROTTLED = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
             "extensions": cost(requested=70, actual=None, available=66, maximum=1000, rate=50)}


def test_throttled_200_waits_the_missing_points_then_succeeds(slept):
    script = Script(OrderById=[httpx.Response(200, json=THROTTLED), ok({"order": None})])
    with make_client(script, slept) as client:
        client.execute("OrderById", {"id": "x"})
        assert client.calls["OrderById"] == 2
        assert client.throttle_wait_seconds == pytest.approx(4 / 50, abs=5e-3)
    assert slept and slept[0] == pytest.approx(4 / 50, abs=5e-3)


def test_still_throttled_after_retries(slept):
    script = Script(OrderById=[httpx.Response(200, json=THROTTLED)])
    with make_client(script, slept, max_retries=2) as client, pytest.raises(ShopifyThrottled):
        client.execute("OrderById", {"id": "x"})
    assert len(script.requests) == 3


def test_http_429_honours_retry_after(slept):
    script = Script(OrderById=[httpx.Response(429, headers={"Retry-After": "2"}, text="{}"), ok({"order": None})])
    with make_client(script, slept) as client:
        client.execute("OrderById", {"id": "x"})
    assert 2.0 in slept
    assert len(script.requests) == 2


def test_paces_before_sending_when_the_bucket_is_low(slept):
    script = Script(OrderById=[ok({"order": None}, requested=30, available=10, rate=100), ok({"order": None})])
    with make_client(script, slept) as client:
        client.execute("OrderById", {"id": "x"})
        client.execute("OrderById", {"id": "x"})
        assert client.throttle_wait_seconds == pytest.approx(0.2, abs=5e-3)


# ---------------------------------------------------------------- retries and exactly-once writes

def test_queries_retry_5xx_and_transport_errors(slept):
    script = Script(OrderById=[httpx.Response(503, text="x"), httpx.ReadTimeout("slow"),
                               httpx.RemoteProtocolError("dropped"), ok({"order": None})])
    with make_client(script, slept) as client:
        assert client.execute("OrderById", {"id": "x"}) == {"order": None}
    assert len(script.requests) == 4
    assert len(slept) == 3 and all(0 < s < 1 for s in slept)  # backoff with jitter, bounded


def test_queries_give_up_after_max_retries(slept):
    script = Script(OrderById=[httpx.Response(502, text="bad gateway")])
    with make_client(script, slept, max_retries=2) as client, pytest.raises(ShopifyServerError) as caught:
        client.execute("OrderById", {"id": "x"})
    assert not isinstance(caught.value, ShopifyAmbiguousWrite)
    assert caught.value.status_code == 502 and len(script.requests) == 3


def test_raw_mutation_is_not_resent_after_an_ambiguous_failure(slept):
    script = Script(OrderCreate=[httpx.ReadTimeout("no answer"), created()])
    with make_client(script, slept) as client, pytest.raises(ShopifyAmbiguousWrite):
        client.execute("OrderCreate", {"order": ORDER})
    assert script.operations() == ["OrderCreate"]


def test_mutation_is_resent_when_the_request_never_left(slept):
    script = Script(OrderCreate=[httpx.ConnectError("refused"), created()])
    with make_client(script, slept) as client:
        assert client.create_order(ORDER).id == "gid://shopify/Order/1"
    assert script.operations() == ["OrderCreate", "OrderCreate"]


def test_create_order_lost_answer_returns_the_existing_order(slept):
    script = Script(OrderCreate=[httpx.ReadTimeout("answer lost")], OrderByIdentifier=[by_ref(order_node(7, "MK-1"))])
    with make_client(script, slept) as client:
        ref = client.create_order(ORDER)
    assert ref.id == "gid://shopify/Order/7" and ref.legacy_id == "7" and ref.name == "#1007"
    assert script.operations() == ["OrderCreate", "OrderByIdentifier"]  # read directly, not searched
    assert script.bodies[1]["variables"] == {
        "identifier0": {"customId": {"namespace": "mirakl", "key": "order_ref", "value": "MK-1"}}}
    assert "r0: orderByIdentifier(identifier: $identifier0)" in script.bodies[1]["query"]


def test_create_order_5xx_and_absent_is_sent_again(slept):
    script = Script(OrderCreate=[httpx.Response(503, text="x"), created(3)], OrderByIdentifier=[by_ref(None)])
    with make_client(script, slept) as client:
        assert client.create_order(ORDER).id == "gid://shopify/Order/3"
    assert script.operations() == ["OrderCreate", "OrderByIdentifier", "OrderCreate"]


def test_create_order_refused_because_the_reference_is_taken_links_the_existing_order(slept):
    """A concurrent run created the order between our look-up and our create: Shopify refuses the unique value."""
    taken = ok({"orderCreate": {"order": None, "userErrors": [
        {"field": ["order", "metafields", "0", "value"], "message": "Value has already been taken", "code": "INVALID"}]}})
    script = Script(OrderCreate=[taken], OrderByIdentifier=[by_ref(order_node(8, "MK-1"))])
    with make_client(script, slept) as client:
        assert client.create_order(ORDER).id == "gid://shopify/Order/8"
    assert script.operations() == ["OrderCreate", "OrderByIdentifier"]


def test_create_order_other_refusals_are_not_looked_up(slept):
    refused = ok({"orderCreate": {"order": None, "userErrors": [
        {"field": ["order", "lineItems"], "message": "Line items must have at least one line item", "code": "INVALID"}]}})
    script = Script(OrderCreate=[refused], OrderByIdentifier=[by_ref(order_node(8, "MK-1"))])
    with make_client(script, slept) as client, pytest.raises(ShopifyUserError, match="lineItems"):
        client.create_order(ORDER)
    assert script.operations() == ["OrderCreate"]


def test_create_order_gives_up_after_max_retries(slept):
    script = Script(OrderCreate=[httpx.ReadTimeout("x")], OrderByIdentifier=[by_ref(None)])
    with make_client(script, slept, max_retries=2) as client, pytest.raises(ShopifyAmbiguousWrite):
        client.create_order(ORDER)
    assert script.operations().count("OrderCreate") == 3


def test_create_order_without_order_ref_cannot_be_reconciled(slept):
    script = Script(OrderCreate=[httpx.ReadTimeout("x"), created()])
    with make_client(script, slept) as client, pytest.raises(ShopifyAmbiguousWrite):
        client.create_order({"lineItems": ORDER["lineItems"]})
    assert script.operations() == ["OrderCreate"]


# ---------------------------------------------------------------- reads: orders, variants, pagination

def test_find_orders_by_source_identifier_exact_matches_only(slept):
    script = Script(FindOrdersBySourceIdentifier=[found(order_node(1, "MK-1"), order_node(2, "MK-1-B"))])
    with make_client(script, slept) as client:
        refs = client.find_orders_by_source_identifier("MK-1")
    assert [r.id for r in refs] == ["gid://shopify/Order/1"]
    assert refs[0].created_at.isoformat() == "2026-07-01T10:00:00+00:00"


def test_malformed_order_in_the_answer_names_it(slept):
    bad = {"id": "gid://shopify/Order/5", "sourceIdentifier": "MK-1"}
    script = Script(FindOrdersBySourceIdentifier=[found(bad)])
    with make_client(script, slept) as client, pytest.raises(ShopifyError, match="Order/5"):
        client.find_orders_by_source_identifier("MK-1")


def variant_node(n, sku, **over):
    node = {"id": f"gid://shopify/ProductVariant/{n}", "sku": sku, "title": "42", "price": "89.90",
            "inventoryQuantity": 4, "inventoryPolicy": "DENY",
            "inventoryItem": {"id": f"gid://shopify/InventoryItem/{n}", "tracked": True},
            "product": {"title": "Trail running shoe"}}
    return {**node, **over}


def catalogue_search(catalogue):
    """Answer VariantsBySku by evaluating the `sku:"A" OR sku:"B"` query against `catalogue`, 2 per page."""

    def answer(request, body):
        wanted = {part.split(":", 1)[1].strip('"') for part in body["variables"]["query"].split(" OR ")}
        matches = [v for v in catalogue if v["sku"] in wanted]
        start = int(body["variables"]["after"] or 0)
        page = matches[start:start + 2]
        more = start + 2 < len(matches)
        return ok({"productVariants": {"nodes": page, "pageInfo": {
            "hasNextPage": more, "endCursor": str(start + 2) if more else None}}})

    return answer


def test_variants_batched_cached_and_ambiguous_skus_left_out(slept, caplog):
    catalogue = [variant_node(i, f"SKU-{i}") for i in range(120)]
    catalogue += [variant_node(500, "SKU-7"), variant_node(501, "SKU-70X")]  # a duplicate, a near miss
    script = Script(VariantsBySku=[catalogue_search(catalogue)])
    skus = [f"SKU-{i}" for i in range(120)] + ["UNKNOWN-1", "SKU-70", "SKU-70"]
    with make_client(script, slept) as client:
        variants = client.variants_by_sku(skus)
        queries = [b["variables"]["query"] for b in script.bodies]
        assert all(q.count("sku:") <= 50 for q in queries)
        assert {b["variables"]["first"] for b in script.bodies} == {50, 21}  # 121 distinct SKUs
        assert "UNKNOWN-1" not in variants and "SKU-7" not in variants
        assert client.ambiguous_skus == {"SKU-7": ["gid://shopify/ProductVariant/7",
                                                   "gid://shopify/ProductVariant/500"]}
        assert "SKU-7" in caplog.text
        assert len(variants) == 119
        assert variants["SKU-70"].id == "gid://shopify/ProductVariant/70"
        first_round = client.calls["VariantsBySku"]
        assert first_round >= 3

        again = client.variants_by_sku(["SKU-1", "UNKNOWN-1", "SKU-7", ""])
        assert client.calls["VariantsBySku"] == first_round  # all from the cache, misses included
        assert list(again) == ["SKU-1"]


def test_variant_fields_are_mapped(slept):
    node = variant_node(1, "A", inventoryQuantity=0, inventoryPolicy="CONTINUE", price="54.00",
                        inventoryItem={"id": "gid://shopify/InventoryItem/9", "tracked": False})
    script = Script(VariantsBySku=[ok({"productVariants": {"nodes": [node], "pageInfo": {"hasNextPage": False}}})])
    with make_client(script, slept) as client:
        variant = client.variants_by_sku(["A"])["A"]
    assert variant.price == Decimal("54.00") and variant.available == 0
    assert (variant.tracked, variant.inventory_policy) == (False, "CONTINUE")
    assert variant.inventory_item_id == "gid://shopify/InventoryItem/9"
    assert variant.product_title == "Trail running shoe" and variant.can_serve(5)


def test_search_values_are_quoted_and_escaped():
    assert search_value('A "B" \\C') == '"A \\"B\\" \\\\C"'


def test_pagination_must_advance(slept):
    stuck = ok({"orders": {"nodes": [], "pageInfo": {"hasNextPage": True, "endCursor": None}}})
    script = Script(FindOrdersBySourceIdentifier=[stuck])
    with make_client(script, slept) as client, pytest.raises(ShopifyError, match="did not advance"):
        client.find_orders_by_source_identifier("MK-1")


def test_create_order_failed_look_up_stays_ambiguous(slept):
    script = Script(OrderCreate=[httpx.ReadTimeout("x"), created()],
                    OrderByIdentifier=[httpx.Response(503, text="down")])
    with make_client(script, slept, max_retries=1) as client, pytest.raises(ShopifyAmbiguousWrite, match="MK-1"):
        client.create_order(ORDER)
    assert script.operations().count("OrderCreate") == 1
