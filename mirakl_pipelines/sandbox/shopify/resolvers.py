"""How the sandbox answers GraphQL fields.

- Root fields: one method per field on `ShopifyRoot` (queries and mutations share it; graphql-core
  calls `root.<field>(info, **args)`). Supporting a new root (fulfillmentCreate, refundCreate,
  orderCancel, inventory mutations…) means adding a method, usually delegating to a module like
  `order_create.py`.
- Nested fields: store records are dicts keyed like the schema, so `field_resolver` reads them;
  lists under a `…Connection` type become paginated connections, and `FIELD_RESOLVERS` follows the
  id references between records (line item → variant, fulfilment order → order, …).
"""

import base64
import contextlib
import contextvars
from dataclasses import dataclass
from typing import Callable

from graphql import GraphQLError, GraphQLList, GraphQLNonNull, GraphQLResolveInfo, get_named_type

from mirakl_pipelines.sandbox.shopify import inventory
from mirakl_pipelines.sandbox.shopify.fulfillment_create import fulfillment_create, fulfillment_tracking_info_update
from mirakl_pipelines.sandbox.shopify.fulfillment_holds import fulfillment_order_hold, fulfillment_order_release_hold
from mirakl_pipelines.sandbox.shopify.idempotency import idempotency_key, run_once
from mirakl_pipelines.sandbox.shopify.metafield_definitions import (
    APP_NAMESPACE,
    find_by_custom_id,
    metafield_definition_create,
    metafield_definition_update,
    metafields_count,
)
from mirakl_pipelines.sandbox.shopify.order_create import order_create
from mirakl_pipelines.sandbox.shopify.order_mark_as_paid import order_mark_as_paid
from mirakl_pipelines.sandbox.shopify.order_update import order_update
from mirakl_pipelines.sandbox.shopify.search import matches, parse_search
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore

MAX_PAGE_SIZE = 250
# Set while a bulk operation executes: connections without `first` return every item, page sizes are not capped.
_UNBOUNDED_PAGES = contextvars.ContextVar("unbounded_pages", default=False)


@contextlib.contextmanager
def unbounded_pages():
    token = _UNBOUNDED_PAGES.set(True)
    try:
        yield
    finally:
        _UNBOUNDED_PAGES.reset(token)


@dataclass
class RequestContext:
    store: ShopifyStore
    api_version: str
    base_url: str = ""  # scheme://host:port of the request, for absolute URLs (bulk operation results)


# --- connections ----------------------------------------------------------------------------------

def encode_cursor(item_id: str) -> str:
    return base64.b64encode(f'{{"last_id":"{item_id}"}}'.encode()).decode()


def _decode_cursor(cursor: str) -> str:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        return text.split('"last_id":"', 1)[1].rstrip('"}')
    except (ValueError, IndexError, UnicodeDecodeError):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}", extensions={"code": "BAD_REQUEST"}) from None


def paginate(items: list, first: int | None = None, after: str | None = None, last: int | None = None,
             before: str | None = None, reverse: bool = False, **_ignored) -> dict:
    """A Relay connection over `items`, the shape Shopify returns; cursors carry the item's `id`, or its position
    for records without one (discount applications)."""
    unbounded = _UNBOUNDED_PAGES.get()
    for name, size in (("first", first), ("last", last)):
        if size is not None and (size < 0 or (size > MAX_PAGE_SIZE and not unbounded)):
            raise GraphQLError(f"The '{name}' argument must be between 0 and {MAX_PAGE_SIZE}",
                               extensions={"code": "BAD_REQUEST"})
    if first is None and last is None:
        if not unbounded:
            raise GraphQLError("you must provide one of first or last", extensions={"code": "BAD_REQUEST"})
        first = len(items)
    keyed = [(item.get("id") or f"#{position}", item) for position, item in enumerate(items)]
    ordered = list(reversed(keyed)) if reverse else keyed
    ids = [key for key, _ in ordered]
    start, end = 0, len(ordered)
    if after is not None:
        after_id = _decode_cursor(after)
        start = ids.index(after_id) + 1 if after_id in ids else len(ordered)
    if before is not None:
        before_id = _decode_cursor(before)
        end = ids.index(before_id) if before_id in ids else end
    window = ordered[start:end]
    page = window
    if first is not None:
        page = page[:first]
    if last is not None:
        page = page[max(0, len(page) - last):]
    has_next = (start + len(page) < end) if first is not None else end < len(ordered)
    has_previous = (len(page) < len(window)) if last is not None else start > 0
    edges = [{"cursor": encode_cursor(key), "node": item} for key, item in page]
    return {
        "nodes": [item for _, item in page],
        "edges": edges,
        "pageInfo": {"hasNextPage": has_next, "hasPreviousPage": has_previous,
                     "startCursor": edges[0]["cursor"] if edges else None,
                     "endCursor": edges[-1]["cursor"] if edges else None},
    }


