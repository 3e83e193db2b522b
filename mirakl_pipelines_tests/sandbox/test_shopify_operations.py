"""The connector's documents run on the sandbox; invalid documents and requests are refused like Shopify."""

import json
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse

from mirakl_pipelines.sandbox.shopify.harness import running_store
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines_tests.reference import reference_file

CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "sandbox" / "catalogue.yaml"
IMPLEMENTED = ["ImportMarketplaceOrder", "FindOrderBySourceIdentifier", "VariantBySku", "OrderFulfillmentOrders"]


@pytest.fixture(scope="module")
def operations() -> str:
    reference_file("shopify/admin-2026-07.schema.graphql")
    return reference_file("shopify/connector-operations.graphql").read_text(encoding="utf-8")


@pytest.fixture()
def sandbox(operations):
    with running_store(ShopifyStore.from_catalogue_file(CATALOGUE)) as connection:
        yield connection


def import_variables(sandbox, source_identifier="MKP-000123-A") -> dict:
    """The recorded example variables for ImportMarketplaceOrder, pointed at a sandbox variant."""
    examples = json.loads(reference_file("shopify/connector-operations.example-variables.json").read_text())
    variables = examples["ImportMarketplaceOrder"]
    line = variables["order"]["lineItems"][0]
    line["variantId"] = sandbox.store.variant_by_sku("ALP-MERINO-M")["id"]
    line["sku"] = "ALP-MERINO-M"
    variables["order"]["sourceIdentifier"] = source_identifier
    return variables


def test_every_connector_operation_is_valid_against_the_schema(sandbox, operations):
    """Documents the sandbox does not implement yet still validate; running them names the missing root."""
    names = [d.name.value for d in parse(operations).definitions if isinstance(d, OperationDefinitionNode)]
    assert set(IMPLEMENTED) <= set(names)
    for name in set(names) - set(IMPLEMENTED):
        body = sandbox.post(operations, {}, operation_name=name).json()
        codes = {error["extensions"]["code"] for error in body.get("errors", [])}
        # Missing variables are INVALID_VARIABLE; with them, an unimplemented root says so. Never a validation error.
        assert codes <= {"INVALID_VARIABLE", "NOT_IMPLEMENTED"}, (name, body["errors"])


def test_implemented_connector_operations_execute_without_errors(sandbox, operations):
    created = sandbox.graphql(operations, import_variables(sandbox), "ImportMarketplaceOrder")
    assert "errors" not in created, created.get("errors")
    order = created["data"]["orderCreate"]["order"]
    assert created["data"]["orderCreate"]["userErrors"] == []
    assert order["sourceIdentifier"] == "MKP-000123-A"
    assert order["displayFinancialStatus"] == "PAID"
    assert order["tags"] == ["mirakl", "mkp:acme-fr"]
    assert order["customAttributes"][0] == {"key": "mirakl_order_id", "value": "MKP-000123-A"}

    found = sandbox.graphql(operations, {"q": "source_identifier:MKP-000123-A"}, "FindOrderBySourceIdentifier")
    assert "errors" not in found
    assert [o["id"] for o in found["data"]["orders"]["nodes"]] == [order["id"]]

    variants = sandbox.graphql(operations, {"q": "sku:ALP-MERINO-M OR sku:LUM-HEAD-400"}, "VariantBySku")
    assert "errors" not in variants
    assert sorted(v["sku"] for v in variants["data"]["productVariants"]["nodes"]) == ["ALP-MERINO-M", "LUM-HEAD-400"]
    assert all(v["inventoryItem"]["tracked"] for v in variants["data"]["productVariants"]["nodes"])

    fulfillment_orders = sandbox.graphql(operations, {"id": order["id"]}, "OrderFulfillmentOrders")
    assert "errors" not in fulfillment_orders
    (fo,) = fulfillment_orders["data"]["order"]["fulfillmentOrders"]["nodes"]
    assert [a["action"] for a in fo["supportedActions"]] == ["CREATE_FULFILLMENT", "MOVE", "HOLD", "SPLIT"]
    (fo_line,) = fo["lineItems"]["nodes"]
    assert fo_line["totalQuantity"] == fo_line["remainingQuantity"] == 2
    assert fo_line["lineItem"]["sku"] == "ALP-MERINO-M"


