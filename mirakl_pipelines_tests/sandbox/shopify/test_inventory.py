"""The sandbox store's locations, inventory levels and quantities, read over GraphQL on loopback."""

import re

import pytest

from mirakl_pipelines.sandbox.shopify.inventory import QUANTITY_NAMES
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines_tests.sandbox.conftest import ok

LOCATIONS = """query Locations($inactive: Boolean) {
  locations(first: 10, includeInactive: $inactive) {
    nodes { id legacyResourceId name isActive isPrimary fulfillsOnlineOrders }
  }
  primary: location { name }
}"""

ITEM_LEVELS = """query ItemLevels($id: ID!, $names: [String!]!) {
  inventoryItem(id: $id) {
    id sku tracked legacyResourceId
    variant { sku }
    inventoryLevels(first: 5) {
      nodes { id isActive updatedAt location { name } item { sku } quantities(names: $names) { name quantity updatedAt } }
    }
  }
}"""

VARIANTS = """query Variants($after: String) {
  productVariants(first: 5, after: $after) {
    nodes { sku inventoryQuantity inventoryItem { tracked inventoryLevels(first: 5) {
      nodes { location { name } quantities(names: ["available"]) { quantity } } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

LEVEL_ID = re.compile(r"^gid://shopify/InventoryLevel/\d+\?inventory_item_id=\d+$")


def item_id(shop, sku: str) -> str:
    return shop.store.variant_by_sku(sku)["inventoryItem"]["id"]


def levels(shop, sku: str, names=("available",)) -> dict[str, dict]:
    data = ok(shop.graphql(ITEM_LEVELS, {"id": item_id(shop, sku), "names": list(names)}))["inventoryItem"]
    return {node["location"]["name"]: node for node in data["inventoryLevels"]["nodes"]}


def test_locations_by_name_inactive_on_request_and_the_primary(shop):
    active = ok(shop.graphql(LOCATIONS, {"inactive": False}))
    assert [n["name"] for n in active["locations"]["nodes"]] == ["Boutique Paris", "Entrepôt Lyon"]  # sortKey NAME
    assert active["primary"] == {"name": "Entrepôt Lyon"}
    every = {n["name"]: n for n in ok(shop.graphql(LOCATIONS, {"inactive": True}))["locations"]["nodes"]}
    lille = every["Retours Lille"]
    assert (lille["isActive"], lille["fulfillsOnlineOrders"], lille["isPrimary"]) == (False, False, False)
    assert every["Entrepôt Lyon"]["isPrimary"] and lille["id"].endswith("/" + lille["legacyResourceId"])
    by_id = ok(shop.graphql("query L($id: ID!) { location(id: $id) { name } }", {"id": every["Boutique Paris"]["id"]}))
    assert by_id["location"] == {"name": "Boutique Paris"}
    assert shop.store.location["name"] == "Entrepôt Lyon"  # the fulfilling location existing callers use


def test_levels_carry_every_named_quantity_and_the_composite_id(shop):
    trail = levels(shop, "ALP-TRAIL-42", QUANTITY_NAMES)
    assert set(trail) == {"Entrepôt Lyon", "Boutique Paris"}
    lyon = trail["Entrepôt Lyon"]
    assert LEVEL_ID.match(lyon["id"]) and lyon["isActive"] and lyon["item"] == {"sku": "ALP-TRAIL-42"}
    quantities = {q["name"]: q for q in lyon["quantities"]}
    assert [q["name"] for q in lyon["quantities"]] == list(QUANTITY_NAMES)
    assert quantities["available"]["quantity"] == quantities["on_hand"]["quantity"] == 40
    assert all(quantities[n]["quantity"] == 0 for n in ("committed", "incoming", "reserved", "damaged"))
    # Recorded: updatedAt is set on `available`, null on the other names.
    assert quantities["available"]["updatedAt"] and quantities["on_hand"]["updatedAt"] is None
    level_id = lyon["id"]
    again = ok(shop.graphql("query L($id: ID!) { inventoryLevel(id: $id) { location { name } item { sku } } }",
                            {"id": level_id}))
    assert again["inventoryLevel"] == {"location": {"name": "Entrepôt Lyon"}, "item": {"sku": "ALP-TRAIL-42"}}
    # Levels at the same location share the number before `?` (recorded), items differ after it.
    other = levels(shop, "ALP-VEST-12")["Entrepôt Lyon"]["id"]
    assert other.split("?")[0] == level_id.split("?")[0] and other != level_id


def test_catalogue_variety_untracked_negative_nowhere_and_no_sku(shop):
    assert levels(shop, "ALP-GAITER-S")["Entrepôt Lyon"]["quantities"][0]["quantity"] == -2  # oversold
    assert levels(shop, "ALP-GAITER-L") == {}
    wrap = ok(shop.graphql(ITEM_LEVELS, {"id": item_id(shop, "ALP-GIFT-WRAP"), "names": ["available"]}))
    assert wrap["inventoryItem"]["tracked"] is False
    nodes, after = [], None
    while True:
        page = ok(shop.graphql(VARIANTS, {"after": after}))["productVariants"]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    no_sku = [n for n in nodes if n["sku"] is None]
    assert len(no_sku) == 1 and no_sku[0]["inventoryItem"]["inventoryLevels"]["nodes"] == [
        {"location": {"name": "Boutique Paris"}, "quantities": [{"quantity": 1}]}]
    by_sku = {n["sku"]: n for n in nodes}
    assert by_sku["LUM-HEAD-400"]["inventoryQuantity"] == 120 + 12 + 3  # summed over the item's levels
    counted = ok(shop.graphql("{ all: productVariantsCount { count precision } few: productVariantsCount(limit: 5) "
                              "{ count precision } items: inventoryItems(first: 50) { nodes { id } } }"))
    assert counted["all"] == {"count": len(nodes), "precision": "EXACT"}
    assert counted["few"] == {"count": 5, "precision": "AT_LEAST"}
    assert len(counted["items"]["nodes"]) == len(nodes)


def test_location_lists_its_levels(shop):
    data = ok(shop.graphql("query L($id: ID!) { location(id: $id) { inventoryLevels(first: 20) { nodes { item { sku } "
                           "quantities(names: [\"available\"]) { quantity } } } } }",
                           {"id": shop.store.location_by_name("Boutique Paris")["id"]}))
    found = {n["item"]["sku"]: n["quantities"][0]["quantity"] for n in data["location"]["inventoryLevels"]["nodes"]}
    assert found == {"ALP-TRAIL-42": 6, "ALP-TRAIL-43": 4, "LUM-HEAD-400": 12, None: 1}


def test_catalogue_stock_may_be_an_int_or_a_mapping_and_bad_entries_are_named():
    store = ShopifyStore()
    store.seed_catalogue({"location": "A", "locations": [{"name": "B"}], "products": [{"title": "P", "variants": [
        {"sku": "X", "stock": 3}, {"sku": "Y", "stock": {"B": 2}}]}]})
    assert store.inventory_available("X") == 3 and store.inventory_available("Y") == 0
    assert store.inventory_available("Y", "B") == 2
    with pytest.raises(ValueError, match="no location named 'Nowhere'"):
        store.seed_catalogue({"products": [{"title": "Q", "variants": [{"sku": "Z", "stock": {"Nowhere": 1}}]}]})
    with pytest.raises(ValueError, match=r"sku W\) stock at 'A': '2' is not a whole number"):
        store.seed_catalogue({"products": [{"title": "R", "variants": [{"sku": "W", "stock": "2"}]}]})