# --- search fields --------------------------------------------------------------------------------

ORDER_SEARCH_FIELDS = {
    "source_identifier": lambda o: [o["sourceIdentifier"]],
    "source_name": lambda o: [o["sourceName"]],
    "name": lambda o: [o["name"], o["name"].lstrip("#")],
    "tag": lambda o: o["tags"],
    "email": lambda o: [o["email"]],
    "sku": lambda o: [line["sku"] for line in o["lineItems"]],
    "id": lambda o: [o["legacyResourceId"]],
    "test": lambda o: [str(o["test"]).lower()],
    "created_at": lambda o: [o["createdAt"]],
    "updated_at": lambda o: [o["updatedAt"]],
    "processed_at": lambda o: [o["processedAt"]],
    "financial_status": lambda o: [(o["displayFinancialStatus"] or "").lower()],
    "fulfillment_status": lambda o: [o["displayFulfillmentStatus"].lower(),
                                     {"UNFULFILLED": "unshipped", "FULFILLED": "shipped",
                                      "PARTIALLY_FULFILLED": "partial"}.get(o["displayFulfillmentStatus"], "")],
    "status": lambda o: ["cancelled" if o["cancelledAt"] else ("closed" if o["closed"] else "open"),
                         "not_closed" if not o["closed"] else "closed"],
}
ORDER_FREE_TEXT = lambda o: [o["name"], o["email"], o["sourceIdentifier"], *o["tags"]]  # noqa: E731
ORDER_SORT_KEYS = {
    "PROCESSED_AT": lambda o: (o["processedAt"], o["legacyResourceId"].zfill(20)),
    "CREATED_AT": lambda o: (o["createdAt"], o["legacyResourceId"].zfill(20)),
    "UPDATED_AT": lambda o: (o["updatedAt"], o["legacyResourceId"].zfill(20)),
    "ORDER_NUMBER": lambda o: (o["number"], o["legacyResourceId"].zfill(20)),
    "ID": lambda o: o["legacyResourceId"].zfill(20),
}
VARIANT_SEARCH_FIELDS = {
    "sku": lambda v: [v["sku"]],
    "barcode": lambda v: [v["barcode"]],
    "title": lambda v: [v["title"]],
    "id": lambda v: [v["legacyResourceId"]],
    "product_id": lambda v: [v["_productId"].rsplit("/", 1)[-1]],
}
VARIANT_FREE_TEXT = lambda v: [v["sku"], v["title"], v["displayName"]]  # noqa: E731
PRODUCT_SEARCH_FIELDS = {"title": lambda p: [p["title"]], "vendor": lambda p: [p["vendor"]],
                         "id": lambda p: [p["legacyResourceId"]]}
