"""The OR11 order strategies (mirakl_pipelines_tests/or11_orders.py) themselves: what they generate is valid
against the spec's order schema, adds up per the spec's definitions (checked independently of how it was made),
keeps the spec's variety, and broken orders carry exactly the defect their label names."""

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from mirakl_pipelines_tests.mirakl_spec import load_spec, prepared_spec, schema_ref, validation_errors
from mirakl_pipelines_tests.or11_orders import (
    DEFECTS, ORDER_COMPONENT, broken_or11_orders, consistency_errors, narrowed_schema, or11_orders, or11_responses,
)
from mirakl_pipelines_tests.reference import reference_file

SPEC = "mirakl/mirakl-mmp-seller-openapi.json"
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _spec_order_errors(order: dict) -> list[str]:
    return validation_errors(schema_ref(ORDER_COMPONENT), order)


@pytest.fixture(autouse=True)
def _needs_the_spec():
    reference_file(SPEC)


@settings(FAST, max_examples=100)
@given(or11_orders())
def test_generated_orders_validate_against_the_spec_and_add_up(order):
    assert _spec_order_errors(order) == []
    assert consistency_errors(order) == []
    assert all(isinstance(order[f], Decimal) for f in ("price", "shipping_price", "total_price", "total_commission"))
    assert not _floats(order)


@settings(FAST, max_examples=50)
@given(or11_orders(reading="keep", states=["SHIPPING", "SHIPPED", "RECEIVED", "CANCELED", "WAITING_DEBIT"]))
def test_the_keep_reading_leaves_lines_as_ordered(order):
    assert consistency_errors(order, reading="keep") == []
    for line in order["order_lines"]:
        cancelled = sum((c["amount"] for c in line["cancelations"]), Decimal(0))
        assert cancelled <= line["price"]
        assert sum(c["quantity"] for c in line["cancelations"]) <= line["quantity"]


@settings(FAST, max_examples=50)
@given(or11_orders(reading="reduce", states=["SHIPPING", "SHIPPED", "RECEIVED", "CANCELED", "WAITING_DEBIT"]))
def test_the_reduce_reading_nets_lines_of_their_cancellations(order):
    assert _spec_order_errors(order) == []
    assert consistency_errors(order, reading="reduce") == []
    for line in order["order_lines"]:
        if line["cancelations"] and line["order_line_state"] == "CANCELED":
            assert line["price"] == 0 and line["total_price"] == 0  # every unit cancelled: nothing left


@settings(FAST, max_examples=30)
@given(or11_responses(max_orders=3))
def test_responses_validate_against_or11(body):
    assert validation_errors(schema_ref("OR11_Response_200"), body) == []
    assert body["total_count"] == len(body["orders"]) == len({o["order_id"] for o in body["orders"]})


@settings(FAST, max_examples=60)
@given(broken_or11_orders())
def test_broken_orders_are_schema_valid_and_name_their_defect(labelled):
    label, order = labelled
    assert _spec_order_errors(order) == [], label  # only a consistency check can find them
    errors = consistency_errors(order)
    assert any(error.startswith(f"{label}:") for error in errors), (label, errors)


@pytest.mark.parametrize("label", sorted(DEFECTS))
def test_every_defect_label_can_be_asked_for(label):
    found = find(broken_or11_orders([label]), lambda pair: True, settings=settings(database=None, phases=[Phase.generate]))
    assert found[0] == label
    with pytest.raises(ValueError, match="unknown defect"):
        broken_or11_orders(["no_such_defect"])


# ---- the variety survives the fixer ----------------------------------------------------------------


def _lines(order):
    return order["order_lines"]


def _promotion_types(order):
    return {p["configuration"]["type"] for line in _lines(order) for p in line.get("promotions") or []}


def _parts(order):
    return [part for line in _lines(order) for tax in line.get("taxes") or [] for part in (tax.get("amount_breakdown") or {}).get("parts", [])]


