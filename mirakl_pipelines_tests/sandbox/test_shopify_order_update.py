"""orderUpdate on the sandbox store over loopback HTTP: completing an imported order's shipping address and fields.

The refusals quoted are real responses recorded by airhorns/shopify-draft-proxy
(fixtures/conformance/harry-test-heelo.myshopify.com/2026-04/orders/orderUpdate-input-validation.json;
not in ../shared).
"""

from pathlib import Path

import pytest

from mirakl_pipelines.sandbox.shopify.harness import running_store
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines_tests.reference import reference_file

CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "sandbox" / "catalogue.yaml"
ADDRESS = "firstName lastName address1 address2 city zip provinceCode countryCodeV2 country phone name"
ORDER_FIELDS = f"""id note email phone poNumber tags updatedAt customAttributes {{ key value }}
  shippingAddress {{ {ADDRESS} }} billingAddress {{ {ADDRESS} }}
  metafields(first: 10) {{ nodes {{ namespace key type value }} }}
  fulfillmentOrders(first: 5) {{ nodes {{ status destination {{ firstName lastName address1 city zip countryCode email }} }} }}"""
CREATE = f"""mutation($order: OrderCreateOrderInput!) {{ orderCreate(order: $order) {{
  order {{ {ORDER_FIELDS} }} userErrors {{ field message }} }} }}"""
UPDATE = f"""mutation($input: OrderInput!) {{ orderUpdate(input: $input) {{
  order {{ {ORDER_FIELDS} }} userErrors {{ field message }} }} }}"""
LYON = {"firstName": "Zoë", "lastName": "Lefèvre", "address1": "12 rue de la République", "city": "Lyon",
        "zip": "69002", "countryCode": "FR", "phone": "+33612345678"}


@pytest.fixture(scope="module")
def sandbox():
    reference_file("shopify/admin-2026-07.schema.graphql")
    store = ShopifyStore.from_catalogue_file(CATALOGUE)
    with running_store(store) as connection:
        yield connection


def ok(body: dict) -> dict:
    assert "errors" not in body, body.get("errors")
    return body["data"]


def imported_without_address(sandbox) -> dict:
    """An order imported before the marketplace revealed the buyer's address."""
    order = {"sourceIdentifier": "MKP-ADDR", "email": "buyer@marketplace.example", "note": "imported",
             "customAttributes": [{"key": "marketplace", "value": "decathlon_fr"}],
             "metafields": [{"namespace": "mirakl", "key": "order_id", "type": "single_line_text_field", "value": "MKP-ADDR"}],
             "lineItems": [{"variantId": sandbox.store.variant_by_sku("ALP-TRAIL-42")["id"], "quantity": 1}]}
    payload = ok(sandbox.graphql(CREATE, {"order": order}))["orderCreate"]
    assert payload["userErrors"] == [] and payload["order"]["shippingAddress"] is None
    return payload["order"]


def update(sandbox, **fields) -> dict:
    return ok(sandbox.graphql(UPDATE, {"input": fields}))["orderUpdate"]


def test_shipping_address_is_set_and_the_fulfilment_order_ships_there(sandbox):
    order = imported_without_address(sandbox)
    payload = update(sandbox, id=order["id"], shippingAddress=LYON)
    assert payload["userErrors"] == []
    updated = payload["order"]
    assert updated["shippingAddress"] == {
        "firstName": "Zoë", "lastName": "Lefèvre", "address1": "12 rue de la République", "address2": None, "city": "Lyon",
        "zip": "69002", "provinceCode": None, "countryCodeV2": "FR", "country": "France", "phone": "+33612345678",
        "name": "Zoë Lefèvre"}
    assert updated["fulfillmentOrders"]["nodes"][0]["destination"] == {
        "firstName": "Zoë", "lastName": "Lefèvre", "address1": "12 rue de la République", "city": "Lyon", "zip": "69002",
        "countryCode": "FR", "email": "buyer@marketplace.example"}
    assert updated["billingAddress"] is None and updated["note"] == "imported"  # untouched
    assert updated["updatedAt"] >= order["updatedAt"]
    # The same input again leaves the same order.
    again = update(sandbox, id=order["id"], shippingAddress=LYON)["order"]
    assert again["shippingAddress"] == updated["shippingAddress"]


def test_note_attributes_tags_and_metafields(sandbox):
    order = imported_without_address(sandbox)
    updated = update(sandbox, id=order["id"], note="address revealed", tags=["mirakl", " shipped-late ", "mirakl"],
                     customAttributes=[{"key": "relay_point", "value": "FR-69002-042"}], poNumber="PO-7",
                     metafields=[{"namespace": "mirakl", "key": "order_id", "value": "MKP-ADDR-BIS"},
                                 {"namespace": "mirakl", "key": "channel", "type": "single_line_text_field", "value": "FR"}])
    assert updated["userErrors"] == []
    result = updated["order"]
    assert (result["note"], result["tags"], result["poNumber"]) == ("address revealed", ["mirakl", "shipped-late"], "PO-7")
    assert result["customAttributes"] == [{"key": "relay_point", "value": "FR-69002-042"}]  # replaced, not added
    assert result["metafields"]["nodes"] == [
        {"namespace": "mirakl", "key": "order_id", "type": "single_line_text_field", "value": "MKP-ADDR-BIS"},
        {"namespace": "mirakl", "key": "channel", "type": "single_line_text_field", "value": "FR"}]


def test_refusals_are_the_recorded_ones_and_change_nothing(sandbox):
    order = imported_without_address(sandbox)
    empty = update(sandbox, id=order["id"])
    assert empty["userErrors"] == [{"field": None, "message": "No valid update parameters have been provided"}]
    assert empty["order"]["id"] == order["id"]
    phone = update(sandbox, id=order["id"], phone="not a phone")
    assert phone["userErrors"] == [{"field": ["phone"], "message": "Phone is invalid"}]
    assert phone["order"]["phone"] is None
    bad = update(sandbox, id=order["id"],
                 shippingAddress={"address1": "3 Bad Province", "city": "Chicago", "countryCode": "US", "provinceCode": "ON"})
    assert bad["userErrors"] == [
        {"field": ["shippingAddress", "lastName"], "message": "Enter a last name"},
        {"field": ["shippingAddress", "zip"], "message": "Enter a ZIP code"},
        {"field": ["shippingAddress", "province"], "message": "State is not a valid state in United States"}]
    assert bad["order"]["shippingAddress"] is None


def test_unknown_order(sandbox):
    payload = update(sandbox, id="gid://shopify/Order/1", note="x")
    assert payload["order"] is None and payload["userErrors"][0]["field"] == ["id"]
