"""inventoryAdjustQuantities / inventorySetQuantities on the sandbox store, checked against recorded Shopify answers
(fixtures products__inventory-*), and the `inventory_levels/update` webhooks every change publishes."""

import pytest

from mirakl_pipelines.sandbox.shopify.inventory import REASONS
from mirakl_pipelines.sandbox.shopify.order_create import order_create
from mirakl_pipelines_tests.sandbox.conftest import ok
from mirakl_pipelines_tests.sandbox.shopify.fixtures import fixture, with_ids

CONTRACTS = "products__inventory-quantity-contracts-2026-04"
ADJUST = """mutation Adjust($input: InventoryAdjustQuantitiesInput!, $idempotencyKey: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id reason referenceDocumentUri
      changes { name delta quantityAfterChange ledgerDocumentUri item { id } location { id name } } }
    userErrors { field message code }
  }
}"""
SET = """mutation Set($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id reason referenceDocumentUri
      changes { name delta quantityAfterChange item { id } location { id name } } }
    userErrors { field message code }
  }
}"""


def ids(shop, sku="ALP-VEST-12", location="Entrepôt Lyon") -> tuple[str, str]:
    return shop.store.variant_by_sku(sku)["inventoryItem"]["id"], shop.store.location_by_name(location)["id"]


def adjust(shop, delta, key="k1", change_from=None, sku="ALP-VEST-12", location="Entrepôt Lyon", name="available",
           reason="correction", **extra):
    item, loc = ids(shop, sku, location)
    change = {"inventoryItemId": item, "locationId": loc, "delta": delta, "changeFromQuantity": change_from, **extra}
    return shop.graphql(ADJUST, {"input": {"name": name, "reason": reason, "changes": [change]}, "idempotencyKey": key})


def set_to(shop, quantity, key="s1", change_from=None, sku="ALP-VEST-12", location="Entrepôt Lyon", name="available"):
    item, loc = ids(shop, sku, location)
    return shop.graphql(SET, {"input": {"name": name, "reason": "correction", "quantities": [
        {"inventoryItemId": item, "locationId": loc, "quantity": quantity, "changeFromQuantity": change_from}]},
        "idempotencyKey": key})


def quantities(shop, sku="ALP-VEST-12", location="Entrepôt Lyon") -> dict:
    item, loc = ids(shop, sku, location)
    return dict(shop.store.level(item, loc)["quantities"])


def recorded_ids(shop, recorded: dict) -> dict:
    """The recording's item and location ids → the sandbox's (ALP-VEST-12 at Entrepôt Lyon)."""
    item, loc = ids(shop)
    return {recorded["inventoryItemId"]: item, recorded["locationId"]: loc}


def test_adjust_mirrors_on_hand_like_the_recording(shop):
    recorded = fixture(CONTRACTS)
    body = adjust(shop, 2, change_from=25)
    group = ok(body)["inventoryAdjustQuantities"]["inventoryAdjustmentGroup"]
    expected = recorded["inventoryAdjustQuantities"]["response"]["data"]["inventoryAdjustQuantities"]
    item, loc = ids(shop)
    assert [(c["name"], c["delta"], c["quantityAfterChange"]) for c in group["changes"]] == \
        [(c["name"], c["delta"], c["quantityAfterChange"]) for c in expected["inventoryAdjustmentGroup"]["changes"]]
    assert {c["item"]["id"] for c in group["changes"]} == {item} and group["reason"] == "correction"
    assert quantities(shop)["available"] == 27 and quantities(shop)["on_hand"] == 27


def test_same_idempotency_key_twice_is_one_effect_and_a_changed_request_is_refused(shop):
    first = ok(adjust(shop, 3, key="once"))["inventoryAdjustQuantities"]
    again = ok(adjust(shop, 3, key="once"))["inventoryAdjustQuantities"]
    assert again == first and quantities(shop)["available"] == 28
    changed = ok(adjust(shop, 4, key="once"))["inventoryAdjustQuantities"]
    assert changed["inventoryAdjustmentGroup"] is None
    assert [e["code"] for e in changed["userErrors"]] == ["IDEMPOTENCY_KEY_PARAMETER_MISMATCH"]
    assert quantities(shop)["available"] == 28


@pytest.mark.parametrize("case, mutation", [("missingAdjustIdempotency", "inventoryAdjustQuantities"),
                                            ("missingSetIdempotency", "inventorySetQuantities")])
def test_without_idempotent_directive_the_recorded_bad_request(shop, case, mutation):
    recorded = fixture(CONTRACTS)[case]
    document = (ADJUST if mutation == "inventoryAdjustQuantities" else SET).replace(
        " @idempotent(key: $idempotencyKey)", "").replace(", $idempotencyKey: String!", "")
    variables = with_ids(recorded["variables"], recorded_ids(shop, (recorded["variables"]["input"].get("changes") or
                                                                     recorded["variables"]["input"]["quantities"])[0]))
    variables.pop("idempotencyKey")
    body = shop.graphql(document, variables)
    expected = recorded["response"]["errors"][0]
    assert [(e["message"], e["extensions"], e["path"]) for e in body["errors"]] == \
        [(expected["message"], expected["extensions"], expected["path"])]
    assert body["data"] == {mutation: None} and quantities(shop)["available"] == 25