PRODUCT_FREE_TEXT = lambda p: [p["title"], p["vendor"]]  # noqa: E731
LOCATION_SEARCH_FIELDS = {
    "name": lambda loc: [loc["name"]],
    "id": lambda loc: [loc["legacyResourceId"]],
    "active": lambda loc: [str(loc["isActive"]).lower()],
}
LOCATION_FREE_TEXT = lambda loc: [loc["name"]]  # noqa: E731
INVENTORY_ITEM_SEARCH_FIELDS = {
    "sku": lambda i: [i["sku"]],
    "id": lambda i: [i["legacyResourceId"]],
    "tracked": lambda i: [str(i["tracked"]).lower()],
}
INVENTORY_ITEM_FREE_TEXT = lambda i: [i["sku"]]  # noqa: E731
DEFAULT_COUNT_LIMIT = 10_000  # productVariantsCount: "Limited to a maximum of 10000 by default." (SDL)
# Order.fulfillments(query:) filters "by timestamps" (schema description).
FULFILLMENT_SEARCH_FIELDS = {
    "created_at": lambda f: [f["createdAt"]],
    "updated_at": lambda f: [f["updatedAt"]],
}
FULFILLMENT_FREE_TEXT = lambda f: [f["name"]]  # noqa: E731


# --- root fields ----------------------------------------------------------------------------------

