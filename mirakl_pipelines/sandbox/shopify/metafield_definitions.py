"""Metafield definitions: `metafieldDefinitionCreate` / `metafieldDefinitionUpdate`, the unique-values capability
and the custom-ID look-up (`orderByIdentifier(identifier: {customId: …})`) it enables.

Rules from the 2026-07 SDL descriptions and Shopify's changelog (2024-12-11 "Adding unique values to
metafields", 2025-03-22 "custom ids more lookups"): unique values exist for `single_line_text_field`,
`number_integer`, `url` and `id`; the `id` type requires them and has them by default; the capability "can only
be set on metafield definitions that don't yet have associated metafields". The userError codes are the
schema's; the messages were not captured and are worded after Shopify's style.
"""

import re

from mirakl_pipelines.sandbox.shopify.order_create import user_error
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, utc_now_iso

APP_NAMESPACE = "$app"  # "If omitted, the app-reserved namespace will be used." (Shopify names it app--<app id>)
UNIQUE_ELIGIBLE_TYPES = {"single_line_text_field", "number_integer", "url", "id"}
UNIQUE_REQUIRED_TYPES = {"id"}
TYPE_CATEGORIES = {
    "id": "TEXT", "single_line_text_field": "TEXT", "multi_line_text_field": "TEXT", "url": "URL",
    "number_integer": "NUMBER", "number_decimal": "NUMBER", "boolean": "TRUE_FALSE", "json": "JSON",
    "date": "DATE_TIME", "date_time": "DATE_TIME", "money": "MEASUREMENT",
}
VALUE_TYPES = {"number_integer": "INTEGER", "boolean": "BOOLEAN", "json": "JSON_STRING", "money": "JSON_STRING"}
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
OWNER_LABELS = {"ORDER": "Order", "PRODUCT": "Product", "PRODUCTVARIANT": "Product variant", "CUSTOMER": "Customer"}


def metafield_definition_create(store: ShopifyStore, definition: dict) -> dict:
    with store.lock:
        owner, namespace, key = definition["ownerType"], definition.get("namespace") or APP_NAMESPACE, definition["key"]
        type_name = definition["type"]
        unique = ((definition.get("capabilities") or {}).get("uniqueValues") or {}).get("enabled")
        errors = _name_errors(namespace, key)
        if type_name not in TYPE_CATEGORIES:
            errors.append(user_error(["definition", "type"], f"Type name {type_name} is not a valid type", "INCLUSION"))
        elif unique and type_name not in UNIQUE_ELIGIBLE_TYPES:
            errors.append(user_error(["definition", "capabilities", "uniqueValues"],
                                     f"Unique values are not available for the {type_name} type", "INVALID_CAPABILITY"))
        elif unique is False and type_name in UNIQUE_REQUIRED_TYPES:
            errors.append(user_error(["definition", "capabilities", "uniqueValues"],
                                     f"Unique values are required for the {type_name} type", "CAPABILITY_REQUIRED_BUT_DISABLED"))
        if not errors and store.metafield_definition(owner, namespace, key):
            errors.append(user_error(["definition", "key"], f"Key is in use for {OWNER_LABELS.get(owner, owner.title())} "
                                                            f"metafields on the '{namespace}' namespace.", "TAKEN"))
        unique = bool(unique) or (unique is None and type_name in UNIQUE_REQUIRED_TYPES)
        if not errors and unique and _metafields_count(store, owner, namespace, key):
            errors.append(_in_use(["definition", "capabilities", "uniqueValues"]))
        if errors:
            return {"createdDefinition": None, "userErrors": errors}
        definition_id, legacy = store.new_id("MetafieldDefinition")
        record = {
            "id": definition_id, "legacyResourceId": legacy, "name": definition["name"],
            "description": definition.get("description"), "namespace": namespace, "key": key, "ownerType": owner,
            "type": {"name": type_name, "category": TYPE_CATEGORIES[type_name], "supportedValidations": [],
                     "supportsDefinitionMigrations": True, "valueType": VALUE_TYPES.get(type_name, "STRING")},
            "capabilities": _capabilities(owner, type_name, unique),
            "access": {"admin": "PUBLIC_READ_WRITE", "storefront": "NONE", "customerAccount": "NONE"},
            "constraints": None, "pinnedPosition": None, "standardTemplate": None, "useAsCollectionCondition": False,
            "validationStatus": "ALL_VALID", "validations": [], "createdAt": utc_now_iso(),
        }
        store.metafield_definitions[(owner, namespace, key)] = record
        for metafield in _metafields(store, owner, namespace, key):
            metafield["type"] = type_name  # "The system updates each valid metafield's type to match the definition."
        return {"createdDefinition": record, "userErrors": []}


