"""In-memory state of the simulated Shopify store: catalogue, locations and inventory levels, orders,
fulfilment orders, fulfilments, bulk operations, and the webhook subscriptions their changes are
delivered to (webhooks.py).

Inventory is per (inventory item, location): a level holds Shopify's named quantities (inventory.py).
The first location is the primary one: orders commit and fulfil there, and `store.location`,
`inventory_of(variant)` and `inventory_available(sku)` read it, as they did when the store had one.

Records are plain dicts keyed like the Admin GraphQL fields, so graphql-core's default resolvers
read them directly; references between records are ids (`_variantId`, `orderId`, …) resolved by
`resolvers.py`. Every read and write holds one re-entrant lock, so tests, the HTTP app and the
scenario driver can share a store across threads.
"""

import collections
import copy
import itertools
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import yaml

from mirakl_pipelines.sandbox.faults import Faults
from mirakl_pipelines.sandbox.shopify import inventory as inventory_rules
from mirakl_pipelines.sandbox.shopify.bulk_operations import ERROR_CODES as BULK_ERROR_CODES, BulkOperations
from mirakl_pipelines.sandbox.shopify.cost import LeakyBucket
from mirakl_pipelines.sandbox.shopify.money import shopify_amount, to_decimal
from mirakl_pipelines.sandbox.shopify.rest_payloads import order_payload
from mirakl_pipelines.sandbox.shopify.webhooks import DeliverySettings, Subscription, WebhookDispatcher, WebhookFaults

# Restore rates per plan (points/s), Shopify's published table; the bucket is 20× the rate (captured 2000/100).
PLAN_RESTORE_RATES = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0, "enterprise": 2000.0}


@dataclass
class StoreSettings:
    access_token: str = "shpat_sandbox"
    api_version: str = "2026-07"
    shop_domain: str = "sandbox-brand.myshopify.com"
    currency: str = "EUR"
    bucket_size: int = 2000
    restore_rate: float = 100.0  # Standard plan; Plus = 1000/s ("plan" knob of POST /_sandbox/settings)
    throttle_http_status: int = 200  # 200 + THROTTLED (what Shopify does) or 429 (also seen)
    first_order_number: int = 1001
    # Seconds before `orders(query:)` (Shopify's search index) sees a new order; `order(id:)` and
    # `orderByIdentifier` read it at once. Real stores lag by seconds; 0 keeps the index in step.
    search_index_lag_seconds: float = 0.0
    # Bulk operations (bulk_operations.py): seconds from CREATED to COMPLETED (captured: about 1 s for a small
    # query); "" or a BulkOperationErrorCode (ACCESS_DENIED, INTERNAL_SERVER_ERROR, TIMEOUT) to make them FAIL;
    # and how many inventory adjustments land while one runs (after its data is read: "quantities changing mid-push").
    bulk_operation_seconds: float = 1.0
    bulk_operation_failure: str = ""
    bulk_changes_while_running: int = 0


