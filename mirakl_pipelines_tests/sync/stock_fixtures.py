"""Inventory snapshots for the stock tests, written as short tables rather than frames."""

from datetime import datetime, timezone
from typing import Optional

from mirakl_pipelines.sync.stock_levels import InventorySnapshot, LocationLevel, ShopifyLocation, levels_frame

LYON = ShopifyLocation("gid://shopify/Location/101", "101", "Entrepôt Lyon")
PARIS = ShopifyLocation("gid://shopify/Location/102", "102", "Boutique Paris")
LILLE = ShopifyLocation("gid://shopify/Location/103", "103", "Retours Lille", active=False)
LOCATIONS = [LYON, PARIS, LILLE]
READ_AT = datetime(2026, 7, 1, 12, 0, tzinfo=timezone.utc)


def variant(n: int, sku: Optional[str], stock: dict, tracked: bool = True) -> list[LocationLevel]:
    """The levels of variant `n`: `stock` maps a location to its `available`; empty = stocked nowhere (one bare row)."""
    common = dict(sku=sku, variant_id=f"gid://shopify/ProductVariant/{n}", inventory_item_id=f"gid://shopify/InventoryItem/{n}",
                  tracked=tracked)
    if not stock:
        return [LocationLevel(location_id=None, location_name=None, available=None, **common)]
    return [LocationLevel(location_id=loc.id, location_name=loc.name, available=qty, **common) for loc, qty in stock.items()]


def snapshot(*variants: list[LocationLevel], locations: list[ShopifyLocation] = LOCATIONS) -> InventorySnapshot:
    return InventorySnapshot(locations, levels_frame(level for v in variants for level in v), READ_AT, "paginated")


def quantities(computation) -> dict[str, int]:
    """offer_sku -> published quantity."""
    return dict(zip(computation.quantities["offer_sku"], computation.quantities["quantity"].astype(int)))