VARIETY = [
    ("AMOUNT_OFF", {}, lambda o: "AMOUNT_OFF" in _promotion_types(o)),
    ("PERCENTAGE_OFF", {}, lambda o: "PERCENTAGE_OFF" in _promotion_types(o)),
    ("FREE_ITEMS", {}, lambda o: any(p.get("offered_quantity") for line in _lines(o) for p in line.get("promotions") or [])),
    ("REDUCED_UNIT_PRICE", {}, lambda o: "REDUCED_UNIT_PRICE" in _promotion_types(o)),
    ("apportioned basket amount", {}, lambda o: any(p["apportioned"] for line in _lines(o) for p in line.get("promotions") or [])),
    ("fees", {}, lambda o: any(line.get("fees") for line in _lines(o))),
    ("odd division", {"tax_modes": ["TAX_EXCLUDED"]}, lambda o: any(
        not line["cancelations"] and line["price"] + sum(p["deduced_amount"] for p in line.get("promotions") or [])
        != line["price_unit"] * line["quantity"] for line in _lines(o))),
    ("tax the marketplace collects", {}, lambda o: any(part.get("payable_to_shop") is False for part in _parts(o))),
    ("several taxes on a line", {}, lambda o: any(len(line.get("taxes") or []) > 1 for line in _lines(o))),
    ("no taxes field", {}, lambda o: any("taxes" not in line for line in _lines(o))),
    ("TAX_EXCLUDED", {}, lambda o: o["order_tax_mode"] == "TAX_EXCLUDED"),
    ("PAY_ON_ACCEPTANCE debited", {"workflows": ["PAY_ON_ACCEPTANCE"], "states": ["SHIPPING", "SHIPPED"]},
     lambda o: o.get("customer_debited_date")),
    ("PAY_ON_SHIPMENT debited", {"workflows": ["PAY_ON_SHIPMENT"], "states": ["SHIPPED", "RECEIVED"]},
     lambda o: o.get("customer_debited_date")),
    ("PAY_ON_SHIPMENT shipped, not yet debited", {"workflows": ["PAY_ON_SHIPMENT"], "states": ["SHIPPED"]},
     lambda o: o["order_state"] == "SHIPPED" and not o.get("customer_debited_date")),
    ("PAY_ON_DELIVERY debited", {"workflows": ["PAY_ON_DELIVERY"], "states": ["RECEIVED", "CLOSED"]},
     lambda o: o.get("customer_debited_date")),
    ("PAY_ON_DUE_DATE", {"workflows": ["PAY_ON_DUE_DATE"], "states": ["SHIPPING", "SHIPPED"]},
     lambda o: o.get("payment_duration") and o.get("customer_debited_date")),
    ("NO_CUSTOMER_PAYMENT_CONFIRMATION", {}, lambda o: o.get("payment_workflow") == "NO_CUSTOMER_PAYMENT_CONFIRMATION"),
    ("no payment_workflow", {}, lambda o: o.get("payment_workflow") is None),
    ("customer pays the seller", {"workflows": ["PAY_ON_DELIVERY"]}, lambda o: o.get("customer_directly_pays_seller") is True),
    ("partial cancellation", {}, lambda o: any(line["cancelations"] and line["order_line_state"] != "CANCELED" for line in _lines(o))),
    ("line cancelled unit by unit", {}, lambda o: o["order_state"] != "CANCELED" and any(
        line["cancelations"] and line["order_line_state"] == "CANCELED" for line in _lines(o))),
    ("whole order cancelled", {"states": ["CANCELED"]}, lambda o: all(line["order_line_state"] in {"CANCELED", "REFUSED"} for line in _lines(o))),
    ("B2B", {}, lambda o: o["customer"].get("organization")),
    ("relay point", {}, lambda o: o.get("shipping_pudo_id")),
    ("addresses null before acceptance", {"states": ["WAITING_ACCEPTANCE"]}, lambda o: o["customer"]["shipping_address"] is None),
    ("Québec or QC", {}, lambda o: (o["customer"].get("shipping_address") or {}).get("state") in {"Québec", "QC"}),
    ("an undocumented field", {}, lambda o: "shop_id" in o or "x_operator_field" in o),
    ("incident open", {"states": ["SHIPPED", "RECEIVED"]}, lambda o: o["has_incident"]),
    ("4 lines", {}, lambda o: len(_lines(o)) == 4),
    ("a shipped line in a SHIPPING order", {"states": ["SHIPPING"]},
     lambda o: any(line["order_line_state"] == "SHIPPED" for line in _lines(o))),
]


