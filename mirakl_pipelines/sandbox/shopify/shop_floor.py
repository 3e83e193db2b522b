"""The shop floor: what changes a store's stock besides marketplace orders — deliveries restocking the warehouse,
sales over the counter in the shop, damaged units written off, a stock count correcting the books.

Each event goes through the store's inventory code path (the GraphQL mutations' rules), so it sends the
`inventory_levels/update` webhook a real store sends. Deterministic for a seed: the n-th event is always the same.
"""

import collections
import logging
import random
from dataclasses import dataclass

from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines.sandbox.ticker import Ticker

log = logging.getLogger(__name__)

# (kind, weight): what happens on the floor, and how often relative to the others.
EVENTS = (("restock", 3), ("counter_sale", 4), ("damaged", 2), ("count", 1))


@dataclass(frozen=True)
class FloorEvent:
    kind: str
    sku: str
    location: str
    delta: int  # units added (negative: removed); a count sets the level, its delta is what the count changed


class ShopFloor:
    def __init__(self, store: ShopifyStore, *, seed: int = 0, restock_location: str | None = None,
                 shop_location: str | None = None):
        self.store = store
        self.seed = seed
        # The primary location receives deliveries; the other active one sells over the counter.
        self.restock_location = restock_location or store.location["name"]
        self.shop_location = shop_location or next(
            (loc["name"] for loc in store.locations.values() if loc["isActive"] and loc["name"] != self.restock_location),
            self.restock_location)
        self.events: list[FloorEvent] = []
        # One refused change (e.g. a level the store does not hold) must not stop the floor.
        self._ticker = Ticker("shopify-shop-floor", self.step, log)
        self.errors = self._ticker.errors

    def _skus(self) -> list[str]:
        """Tracked SKUs the store knows, in a stable order."""
        with self.store.lock:
            return sorted(v["sku"] for v in self.store.variants.values() if v.get("sku") and v["inventoryItem"]["tracked"])

    def step(self) -> FloorEvent | None:
        """One event; None when the store has nothing to act on."""
        skus = self._skus()
        if not skus:
            return None
        rng = random.Random(f"{self.seed}|floor|{len(self.events)}")
        kind = rng.choices([k for k, _ in EVENTS], weights=[w for _, w in EVENTS])[0]
        sku = rng.choice(skus)
        if kind == "restock":
            event = FloorEvent(kind, sku, self.restock_location, rng.randint(5, 20))
        elif kind == "counter_sale":
            event = FloorEvent(kind, sku, self.shop_location, -rng.randint(1, 2))
        elif kind == "damaged":
            event = FloorEvent(kind, sku, self.restock_location, -1)
        else:
            before = self.store.inventory_available(sku, self.restock_location)
            counted = max(0, before + rng.randint(-3, 3))
            event = FloorEvent(kind, sku, self.restock_location, counted - before)
        if event.kind == "count":
            self.store.set_inventory(sku, event.location, before + event.delta, reason="cycle_count_available")
        elif event.delta:
            reason = {"restock": "received", "counter_sale": "correction", "damaged": "damaged"}[event.kind]
            self.store.adjust_inventory(sku, event.location, event.delta, reason=reason)
        self.events.append(event)
        return event

    def start(self, interval_seconds: float = 20.0) -> None:
        """An event every `interval_seconds` in a background thread until `stop()`."""
        self._ticker.start(interval_seconds)

    def stop(self, timeout: float = 5.0) -> None:
        self._ticker.stop(timeout)

    def stats(self) -> dict:
        return {"events": len(self.events), "by_kind": dict(collections.Counter(e.kind for e in self.events)),
                "errors": dict(self.errors)}
