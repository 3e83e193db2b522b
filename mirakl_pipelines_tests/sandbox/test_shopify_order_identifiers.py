"""Metafield definitions with unique values, `orderByIdentifier`, and the search-index lag of `orders(query:)`."""

import pytest

from mirakl_pipelines_tests.sandbox.conftest import ok

DEFINE = """mutation Define($definition: MetafieldDefinitionInput!) {
  metafieldDefinitionCreate(definition: $definition) {
    createdDefinition { id namespace key ownerType type { name } capabilities { uniqueValues { enabled eligible } } }
    userErrors { field message code }
  }
}"""
UPDATE = """mutation Update($definition: MetafieldDefinitionUpdateInput!) {
  metafieldDefinitionUpdate(definition: $definition) {
    updatedDefinition { capabilities { uniqueValues { enabled } } }
    userErrors { field message code }
  }
}"""
DEFINITIONS = """query Definitions {
  metafieldDefinitions(first: 5, ownerType: ORDER, namespace: "mirakl") { nodes { key metafieldsCount } }
  one: metafieldDefinition(identifier: {ownerType: ORDER, namespace: "mirakl", key: "order_ref"}) { key }
  none: metafieldDefinition(identifier: {ownerType: ORDER, namespace: "mirakl", key: "nothing"}) { key }
}"""
CREATE = """mutation Create($order: OrderCreateOrderInput!) {
  orderCreate(order: $order) { order { id metafield(namespace: "mirakl", key: "order_ref") { type value } }
                               userErrors { field message code } }
}"""
BY_IDENTIFIER = """query ById($identifier: OrderIdentifierInput!) { orderByIdentifier(identifier: $identifier) { id name } }"""
SEARCH = """query Search($q: String) { orders(first: 5, query: $q) { nodes { id } } }"""


def definition(key="order_ref", type_name="id", unique=None) -> dict:
    value = {"ownerType": "ORDER", "namespace": "mirakl", "key": key, "name": key, "type": type_name}
    if unique is not None:
        value["capabilities"] = {"uniqueValues": {"enabled": unique}}
    return {"definition": value}


def define(sandbox, **kw) -> dict:
    return ok(sandbox.graphql(DEFINE, definition(**kw)))["metafieldDefinitionCreate"]


def create(sandbox, ref, source_identifier=None, **metafield) -> dict:
    variant = sandbox.store.variant_by_sku("ALP-MERINO-M")
    order = {"sourceIdentifier": source_identifier or ref, "lineItems": [{"variantId": variant["id"], "quantity": 1}],
             "metafields": [{"namespace": "mirakl", "key": "order_ref", "value": ref, **metafield}]}
    return ok(sandbox.graphql(CREATE, {"order": order}))["orderCreate"]


def by_custom_id(sandbox, value) -> dict | None:
    identifier = {"customId": {"namespace": "mirakl", "key": "order_ref", "value": value}}
    return ok(sandbox.graphql(BY_IDENTIFIER, {"identifier": identifier}))["orderByIdentifier"]


def test_id_definition_has_unique_values_by_default_and_a_second_one_is_taken(catalogue_store):
    created = define(catalogue_store)
    assert created["userErrors"] == []
    assert created["createdDefinition"]["type"] == {"name": "id"}
    assert created["createdDefinition"]["capabilities"]["uniqueValues"] == {"enabled": True, "eligible": True}
    again = define(catalogue_store, type_name="single_line_text_field")
    assert again == {"createdDefinition": None, "userErrors": [{
        "field": ["definition", "key"], "message": "Key is in use for Order metafields on the 'mirakl' namespace.",
        "code": "TAKEN"}]}


@pytest.mark.parametrize(("type_name", "unique", "code"), [
    ("id", False, "CAPABILITY_REQUIRED_BUT_DISABLED"),
    ("json", True, "INVALID_CAPABILITY"),
    ("no_such_type", None, "INCLUSION"),
])
def test_definitions_shopify_refuses(catalogue_store, type_name, unique, code):
    refused = define(catalogue_store, type_name=type_name, unique=unique)
    assert refused["createdDefinition"] is None and [e["code"] for e in refused["userErrors"]] == [code]


