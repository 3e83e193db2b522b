"""Contract: build_order_create's output is valid orderCreate variables for Shopify's 2026-07 Admin SDL."""

import json
from decimal import Decimal

import pytest
from graphql import (
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    build_schema,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from mirakl_pipelines.sync.order_mapping import build_order_create
from mirakl_pipelines_tests.reference import reference_file
from mirakl_pipelines_tests.sync.orders import (
    SHIPPING_ADDRESS,
    marketplace,
    order,
    store,
    tax_excluded_order,
    tax_included_order,
    variants,
)

ORDER_CREATE = """
mutation($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) { order { id } userErrors { field message } }
}
"""


@pytest.fixture(scope="session")
def admin_schema():
    return build_schema(reference_file("shopify/admin-2026-07.schema.graphql").read_text(), no_location=True)


@pytest.fixture(scope="session")
def operation(admin_schema):
    document = parse(ORDER_CREATE)
    assert validate(admin_schema, document) == []
    return document.definitions[0]


def _decimal_leaves(type_, value, path="$"):
    """(path, value) of every leaf typed Decimal in `value`, walking the GraphQL input type."""
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if value is None:
        return
    if isinstance(type_, GraphQLList):
        for i, item in enumerate(value):
            yield from _decimal_leaves(type_.of_type, item, f"{path}[{i}]")
    elif isinstance(type_, GraphQLInputObjectType):
        for name, item in value.items():
            yield from _decimal_leaves(type_.fields[name].type, item, f"{path}.{name}")
    elif isinstance(type_, GraphQLScalarType) and type_.name == "Decimal":
        yield path, value


def _orders():
    relay_b2b = tax_included_order()
    relay_b2b.update(shipping_pudo_id="PUDO-42", order_state="WAITING_ACCEPTANCE", customer_debited_date=None)
    relay_b2b["customer"]["organization"] = {"organization_id": "O1", "name": "Société Alpine"}
    relay_b2b["customer"]["shipping_address"] = {**SHIPPING_ADDRESS, "phone": "04 78 00 00 00", "state": "Rhône"}
    us = tax_excluded_order()
    us["customer"]["shipping_address"] = {**SHIPPING_ADDRESS, "country_iso_code": "USA", "state": "California"}
    us["customer"]["billing_address"] = None
    for line in us["order_lines"]:
        line["taxes"] = []
    us["order_taxes"] = [{"code": "CA_SALES", "total_amount": Decimal("13.37")}]
    return {"tax_included": tax_included_order(), "tax_excluded": tax_excluded_order(), "relay_b2b_unpaid": relay_b2b,
            "us_order_taxes": us}


@pytest.mark.parametrize("name", list(_orders()))
def test_variables_coerce_against_the_admin_schema(admin_schema, operation, name):
    request = build_order_create(order(_orders()[name]), variants(), marketplace(), store())
    # Round-trip through JSON text: what the client sends is exactly what is validated here.
    wire = json.loads(json.dumps(request.variables))
    coerced = get_variable_values(admin_schema, operation.variable_definitions, wire)
    assert not isinstance(coerced, list), [error.message for error in coerced]
    assert coerced["options"]["inventoryBehaviour"] == "DECREMENT_IGNORING_POLICY"
    assert coerced["order"]["shippingAddress"]["countryCode"] in ("FR", "US")

    order_input = admin_schema.get_type("OrderCreateOrderInput")
    leaves = list(_decimal_leaves(order_input, wire["order"]))
    assert len(leaves) >= 4  # prices, tax rates, tax amounts, transaction amount
    not_strings = [(path, value) for path, value in leaves if not isinstance(value, str)]
    assert not_strings == [], "Decimals must be sent as strings"
    for path, value in leaves:
        Decimal(value)  # and parse back exactly


def test_an_invalid_mapping_would_be_caught(admin_schema, operation):
    """The check above is not vacuous: a misspelt option or a bad country code is rejected."""
    request = build_order_create(order(), variants(), marketplace(), store())
    wrong_option = {"order": request.order, "options": {"inventoryBehavior": "BYPASS"}}
    errors = get_variable_values(admin_schema, operation.variable_definitions, wrong_option)
    assert isinstance(errors, list) and "inventoryBehavior" in errors[0].message
    wrong_country = json.loads(json.dumps(request.variables))
    wrong_country["order"]["shippingAddress"]["countryCode"] = "FRA"
    errors = get_variable_values(admin_schema, operation.variable_definitions, wrong_country)
    assert isinstance(errors, list) and "CountryCode" in errors[0].message
