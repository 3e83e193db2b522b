"""Inventory of the sandbox store: levels per (item, location), their named quantities, and the writes
`inventoryAdjustQuantities` / `inventorySetQuantities` (NOTES §3.5, fixtures `products__inventory-*`).

A level holds Shopify's eight quantity names. `on_hand` is what is physically there:
available + committed + reserved + damaged + quality_control + safety_stock; `incoming` is not on hand.
`available` may go negative (orders that ignore the inventory policy oversell).

Recorded behaviour reproduced here (messages and codes from the fixtures, unless marked "not captured"):
- set `available` or `on_hand` only (INVALID_NAME); adjust `available, damaged, incoming, quality_control,
  reserved, safety_stock` (quantity name allow-list); the 17 reasons of INVALID_REASON;
- a change of `available` (or of an unavailable state) is mirrored into `on_hand`: two changes come back,
  each with `quantityAfterChange: null`; a request that changes nothing returns a null group and no error;
- `changeFromQuantity` must be given (null allowed) or the request fails with INVALID_FIELD_ARGUMENTS;
  a value that differs from the stored quantity → CHANGE_FROM_QUANTITY_STALE (the SDL's wording);
- a duplicate (item, location) pair in a set is reported at every index that repeats it;
- `@idempotent(key:)` is required (BAD_REQUEST), see idempotency.py.
Every level a write touches publishes `inventory_levels/update` (REST payload, rest_payloads.py).
"""

from typing import TYPE_CHECKING

from mirakl_pipelines.sandbox.shopify.rest_payloads import inventory_level_payload

if TYPE_CHECKING:  # store.py imports this module
    from mirakl_pipelines.sandbox.shopify.store import ShopifyStore

QUANTITY_NAMES = ("available", "on_hand", "committed", "incoming", "reserved", "damaged", "quality_control",
                  "safety_stock")
SET_NAMES = ("available", "on_hand")
ADJUST_NAMES = ("available", "damaged", "incoming", "quality_control", "reserved", "safety_stock")
# States that are part of on_hand: changing one changes on_hand by the same amount.
ON_HAND_PARTS = ("available", "committed", "reserved", "damaged", "quality_control", "safety_stock")
REASONS = ("correction", "cycle_count_available", "damaged", "movement_canceled", "movement_created",
           "movement_received", "movement_updated", "other", "promotion", "quality_control", "received",
           "reservation_created", "reservation_deleted", "reservation_updated", "restock", "safety_stock", "shrinkage")
MAX_QUANTITY = 1_000_000_000

INVALID_REASON = "The specified reason is invalid. Valid values are: " + ", ".join(REASONS) + "."
INVALID_SET_NAME = "The quantity name must be either 'available' or 'on_hand'."
INVALID_ADJUST_NAME = "The specified quantity name is invalid. Valid values are: " + ", ".join(ADJUST_NAMES) + "."
UNKNOWN_ITEM = "The specified inventory item could not be found."
UNKNOWN_LOCATION = "The specified location could not be found."
DUPLICATE_PAIR = "The combination of inventoryItemId and locationId must be unique."
STALE = "The changeFromQuantity argument no longer matches the persisted quantity."  # SDL enum description
TOO_HIGH = "The quantity can't be higher than 1,000,000,000."
NEGATIVE = "The quantity can't be negative."
TOO_LOW = "The quantity can't be lower than -1,000,000,000."  # not captured
NOT_STOCKED = "The specified inventory item is not stocked at the location."  # not captured
NOT_TRACKED = "The specified inventory item does not track inventory."  # not captured
LEDGER_REQUIRED = "A ledger document URI is required for all quantity names except 'available'."  # not captured


def _now() -> str:
    from mirakl_pipelines.sandbox.shopify.store import utc_now_iso

    return utc_now_iso()


def activate(store: "ShopifyStore", item_id: str, location_id: str, available: int = 0) -> dict:
    """Stock the item at the location (a new level, `available` units on hand); the level."""
    existing = store.levels[item_id].get(location_id)
    if existing is not None:
        return existing
    location = store.locations[location_id]
    item = store.inventory_items[item_id]
    now = _now()
    quantities = dict.fromkeys(QUANTITY_NAMES, 0)
    quantities["available"] = quantities["on_hand"] = available
    level = {
        "id": f"gid://shopify/InventoryLevel/{location['_levelNumber']}?inventory_item_id={item['legacyResourceId']}",
        "isActive": True, "canDeactivate": True, "deactivationAlert": None, "createdAt": now, "updatedAt": now,
        "quantities": quantities,
        # Captured reads show updatedAt on `available` only (on_hand and the others read null).
        "quantityUpdatedAt": {"available": now},
        "_itemId": item_id, "_locationId": location_id,
    }
    store.levels[item_id][location_id] = level
    location["hasActiveInventory"] = True
    return level