class ShopifyRoot:
    """Root value for every operation: a method per implemented QueryRoot / Mutation field."""

    def __init__(self, context: RequestContext):
        self.context = context
        self.store = context.store

    # queries
    def shop(self, info, **_):
        settings = self.store.settings
        return {"id": "gid://shopify/Shop/1", "name": settings.shop_domain.split(".")[0],
                "myshopifyDomain": settings.shop_domain, "currencyCode": settings.currency,
                "url": f"https://{settings.shop_domain}", "ianaTimezone": "Europe/Paris",
                "enabledPresentmentCurrencies": [settings.currency], "taxesIncluded": True}

    def orders(self, info, query=None, sortKey="PROCESSED_AT", reverse=False, **page):
        clauses = parse_search(query)
        candidates = self.store.order_records()
        if len(clauses) == 1 and len(clauses[0]) == 1:
            (term,) = clauses[0]
            if term.field == "source_identifier" and term.op == ":" and not term.negated and not term.value.endswith("*"):
                candidates = self.store.order_records_by_source_identifier(term.value)
        if query:  # a search is answered by the index, which sees new orders late (search_index_lag_seconds)
            candidates = [o for o in candidates if self.store.searchable(o)]
        found = [o for o in candidates if matches(clauses, o, ORDER_SEARCH_FIELDS, ORDER_FREE_TEXT)]
        found.sort(key=ORDER_SORT_KEYS.get(sortKey, ORDER_SORT_KEYS["ID"]))
        return paginate(found, reverse=reverse, **page)

    def order(self, info, id, **_):
        return self.store.order_record(id)

    def orderByIdentifier(self, info, identifier, **_):
        """Reads the order itself, not the search index: a new order is found at once."""
        if identifier.get("id"):
            return self.store.order_record(identifier["id"])
        if identifier.get("customId"):
            order_id = find_by_custom_id(self.store, "ORDER", identifier["customId"])
            return self.store.order_record(order_id) if order_id else None
        return None

    def metafieldDefinition(self, info, identifier=None, id=None, **_):
        if identifier:
            return self.store.metafield_definition(identifier["ownerType"], identifier.get("namespace") or APP_NAMESPACE,
                                                   identifier["key"])
        return next((d for d in self.store.metafield_definitions.values() if d["id"] == id), None)

    def metafieldDefinitions(self, info, ownerType, namespace=None, key=None, reverse=False, **page):
        found = [d for d in self.store.metafield_definitions.values() if d["ownerType"] == ownerType
                 and namespace in (None, d["namespace"]) and key in (None, d["key"])]
        return paginate(found, reverse=reverse, **page)

    def productVariants(self, info, query=None, sortKey="ID", reverse=False, **page):
        clauses = parse_search(query)
        found = [v for v in self.store.variants.values() if matches(clauses, v, VARIANT_SEARCH_FIELDS, VARIANT_FREE_TEXT)]
        found.sort(key=lambda v: v["legacyResourceId"].zfill(20))
        return paginate(found, reverse=reverse, **page)

    def productVariant(self, info, id, **_):
        return self.store.variant_record(id)

    def products(self, info, query=None, sortKey=None, reverse=False, savedSearchId=None, **page):
        clauses = parse_search(query)
        found = [p for p in self.store.products.values() if matches(clauses, p, PRODUCT_SEARCH_FIELDS, PRODUCT_FREE_TEXT)]
        return paginate(found, reverse=reverse, **page)

    def product(self, info, id, **_):
        return self.store.products.get(id)

    def fulfillmentOrder(self, info, id, **_):
        return self.store.fulfillment_orders.get(id)

    def location(self, info, id=None, **_):
        """The primary location without an id (the SDL: "If no ID is provided, the primary location is returned")."""
        return self.store.location if id is None else self.store.locations.get(id)

    def locations(self, info, query=None, includeInactive=False, reverse=False, sortKey=None, includeLegacy=None,
                  **page):
        clauses = parse_search(query)
        found = [loc for loc in self.store.locations.values() if (includeInactive or loc["isActive"])
                 and matches(clauses, loc, LOCATION_SEARCH_FIELDS, LOCATION_FREE_TEXT)]
        if sortKey == "NAME":
            found.sort(key=lambda loc: loc["name"].lower())
        return paginate(found, reverse=reverse, **page)

    def locationsCount(self, info, query=None, limit=DEFAULT_COUNT_LIMIT, **_):
        clauses = parse_search(query)
        return _count([loc for loc in self.store.locations.values()
                       if matches(clauses, loc, LOCATION_SEARCH_FIELDS, LOCATION_FREE_TEXT)], limit)

    def inventoryItems(self, info, query=None, reverse=False, **page):
        clauses = parse_search(query)
        found = [i for i in self.store.inventory_items.values()
                 if matches(clauses, i, INVENTORY_ITEM_SEARCH_FIELDS, INVENTORY_ITEM_FREE_TEXT)]
        return paginate(found, reverse=reverse, **page)

    def inventoryItem(self, info, id, **_):
        return self.store.inventory_items.get(id)

    def inventoryLevel(self, info, id, **_):
        return inventory.level_by_id(self.store, id)

    def productVariantsCount(self, info, query=None, limit=DEFAULT_COUNT_LIMIT, **_):
        clauses = parse_search(query)
        return _count([v for v in self.store.variants.values()
                       if matches(clauses, v, VARIANT_SEARCH_FIELDS, VARIANT_FREE_TEXT)], limit)

    def bulkOperation(self, info, id, **_):
        return self.store.bulk.get(info.schema, id)

    def currentBulkOperation(self, info, type="QUERY", **_):
        return self.store.bulk.current(info.schema, type)

    def fulfillment(self, info, id, **_):
        return self.store.fulfillments.get(id)

    # mutations
    def inventoryAdjustQuantities(self, info, input, **_):
        inventory.require_change_from_quantity(info, input["changes"], "InventoryChangeInput")
        key = idempotency_key(info)
        return run_once(self.store, key, "inventoryAdjustQuantities", input,
                        lambda: inventory.adjust_quantities(self.store, input), "inventoryAdjustmentGroup")

    def inventorySetQuantities(self, info, input, **_):
        inventory.require_change_from_quantity(info, input["quantities"], "InventoryQuantityInput")
        key = idempotency_key(info)
        return run_once(self.store, key, "inventorySetQuantities", input,
                        lambda: inventory.set_quantities(self.store, input), "inventoryAdjustmentGroup")

    def bulkOperationRunQuery(self, info, query, groupObjects=False, **_):
        return self.store.bulk.run_query(info.schema, query, self.context.api_version)

    def bulkOperationCancel(self, info, id, **_):
        return self.store.bulk.cancel(info.schema, id)

    def orderCreate(self, info, order, options=None, **_):
        return order_create(self.store, order, options, self.context.api_version)

    def fulfillmentCreate(self, info, fulfillment, message=None, **_):
        return fulfillment_create(self.store, fulfillment, message)

    def fulfillmentTrackingInfoUpdate(self, info, fulfillmentId, trackingInfoInput, notifyCustomer=None, **_):
        return fulfillment_tracking_info_update(self.store, fulfillmentId, trackingInfoInput, notifyCustomer)

    def fulfillmentOrderHold(self, info, id, fulfillmentHold, **_):
        return fulfillment_order_hold(self.store, id, fulfillmentHold)

    def fulfillmentOrderReleaseHold(self, info, id, holdIds=None, externalId=None, **_):
        return fulfillment_order_release_hold(self.store, id, holdIds, externalId)

    def orderMarkAsPaid(self, info, input, **_):
        return order_mark_as_paid(self.store, input["id"])

    def orderUpdate(self, info, input, **_):
        return order_update(self.store, input)

    def metafieldDefinitionCreate(self, info, definition, **_):
        return metafield_definition_create(self.store, definition)

    def metafieldDefinitionUpdate(self, info, definition, **_):
        return metafield_definition_update(self.store, definition)


