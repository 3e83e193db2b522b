"""orderCreate behaviour: names, money, totals, financial status, inventory, fulfilment orders, search."""

from decimal import Decimal
from pathlib import Path

import pytest

from mirakl_pipelines.sandbox.shopify.harness import running_store
from mirakl_pipelines.sandbox.shopify.money import shopify_amount
from mirakl_pipelines.sandbox.shopify.search import Term, matches, parse_search
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines_tests.reference import reference_file

CATALOGUE = Path(__file__).resolve().parents[2] / "data" / "sandbox" / "catalogue.yaml"

CREATE = """mutation Create($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order {
      id legacyResourceId name sourceIdentifier tags displayFinancialStatus displayFulfillmentStatus
      subtotalPriceSet { shopMoney { amount currencyCode } }
      totalShippingPriceSet { shopMoney { amount } }
      totalTaxSet { shopMoney { amount } }
      totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
      totalOutstandingSet { shopMoney { amount } }
      lineItems(first: 10) { nodes { sku quantity name originalUnitPriceSet { shopMoney { amount } } } }
      fulfillmentOrders(first: 5) {
        nodes { status requestStatus supportedActions { action } lineItems(first: 10) { nodes { remainingQuantity totalQuantity sku } } }
      }
    }
    userErrors { field message code }
  }
}"""