def metafield_definition_update(store: ShopifyStore, definition: dict) -> dict:
    with store.lock:
        owner, namespace, key = definition["ownerType"], definition.get("namespace") or APP_NAMESPACE, definition["key"]
        record = store.metafield_definition(owner, namespace, key)
        if record is None:
            return {"updatedDefinition": None, "validationJob": None,
                    "userErrors": [user_error(["definition"], "Definition not found.", "NOT_FOUND")]}
        unique = ((definition.get("capabilities") or {}).get("uniqueValues") or {}).get("enabled")
        path = ["definition", "capabilities", "uniqueValues"]
        enabled = record["capabilities"]["uniqueValues"]["enabled"]
        if unique is not None and unique != enabled:
            if unique and record["type"]["name"] not in UNIQUE_ELIGIBLE_TYPES:
                return _update_refused(user_error(path, f"Unique values are not available for the "
                                                        f"{record['type']['name']} type", "INVALID_CAPABILITY"))
            if unique and _metafields_count(store, owner, namespace, key):
                return _update_refused(_in_use(path))
            if not unique and record["type"]["name"] in UNIQUE_REQUIRED_TYPES:
                return _update_refused(user_error(path, f"Unique values cannot be disabled for the "
                                                        f"{record['type']['name']} type", "CAPABILITY_CANNOT_BE_DISABLED"))
            record["capabilities"]["uniqueValues"]["enabled"] = unique
            if not unique:
                for value_key in [k for k in store._unique_values if k[:3] == (owner, namespace, key)]:
                    del store._unique_values[value_key]
        for field in ("name", "description"):
            if definition.get(field) is not None:
                record[field] = definition[field]
        return {"updatedDefinition": record, "validationJob": None, "userErrors": []}


def metafields_count(store: ShopifyStore, definition: dict) -> int:
    """MetafieldDefinition.metafieldsCount."""
    return _metafields_count(store, definition["ownerType"], definition["namespace"], definition["key"])


def find_by_custom_id(store: ShopifyStore, owner_type: str, custom_id: dict) -> str | None:
    """The id of the record a customId (UniqueMetafieldValueInput) names, or None. Only unique-valued definitions
    identify a record: the look-up of a field without one answers nothing (what Shopify does then: not captured)."""
    namespace = custom_id.get("namespace") or APP_NAMESPACE
    return store.owner_of_unique_value(owner_type, namespace, custom_id["key"], custom_id["value"])


def _metafields(store: ShopifyStore, owner_type: str, namespace: str, key: str) -> list[dict]:
    if owner_type != "ORDER":
        return []  # the sandbox keeps metafields on orders only
    return [m for order in store.order_records() for m in order["metafields"]
            if (m["namespace"], m["key"]) == (namespace, key)]


def _metafields_count(store: ShopifyStore, owner_type: str, namespace: str, key: str) -> int:
    return len(_metafields(store, owner_type, namespace, key))


def _capabilities(owner_type: str, type_name: str, unique: bool) -> dict:
    return {
        "uniqueValues": {"enabled": unique, "eligible": type_name in UNIQUE_ELIGIBLE_TYPES},
        "adminFilterable": {"enabled": False, "eligible": True, "status": "NOT_FILTERABLE"},
        "smartCollectionCondition": {"enabled": False, "eligible": owner_type == "PRODUCT"},
        "analyticsQueryable": {"enabled": False, "eligible": False},
        "cartToOrderCopyable": {"enabled": False, "eligible": owner_type == "ORDER"},
    }


def _name_errors(namespace: str, key: str) -> list[dict]:
    errors = []
    if namespace != APP_NAMESPACE and not (3 <= len(namespace) <= 255 and _NAME.match(namespace)):
        errors.append(user_error(["definition", "namespace"], "Namespace must be 3-255 characters long and only contain "
                                                              "alphanumeric, hyphen, and underscore characters", "INVALID"))
    if not (2 <= len(key) <= 64 and _NAME.match(key)):
        errors.append(user_error(["definition", "key"], "Key must be 2-64 characters long and only contain alphanumeric, "
                                                        "hyphen, and underscore characters", "INVALID"))
    return errors


def _in_use(path: list) -> dict:
    return user_error(path, "Unique values can only be enabled on a definition without metafields", "INVALID_CAPABILITY")


def _update_refused(error: dict) -> dict:
    return {"updatedDefinition": None, "validationJob": None, "userErrors": [error]}
