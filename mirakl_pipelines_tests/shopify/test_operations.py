"""The GraphQL documents in mirakl_pipelines/shopify/operations/: valid against the SDL, well named, loadable."""

import pytest
from graphql import parse, validate

from mirakl_pipelines.shopify.client import RESEND_SAFE_MUTATIONS
from mirakl_pipelines.shopify.operations import batched_operation, load_operation, operation_info, operation_names

REQUIRED = {"OrderCreate", "FindOrdersBySourceIdentifier", "VariantsBySku", "OrderById", "OrderMarkAsPaid", "OrderUpdate",
            "OrderFulfilmentOrders", "FulfilmentOrderById", "FulfillmentOrderHold", "FulfillmentOrderReleaseHold",
            "OrderByIdentifier", "MetafieldDefinitionByIdentifier", "MetafieldDefinitionCreate", "MetafieldDefinitionUpdate"}


def test_required_operations_exist():
    assert REQUIRED <= set(operation_names())


@pytest.mark.parametrize("name", operation_names())
def test_operation_validates_against_admin_sdl(admin_schema, name):
    errors = validate(admin_schema, parse(load_operation(name)))
    assert not errors, f"{name}.graphql: " + "; ".join(e.message for e in errors)


@pytest.mark.parametrize("name", operation_names())
def test_each_file_holds_the_operation_it_is_named_after(name):
    info = operation_info(name)
    assert info.name == name
    assert info.kind in {"query", "mutation"}


def test_sdl_validation_catches_a_wrong_field(admin_schema):
    # Guards the test above against passing vacuously (e.g. an empty schema).
    broken = load_operation("VariantsBySku").replace("inventoryQuantity", "inventoryQuantityz")
    errors = validate(admin_schema, parse(broken))
    assert any("inventoryQuantityz" in e.message for e in errors)


def test_order_create_is_a_mutation_not_safe_to_resend():
    info = operation_info("OrderCreate")
    assert (info.kind, info.idempotent, info.safe_to_resend) == ("mutation", False, False)
    assert operation_info("VariantsBySku").safe_to_resend


def test_load_operation_is_cached_and_unknown_names_are_explained():
    assert load_operation("OrderCreate") is load_operation("OrderCreate")
    with pytest.raises(KeyError, match="NoSuchOperation.graphql"):
        load_operation("NoSuchOperation")


def test_resend_safe_mutations_are_mutations_without_idempotent_and_say_why():
    for name, reason in RESEND_SAFE_MUTATIONS.items():
        info = operation_info(name)
        assert (info.kind, info.idempotent) == ("mutation", False), name
        assert reason.strip(), name
    assert "OrderCreate" not in RESEND_SAFE_MUTATIONS  # it has its own reconciliation (create_order)


@pytest.mark.parametrize("size", [1, 2, 25])
def test_batched_order_look_up_validates_against_admin_sdl(admin_schema, size):
    text = batched_operation("OrderByIdentifier", size)
    assert validate(admin_schema, parse(text)) == []
    assert text.count("orderByIdentifier(") == size and f"r{size - 1}: orderByIdentifier(identifier: $identifier{size - 1})" in text


def test_only_single_field_queries_can_be_batched():
    with pytest.raises(ValueError, match="OrderCreate"):
        batched_operation("OrderCreate", 2)
    with pytest.raises(ValueError, match="at least one"):
        batched_operation("OrderByIdentifier", 0)
