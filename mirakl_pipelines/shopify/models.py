"""Plain records the Shopify client returns: what the rest of the project needs to know, no more."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping, Optional

# Line item property the importer sets on every Shopify line: the Mirakl order line it comes from,
# so fulfilments and refunds of that line can be traced back to Mirakl.
LINE_ID_PROPERTY = "_mirakl_order_line_id"
VOID_FULFILMENT_STATUSES = frozenset({"CANCELLED", "ERROR", "FAILURE"})
# The order metafield that makes an import exactly-once: its definition has unique values, so
# `orderByIdentifier(customId:)` reads an order back the moment it exists (the `orders(query:)` search
# index lags writes by seconds) and Shopify refuses a second order with the same value. One definition per store.
ORDER_REF_NAMESPACE = "mirakl"
ORDER_REF_KEY = "order_ref"
ORDER_REF_TYPE = "id"  # the type a new definition gets: Shopify's custom-ID type (unique values, ≤ 2,048 characters)
ORDER_REF_TYPES = frozenset({ORDER_REF_TYPE, "single_line_text_field"})  # text types that can hold unique values


def order_ref_metafield(value: str) -> dict:
    """The MetafieldInput of an order's reference (`<marketplace>:<Mirakl order id>`). No `type`: the store's
    definition decides it (Shopify requires a type only for a metafield without a definition)."""
    return {"namespace": ORDER_REF_NAMESPACE, "key": ORDER_REF_KEY, "value": value}


def order_ref_of(order_input: Mapping[str, Any]) -> Optional[str]:
    """The order reference an OrderCreateOrderInput carries in its metafields, if any."""
    for metafield in order_input.get("metafields") or ():
        if (metafield.get("namespace"), metafield.get("key")) == (ORDER_REF_NAMESPACE, ORDER_REF_KEY):
            return metafield.get("value") or None
    return None


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
    tracking_number: Optional[str] = None  # the first of tracking_numbers
    tracking_url: Optional[str] = None  # the first of tracking_urls
    status: str = "SUCCESS"  # SUCCESS | CANCELLED | ERROR | FAILURE
    order_id: Optional[str] = None  # gid://shopify/Order/<n>
    name: Optional[str] = None  # "#1001.1"
    updated_at: Optional[datetime] = None
    # Every number and URL, in Shopify's order (a parcel can carry several); URLs only where Shopify has one,
    # as REST's tracking_urls, so they pair with numbers by position only when every number has a URL.
    tracking_numbers: tuple[str, ...] = ()
    tracking_urls: tuple[str, ...] = ()

    @property
    def counts(self) -> bool:
        """Whether its quantities count as shipped (a cancelled or failed fulfilment does not)."""
        return self.status.upper() not in VOID_FULFILMENT_STATUSES


@dataclass(frozen=True)
class FulfilmentOrderLine:
    """One line of a fulfilment order: how many units of a Shopify line item (so of a Mirakl line) it covers."""

    id: str  # gid://shopify/FulfillmentOrderLineItem/<n>: what holds and fulfilments name
    line_item_id: str  # gid://shopify/LineItem/<n>
    mirakl_line_id: Optional[str]  # from the LINE_ID_PROPERTY line item property (None on lines without it)
    total_quantity: int
    remaining_quantity: int  # not yet fulfilled


@dataclass(frozen=True)
class FulfilmentHold:
    id: str  # gid://shopify/FulfillmentHold/<n>: what release_fulfilment_hold takes
    handle: Optional[str]  # unique per app and fulfilment order
    reason: str  # FulfillmentHoldReason: AWAITING_PAYMENT | INCORRECT_ADDRESS | OTHER | …
    reason_notes: Optional[str] = None


@dataclass(frozen=True)
class FulfilmentOrder:
    """A Shopify fulfilment order: a group of line item units to ship from one location, possibly held."""

    id: str  # gid://shopify/FulfillmentOrder/<n>
    status: str  # OPEN | IN_PROGRESS | ON_HOLD | SCHEDULED | INCOMPLETE | CLOSED | CANCELLED
    line_items: tuple[FulfilmentOrderLine, ...]
    holds: tuple[FulfilmentHold, ...] = ()
    order_id: Optional[str] = None

    @property
    def hold_handles(self) -> frozenset[str]:
        return frozenset(h.handle for h in self.holds if h.handle)

    @property
    def on_hold(self) -> bool:
        return self.status == "ON_HOLD"

    def remaining_by_mirakl_line(self) -> dict[str, int]:
        """Units still to fulfil per Mirakl order line id (lines without the property left out)."""
        remaining: dict[str, int] = {}
        for line in self.line_items:
            if line.mirakl_line_id:
                remaining[line.mirakl_line_id] = remaining.get(line.mirakl_line_id, 0) + line.remaining_quantity
        return remaining


@dataclass(frozen=True)
class OrderFulfilmentState:
    """An order's payment and fulfilment orders, read at once (OrderFulfilmentOrders)."""

    order_id: str
    financial_status: Optional[str]  # OrderDisplayFinancialStatus (PAID, PENDING, …); None for an order without payments
    outstanding: Decimal  # totalOutstandingSet, shop money
    currency: str
    cancelled_at: Optional[datetime]
    fulfilment_orders: tuple[FulfilmentOrder, ...]


@dataclass(frozen=True)
class OrderPayment:
    """What mark_order_paid did: recorded the payment now, or found nothing outstanding (already paid)."""

    order_id: str
    newly_paid: bool  # False: nothing was outstanding (paid before, by anyone, maybe by an unanswered earlier try)
    financial_status: Optional[str]

    @property
    def already_paid(self) -> bool:
        return not self.newly_paid


@dataclass(frozen=True)
class FulfilmentHoldResult:
    """What hold_fulfilment_order did. With `lines`, Shopify splits: `fulfilment_order_id` keeps the held units,
    `remaining_fulfilment_order_id` (a new fulfilment order) the rest."""

    fulfilment_order_id: str
    hold: FulfilmentHold
    remaining_fulfilment_order_id: Optional[str] = None
    already_held: bool = False  # a hold with this handle was already there (an earlier call, maybe unanswered)
