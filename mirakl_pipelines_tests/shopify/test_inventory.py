"""read_inventory over real HTTP against the sandbox store: paginated and bulk reads give the same frame."""

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines.sandbox.shopify.app import create_shopify_app
from mirakl_pipelines.sandbox.shopify.bulk_operations import validate_bulk_query
from mirakl_pipelines.sandbox.shopify.schema import shopify_schema
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, StoreSettings
from mirakl_pipelines.shopify.client import ShopifyClient
from mirakl_pipelines.shopify.inventory import InventoryReadError, bulk_lines_frame, read_inventory, start_bulk_query
from mirakl_pipelines.shopify.operations import load_operation
from mirakl_pipelines.sync.stock_levels import LEVEL_COLUMNS, ShopifyLocation
from mirakl_pipelines_tests.reference import reference_file
from mirakl_pipelines_tests.shopify.test_client_loopback import CATALOGUE

TOKEN = "t"


class SwappableStore:
    """One loopback server whose store a test can replace (hypothesis examples each get a fresh shop)."""

    def __init__(self):
        self.app = None
        self.store = None
        self.server = serve_in_thread(self, name="shopify-sandbox")

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)

    def use(self, store: ShopifyStore) -> ShopifyStore:
        if self.store is not None:
            self.store.close()
        self.store, self.app = store, create_shopify_app(store)
        return store

    def client(self) -> ShopifyClient:
        return ShopifyClient(self.server.url, TOKEN, backoff_base=0.01, timeout=10.0)

    def stop(self):
        self.server.stop()
        if self.store is not None:
            self.store.close()


@pytest.fixture(scope="module")
def sandbox():
    reference_file("shopify/admin-2026-07.schema.graphql")
    swappable = SwappableStore()
    yield swappable
    swappable.stop()


def settings_for_tests(**knobs) -> StoreSettings:
    return StoreSettings(**{"access_token": TOKEN, "bulk_operation_seconds": 0.0, "bucket_size": 100_000,
                            "restore_rate": 100_000, **knobs})


def demo(sandbox, **knobs) -> ShopifyStore:
    return sandbox.use(ShopifyStore.from_catalogue_file(CATALOGUE, settings_for_tests(**knobs)))


def both(client, **kw):
    paginated = read_inventory(client, mode="paginated", **kw)
    bulk = read_inventory(client, mode="bulk", poll_seconds=0.01, timeout_seconds=10)
    return paginated, bulk


def test_demo_catalogue_paginated_equals_bulk_and_reports_the_variety(sandbox):
    demo(sandbox)
    with sandbox.client() as client:
        paginated, bulk = both(client)
    assert (paginated.source, bulk.source) == ("paginated", "bulk")
    pd.testing.assert_frame_equal(paginated.levels, bulk.levels)
    assert tuple(paginated.levels.columns) == LEVEL_COLUMNS
    assert [loc.name for loc in paginated.locations] == ["Boutique Paris", "Entrepôt Lyon", "Retours Lille"]
    assert [loc.active for loc in paginated.locations] == [True, True, False]
    levels = paginated.levels
    head = levels[levels["sku"] == "LUM-HEAD-400"].set_index("location_name")["available"].to_dict()
    assert head == {"Entrepôt Lyon": 120, "Boutique Paris": 12, "Retours Lille": 3}
    nowhere = levels[levels["sku"] == "ALP-GAITER-L"]
    assert len(nowhere) == 1 and nowhere["location_id"].isna().all() and nowhere["available"].isna().all()
    assert levels.loc[levels["sku"] == "ALP-GAITER-S", "available"].tolist() == [-2]
    assert levels.loc[levels["sku"] == "ALP-GIFT-WRAP", "tracked"].tolist() == [False]
    no_sku = levels[levels["sku"].isna()]
    assert len(no_sku) == 1 and no_sku["location_name"].tolist() == ["Boutique Paris"]


def test_items_at_more_locations_than_a_page_are_followed_not_truncated(sandbox):
    demo(sandbox)
    with sandbox.client() as client:
        small_pages = read_inventory(client, mode="paginated", page_size=2, levels_page_size=1)
        assert client.calls["InventoryItemLevels"] == 3  # TRAIL-42, TRAIL-43 and HEAD-400 have more than one level
        full = read_inventory(client, mode="paginated")
    pd.testing.assert_frame_equal(small_pages.levels, full.levels)


def test_auto_mode_counts_variants_against_the_threshold(sandbox):
    store = demo(sandbox)
    with sandbox.client() as client:
        assert read_inventory(client).source == "paginated"
        assert read_inventory(client, bulk_threshold=len(store.variants) - 1, poll_seconds=0.01).source == "bulk"
        assert read_inventory(client, bulk_threshold=len(store.variants)).source == "paginated"