@pytest.mark.parametrize("case, document", [("missingAdjustChangeFromQuantity", ADJUST),
                                            ("missingSetChangeFromQuantity", SET)])
def test_change_from_quantity_must_be_given(shop, case, document):
    recorded = fixture(CONTRACTS)[case]
    rows = recorded["variables"]["input"].get("changes") or recorded["variables"]["input"]["quantities"]
    variables = with_ids(recorded["variables"], recorded_ids(shop, rows[0]))
    variables.setdefault("idempotencyKey", "k")
    body = shop.graphql(document, variables)
    expected = recorded["response"]["errors"][0]
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == \
        [(expected["message"], expected["extensions"]["code"])]
    assert quantities(shop)["available"] == 25


def test_stale_change_from_quantity_changes_nothing(shop):
    stale = ok(adjust(shop, 1, change_from=24))["inventoryAdjustQuantities"]
    assert stale["inventoryAdjustmentGroup"] is None
    assert stale["userErrors"] == [{"field": ["input", "changes", "0", "changeFromQuantity"], "code": "CHANGE_FROM_QUANTITY_STALE",
                                    "message": "The changeFromQuantity argument no longer matches the persisted quantity."}]
    assert ok(set_to(shop, 9, change_from=1))["inventorySetQuantities"]["userErrors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    assert quantities(shop)["available"] == 25
    assert ok(set_to(shop, 9, key="s2", change_from=25))["inventorySetQuantities"]["userErrors"] == []
    assert quantities(shop)["available"] == 9 and quantities(shop)["on_hand"] == 9


def test_set_on_hand_moves_available_and_a_no_op_returns_no_group(shop):
    group = ok(set_to(shop, 30, name="on_hand"))["inventorySetQuantities"]["inventoryAdjustmentGroup"]
    assert [(c["name"], c["delta"]) for c in group["changes"]] == [("available", 5), ("on_hand", 5)]  # recorded order
    same = ok(set_to(shop, 30, key="s2", name="on_hand"))["inventorySetQuantities"]
    assert same == {"inventoryAdjustmentGroup": None, "userErrors": []}  # recorded for a set to the same value


RECORDED_REFUSALS = [
    ("products__inventorySetQuantities-name-validation", ("cases", "damaged"), SET),
    ("products__inventorySetQuantities-name-validation", ("cases", "committed"), SET),
    ("products__inventorySetQuantities-name-validation", ("cases", "availableTooHigh"), SET),
    ("products__inventorySetQuantities-name-validation", ("cases", "duplicatePair"), SET),
    ("products__inventory-adjust-name-allowlist", ("cases", "adjustOnHand"), ADJUST),
    ("products__inventory-adjust-name-allowlist", ("cases", "adjustCommitted"), ADJUST),
    ("products__inventory-reason-validation", ("invalidReasonCases", "unknownReasonSet"), SET),
    ("products__inventory-reason-validation", ("invalidReasonCases", "emptyReasonSet"), SET),
    ("products__inventory-reason-validation", ("invalidReasonCases", "unknownReasonAdjust"), ADJUST),
    (CONTRACTS, ("unknownIdValidation", "setUnknownInventoryItem"), SET),
    (CONTRACTS, ("unknownIdValidation", "setUnknownLocation"), SET),
    (CONTRACTS, ("unknownIdValidation", "adjustUnknownInventoryItem"), ADJUST),
    (CONTRACTS, ("unknownIdValidation", "adjustUnknownLocation"), ADJUST),
]


@pytest.mark.parametrize("name, path, document", RECORDED_REFUSALS, ids=[p[-1] for _, p, _ in RECORDED_REFUSALS])
def test_refusals_match_the_recorded_user_errors(shop, name, path, document):
    case = fixture(name)
    for key in path:
        case = case[key]
    input_ = case["variables"]["input"]
    rows = input_.get("changes") or input_.get("quantities")
    known = {"gid://shopify/InventoryItem/999999999999", "gid://shopify/Location/999999999999"}
    mapping = {old: new for old, new in recorded_ids(shop, rows[0]).items() if old not in known}
    variables = with_ids(case["variables"], mapping)
    for row in variables["input"].get("changes") or variables["input"]["quantities"]:
        row.setdefault("changeFromQuantity", None)
        row["changeFromQuantity"] = None  # the recording's stock differs from ours; CAS is tested on its own
    body = ok(shop.graphql(document, variables))
    payload = next(iter(body.values()))
    expected = next(iter(case["response"]["data"].values()))
    assert payload["inventoryAdjustmentGroup"] is None
    assert [(e["field"], e["message"]) for e in payload["userErrors"]] == \
        [(e["field"], e["message"]) for e in expected["userErrors"]]
    if all("code" in e for e in expected["userErrors"]):
        assert [e["code"] for e in payload["userErrors"]] == [e["code"] for e in expected["userErrors"]]
    assert quantities(shop)["available"] == 25


def test_every_recorded_reason_is_accepted(shop):
    recorded = fixture("products__inventory-reason-validation")
    assert list(recorded["candidateReasons"]) == list(REASONS)
    for n, reason in enumerate(REASONS):
        assert ok(adjust(shop, 1, key=f"r{n}", reason=reason))["inventoryAdjustQuantities"]["userErrors"] == []
    assert quantities(shop)["available"] == 25 + len(REASONS)


def test_unavailable_states_need_a_ledger_document_and_count_in_on_hand(shop):
    refused = ok(adjust(shop, 2, name="damaged"))["inventoryAdjustQuantities"]["userErrors"]
    assert [e["code"] for e in refused] == ["INVALID_QUANTITY_DOCUMENT"]
    ok(adjust(shop, 2, key="k2", name="damaged", ledgerDocumentUri="ledger://returns/1"))
    assert (quantities(shop)["damaged"], quantities(shop)["on_hand"], quantities(shop)["available"]) == (2, 27, 25)
    ok(adjust(shop, 7, key="k3", name="incoming", ledgerDocumentUri="ledger://po/1"))
    assert (quantities(shop)["incoming"], quantities(shop)["on_hand"]) == (7, 27)  # incoming is not on hand


def test_untracked_items_and_levels_that_do_not_exist_are_refused(shop):
    untracked = ok(adjust(shop, 1, sku="ALP-GIFT-WRAP"))["inventoryAdjustQuantities"]["userErrors"]
    assert [e["code"] for e in untracked] == ["NON_MUTABLE_INVENTORY_ITEM"]
    nowhere = ok(adjust(shop, 1, key="k2", sku="ALP-GAITER-L"))["inventoryAdjustQuantities"]["userErrors"]
    assert [e["code"] for e in nowhere] == ["ITEM_NOT_STOCKED_AT_LOCATION"]


def test_python_helpers_take_the_mutation_path(shop):
    store = shop.store
    group = store.adjust_inventory("ALP-TRAIL-42", "Boutique Paris", -4)
    assert [(c["name"], c["delta"]) for c in group["changes"]] == [("available", -4), ("on_hand", -4)]
    assert store.inventory_available("ALP-TRAIL-42", "Boutique Paris") == 2
    store.set_inventory("ALP-GAITER-L", "Boutique Paris", 8)  # stocks it there first
    assert store.inventory_available("ALP-GAITER-L", "Boutique Paris") == 8
    store.adjust_inventory("ALP-VEST-12", "Boutique Paris", -1)  # a counter sale where it was not stocked
    assert store.inventory_available("ALP-VEST-12", "Boutique Paris") == -1
    with pytest.raises(ValueError, match="does not track inventory"):
        store.adjust_inventory("ALP-GIFT-WRAP", "Entrepôt Lyon", 1)
    assert store.adjust_inventory("ALP-TRAIL-42", "Boutique Paris", 0) is None
    with pytest.raises(ValueError, match="no location named 'Marseille'"):
        store.adjust_inventory("ALP-TRAIL-42", "Marseille", 1)
    with pytest.raises(ValueError, match="The specified reason is invalid"):
        store.adjust_inventory("ALP-TRAIL-42", "Boutique Paris", 1, reason="gift")


def test_changes_and_orders_publish_inventory_levels_update(shop, receiver):
    r, url = receiver
    store = shop.store
    store.subscribe(url, "whsec", ["inventory_levels/update"])
    ok(adjust(shop, -5, key="w1"))
    store.set_inventory("ALP-TRAIL-42", "Boutique Paris", 1)
    variant = store.variant_by_sku("LUM-BOTTLE-750")
    created = order_create(store, {"currency": "EUR", "lineItems": [{"variantId": variant["id"], "quantity": 3}]},
                           {"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"}, "2026-07")
    assert created["userErrors"] == []
    deliveries = r.of_topic("inventory_levels/update", at_least=3)
    assert len(deliveries) == 3
    by_item = {d["inventory_item_id"]: d for d in deliveries}
    vest_item, lyon = ids(shop)
    vest = by_item[int(vest_item.rsplit("/", 1)[1])]
    assert set(vest) == {"inventory_item_id", "location_id", "available", "updated_at", "admin_graphql_api_id"}
    assert (vest["location_id"], vest["available"]) == (int(lyon.rsplit("/", 1)[1]), 20)
    assert vest["admin_graphql_api_id"].startswith("gid://shopify/InventoryLevel/")
    assert vest["updated_at"].endswith(("+01:00", "+02:00"))  # REST time in the shop's zone (Europe/Paris)
    bottle = by_item[int(variant["inventoryItem"]["id"].rsplit("/", 1)[1])]
    assert bottle["available"] == 197  # the order committed 3 units at the primary location
    assert quantities(shop, "LUM-BOTTLE-750")["committed"] == 3
