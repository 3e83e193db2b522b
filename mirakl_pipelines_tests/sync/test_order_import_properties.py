"""The import's invariant over the spec's whole variety (issue 8): OR11 orders generated from Mirakl's official
order schema (mirakl_pipelines_tests/or11_orders.py, hypothesis + hypothesis-jsonschema, made consistent per
the spec's definitions, independently of the mapping) either become a Shopify order — created over loopback
HTTP in the sandbox store — whose total is what the customer paid, to the cent, with the right payment state
and every live unit on it; or raise a named MappingError a person can act on. Never a crash, never a silently
wrong amount. Broken orders (one known defect each) are refused, naming the defect's line or field."""

import json
from decimal import Decimal

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.shopify.models import LINE_ID_PROPERTY
from mirakl_pipelines.sync.order_mapping import MappingError, build_order_create
from mirakl_pipelines_tests.or11_orders import broken_or11_orders, or11_orders
from mirakl_pipelines_tests.shopify.test_client_loopback import CATALOGUE, OPTIONS, client_for, start_store
from mirakl_pipelines_tests.sync.orders import marketplace, store

D = Decimal
ZERO = D(0)
DEAD = ("REFUSED", "CANCELED")
# The importable states (orders.states) and the acceptance that may come before: what the importer maps.
STATES = ["SHIPPING", "WAITING_ACCEPTANCE", "SHIPPED"]
# No shrinking: every example is an HTTP import, shrinking one takes minutes; the failing order is noted whole.
SETTINGS = settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate], suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
MARKETPLACE = marketplace(orders={"states": STATES, "paid_only": False})
# The marketplace's reading of cancelled lines, as its configuration states it (the generator plays both).
CONFIGURED = {reading: marketplace(orders={"states": STATES, "paid_only": False, "cancellation_amounts": setting})
              for reading, setting in (("keep", "as_ordered"), ("reduce", "net_of_cancellations"))}


@pytest.fixture(scope="module")
def shop():
    _, server = start_store(bucket_size=100000, restore_rate=100000)
    catalogue = yaml.safe_load(CATALOGUE.read_text())
    skus = sorted(v["sku"] for p in catalogue["products"] for v in p["variants"])
    with client_for(server) as client:
        yield client, client.variants_by_sku(skus), skus
    server.stop()


def _with_catalogue_skus(order: dict, skus: list[str], unknown: bool) -> dict:
    """The generated SKUs are arbitrary text: give each line one the shop sells (or, once, one it does not)."""
    for index, line in enumerate(order["order_lines"]):
        if line.get("offer_sku"):
            line["offer_sku"] = "NOT-IN-SHOPIFY" if unknown and index == 0 else skus[index % len(skus)]
    return order


def _customer_paid(order: dict, reading: str) -> D:
    """What the customer pays for the live lines, from Mirakl's definitions (not from the mapping's code)."""
    total = ZERO
    taxes_on_top = order.get("order_tax_mode") == "TAX_EXCLUDED"
    for line in order["order_lines"]:
        if line.get("order_line_state") in DEAD:
            continue
        amount = line["price"] + line["shipping_price"] + sum((f["amount"] for f in line.get("fees") or []), ZERO)
        taxes = sum((t["amount"] for t in (line.get("taxes") or []) + (line.get("shipping_taxes") or [])), ZERO)
        if reading == "keep":
            for c in line.get("cancelations") or []:
                amount -= (c.get("amount") or ZERO) + (c.get("shipping_amount") or ZERO)
                amount -= sum((f["amount"] for f in c.get("fees") or []), ZERO)
                taxes -= sum((t["amount"] for t in (c.get("taxes") or []) + (c.get("shipping_taxes") or [])), ZERO)
        total += amount + (taxes if taxes_on_top else ZERO)
    return total


def _live_units(order: dict) -> dict[str, int]:
    units = {}
    for line in order["order_lines"]:
        if line.get("order_line_state") in DEAD:
            continue
        left = line["quantity"] - sum(c.get("quantity") or 0 for c in line.get("cancelations") or [])
        if left > 0:
            units[line["order_line_id"]] = left
    return units