def gid(resource: str, number: int) -> str:
    return f"gid://shopify/{resource}/{number}"


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class ShopifyStore:
    def __init__(self, settings: StoreSettings | None = None, clock: Callable[[], float] = time.monotonic):
        self.settings = settings or StoreSettings()
        self.clock = clock
        self.faults = Faults()
        self.bucket = LeakyBucket(self.settings.bucket_size, self.settings.restore_rate, clock)
        self.calls: collections.Counter = collections.Counter()  # root fields resolved, by name
        self.requests = 0  # GraphQL requests received, throttled ones included
        self.points_spent = 0
        self.throttled = 0
        self.lock = threading.RLock()
        # Distinct id ranges per resource read like Shopify's large numeric ids and never collide across types.
        self._ids = collections.defaultdict(lambda: itertools.count(1))
        self._next_order_number = self.settings.first_order_number
        self.location: dict = {}
        self.products: dict[str, dict] = {}
        self.variants: dict[str, dict] = {}
        self._variant_by_sku: dict[str, str] = {}
        self.locations: dict[str, dict] = {}  # location id → record, in creation order; the first is the primary
        self.inventory_items: dict[str, dict] = {}  # inventory item id → record (also the variant's `inventoryItem`)
        self.levels: dict[str, dict[str, dict]] = {}  # inventory item id → {location id → inventory level}
        self.adjustment_groups: dict[str, dict] = {}
        self.idempotency: dict[str, tuple] = {}  # @idempotent key → (fingerprint of the request, its payload)
        self._orders: dict[str, dict] = {}
        self._orders_by_source_identifier: dict[str, list[str]] = collections.defaultdict(list)
        self.line_items: dict[str, dict] = {}
        self.fulfillment_orders: dict[str, dict] = {}
        self.fulfillments: dict[str, dict] = {}
        self.metafield_definitions: dict[tuple[str, str, str], dict] = {}  # (ownerType, namespace, key) → record
        self._unique_values: dict[tuple[str, str, str, str], str] = {}  # (ownerType, namespace, key, value) → owner id
        self.webhooks = WebhookDispatcher(lambda: self.settings.shop_domain, lambda: self.settings.api_version)
        self.bulk = BulkOperations(self)
        self.set_location("Shop location")

    # --- ids -------------------------------------------------------------------------------
    def new_id(self, resource: str) -> tuple[str, str]:
        """(gid, legacyResourceId) for a new record of `resource`."""
        number = 5_000_000_000 + next(self._ids[resource])
        return gid(resource, number), str(number)

    def next_order_name(self) -> str:
        name = f"#{self._next_order_number}"
        self._next_order_number += 1
        return name

    # --- catalogue -------------------------------------------------------------------------
    def set_location(self, name: str, country_code: str = "FR") -> None:
        """The store's primary location (the demo brand ships from France): renamed if it exists."""
        with self.lock:
            if self.location:
                self.location["name"] = name
                self.location["_countryCode"] = self.location["address"]["countryCode"] = country_code
                return
            self.location = self.add_location(name, country_code=country_code)

    def add_location(self, name: str, *, active: bool = True, fulfills_online_orders: bool = True,
                     country_code: str = "FR") -> dict:
        """A new location; the first one added is the primary (fulfilling) location."""
        with self.lock:
            if not name or not str(name).strip():
                raise ValueError("a location needs a name")
            if self.location_by_name(name) is not None:
                raise ValueError(f"location {name!r} exists already")
            location_id, legacy = self.new_id("Location")
            _, level_number = self.new_id("InventoryLevel")  # one number per location (captured level ids share it)
            now = utc_now_iso()
            record = {"id": location_id, "legacyResourceId": legacy, "name": str(name), "isActive": bool(active),
                      "isPrimary": not self.locations, "fulfillsOnlineOrders": bool(fulfills_online_orders) and bool(active),
                      "shipsInventory": bool(active), "hasActiveInventory": False, "isFulfillmentService": False,
                      "activatable": not active, "deactivatable": bool(active), "deletable": not active,
                      "deactivatedAt": None if active else now, "addressVerified": False, "hasUnfulfilledOrders": False,
                      "createdAt": now, "updatedAt": now, "suggestedAddresses": [],
                      "address": {"countryCode": country_code, "country": None, "address1": None, "address2": None,
                                  "city": None, "zip": None, "province": None, "provinceCode": None, "phone": None,
                                  "latitude": None, "longitude": None, "formatted": []},
                      "_countryCode": country_code, "_levelNumber": level_number}
            self.locations[location_id] = record
            return record

    def location_by_name(self, name: str) -> dict | None:
        return next((loc for loc in self.locations.values() if loc["name"] == name), None)

    def location_named(self, name: str, where: str) -> dict:
        location = self.location_by_name(name)
        if location is None:
            raise ValueError(f"{where}: no location named {name!r}; known: {[l['name'] for l in self.locations.values()]}")
        return location

    def seed_catalogue(self, catalogue: dict) -> None:
        """Load the dict of data/sandbox/catalogue.yaml: products → variants (sku, price, stock) at one location."""
        with self.lock:
            if catalogue.get("currency"):
                self.settings.currency = catalogue["currency"]
            if catalogue.get("location"):
                self.location["name"] = catalogue["location"]
            for l_index, location in enumerate(catalogue.get("locations") or []):
                if not isinstance(location, dict) or not location.get("name"):
                    raise ValueError(f"catalogue location #{l_index}: a mapping with a name is required")
                if self.location_by_name(location["name"]) is None:
                    self.add_location(location["name"], active=location.get("active", True),
                                      fulfills_online_orders=location.get("fulfills_online_orders", True),
                                      country_code=location.get("country_code", "FR"))
            # `products` are what the marketplaces list (the scenario orders them); `shop_only_products` exist only
            # in Shopify and carry the inventory variety (no SKU, untracked, negative, stocked nowhere).
            for p_index, product in enumerate((catalogue.get("products") or []) + (catalogue.get("shop_only_products") or [])):
                if not product.get("title"):
                    raise ValueError(f"catalogue product #{p_index}: title is required")
                product_id, product_legacy = self.new_id("Product")
                record = {"id": product_id, "legacyResourceId": product_legacy, "title": product["title"],
                          "vendor": product.get("vendor"), "status": "ACTIVE", "_variantIds": []}
                self.products[product_id] = record
                for v_index, variant in enumerate(product.get("variants") or []):
                    self.add_variant(record, variant, where=f"catalogue product {product['title']!r} variant #{v_index}")

    def add_variant(self, product: dict, variant: dict, where: str) -> dict:
        """A variant and its inventory item. `sku` may be absent (Shopify allows it); `stock` is an int (units at
        the primary location) or {location name: units} (an empty mapping: stocked nowhere); `stock_elsewhere`
        ({location name: units}) adds locations beside an int `stock`."""
        sku = variant.get("sku") or None
        if sku is not None and sku in self._variant_by_sku:
            raise ValueError(f"{where}: duplicate sku {sku!r}")
        price = to_decimal(variant.get("price", "0"), f"{where} (sku {sku}) price")
        stock = self._stock_by_location(variant.get("stock", 0), f"{where} (sku {sku})") + \
            self._stock_by_location(variant.get("stock_elsewhere") or {}, f"{where} (sku {sku}) stock_elsewhere")
        if len({location["id"] for location, _ in stock}) < len(stock):
            raise ValueError(f"{where} (sku {sku}): a location is stocked twice (stock and stock_elsewhere)")
        variant_id, legacy = self.new_id("ProductVariant")
        item_id, item_legacy = self.new_id("InventoryItem")
        title = str(variant.get("title") or "Default Title")
        record = {
            "id": variant_id, "legacyResourceId": legacy, "sku": sku, "title": title,
            "displayName": product["title"] if title == "Default Title" else f"{product['title']} - {title}",
            "price": shopify_amount(price), "compareAtPrice": None, "barcode": variant.get("barcode"),
            "inventoryPolicy": variant.get("inventory_policy", "DENY"), "taxable": True,
            "availableForSale": True, "createdAt": utc_now_iso(), "updatedAt": utc_now_iso(),
            "inventoryItem": {"id": item_id, "legacyResourceId": item_legacy, "sku": sku,
                              "tracked": bool(variant.get("tracked", True)), "requiresShipping": True,
                              "createdAt": utc_now_iso(), "updatedAt": utc_now_iso(), "duplicateSkuCount": 0,
                              "_variantId": variant_id},
            "_productId": product["id"],
        }
        self.variants[variant_id] = record
        if sku is not None:
            self._variant_by_sku[sku] = variant_id
        self.inventory_items[item_id] = record["inventoryItem"]
        self.levels[item_id] = {}
        for location, units in stock:
            inventory_rules.activate(self, item_id, location["id"], available=units)
        product["_variantIds"].append(variant_id)
        return record

    def _stock_at(self, item_id: str, location_id: str) -> None:
        if self.level(item_id, location_id) is None and self.inventory_items[item_id]["tracked"]:
            inventory_rules.activate(self, item_id, location_id)

    def _stock_by_location(self, stock, where: str) -> list[tuple[dict, int]]:
        if stock is None:
            return []
        if isinstance(stock, dict):
            pairs = [(self.location_named(str(name), f"{where} stock"), units) for name, units in stock.items()]
        else:
            pairs = [(self.location, stock)]
        checked = []
        for location, units in pairs:
            if isinstance(units, bool) or not isinstance(units, int):
                raise ValueError(f"{where} stock at {location['name']!r}: {units!r} is not a whole number of units")
            checked.append((location, units))
        return checked

    @classmethod
    def from_catalogue_file(cls, path, settings: StoreSettings | None = None) -> "ShopifyStore":
        path = Path(path)
        try:
            catalogue = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"catalogue {path}: not valid YAML ({e})") from e
        store = cls(settings)
        store.seed_catalogue(catalogue)
        return store

    # --- reads -----------------------------------------------------------------------------
    def orders(self) -> list[dict]:
        """All orders, oldest first (deep copies: the internal view served by GET /_sandbox/orders)."""
        with self.lock:
            return copy.deepcopy(list(self._orders.values()))

    def order(self, order_gid: str) -> dict:
        with self.lock:
            if order_gid not in self._orders:
                raise KeyError(f"no order {order_gid} in the sandbox store")
            return copy.deepcopy(self._orders[order_gid])

    def order_record(self, order_gid: str) -> dict | None:
        """The live record (for resolvers, under the lock)."""
        return self._orders.get(order_gid)

    def order_records(self) -> list[dict]:
        return list(self._orders.values())

    def searchable(self, order: dict) -> bool:
        """Whether the search index (`orders(query:)`) has caught up with this order (search_index_lag_seconds)."""
        return order.get("_indexedAt", 0.0) <= self.clock()

    def metafield_definition(self, owner_type: str, namespace: str, key: str) -> dict | None:
        return self.metafield_definitions.get((owner_type, namespace, key))

    def unique_definition(self, owner_type: str, namespace: str, key: str) -> dict | None:
        """The definition of (namespace, key) on `owner_type` if its values must be unique."""
        definition = self.metafield_definition(owner_type, namespace, key)
        return definition if definition and definition["capabilities"]["uniqueValues"]["enabled"] else None

    def owner_of_unique_value(self, owner_type: str, namespace: str, key: str, value: str) -> str | None:
        """The id of the record whose unique-valued metafield (namespace, key) holds `value`."""
        return self._unique_values.get((owner_type, namespace, key, value))

    def order_records_by_source_identifier(self, source_identifier: str) -> list[dict]:
        """Indexed lookup: the connector's dedupe query runs before every import, over every order of the store."""
        return [self._orders[i] for i in self._orders_by_source_identifier.get(source_identifier.lower(), [])]

    def order_record_by_name(self, name: str) -> dict | None:
        """The live order named `name` ("#1001"; the "#" may be left out)."""
        wanted = name if name.startswith("#") else f"#{name}"
        return next((o for o in self._orders.values() if o["name"] == wanted), None)

    def variant_by_sku(self, sku: str) -> dict | None:
        with self.lock:
            variant_id = self._variant_by_sku.get(sku)
            return copy.deepcopy(self.variants[variant_id]) if variant_id else None

    def variant_record(self, variant_gid: str) -> dict | None:
        return self.variants.get(variant_gid)

    def inventory_available(self, sku: str, location_name: str | None = None) -> int:
        """`available` of the variant with `sku` at a location (default: the primary); 0 where it is not stocked."""
        with self.lock:
            variant_id = self._variant_by_sku.get(sku)
            if variant_id is None:
                raise KeyError(f"no variant with sku {sku!r} in the sandbox store")
            location = self.location_named(location_name, f"sku {sku}") if location_name else self.location
            level = self.levels[self.variants[variant_id]["inventoryItem"]["id"]].get(location["id"])
            return level["quantities"]["available"] if level else 0

    def inventory_of(self, variant: dict) -> dict[str, int]:
        """The variant's named quantities at the primary location (zeros, not stored, where it is not stocked)."""
        level = self.levels[variant["inventoryItem"]["id"]].get(self.location["id"])
        return level["quantities"] if level else dict.fromkeys(inventory_rules.QUANTITY_NAMES, 0)

    def level(self, item_id: str, location_id: str) -> dict | None:
        return self.levels.get(item_id, {}).get(location_id)

    def levels_of_item(self, item_id: str, include_inactive: bool = False) -> list[dict]:
        """The item's levels in location order."""
        by_location = self.levels.get(item_id, {})
        return [by_location[loc] for loc in self.locations if loc in by_location
                and (include_inactive or by_location[loc]["isActive"])]

    def variant_by_sku_record(self, sku: str) -> dict:
        variant_id = self._variant_by_sku.get(sku)
        if variant_id is None:
            raise KeyError(f"no variant with sku {sku!r} in the sandbox store")
        return self.variants[variant_id]

    # --- inventory writes (the code path of the GraphQL mutations, webhooks included) ---------------
    def adjust_inventory(self, sku: str, location_name: str, delta: int, reason: str = "correction",
                         name: str = "available") -> dict | None:
        """Add `delta` to quantity `name` of `sku` at the named location, as inventoryAdjustQuantities does; the
        item is stocked there first if it was not (a merchant's "stock at this location", which the mutation itself
        refuses to do). The adjustment group (None when nothing changed); ValueError with Shopify's message when
        refused (an untracked item, an unknown reason …)."""
        with self.lock:
            item_id = self.variant_by_sku_record(sku)["inventoryItem"]["id"]
            location = self.location_named(location_name, f"adjust sku {sku}")
            self._stock_at(item_id, location["id"])
            change = {"inventoryItemId": item_id, "locationId": location["id"], "delta": delta,
                      "changeFromQuantity": None}
            if name != "available":
                change["ledgerDocumentUri"] = "sandbox://ledger/adjustment"
            payload = inventory_rules.adjust_quantities(self, {"name": name, "reason": reason, "changes": [change]})
            return _applied(payload, f"adjust {sku} at {location_name} by {delta}")

    def set_inventory(self, sku: str, location_name: str, quantity: int, reason: str = "correction",
                      name: str = "available") -> dict | None:
        """Set quantity `name` (available or on_hand) of `sku` at the named location, as inventorySetQuantities does;
        the item is stocked there first if it was not."""
        with self.lock:
            item_id = self.variant_by_sku_record(sku)["inventoryItem"]["id"]
            location = self.location_named(location_name, f"set sku {sku}")
            self._stock_at(item_id, location["id"])
            payload = inventory_rules.set_quantities(self, {"name": name, "reason": reason, "quantities": [
                {"inventoryItemId": item_id, "locationId": location["id"], "quantity": quantity,
                 "changeFromQuantity": None}]})
            return _applied(payload, f"set {sku} at {location_name} to {quantity}")

    # --- writes ----------------------------------------------------------------------------
    def add_order(self, order: dict) -> None:
        order["_indexedAt"] = self.clock() + self.settings.search_index_lag_seconds
        self._orders[order["id"]] = order
        for metafield in order["metafields"]:
            if self.unique_definition("ORDER", metafield["namespace"], metafield["key"]):
                self._unique_values[("ORDER", metafield["namespace"], metafield["key"], metafield["value"])] = order["id"]
        if order.get("sourceIdentifier"):
            self._orders_by_source_identifier[order["sourceIdentifier"].lower()].append(order["id"])
        for line in order["lineItems"]:
            self.line_items[line["id"]] = line
        for fulfillment_order in order["fulfillmentOrders"]:
            self.fulfillment_orders[fulfillment_order["id"]] = fulfillment_order
        self.publish("orders/create", lambda: order_payload(self, order))

    # --- webhooks --------------------------------------------------------------------------
    def subscribe(self, url: str, secret: str, topics: list[str], name: str | None = None) -> Subscription:
        """Deliver `topics` (e.g. ["fulfillments/create"]) to `url`, signed with `secret`."""
        return self.webhooks.subscribe(url, secret, topics, name)

    @property
    def webhook_faults(self) -> WebhookFaults:
        return self.webhooks.faults

    @property
    def webhook_settings(self) -> DeliverySettings:
        return self.webhooks.settings

    @staticmethod
    def new_event_id() -> str:
        """One X-Shopify-Event-Id per merchant action, shared by every topic it triggers."""
        return str(uuid.uuid4())

    def publish(self, topic: str, payload, event_id: str | None = None) -> list[str]:
        """Queue `topic` for its subscribers; `payload` is a dict or a builder, called (under the lock) only if subscribed."""
        if not self.webhooks.wants(topic):
            return []
        with self.lock:
            body = payload() if callable(payload) else payload
        return self.webhooks.publish(topic, body, event_id)

    def close(self) -> None:
        """Stop the webhook delivery threads and remove bulk operation result files."""
        self.webhooks.stop()
        self.bulk.close()

    def apply_settings(self, **knobs) -> dict:
        """Change settings at runtime (POST /_sandbox/settings): `plan`, `restore_rate`, `bucket_size`, `throttle_http_status`,
        `search_index_lag_seconds`, `bulk_operation_seconds`, `bulk_operation_failure`, `bulk_changes_while_running`…"""
        with self.lock:
            plan = knobs.pop("plan", None)
            if plan is not None:
                if plan not in PLAN_RESTORE_RATES:
                    raise ValueError(f"unknown plan {plan!r}; known: {sorted(PLAN_RESTORE_RATES)}")
                knobs.setdefault("restore_rate", PLAN_RESTORE_RATES[plan])
                knobs.setdefault("bucket_size", int(PLAN_RESTORE_RATES[plan] * 20))
            failure = knobs.get("bulk_operation_failure")
            if failure and failure not in BULK_ERROR_CODES:
                raise ValueError(f"bulk_operation_failure {failure!r}: one of {list(BULK_ERROR_CODES)}, or \"\" for none")
            allowed = set(StoreSettings.__dataclass_fields__)
            unknown = set(knobs) - allowed
            if unknown:
                raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(allowed | {'plan'})}")
            for name, value in knobs.items():
                setattr(self.settings, name, type(getattr(self.settings, name))(value))
            self.bucket.reconfigure(self.settings.bucket_size, self.settings.restore_rate)
            return self.settings_dict()

    def settings_dict(self) -> dict:
        return {name: getattr(self.settings, name) for name in StoreSettings.__dataclass_fields__}

    def stats(self) -> dict:
        with self.lock:
            return {
                "orders": len(self._orders),
                "fulfillments": len(self.fulfillments),
                "variants": len(self.variants),
                "locations": len(self.locations),
                "inventory_adjustments": len(self.adjustment_groups),
                "bulk_operations": self.bulk.stats(),
                "calls": dict(self.calls),
                "requests": self.requests,
                "points_spent": self.points_spent,
                "throttled": self.throttled,
                "throttle_status": self.bucket.status(),
                "webhooks": self.webhooks.stats(),
            }

    def charge(self, points: int) -> None:
        with self.lock:
            self.points_spent += points



def _applied(payload: dict, what: str) -> dict | None:
    if payload["userErrors"]:
        raise ValueError(f"{what}: " + "; ".join(e["message"] for e in payload["userErrors"]))
    return payload["inventoryAdjustmentGroup"]
