"""The shop floor: deterministic stock changes through the store's inventory rules, each sent as a webhook."""

from mirakl_pipelines.demo import CATALOGUE
from mirakl_pipelines.sandbox.shopify.shop_floor import ShopFloor
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore


def test_the_same_seed_plays_the_same_events(shop):
    other = ShopFloor(ShopifyStore.from_catalogue_file(CATALOGUE), seed=3)
    floor = ShopFloor(shop.store, seed=3)
    assert [floor.step() for _ in range(20)] == [other.step() for _ in range(20)]
    assert {e.kind for e in floor.events} >= {"restock", "counter_sale", "damaged"}
    assert (floor.restock_location, floor.shop_location) == ("Entrepôt Lyon", "Boutique Paris")
    assert floor.stats()["events"] == 20 and not floor.errors


def test_levels_move_by_the_events_and_each_change_is_a_webhook(shop, receiver):
    recv, url = receiver
    shop.store.subscribe(url, "secret", ["inventory_levels/update"])
    floor = ShopFloor(shop.store, seed=5)
    skus = floor._skus()
    locations = [floor.restock_location, floor.shop_location]

    def levels() -> dict:
        return {(sku, loc): shop.store.inventory_available(sku, loc) for sku in skus for loc in locations}

    before = levels()
    events = [floor.step() for _ in range(15)]
    after = levels()
    for (sku, location), level in after.items():
        net = sum(e.delta for e in events if (e.sku, e.location) == (sku, location))
        assert level - before[(sku, location)] == net, (sku, location)
    changes = [e for e in events if e.delta]
    deliveries = recv.of_topic("inventory_levels/update", at_least=len(changes))
    assert len(deliveries) >= len(changes)