@pytest.mark.parametrize("reading", ["keep", "reduce"])
def test_every_consistent_order_imports_at_what_the_customer_paid(shop, reading):
    client, variants, skus = shop

    @SETTINGS
    @given(order=or11_orders(reading=reading, states=STATES), seed=st.integers(0, 19))
    def check(order, seed):
        note(json.dumps(order, default=str))  # shown with a failure (the example is too large for hypothesis to print)
        unknown = seed == 0  # one order in twenty carries a SKU the shop does not sell
        order = _with_catalogue_skus(order, skus, unknown)
        mirakl = MiraklOrder.model_validate(order)
        try:
            request = build_order_create(mirakl, variants, CONFIGURED[reading], store(),
                                         allow_missing_address=order["order_state"] == "WAITING_ACCEPTANCE")
        except MappingError as e:
            # A consistent order is refused only for what a person must fix outside the order's figures.
            assert e.kind in ("unknown_sku", "missing_address"), e
            assert order["order_id"] in str(e)
            if e.kind == "unknown_sku":
                assert unknown and "NOT-IN-SHOPIFY" in e.reason
            return
        assert not unknown or not _live_units(order).get(order["order_lines"][0]["order_line_id"])
        expected = _customer_paid(order, reading)
        assert request.total == expected
        created = client.create_order({**request.order, "sourceIdentifier": f"{request.order['sourceIdentifier']}:{seed}"},
                                      OPTIONS)
        shopify = client.execute("OrderById", {"id": created.id})["order"]
        assert D(str(shopify["totalPriceSet"]["shopMoney"]["amount"])) == expected
        debited = order.get("customer_debited_date") is not None
        assert (request.order["financialStatus"] == "PAID") == debited
        units: dict[str, int] = {}
        for item in request.order["lineItems"]:
            for prop in item.get("properties", []):
                if prop["name"] == LINE_ID_PROPERTY:
                    units[prop["value"]] = units.get(prop["value"], 0) + item["quantity"]
        assert units == _live_units(order)

    check()


@settings(max_examples=80, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(broken=broken_or11_orders(states=["SHIPPING"]))
def test_a_broken_order_is_refused_naming_its_defect(broken):
    label, order = broken
    note(json.dumps(broken, default=str))
    skus = ["SKU-A", "SKU-B", "SKU-C", "SKU-D"]
    variants = {sku: _variant(sku) for sku in skus}
    for index, line in enumerate(order["order_lines"]):
        if line.get("offer_sku"):
            line["offer_sku"] = skus[index % len(skus)]
    try:
        mirakl = MiraklOrder.model_validate(order)
    except ValueError:
        assert label == "zero_quantity" or label == "negative_price", label  # pydantic refuses it: never imported
        return
    try:
        request = build_order_create(mirakl, variants, MARKETPLACE, store())
    except MappingError as e:
        assert e.kind in ("malformed", "missing_address", "unknown_sku"), (label, e)
        if e.kind == "malformed":
            assert _names_a_line_or_field(e.reason, order), (label, e.reason)
        return
    # Defects that leave the figures the customer pays intact may import (incoherent dates or states, a defect
    # confined to a refused or cancelled line, which owes nothing); the amount must still be right.
    assert label in ("debit_incoherent", "state_incoherent", "duplicate_line_id") or _only_on_dead_lines(label, order), (
        label, request.total)
    assert request.total == _customer_paid(order, "keep") or request.total == _customer_paid(order, "reduce")


def _only_on_dead_lines(label: str, order: dict) -> bool:
    suspects = {
        "zero_quantity": lambda line: line["quantity"] == 0,
        "missing_sku": lambda line: not (line.get("offer_sku") or "").strip(),
        "negative_price": lambda line: line["price"] < 0,
        "line_price_off": lambda line: abs(line["price"] - line["price_unit"] * line["quantity"] + sum(
            (p["deduced_amount"] for p in line.get("promotions") or []), ZERO)) > D("0.005") * line["quantity"],
        "cancelation_exceeds_line": lambda line: sum(
            c.get("quantity") or 0 for c in line.get("cancelations") or []) > line["quantity"],
    }.get(label)
    return suspects is not None and all(line.get("order_line_state") in DEAD
                                        for line in order["order_lines"] if suspects(line))


def _names_a_line_or_field(reason: str, order: dict) -> bool:
    fields = ("total_price", "price", "shipping_price", "quantity", "SKU", "cancel", "line ")
    return any(line["order_line_id"] in reason for line in order["order_lines"]) or any(f in reason for f in fields)


def _variant(sku: str):
    from mirakl_pipelines.shopify.models import Variant

    return Variant(id=f"gid://shopify/ProductVariant/{abs(hash(sku)) % 10**6}", sku=sku, available=100)