def quantities_of(level: dict, names: list[str]) -> list[dict]:
    """InventoryLevel.quantities(names:): the named quantities, in the order asked (unknown names left out)."""
    item_number = level["id"].rsplit("=", 1)[-1]
    return [{"id": f"gid://shopify/InventoryQuantity/{level['id'].split('/')[-1].split('?')[0]}-{item_number}-{name}",
             "name": name, "quantity": level["quantities"][name],
             "updatedAt": level["quantityUpdatedAt"].get(name)}
            for name in names if name in level["quantities"]]


def level_by_id(store: "ShopifyStore", level_id: str) -> dict | None:
    try:
        number, item_legacy = level_id.removeprefix("gid://shopify/InventoryLevel/").split("?inventory_item_id=")
    except ValueError:
        return None
    location = next((loc for loc in store.locations.values() if loc["_levelNumber"] == number), None)
    item = next((i for i in store.inventory_items.values() if i["legacyResourceId"] == item_legacy), None)
    return store.level(item["id"], location["id"]) if location and item else None


# --- writes ---------------------------------------------------------------------------------------

def _error(field: list, message: str, code: str | None) -> dict:
    return {"field": [str(part) for part in field], "message": message, "code": code}


def _common_errors(store: "ShopifyStore", request: dict, rows_key: str, allowed_names: tuple, name_message: str,
                   name_code: str) -> list[dict]:
    errors = []
    if request.get("name") not in allowed_names:
        errors.append(_error(["input", "name"], name_message, name_code))
    if request.get("reason") not in REASONS:
        errors.append(_error(["input", "reason"], INVALID_REASON, "INVALID_REASON"))
    for i, row in enumerate(request[rows_key]):
        path = ["input", rows_key, i]
        item = store.inventory_items.get(row["inventoryItemId"])
        if item is None:
            errors.append(_error(path + ["inventoryItemId"], UNKNOWN_ITEM, "INVALID_INVENTORY_ITEM"))
        if row["locationId"] not in store.locations:
            errors.append(_error(path + ["locationId"], UNKNOWN_LOCATION, "INVALID_LOCATION"))
        if item is None or row["locationId"] not in store.locations:
            continue
        if not item["tracked"]:
            errors.append(_error(path + ["inventoryItemId"], NOT_TRACKED, "NON_MUTABLE_INVENTORY_ITEM"))
        elif store.level(item["id"], row["locationId"]) is None:
            errors.append(_error(path + ["locationId"], NOT_STOCKED, "ITEM_NOT_STOCKED_AT_LOCATION"))
    return errors


def _stale(store: "ShopifyStore", row: dict, name: str, path: list) -> list[dict]:
    level = store.level(row["inventoryItemId"], row["locationId"])
    expected = row.get("changeFromQuantity")
    if level is None or expected is None or name not in QUANTITY_NAMES or level["quantities"][name] == expected:
        return []
    return [_error(path + ["changeFromQuantity"], STALE, "CHANGE_FROM_QUANTITY_STALE")]


def adjust_quantities(store: "ShopifyStore", request: dict) -> dict:
    """inventoryAdjustQuantities: add each change's delta to quantity `name`; {inventoryAdjustmentGroup, userErrors}."""
    with store.lock:
        name = request.get("name")
        errors = _common_errors(store, request, "changes", ADJUST_NAMES, INVALID_ADJUST_NAME, "INVALID_QUANTITY_NAME")
        for i, change in enumerate(request["changes"]):
            path = ["input", "changes", i]
            if name in ADJUST_NAMES and name != "available" and not change.get("ledgerDocumentUri"):
                errors.append(_error(path + ["ledgerDocumentUri"], LEDGER_REQUIRED, "INVALID_QUANTITY_DOCUMENT"))
            errors += _stale(store, change, name, path)
            level = store.level(change["inventoryItemId"], change["locationId"])
            if level is not None and name in ADJUST_NAMES:
                after = level["quantities"][name] + change["delta"]
                if after > MAX_QUANTITY:
                    errors.append(_error(path + ["delta"], TOO_HIGH, "INVALID_QUANTITY_TOO_HIGH"))
                elif after < -MAX_QUANTITY:
                    errors.append(_error(path + ["delta"], TOO_LOW, "INVALID_QUANTITY_TOO_LOW"))
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        deltas = [(change["inventoryItemId"], change["locationId"], name, change["delta"],
                   change.get("ledgerDocumentUri")) for change in request["changes"]]
        return {"inventoryAdjustmentGroup": apply_deltas(store, deltas, request["reason"],
                                                         request.get("referenceDocumentUri")), "userErrors": []}