FIND = """query Find($q: String, $after: String, $reverse: Boolean) {
  orders(first: 2, query: $q, after: $after, reverse: $reverse) {
    nodes { name sourceIdentifier }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""


@pytest.fixture()
def sandbox():
    reference_file("shopify/admin-2026-07.schema.graphql")
    with running_store(ShopifyStore.from_catalogue_file(CATALOGUE)) as connection:
        yield connection


def order_input(sandbox, lines, source_identifier="MKP-1", **extra) -> dict:
    return {
        "currency": "EUR", "sourceName": "mirakl", "sourceIdentifier": source_identifier, "tags": ["mirakl"],
        "lineItems": [{"variantId": sandbox.store.variant_by_sku(sku)["id"], "quantity": quantity}
                      for sku, quantity in lines],
        **extra,
    }


def create(sandbox, order, behaviour="DECREMENT_OBEYING_POLICY") -> dict:
    body = sandbox.graphql(CREATE, {"order": order, "options": {"inventoryBehaviour": behaviour}})
    assert "errors" not in body, body.get("errors")
    return body["data"]["orderCreate"]


def test_orders_are_named_in_sequence_with_gids(sandbox):
    names = []
    for n in range(3):
        payload = create(sandbox, order_input(sandbox, [("LUM-HEAD-400", 1)], source_identifier=f"MKP-{n}"))
        order = payload["order"]
        assert order["id"] == f"gid://shopify/Order/{order['legacyResourceId']}"
        names.append(order["name"])
    assert names == ["#1001", "#1002", "#1003"]


def test_totals_money_and_financial_status(sandbox):
    order = order_input(
        sandbox, [("ALP-MERINO-S", 2)], taxesIncluded=True,
        shippingLines=[{"title": "Standard", "priceSet": {"shopMoney": {"amount": "4.90", "currencyCode": "EUR"}}}],
        transactions=[{"kind": "SALE", "status": "SUCCESS", "gateway": "mirakl",
                       "amountSet": {"shopMoney": {"amount": "100.00", "currencyCode": "EUR"}}}],
    )
    order["lineItems"][0]["taxLines"] = [{"title": "TVA", "rate": "0.2"}]
    created = create(sandbox, order)["order"]
    assert created["lineItems"]["nodes"][0]["originalUnitPriceSet"]["shopMoney"]["amount"] == "54.0"  # catalogue price
    assert created["lineItems"]["nodes"][0]["name"] == "Merino base layer - S"
    assert created["subtotalPriceSet"]["shopMoney"] == {"amount": "108.0", "currencyCode": "EUR"}
    assert created["totalShippingPriceSet"]["shopMoney"]["amount"] == "4.9"
    assert created["totalTaxSet"]["shopMoney"]["amount"] == "21.6"  # 20 % of 108.00, included in the price
    assert created["totalPriceSet"]["shopMoney"] == {"amount": "112.9", "currencyCode": "EUR"}
    assert created["totalPriceSet"]["presentmentMoney"] == {"amount": "112.9", "currencyCode": "EUR"}
    assert created["displayFinancialStatus"] == "PARTIALLY_PAID"  # 100.00 of 112.90
    assert created["totalOutstandingSet"]["shopMoney"]["amount"] == "12.9"

    unpaid = create(sandbox, order_input(sandbox, [("LUM-BOTTLE-750", 1)], source_identifier="MKP-2"))["order"]
    assert unpaid["displayFinancialStatus"] is None  # no transactions, as captured
    declared = create(sandbox, order_input(sandbox, [("LUM-BOTTLE-750", 1)], source_identifier="MKP-3",
                                           financialStatus="PAID"))["order"]
    assert declared["displayFinancialStatus"] == "PAID"


def test_inventory_behaviours(sandbox):
    store = sandbox.store
    create(sandbox, order_input(sandbox, [("ALP-TRAIL-42", 2)]), behaviour="BYPASS")
    assert store.inventory_available("ALP-TRAIL-42") == 40
    create(sandbox, order_input(sandbox, [("ALP-TRAIL-42", 2), ("ALP-TRAIL-42", 1)]))
    assert store.inventory_available("ALP-TRAIL-42") == 37

    short = create(sandbox, order_input(sandbox, [("ALP-VEST-12", 1), ("ALP-TRAIL-44", 4)], source_identifier="MKP-short"))
    assert short["order"] is None
    (error,) = short["userErrors"]
    assert error["code"] == "INVENTORY_CLAIM_FAILED"
    assert error["field"] == ["order", "lineItems", "1"]
    assert "ALP-TRAIL-44" in error["message"]
    assert store.inventory_available("ALP-TRAIL-44") == 3 and store.inventory_available("ALP-VEST-12") == 25
    assert [o["sourceIdentifier"] for o in store.orders()] == ["MKP-1", "MKP-1"]

    create(sandbox, order_input(sandbox, [("ALP-TRAIL-44", 4)]), behaviour="DECREMENT_IGNORING_POLICY")
    assert store.inventory_available("ALP-TRAIL-44") == -1


def test_each_order_gets_one_open_fulfillment_order(sandbox):
    created = create(sandbox, order_input(sandbox, [("ALP-TRAIL-43", 2), ("LUM-HEAD-400", 1)]))["order"]
    assert created["displayFulfillmentStatus"] == "UNFULFILLED"
    (fo,) = created["fulfillmentOrders"]["nodes"]
    assert (fo["status"], fo["requestStatus"]) == ("OPEN", "UNSUBMITTED")
    assert [a["action"] for a in fo["supportedActions"]] == ["CREATE_FULFILLMENT", "MOVE", "HOLD", "SPLIT"]
    assert [(li["sku"], li["totalQuantity"], li["remainingQuantity"]) for li in fo["lineItems"]["nodes"]] == [
        ("ALP-TRAIL-43", 2, 2), ("LUM-HEAD-400", 1, 1)]
    stored = sandbox.store.order(created["id"])
    assert stored["fulfillmentOrders"][0]["assignedLocation"]["name"] == "Entrepôt Lyon"


def test_user_errors_name_the_input(sandbox):
    cases = {
        "empty": ({"lineItems": []}, (["order", "lineItems"], "INVALID", "Line items must have at least one line item")),
        "unknown variant": ({"lineItems": [{"variantId": "gid://shopify/ProductVariant/1", "quantity": 1}]},
                            (["order", "lineItems", "0", "variantId"], "INVALID", None)),
        "redundant customer": ({**order_input(sandbox, [("ALP-VEST-12", 1)]), "customerId": "gid://shopify/Customer/1",
                                "customer": {"toAssociate": {"email": "a@example.com"}}},
                               (["order"], "REDUNDANT_CUSTOMER_FIELDS", None)),
        "tax lines twice": ({**order_input(sandbox, [("ALP-VEST-12", 1)]),
                             "taxLines": [{"title": "TVA", "rate": "0.2"}]},
                            (["order", "taxLines"], "INVALID", None)),
    }
    cases["tax lines twice"][0]["lineItems"][0]["taxLines"] = [{"title": "TVA", "rate": "0.2"}]
    for name, (order, (field, code, message)) in cases.items():
        payload = create(sandbox, order)
        assert payload["order"] is None, name
        (error,) = payload["userErrors"]
        assert (error["field"], error["code"]) == (field, code), name
        assert error["message"] == message or (message is None and error["message"]), name
    assert sandbox.store.orders() == []


def test_search_by_source_identifier_name_tag_and_dates_with_pagination(sandbox):
    for n, tag in ((1, "mkp:fr"), (2, "mkp:de"), (3, "mkp:fr")):
        create(sandbox, {**order_input(sandbox, [("LUM-HEAD-400", 1)], source_identifier=f"MKP-00{n}-A"),
                         "tags": ["mirakl", tag]})

    def find(q, after=None, reverse=False):
        body = sandbox.graphql(FIND, {"q": q, "after": after, "reverse": reverse})
        assert "errors" not in body, body.get("errors")
        return body["data"]["orders"]

    assert [o["name"] for o in find("source_identifier:MKP-002-A")["nodes"]] == ["#1002"]
    assert [o["name"] for o in find("source_identifier:'MKP-002-A'")["nodes"]] == ["#1002"]
    assert [o["name"] for o in find('source_identifier:"MKP-003-A"')["nodes"]] == ["#1003"]
    assert find("source_identifier:MKP-404")["nodes"] == []
    assert [o["name"] for o in find("name:#1003")["nodes"]] == ["#1003"]
    assert [o["name"] for o in find("name:1001")["nodes"]] == ["#1001"]
    assert [o["name"] for o in find("tag:mkp:fr AND tag:mirakl", reverse=True)["nodes"]] == ["#1003", "#1001"]
    assert [o["name"] for o in find("tag:mirakl -tag:mkp:fr")["nodes"]] == ["#1002"]
    assert find("updated_at:>'2000-01-01T00:00:00Z' source_identifier:MKP-001-A")["nodes"][0]["name"] == "#1001"
    assert find("updated_at:>'2999-01-01T00:00:00Z'")["nodes"] == []

    page = find("tag:mirakl")
    assert [o["name"] for o in page["nodes"]] == ["#1001", "#1002"]
    assert page["pageInfo"]["hasNextPage"] and not page["pageInfo"]["hasPreviousPage"]
    rest = find("tag:mirakl", after=page["pageInfo"]["endCursor"])
    assert [o["name"] for o in rest["nodes"]] == ["#1003"]
    assert not rest["pageInfo"]["hasNextPage"] and rest["pageInfo"]["hasPreviousPage"]


def test_search_syntax_parser():
    assert parse_search("sku:A OR sku:B status:open") == [
        [Term("sku", ":", "A"), Term("sku", ":", "B")], [Term("status", ":", "open")]]
    assert parse_search("updated_at:>='2026-07-01T00:00:00Z' NOT tag:x tag_not:y") == [
        [Term("updated_at", ">=", "2026-07-01T00:00:00Z")], [Term("tag", ":", "x", negated=True)],
        [Term("tag", ":", "y", negated=True)]]
    getters = {"sku": lambda r: [r["sku"]]}
    free_text = lambda r: [r["title"]]  # noqa: E731
    record = {"sku": "ALP-TRAIL-42", "title": "Trail running shoe"}
    assert matches(parse_search("sku:ALP-TRAIL-4*"), record, getters, free_text)
    assert matches(parse_search("running"), record, getters, free_text)
    assert not matches(parse_search("sku:ALP-TRAIL-43 OR sku:X"), record, getters, free_text)
    assert not matches(parse_search("colour:red"), record, getters, free_text)


def test_money_is_normalised_like_shopify():
    assert [shopify_amount(Decimal(v)) for v in ("20.00", "0", "42.50", "100", "0.05", "1E+2")] == [
        "20.0", "0.0", "42.5", "100.0", "0.05", "100.0"]
