"""Plain records the Shopify client returns: what the rest of the project needs to know, no more."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Mapping, Optional

# Line item property the importer sets on every Shopify line: the Mirakl order line it comes from,
# so fulfilments and refunds of that line can be traced back to Mirakl.
LINE_ID_PROPERTY = "_mirakl_order_line_id"
VOID_FULFILMENT_STATUSES = frozenset({"CANCELLED", "ERROR", "FAILURE"})


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


@dataclass(frozen=True)
class Fulfilment:
    """One Shopify fulfilment of an imported order, reduced to what Mirakl needs.

    ``lines`` maps Mirakl order line ids (read from LINE_ID_PROPERTY) to the quantity fulfilled.
    """

    fulfilment_id: str  # gid://shopify/Fulfillment/<n>
    created_at: datetime
    lines: Mapping[str, int]
    tracking_company: Optional[str] = None
    tracking_number: Optional[str] = None
    tracking_url: Optional[str] = None
    status: str = "SUCCESS"  # SUCCESS | CANCELLED | ERROR | FAILURE
    order_id: Optional[str] = None  # gid://shopify/Order/<n>
    name: Optional[str] = None  # "#1001.1"
    updated_at: Optional[datetime] = None

    @property
    def counts(self) -> bool:
        """Whether its quantities count as shipped (a cancelled or failed fulfilment does not)."""
        return self.status.upper() not in VOID_FULFILMENT_STATUSES
