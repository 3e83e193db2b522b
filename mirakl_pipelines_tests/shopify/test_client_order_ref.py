"""Exactly-once orderCreate without Shopify's search index: the unique order reference definition (set up once per
store), `orderByIdentifier` look-ups, and the search-index lag that makes `orders(query:)` unfit for it.
Real loopback HTTP against the sandbox store."""

import pytest

from mirakl_pipelines.sandbox.shopify.metafield_definitions import metafield_definition_create
from mirakl_pipelines.shopify.errors import ShopifySetupError, ShopifyUserError
from mirakl_pipelines_tests.shopify.test_client import Script, make_client, ok, slept  # noqa: F401 (fixture)
from mirakl_pipelines_tests.shopify.test_client_loopback import (  # noqa: F401 (sandbox: a fixture)
    OPTIONS, client_for, order_input, orders_with, sandbox, start_store,
)

REF_ID = ("ORDER", "mirakl", "order_ref")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def define(store, type_name="single_line_text_field", unique=False):
    payload = metafield_definition_create(store, {
        "ownerType": "ORDER", "namespace": "mirakl", "key": "order_ref", "name": "Made by hand", "type": type_name,
        "capabilities": {"uniqueValues": {"enabled": unique}}})
    assert payload["userErrors"] == []


def test_definition_is_created_unique_once_per_store_and_process(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        client.ensure_order_ref_definition()
        client.ensure_order_ref_definition()
        assert client.calls == {"MetafieldDefinitionByIdentifier": 1, "MetafieldDefinitionCreate": 1}
    definition = store.metafield_definition(*REF_ID)
    assert definition["type"]["name"] == "id" and definition["capabilities"]["uniqueValues"]["enabled"]
    with client_for(server) as later_run:  # a new client (a later run) in the same process checks nothing again
        later_run.ensure_order_ref_definition()
        assert not later_run.calls


def test_existing_text_definition_gets_unique_values(sandbox):
    store, server = sandbox
    define(store)
    with client_for(server) as client:
        client.ensure_order_ref_definition()
        assert client.calls == {"MetafieldDefinitionByIdentifier": 1, "MetafieldDefinitionUpdate": 1}
    assert store.unique_definition(*REF_ID)["type"]["name"] == "single_line_text_field"


def test_definition_that_cannot_become_unique_stops_with_what_to_do(sandbox):
    store, server = sandbox
    define(store)
    with client_for(server) as client:
        variant = client.variants_by_sku(["ALP-TRAIL-42"])["ALP-TRAIL-42"]
        client.create_order(order_input("mk:OLD-1", variant), OPTIONS)  # an order already carries the field
        with pytest.raises(ShopifySetupError) as caught:
            client.ensure_order_ref_definition()
        message = str(caught.value)
        assert server.url in message and "mirakl.order_ref" in message and "Settings > Custom data" in message
        assert "INVALID_CAPABILITY" in message
        with pytest.raises(ShopifySetupError):  # not cached as ready
            client.ensure_order_ref_definition()


def test_definition_of_another_type_is_refused(sandbox):
    store, server = sandbox
    define(store, type_name="json")
    with client_for(server) as client, pytest.raises(ShopifySetupError, match="'json'"):
        client.ensure_order_ref_definition()


def test_definition_created_meanwhile_by_another_run_is_accepted(slept):
    absent = ok({"metafieldDefinition": None})
    existing = ok({"metafieldDefinition": {"id": "gid://shopify/MetafieldDefinition/1", "namespace": "mirakl",
                                           "key": "order_ref", "ownerType": "ORDER", "type": {"name": "id"},
                                           "capabilities": {"uniqueValues": {"enabled": True, "eligible": True}}}})
    taken = ok({"metafieldDefinitionCreate": {"createdDefinition": None, "userErrors": [
        {"field": ["definition", "key"], "message": "Key is in use for Order metafields on the 'mirakl' namespace.",
         "code": "TAKEN"}]}})
    script = Script(MetafieldDefinitionByIdentifier=[absent, existing], MetafieldDefinitionCreate=[taken])
    with make_client(script, slept) as client:
        client.ensure_order_ref_definition()
    assert script.operations() == ["MetafieldDefinitionByIdentifier", "MetafieldDefinitionCreate",
                                   "MetafieldDefinitionByIdentifier"]


@pytest.mark.parametrize("look_up", ["search by sourceIdentifier", "orderByIdentifier"])
def test_with_the_index_lag_only_the_direct_look_up_sees_a_new_order(sandbox, look_up):
    """What made the old look-up duplicate orders: right after orderCreate, the search index has not seen it."""
    store, server = sandbox
    store.clock = clock = Clock()  # the search index's clock (the cost bucket keeps the real one)
    store.settings.search_index_lag_seconds = 5
    with client_for(server) as client:
        client.ensure_order_ref_definition()
        variant = client.variants_by_sku(["ALP-TRAIL-42"])["ALP-TRAIL-42"]
        created = client.create_order(order_input("mk:LAG-1", variant), OPTIONS)

        def find():
            if look_up == "orderByIdentifier":
                return client.order_by_ref("mk:LAG-1")
            return next(iter(client.find_orders_by_source_identifier("mk:LAG-1")), None)

        seen_at_once = find()
        clock.now += 5
        assert find().id == created.id  # once indexed, both find it
    if look_up == "orderByIdentifier":
        assert seen_at_once.id == created.id
    else:
        assert seen_at_once is None  # a run that crashed before its ledger write would create it again


def test_the_same_reference_cannot_be_created_twice(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        client.ensure_order_ref_definition()
        variant = client.variants_by_sku(["ALP-MERINO-M"])["ALP-MERINO-M"]
        first = client.create_order(order_input("mk:TWICE-1", variant), OPTIONS)
        with pytest.raises(ShopifyUserError) as refused:  # the raw mutation: Shopify's userError
            client.execute("OrderCreate", {"order": order_input("mk:TWICE-1", variant), "options": OPTIONS})
        assert refused.value.user_errors == [{"field": ["order", "metafields", "0", "value"],
                                              "message": "Value has already been taken", "code": "INVALID"}]
        # create_order (a concurrent run lost the race): the existing order is linked, not a second one made
        assert client.create_order(order_input("mk:TWICE-1", variant), OPTIONS).id == first.id
    assert [o["id"] for o in orders_with(store, "mk:TWICE-1")] == [first.id]


def test_look_ups_cost_one_point_per_order_found(sandbox):
    store, server = sandbox
    with client_for(server) as client:
        client.ensure_order_ref_definition()
        variant = client.variants_by_sku(["ALP-VEST-12"])["ALP-VEST-12"]
        client.create_order(order_input("mk:COST-1", variant), OPTIONS)
        before = client.cost_spent
        assert set(client.orders_by_ref(["mk:COST-1", "mk:COST-2", "mk:COST-3"])) == {"mk:COST-1"}
        assert client.cost_spent - before == 1  # requested 3 (one object each), refunded the two nulls


def test_the_process_cache_is_per_store():
    """Two stores, two checks: the process-wide cache is keyed by the store's endpoint."""
    first, first_server = start_store()
    second, second_server = start_store()
    try:
        for server in (first_server, second_server):
            with client_for(server) as client:
                client.ensure_order_ref_definition()
        assert first.unique_definition(*REF_ID) and second.unique_definition(*REF_ID)
    finally:
        first_server.stop()
        second_server.stop()
