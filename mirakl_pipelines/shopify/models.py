"""Plain records the Shopify client returns: what the rest of the project needs to know, no more."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping, Optional

# Line item property the importer sets on every Shopify line: the Mirakl order line it comes from,
# so fulfilments and refunds of that line can be traced back to Mirakl.
LINE_ID_PROPERTY = "_mirakl_order_line_id"
VOID_FULFILMENT_STATUSES = frozenset({"CANCELLED", "ERROR", "FAILURE"})


def mirakl_line_id(properties: Optional[Iterable[Mapping[str, Any]]]) -> Optional[str]:
    """The Mirakl order line id among a line item's properties: REST ``{name, value}`` or GraphQL ``{key, value}``."""
    for prop in properties or ():
        name = prop.get("name", prop.get("key"))
        if name == LINE_ID_PROPERTY:
            value = prop.get("value")
            text = str(value).strip() if value is not None else ""
            return text or None
    return None


def quantities_by_mirakl_line(items: Iterable[tuple[Optional[Iterable[Mapping[str, Any]]], Any]]) -> dict[str, int]:
    """Units per Mirakl order line id over (line item properties, quantity) pairs; lines without the id are left out."""
    quantities: dict[str, int] = {}
    for properties, quantity in items:
        line_id = mirakl_line_id(properties)
        if line_id:
            quantities[line_id] = quantities.get(line_id, 0) + int(quantity or 0)
    return quantities


def parse_shopify_time(value: Optional[str]) -> Optional[datetime]:
    """A Shopify timestamp (REST or GraphQL, ISO 8601 with Z or an offset), or None."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


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