@pytest.mark.parametrize("name, kwargs, predicate", VARIETY, ids=[v[0] for v in VARIETY])
def test_the_fixer_keeps_the_spec_variety(name, kwargs, predicate):
    strategy = or11_orders(**kwargs)
    found = find(strategy, predicate, settings=settings(max_examples=2000, database=None, phases=[Phase.generate],
                                                        suppress_health_check=list(HealthCheck)))
    assert _spec_order_errors(found) == [] and consistency_errors(found) == [], name


@pytest.mark.parametrize("state", ["STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED",
                                   "TO_COLLECT", "RECEIVED", "CLOSED", "REFUSED", "CANCELED"])
def test_every_order_state_can_be_generated(state):
    order = find(or11_orders(states=[state]), lambda o: True, settings=settings(database=None, phases=[Phase.generate]))
    assert order["order_state"] == state and consistency_errors(order) == []


# ---- the narrowing comes from the spec ------------------------------------------------------------


def test_the_narrowed_schema_only_narrows_the_spec():
    spec = prepared_spec()["components"]["schemas"]
    narrowed = narrowed_schema()
    order = spec[ORDER_COMPONENT]
    assert set(narrowed["properties"]) <= set(order["properties"])  # nothing invented
    assert set(order["required"]) <= set(narrowed["properties"]) and set(narrowed["required"]) == set(order["required"])
    dropped = set(order["properties"]) - set(narrowed["properties"])
    assert dropped == {"order_additional_fields", "order_refunds"}
    lines = narrowed["properties"]["order_lines"]
    assert (lines["minItems"], lines["maxItems"]) == (1, 4)
    line = lines["items"]
    assert set(line["properties"]) <= set(spec["OR11_Response_200_Orders_OrderLines"]["properties"])
    assert (line["properties"]["quantity"]["minimum"], line["properties"]["quantity"]["maximum"]) == (1, 10)
    states = narrowed["properties"]["order_state"]["enum"]
    assert set(states) < set(order["properties"]["order_state"]["enum"]) and "WAITING_REFUND" not in states
    promotion_types = line["properties"]["promotions"]["items"]["properties"]["configuration"]
    assert "ALL" not in json.dumps(promotion_types)  # deprecated type left out
    assert narrowed["properties"]["currency_iso_code"]["enum"] == ["EUR"]


def test_the_spec_example_itself_leaves_fees_out_of_total_price():
    """Mirakl's own OR11 example ("Example with business values") contradicts the description of total_price
    ("price with shipping price and fees"): its line has fees of 0.65 and total_price 173 = 165 + 8. The checker
    follows the description and says so; the example is otherwise consistent in the keep reading."""
    example = load_spec()["paths"]["/api/orders"]["get"]["responses"]["200"]["content"]["application/json"]["examples"]
    order = json.loads(json.dumps(example["application/json-0"]["value"]["orders"][0]), parse_float=Decimal)
    errors = consistency_errors(order, reading="keep")
    assert [e.split(":")[0] for e in errors] == ["line_total_off", "total_price_off"], errors
    assert order["order_lines"][0]["price"] == order["order_lines"][0]["price_unit"] * order["order_lines"][0]["quantity"]


def test_hypothesis_jsonschema_objects_under_the_pinned_hypothesis():
    """hypothesis 6.170.10+ removed what hypothesis-jsonschema 0.23.1 calls (many.more()): pinned below it."""
    from hypothesis_jsonschema import from_schema

    find(from_schema({"type": "object", "properties": {"a": {"type": "integer"}}}), lambda value: True,
         settings=settings(database=None))


def _floats(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_floats(v) for v in value.values())
    if isinstance(value, list):
        return any(_floats(v) for v in value)
    return False