def test_missing_or_wrong_token_is_401_with_shopify_text(sandbox):
    for token in ("", "shpat_wrong"):
        response = sandbox.post("{ shop { name } }", token=token)
        assert response.status_code == 401
        assert response.json() == {
            "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


def test_undefined_field_is_refused_like_shopify(sandbox):
    body = sandbox.post("query Probe { order(id: \"gid://shopify/Order/1\") { id colour } }").json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["message"] == "Field 'colour' doesn't exist on type 'Order'"
    assert error["extensions"] == {"code": "undefinedField", "typeName": "Order", "fieldName": "colour"}
    assert error["path"] == ["query Probe"]
    assert error["locations"] == [{"line": 1, "column": 55}]  # the unknown field itself


def test_missing_required_argument_is_refused_like_shopify(sandbox):
    body = sandbox.post("mutation M {\n  orderCreate { userErrors { field } }\n}").json()
    (error,) = body["errors"]
    assert error["message"] == "Field 'orderCreate' is missing required arguments: order"
    assert error["extensions"]["code"] == "missingRequiredArguments"


def test_invalid_variable_lists_problems_like_shopify(sandbox, operations):
    variables = import_variables(sandbox)
    variables["order"]["colour"] = "red"
    del variables["order"]["lineItems"][0]["quantity"]
    body = sandbox.post(operations, variables, operation_name="ImportMarketplaceOrder").json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID_VARIABLE"
    assert error["message"].startswith("Variable $order of type OrderCreateOrderInput! was provided invalid value for ")
    assert {"path": ["colour"], "explanation": "Field is not defined on OrderCreateOrderInput"} in error["extensions"]["problems"]
    assert {"path": ["lineItems", 0, "quantity"], "explanation": "Expected value to not be null"} in error["extensions"]["problems"]
    assert error["extensions"]["value"]["colour"] == "red"
    assert sandbox.store.orders() == []


def test_syntax_error_and_bad_body(sandbox):
    body = sandbox.post("query { orders(first: 1) { nodes { id } }").json()
    assert body["errors"][0]["extensions"]["code"] == "syntaxError"
    response = sandbox.http.post(sandbox.graphql_path(), content=b"not json",
                                 headers={"X-Shopify-Access-Token": sandbox.store.settings.access_token})
    assert response.status_code == 400
    assert response.json() == {"errors": {"query": "Required parameter missing or invalid"}}


def test_documents_are_parsed_and_validated_once(sandbox):
    query = "query CacheProbe($q: String) { productVariants(first: 1, query: $q) { nodes { sku } } }"
    before = sandbox.http.get("/_sandbox/stats").json()["document_cache"]
    for sku in ("ALP-TRAIL-42", "ALP-TRAIL-43", "ALP-TRAIL-44"):
        assert sandbox.graphql(query, {"q": f"sku:{sku}"})["data"]["productVariants"]["nodes"] == [{"sku": sku}]
    after = sandbox.http.get("/_sandbox/stats").json()["document_cache"]
    assert after["misses"] - before["misses"] <= 1
    assert after["hits"] - before["hits"] >= 2


def test_control_routes_need_no_token_and_ignore_faults(sandbox, operations):
    sandbox.graphql(operations, import_variables(sandbox), "ImportMarketplaceOrder")
    sandbox.store.faults.update(error_5xx_rate=1.0)
    assert sandbox.post("{ shop { name } }").status_code == 503
    orders = sandbox.http.get("/_sandbox/orders")
    assert orders.status_code == 200
    assert [o["sourceIdentifier"] for o in orders.json()] == ["MKP-000123-A"]
    stats = sandbox.http.get("/_sandbox/stats").json()
    assert stats["calls"]["orderCreate"] == 1 and stats["orders"] == 1
    assert sandbox.http.post("/_sandbox/faults", json={"error_5xx_rate": 0}).status_code == 200
    assert sandbox.post("{ shop { name currencyCode } }").json()["data"]["shop"]["currencyCode"] == "EUR"