# --- nested fields --------------------------------------------------------------------------------

def _store(info: GraphQLResolveInfo) -> ShopifyStore:
    return info.context.store


def _metafield(source, info, namespace=None, key=None, **_):
    for metafield in source.get("metafields") or []:
        if metafield["key"] == key and (namespace is None or metafield["namespace"] == namespace):
            return metafield
    return None


def _count(found: list, limit) -> dict:
    """A `Count`: exact up to `limit` (None: no limit), else the limit with precision AT_LEAST."""
    if limit is not None and len(found) > limit:
        return {"count": limit, "precision": "AT_LEAST"}
    return {"count": len(found), "precision": "EXACT"}


def _inventory_quantity(source, info, **_):
    """ProductVariant.inventoryQuantity: available units summed over the item's active levels."""
    return sum(level["quantities"]["available"] for level in _store(info).levels_of_item(source["inventoryItem"]["id"]))


def _item_levels(source, info, includeInactive=False, query=None, reverse=False, **page):
    return paginate(_store(info).levels_of_item(source["id"], bool(includeInactive)), reverse=reverse, **page)


def _item_level(source, info, locationId, includeInactive=False, **_):
    level = _store(info).level(source["id"], locationId)
    return level if level and (level["isActive"] or includeInactive) else None


def _location_levels(source, info, includeInactive=False, query=None, reverse=False, **page):
    store = _store(info)
    found = [by_location[source["id"]] for by_location in store.levels.values() if source["id"] in by_location
             and (includeInactive or by_location[source["id"]]["isActive"])]
    return paginate(found, reverse=reverse, **page)


def _bulk_url(source, info, **_):
    if source["status"] != "COMPLETED" or source["objectCount"] == "0":
        return None  # Shopify gives no file for an empty result
    return info.context.base_url.rstrip("/") + source["_path"]


def _discounted_total(source, info, withCodeDiscounts=False, **_):
    """LineItem.discountedTotalSet: "Code-based discounts aren't included by default" (SDL); see discounts.py."""
    return source.get("_discountedTotalWithCodesSet", source["discountedTotalSet"]) if withCodeDiscounts \
        else source["discountedTotalSet"]


def _order_fulfillments(source, info, first=None, query=None, **_):
    """Order.fulfillments is a plain list (not a connection), oldest first, truncated to `first`."""
    found = source["fulfillments"]
    if query:
        clauses = parse_search(query)
        found = [f for f in found if matches(clauses, f, FULFILLMENT_SEARCH_FIELDS, FULFILLMENT_FREE_TEXT)]
    return found[:first] if first is not None else list(found)