def test_a_failed_or_slow_bulk_operation_is_a_clear_error(sandbox):
    demo(sandbox, bulk_operation_failure="INTERNAL_SERVER_ERROR")
    with sandbox.client() as client, pytest.raises(InventoryReadError, match="ended FAILED .*INTERNAL_SERVER_ERROR"):
        read_inventory(client, mode="bulk", poll_seconds=0.01)
    demo(sandbox, bulk_operation_seconds=60.0)
    with sandbox.client() as client, pytest.raises(InventoryReadError, match=r"still (CREATED|RUNNING) after 0\.2 s"):
        read_inventory(client, mode="bulk", poll_seconds=0.05, timeout_seconds=0.2)


def test_the_bulk_query_is_one_shopify_accepts():
    reference_file("shopify/admin-2026-07.schema.graphql")
    assert validate_bulk_query(shopify_schema(), load_operation("InventoryLevelsBulk")) == []


def test_a_bad_jsonl_line_is_named():
    lines = [json.dumps({"id": "gid://shopify/ProductVariant/1", "sku": "A",
                         "inventoryItem": {"id": "gid://shopify/InventoryItem/1", "tracked": True}}),
             json.dumps({"__parentId": "gid://shopify/ProductVariant/1", "quantities": []})]
    with pytest.raises(InventoryReadError, match="line 2 is not a variant or level line"):
        bulk_lines_frame(lines, [])
    orphan = [json.dumps({"__parentId": "gid://shopify/ProductVariant/9", "location": {"id": "L"}, "quantities": []})]
    with pytest.raises(InventoryReadError, match="never read"):
        bulk_lines_frame(orphan, [ShopifyLocation("L", "1", "Lyon")])


# --- generated shops ------------------------------------------------------------------------------

locations_st = st.lists(st.tuples(st.sampled_from(["Lyon", "Paris", "Lille", "Nantes"]), st.booleans()),
                        min_size=1, max_size=4, unique_by=lambda t: t[0])


@st.composite
def shops(draw):
    locations = draw(locations_st)
    names = [name for name, _ in locations]
    variants = []
    for n in range(draw(st.integers(0, 12))):
        stocked = draw(st.lists(st.sampled_from(names), max_size=min(3, len(names)), unique=True))
        variants.append({
            "sku": draw(st.one_of(st.none(), st.just(f"SKU-{n}"))),
            "tracked": draw(st.booleans()),
            "stock": {name: draw(st.integers(-5, 50)) for name in stocked},
        })
    return locations, variants


def shop_from(locations, variants) -> ShopifyStore:
    store = ShopifyStore(settings_for_tests())
    (primary, _), others = locations[0], locations[1:]
    store.seed_catalogue({"location": primary,
                          "locations": [{"name": name, "active": active} for name, active in others],
                          "products": [{"title": f"P{n}", "variants": [v]} for n, v in enumerate(variants)]})
    return store


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shops())
def test_generated_shops_read_the_same_both_ways(sandbox, shop):
    locations, variants = shop
    store = sandbox.use(shop_from(locations, variants))
    with sandbox.client() as client:
        paginated = read_inventory(client, mode="paginated", page_size=3, levels_page_size=2)
        bulk = read_inventory(client, mode="bulk", poll_seconds=0.01, timeout_seconds=10)
    pd.testing.assert_frame_equal(paginated.levels, bulk.levels)
    frame = paginated.levels
    assert len(frame) == sum(max(1, len(v["stock"])) for v in variants)
    by_variant = frame.groupby("variant_id", sort=False)
    for variant_record, spec in zip(store.variants.values(), variants):
        rows = by_variant.get_group(variant_record["id"])
        got = {name: int(q) for name, q in zip(rows["location_name"], rows["available"]) if pd.notna(name)}
        assert got == spec["stock"]
        assert rows["tracked"].tolist() == [spec["tracked"]] * len(rows)
        assert rows["sku"].isna().all() if spec["sku"] is None else (rows["sku"] == spec["sku"]).all()


def test_a_bulk_start_whose_answer_was_lost_is_adopted_not_started_twice(sandbox):
    store = demo(sandbox, bulk_operation_seconds=60.0)
    store.faults.update(lose_writes=1, lost_answer_status=502)  # applied, then the answer is lost
    query = load_operation("InventoryLevelsBulk")
    with sandbox.client() as client:
        operation = start_bulk_query(client, query)
    assert list(store.bulk.operations) == [operation["id"]]