def test_unique_values_only_on_a_definition_without_metafields(catalogue_store):
    define(catalogue_store, type_name="single_line_text_field", unique=False)
    create(catalogue_store, "mk:1")
    enable = {"definition": {"ownerType": "ORDER", "namespace": "mirakl", "key": "order_ref",
                             "capabilities": {"uniqueValues": {"enabled": True}}}}
    refused = ok(catalogue_store.graphql(UPDATE, enable))["metafieldDefinitionUpdate"]
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID_CAPABILITY"]
    data = ok(catalogue_store.graphql(DEFINITIONS))
    assert data["metafieldDefinitions"]["nodes"] == [{"key": "order_ref", "metafieldsCount": 1}]
    assert data["one"] == {"key": "order_ref"} and data["none"] is None
    assert by_custom_id(catalogue_store, "mk:1") is None  # not unique: no custom ID look-up


def test_unique_values_can_be_turned_on_before_any_metafield(catalogue_store):
    define(catalogue_store, type_name="single_line_text_field", unique=False)
    enable = {"definition": {"ownerType": "ORDER", "namespace": "mirakl", "key": "order_ref",
                             "capabilities": {"uniqueValues": {"enabled": True}}}}
    updated = ok(catalogue_store.graphql(UPDATE, enable))["metafieldDefinitionUpdate"]
    assert updated == {"updatedDefinition": {"capabilities": {"uniqueValues": {"enabled": True}}}, "userErrors": []}
    assert create(catalogue_store, "mk:1")["userErrors"] == []
    assert [e["code"] for e in create(catalogue_store, "mk:1", source_identifier="other")["userErrors"]] == ["INVALID"]


def test_order_by_identifier_reads_by_custom_id_or_id_and_values_are_unique(catalogue_store):
    define(catalogue_store)
    first = create(catalogue_store, "mk:A-1")
    assert first["userErrors"] == []
    assert first["order"]["metafield"] == {"type": "id", "value": "mk:A-1"}  # the definition's type applies
    assert by_custom_id(catalogue_store, "mk:A-1")["id"] == first["order"]["id"]
    assert by_custom_id(catalogue_store, "mk:A-2") is None
    by_id = ok(catalogue_store.graphql(BY_IDENTIFIER, {"identifier": {"id": first["order"]["id"]}}))
    assert by_id["orderByIdentifier"]["id"] == first["order"]["id"]

    second = create(catalogue_store, "mk:A-1", source_identifier="mk:A-1-again")
    assert second == {"order": None, "userErrors": [{"field": ["order", "metafields", "0", "value"],
                                                     "message": "Value has already been taken", "code": "INVALID"}]}
    assert len(catalogue_store.store.orders()) == 1


def test_search_sees_new_orders_only_after_the_lag_set_over_the_control_route(catalogue_store):
    response = catalogue_store.http.post("/_sandbox/settings", json={"search_index_lag_seconds": 30})
    assert response.status_code == 200 and response.json()["search_index_lag_seconds"] == 30.0
    define(catalogue_store)
    order_id = create(catalogue_store, "mk:LAG-1")["order"]["id"]
    assert ok(catalogue_store.graphql(SEARCH, {"q": 'source_identifier:"mk:LAG-1"'}))["orders"]["nodes"] == []
    assert by_custom_id(catalogue_store, "mk:LAG-1")["id"] == order_id  # read directly: at once
    catalogue_store.store.settings.search_index_lag_seconds = 0  # orders created from now on are indexed at once
    catalogue_store.store.order_record(order_id)["_indexedAt"] = 0.0  # …and this one caught up
    assert ok(catalogue_store.graphql(SEARCH, {"q": 'source_identifier:"mk:LAG-1"'}))["orders"]["nodes"] == [
        {"id": order_id}]