FIELD_RESOLVERS: dict[tuple[str, str], Callable] = {
    ("LineItem", "variant"): lambda s, info, **_: _store(info).variant_record(s["_variantId"]) if s["_variantId"] else None,
    ("LineItem", "product"): lambda s, info, **_: _store(info).products.get(s["_productId"]),
    ("LineItem", "discountedTotalSet"): _discounted_total,
    ("FulfillmentOrderLineItem", "lineItem"): lambda s, info, **_: _store(info).line_items.get(s["lineItemId"]),
    ("FulfillmentOrderLineItem", "variant"):
        lambda s, info, **_: _store(info).variant_record(s["_variantId"]) if s["_variantId"] else None,
    ("FulfillmentOrder", "order"): lambda s, info, **_: _store(info).order_record(s["orderId"]),
    ("ProductVariant", "product"): lambda s, info, **_: _store(info).products.get(s["_productId"]),
    ("ProductVariant", "inventoryQuantity"): _inventory_quantity,
    ("ProductVariant", "sellableOnlineQuantity"): _inventory_quantity,
    ("InventoryItem", "variant"): lambda s, info, **_: _store(info).variant_record(s["_variantId"]),
    ("InventoryItem", "inventoryLevels"): _item_levels,
    ("InventoryItem", "inventoryLevel"): _item_level,
    ("InventoryItem", "locationsCount"): lambda s, info, **_: _count(_store(info).levels_of_item(s["id"]), None),
    ("InventoryLevel", "quantities"): lambda s, info, names, **_: inventory.quantities_of(s, names),
    ("InventoryLevel", "item"): lambda s, info, **_: _store(info).inventory_items[s["_itemId"]],
    ("InventoryLevel", "location"): lambda s, info, **_: _store(info).locations[s["_locationId"]],
    ("Location", "inventoryLevels"): _location_levels,
    ("Location", "inventoryLevel"): lambda s, info, inventoryItemId, includeInactive=False, **_: _item_level(
        {"id": inventoryItemId}, info, s["id"], includeInactive),
    ("InventoryAdjustmentGroup", "changes"): lambda s, info, **filters: inventory.changes_filtered(s, **filters),
    ("BulkOperation", "url"): _bulk_url,
    ("Product", "variants"): lambda s, info, **page: paginate(
        [_store(info).variants[v] for v in s["_variantIds"]], **page),
    ("Order", "metafield"): _metafield,
    ("MetafieldDefinition", "metafieldsCount"): lambda s, info, **_: metafields_count(_store(info), s),
    ("Order", "fulfillments"): _order_fulfillments,
    ("Fulfillment", "order"): lambda s, info, **_: _store(info).order_record(s["orderId"]),
    ("Fulfillment", "fulfillmentOrders"): lambda s, info, **page: paginate(
        [_store(info).fulfillment_orders[i] for i in s["_fulfillmentOrderIds"]], **page),
    ("FulfillmentLineItem", "lineItem"): lambda s, info, **_: _store(info).line_items.get(s["lineItemId"]),
    ("Order", "metafields"): lambda s, info, namespace=None, keys=None, **page: paginate(
        [m for m in s["metafields"] if (namespace is None or m["namespace"] == namespace)
         and (not keys or f"{m['namespace']}.{m['key']}" in keys or m["key"] in keys)], **page),
}

_MISSING = object()


def field_resolver(source, info: GraphQLResolveInfo, **args):
    special = FIELD_RESOLVERS.get((info.parent_type.name, info.field_name))
    if special is not None:
        return special(source, info, **args)
    if isinstance(source, ShopifyRoot):
        method = getattr(source, info.field_name, None)
        if method is None:
            raise GraphQLError(f"The sandbox does not implement the root field '{info.field_name}' yet",
                               extensions={"code": "NOT_IMPLEMENTED"})
        source.store.calls[info.field_name] += 1
        return method(info, **args)
    value = source.get(info.field_name, _MISSING) if isinstance(source, dict) else getattr(source, info.field_name, _MISSING)
    named = get_named_type(info.return_type)
    is_connection = named.name.endswith("Connection")
    if value is _MISSING or value is None:
        # Fields the sandbox does not model: empty lists and connections rather than a null in a non-null position.
        if isinstance(info.return_type, GraphQLNonNull):
            if is_connection:
                return paginate([], first=args.get("first") or 0, last=args.get("last"))
            if isinstance(info.return_type.of_type, GraphQLList):
                return []
        return None
    if is_connection and isinstance(value, list):
        return paginate(value, **args)
    if isinstance(value, list) and args.get("first") is not None:
        return value[: args["first"]]  # plain lists with a `first` argument (Order.fulfillments, Fulfillment.trackingInfo)
    return value