def set_quantities(store: "ShopifyStore", request: dict) -> dict:
    """inventorySetQuantities: set quantity `name` (available or on_hand) at each (item, location)."""
    with store.lock:
        name = request.get("name")
        errors = _common_errors(store, request, "quantities", SET_NAMES, INVALID_SET_NAME, "INVALID_NAME")
        pairs: dict[tuple[str, str], list[int]] = {}
        for i, row in enumerate(request["quantities"]):
            pairs.setdefault((row["inventoryItemId"], row["locationId"]), []).append(i)
        for indexes in pairs.values():
            if len(indexes) > 1:
                errors += [_error(["input", "quantities", i, "locationId"], DUPLICATE_PAIR,
                                  "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR") for i in indexes]
        for i, row in enumerate(request["quantities"]):
            path = ["input", "quantities", i]
            if row["quantity"] > MAX_QUANTITY:
                errors.append(_error(path + ["quantity"], TOO_HIGH, "INVALID_QUANTITY_TOO_HIGH"))
            elif row["quantity"] < 0:
                errors.append(_error(path + ["quantity"], NEGATIVE, "INVALID_QUANTITY_NEGATIVE"))
            errors += _stale(store, row, name, path)
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        deltas = []
        for row in request["quantities"]:
            level = store.level(row["inventoryItemId"], row["locationId"])
            # Setting on_hand moves available with it (recorded: set on_hand 0→4 gives available +4, on_hand +4).
            deltas.append((row["inventoryItemId"], row["locationId"], "available",
                           row["quantity"] - level["quantities"][name], None))
        return {"inventoryAdjustmentGroup": apply_deltas(store, deltas, request["reason"],
                                                         request.get("referenceDocumentUri")), "userErrors": []}


def apply_deltas(store: "ShopifyStore", deltas: list[tuple], reason: str, reference: str | None,
                 mirror_on_hand: bool = True) -> dict | None:
    """Apply (item, location, name, delta, ledger uri) changes; the adjustment group, None when nothing changed.

    A change of a part of on_hand is mirrored into on_hand (two changes, as captured)."""
    now = _now()
    changes, touched = [], {}
    for item_id, location_id, name, delta, ledger in deltas:
        if delta == 0:
            continue
        level = store.level(item_id, location_id)
        level["quantities"][name] += delta
        level["quantityUpdatedAt"][name] = now if name == "available" else level["quantityUpdatedAt"].get(name)
        level["updatedAt"] = now
        touched[level["id"]] = level
        item, location = store.inventory_items[item_id], store.locations[location_id]
        changes.append(_change(name, delta, item, location, ledger))
        if mirror_on_hand and name in ON_HAND_PARTS:
            level["quantities"]["on_hand"] += delta
            changes.append(_change("on_hand", delta, item, location, None))
    if not changes:
        return None
    group_id, _ = store.new_id("InventoryAdjustmentGroup")
    group = {"id": group_id, "createdAt": now, "reason": reason, "referenceDocumentUri": reference, "app": None,
             "staffMember": None, "changes": changes}
    store.adjustment_groups[group_id] = group
    publish_levels(store, touched.values())
    return group


def _change(name: str, delta: int, item: dict, location: dict, ledger: str | None) -> dict:
    return {"name": name, "delta": delta, "quantityAfterChange": None, "item": item, "location": location,
            "ledgerDocumentUri": ledger}


def publish_levels(store: "ShopifyStore", levels) -> None:
    """One `inventory_levels/update` per level that changed, all under one event id (one merchant action)."""
    event_id = store.new_event_id()
    for level in list(levels):
        store.publish("inventory_levels/update", lambda level=level: inventory_level_payload(store, level), event_id)


def commit_for_order(store: "ShopifyStore", variant: dict, quantity: int) -> None:
    """An order line claims `quantity` units at the primary (fulfilling) location: available → committed.

    An item not stocked there is stocked at 0 first, so the claim shows as negative available (oversold)."""
    item_id = variant["inventoryItem"]["id"]
    level = store.level(item_id, store.location["id"]) or activate(store, item_id, store.location["id"])
    now = _now()
    level["quantities"]["available"] -= quantity
    level["quantities"]["committed"] += quantity
    level["quantityUpdatedAt"]["available"] = level["updatedAt"] = now
    publish_levels(store, [level])


def changes_filtered(group: dict, inventoryItemIds=None, locationIds=None, quantityNames=None) -> list[dict]:
    """InventoryAdjustmentGroup.changes(inventoryItemIds:, locationIds:, quantityNames:)."""
    return [c for c in group["changes"]
            if (not inventoryItemIds or c["item"]["id"] in inventoryItemIds)
            and (not locationIds or c["location"]["id"] in locationIds)
            and (not quantityNames or c["name"] in quantityNames)]


def require_change_from_quantity(info, rows: list[dict], input_type: str) -> None:
    """Since 2026-04 every row must carry `changeFromQuantity`, null allowed (captured INVALID_FIELD_ARGUMENTS)."""
    from graphql import GraphQLError

    if any("changeFromQuantity" not in row for row in rows):
        raise GraphQLError(f"{input_type} must include the following argument: changeFromQuantity.",
                           info.field_nodes[0], extensions={"code": "INVALID_FIELD_ARGUMENTS"})
