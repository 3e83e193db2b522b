"""Plain records the Shopify client returns: what the rest of the project needs to know, no more."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Optional


@dataclass(frozen=True)
class Variant:
    id: str  # gid://shopify/ProductVariant/<n>
    sku: str
    title: Optional[str] = None
    product_title: Optional[str] = None
    price: Optional[Decimal] = None
    available: Optional[int] = None  # ProductVariant.inventoryQuantity: available units across locations
    tracked: bool = True  # inventoryItem.tracked
    inventory_policy: str = "DENY"  # DENY | CONTINUE (CONTINUE sells past zero)
    inventory_item_id: Optional[str] = None

    def can_serve(self, quantity: int) -> bool:
        """Whether the store can ship `quantity` units now."""
        if not self.tracked or self.inventory_policy == "CONTINUE":
            return True
        return (self.available or 0) >= quantity


@dataclass(frozen=True)
class ShopifyOrderRef:
    id: str  # gid://shopify/Order/<n>
    legacy_id: str  # the numeric id used in admin URLs
    name: str  # "#1001"
    source_identifier: Optional[str] = None
    created_at: Optional[datetime] = None
