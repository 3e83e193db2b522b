"""The scenario driver: deterministic for a seed, and over a few hundred orders it plays every case the order flow must handle."""

import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import phonenumbers
import pycountry
import pytest
import yaml

from mirakl_pipelines.config import PROJECT_ROOT
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.mirakl.wire import to_json
from mirakl_pipelines.sandbox.scenario import Scenario, ScenarioSettings
from mirakl_pipelines_tests.mirakl_spec import schema_ref, validate
from mirakl_pipelines_tests.or11_orders import consistency_errors
from mirakl_pipelines_tests.reference import reference_file

CATALOGUE = yaml.safe_load((PROJECT_ROOT / "data" / "sandbox" / "catalogue.yaml").read_text())
CATALOGUE_PRICES = {v["sku"]: Decimal(v["price"]) for p in CATALOGUE["products"] for v in p["variants"]}
UNKNOWN_SKUS = set(CATALOGUE["unknown_skus"])
START = datetime(2026, 3, 14, 9, 0, tzinfo=timezone.utc)
DEBIT_DELAY = timedelta(seconds=30)
MARKETS = ("decathlon_fr", "leroymerlin_fr")
MANY = 200  # per marketplace: 400 orders in all


def make_sims() -> dict[str, MarketplaceSim]:
    """Two marketplaces on a frozen clock (only `advance` moves it), so dates are reproducible."""
    return {
        code: MarketplaceSim(MarketplaceSettings(code=code, debit_delay=DEBIT_DELAY), clock=lambda: START)
        for code in MARKETS
    }


def make_scenario(seed: int = 7, **settings) -> Scenario:
    return Scenario(make_sims(), CATALOGUE, ScenarioSettings(seed=seed, **settings))


def place_many(scenario: Scenario, per_marketplace: int = MANY) -> list[dict]:
    for _ in range(per_marketplace):
        for code in scenario.sims:
            scenario.place_order(code)
    return [order for sim in scenario.sims.values() for order in sim.orders()]


@pytest.fixture(scope="module")
def played() -> tuple[Scenario, list[dict]]:
    scenario = make_scenario()
    return scenario, place_many(scenario)


def _fingerprint(orders: list[dict]) -> list[tuple]:
    return [
        (o["order_id"], o["customer"]["firstname"], o["customer"]["lastname"], o["shipping_pudo_id"],
         (o["customer"]["organization"] or {}).get("name"),
         tuple((line["offer_sku"], line["quantity"], line["price"]) for line in o["order_lines"]))
        for o in orders
    ]


# ---- determinism ------------------------------------------------------------------------------------


def test_same_seed_same_orders():
    first, second = make_scenario(seed=11), make_scenario(seed=11)
    assert _fingerprint(place_many(first, 40)) == _fingerprint(place_many(second, 40))
    assert first.placed == second.placed


def test_another_seed_other_orders():
    assert _fingerprint(place_many(make_scenario(seed=11), 40)) != _fingerprint(place_many(make_scenario(seed=12), 40))


def test_placed_records_every_order_in_its_marketplace(played):
    scenario, orders = played
    assert len(scenario.placed) == len(orders) == MANY * len(MARKETS)
    assert len(set(scenario.placed)) == len(scenario.placed)
    for code, sim in scenario.sims.items():
        assert {oid for c, oid in scenario.placed if c == code} == {o["order_id"] for o in sim.orders()}


# ---- the cases the order flow must handle ---------------------------------------------------------


def _share(orders: list[dict], predicate) -> float:
    return sum(1 for o in orders if predicate(o)) / len(orders)


def _non_ascii(order: dict) -> bool:
    customer = order["customer"]
    return not (customer["firstname"] + customer["lastname"]).isascii()


# (name, predicate, lowest and highest share over 400 orders; bounds wide enough for any seed, tight enough to catch a knob ignored)
CASES = [
    ("single line", lambda o: len(o["order_lines"]) == 1, 0.5, 0.8),
    ("multi-line", lambda o: len(o["order_lines"]) > 1, 0.2, 0.5),
    ("three lines", lambda o: len(o["order_lines"]) == 3, 0.03, 0.25),
    ("a quantity above 1", lambda o: any(line["quantity"] > 1 for line in o["order_lines"]), 0.25, 0.65),
    ("relay point", lambda o: o["shipping_pudo_id"] is not None, 0.1, 0.3),
    ("B2B organisation", lambda o: o["customer"]["organization"] is not None, 0.04, 0.18),
    ("non-ASCII name", _non_ascii, 0.2, 0.9),
    ("unknown SKU", lambda o: any(line["offer_sku"] in UNKNOWN_SKUS for line in o["order_lines"]), 0.02, 0.1),
]


@pytest.mark.parametrize("name, predicate, low, high", CASES, ids=[c[0] for c in CASES])
def test_every_case_appears_in_a_plausible_share(played, name, predicate, low, high):
    _, orders = played
    assert low <= _share(orders, predicate) <= high, name


def test_every_order_has_taxes_and_shipping_in_decimal(played):
    _, orders = played
    for order in orders:
        assert isinstance(order["total_price"], Decimal), order["order_id"]
        assert order["shipping_price"] > 0, order["order_id"]
        fees = sum((fee["amount"] for line in order["order_lines"] for fee in line["fees"]), Decimal(0))
        assert order["total_price"] == order["price"] + order["shipping_price"] + fees, order["order_id"]
        for line in order["order_lines"]:
            assert sum(t["amount"] for t in line["taxes"]) > 0, line["order_line_id"]
            assert sum(t["amount"] for t in line["shipping_taxes"]) > 0, line["order_line_id"]


def test_lines_are_catalogue_variants_at_catalogue_prices(played):
    _, orders = played
    seen = Counter()
    for order in orders:
        skus = [line["offer_sku"] for line in order["order_lines"]]
        assert len(skus) == len(set(skus)), f"{order['order_id']} repeats a SKU on two lines"
        for line in order["order_lines"]:
            sku = line["offer_sku"]
            seen[sku] += 1
            if sku in UNKNOWN_SKUS:
                assert line["quantity"] == 1 or line["promotions"] or line["price_additional_info"]  # 3 for 2, a lot
                continue
            assert sku in CATALOGUE_PRICES, f"{order['order_id']}: {sku} is neither in the catalogue nor an unknown SKU"
            deduced = sum((p["deduced_amount"] for p in line["promotions"]), Decimal(0))
            if (line["price_additional_info"] or "").startswith("Lot de 3"):  # a volume price: price_unit rounded
                assert line["quantity"] == 3 and line["price_unit"] == ((line["price"] + deduced) / 3).quantize(Decimal("0.01"))
                assert line["price"] + deduced != line["price_unit"] * 3
                continue
            assert line["price_unit"] == CATALOGUE_PRICES[sku]
            assert line["price"] + deduced == CATALOGUE_PRICES[sku] * line["quantity"]
    assert set(CATALOGUE_PRICES) <= set(seen), "every catalogue variant gets ordered over a few hundred orders"
    assert UNKNOWN_SKUS <= set(seen)


def test_pudo_orders_are_relay_point_deliveries(played):
    _, orders = played
    for order in (o for o in orders if o["shipping_pudo_id"]):
        assert order["shipping_type_code"] == "PUDO"
        assert order["shipping_pudo_id"] in order["customer"]["shipping_address"]["additional_info"]


def test_b2b_orders_carry_a_named_organisation(played):
    _, orders = played
    organisations = [o["customer"]["organization"] for o in orders if o["customer"]["organization"]]
    assert all(org["name"] and org["organization_id"] for org in organisations)


def test_new_orders_wait_for_acceptance_at_the_current_time(played):
    _, orders = played
    assert {o["order_state"] for o in orders} == {"WAITING_ACCEPTANCE"}
    assert {o["created_date"] for o in orders} == {START}


def test_some_orders_are_never_paid_after_acceptance_and_debit_delay():
    scenario = make_scenario()
    place_many(scenario, 100)
    for sim in scenario.sims.values():
        for order in sim.orders():
            sim.accept(order["order_id"], {"order_lines": [{"id": line["order_line_id"], "accepted": True}
                                                            for line in order["order_lines"]]})
    # Paid on acceptance: the other workflows go to SHIPPING undebited (test_a_simulated_hour_...).
    on_acceptance = {o["order_id"] for sim in scenario.sims.values() for o in sim.orders()
                     if o["payment_workflow"] == "PAY_ON_ACCEPTANCE"}
    assert len(on_acceptance) > 150
    states_before = Counter(o["order_state"] for sim in scenario.sims.values() for o in sim.orders() if o["order_id"] in on_acceptance)
    assert states_before == {"WAITING_DEBIT": len(on_acceptance)}
    for sim in scenario.sims.values():
        sim.advance(DEBIT_DELAY + timedelta(hours=6))
    orders = {o["order_id"]: (code, o) for code, sim in scenario.sims.items() for o in sim.orders() if o["order_id"] in on_acceptance}
    states = Counter(o["order_state"] for _, o in orders.values())
    assert set(states) == {"SHIPPING", "WAITING_DEBIT"}
    assert 0.01 <= states["WAITING_DEBIT"] / len(orders) <= 0.12
    for code, order in orders.values():
        if order["order_state"] == "SHIPPING":
            assert order["customer_debited_date"] == START + DEBIT_DELAY
        else:
            assert order["customer_debited_date"] is None
            # Never paid, yet still payable: only the customer's debit is missing.
            assert scenario.sims[code].pay(order["order_id"])["order_state"] == "SHIPPING"


def test_shares_follow_the_settings():
    scenario = make_scenario(multi_line_share=0.0, unknown_sku_share=1.0, pudo_share=0.0, b2b_share=1.0)
    orders = place_many(scenario, 30)
    assert all(len(o["order_lines"]) == 1 for o in orders)
    assert all(o["order_lines"][0]["offer_sku"] in UNKNOWN_SKUS for o in orders)
    assert all(o["shipping_pudo_id"] is None for o in orders)
    assert all(o["customer"]["organization"] is not None for o in orders)


# ---- pacing and backlog -----------------------------------------------------------------------------


def test_step_places_orders_at_the_configured_rate():
    scenario = make_scenario(orders_per_minute=6)
    counts = lambda: {code: len(sim.orders()) for code, sim in scenario.sims.items()}  # noqa: E731
    assert scenario.step(5) == 0  # half an order each: carried over, not rounded away
    assert counts() == {code: 0 for code in MARKETS}
    assert scenario.step(5) == len(MARKETS)
    assert counts() == {code: 1 for code in MARKETS}
    assert scenario.step(60) == 6 * len(MARKETS)
    assert counts() == {code: 7 for code in MARKETS}
    assert sum(scenario.step(2.5) for _ in range(48)) == 12 * len(MARKETS)  # two minutes in 2.5 s steps (exact in binary)
    assert counts() == {code: 19 for code in MARKETS}


def test_step_in_one_second_ticks_keeps_the_exact_rate():
    scenario = make_scenario(orders_per_minute=6)
    assert sum(scenario.step(1) for _ in range(120)) == 12 * len(MARKETS)


def test_step_lets_the_marketplace_clocks_act():
    """Due debits happen on a step even when the step places nothing."""
    now = {"value": START}
    sims = {code: MarketplaceSim(MarketplaceSettings(code=code, debit_delay=DEBIT_DELAY), clock=lambda: now["value"])
            for code in MARKETS}
    scenario = Scenario(sims, CATALOGUE, ScenarioSettings.plain(orders_per_minute=0, never_paid_share=0.0, b2b_share=0.0))
    sim = sims[MARKETS[0]]
    order = scenario.place_order(MARKETS[0])
    sim.accept(order["order_id"], {"order_lines": [{"id": line["order_line_id"], "accepted": True} for line in order["order_lines"]]})
    now["value"] = START + DEBIT_DELAY

    def state() -> str:  # OR11's listing reads without applying due transitions
        return sim.list_orders({"order_ids": order["order_id"]})["orders"][0]["order_state"]

    assert state() == "WAITING_DEBIT"
    assert scenario.step(30) == 0
    assert state() == "SHIPPING"


def test_seed_backlog_leaves_shipping_and_waiting_acceptance_orders():
    scenario = make_scenario()
    scenario.seed_backlog(per_marketplace=5)
    for code, sim in scenario.sims.items():
        orders = sim.orders()
        assert Counter(o["order_state"] for o in orders) == {"SHIPPING": 3, "WAITING_ACCEPTANCE": 2}
        assert all(o["created_date"] < START for o in orders)
        for order in orders:
            if order["order_state"] == "SHIPPING":
                # Accepted and paid earlier: what an import run picks up at once.
                assert order["customer_debited_date"] is not None
                assert order["acceptance_decision_date"] is not None
            else:
                assert order["acceptance_decision_date"] is None
    assert len(scenario.placed) == 5 * len(MARKETS)


def test_seed_past_days_places_orders_a_backfill_of_those_days_finds():
    scenario = make_scenario()
    first = scenario.seed_past_days(3, per_day=6)
    today = START.date()
    assert first == today - timedelta(days=3)
    for code, sim in scenario.sims.items():
        orders = sim.orders()
        by_day = Counter(o["created_date"].date() for o in orders)
        assert by_day == {today - timedelta(days=n): 6 for n in (1, 2, 3)}
        for order in orders:
            day = order["created_date"].date()
            # A backfill fetches a day by update date: every update of a seeded order stays in its day.
            assert order["last_updated_date"].date() == day
            assert (order["acceptance_decision_date"] or order["created_date"]).date() == day
            if order["order_state"] == "SHIPPING":
                assert order["customer_debited_date"] is not None
        states = Counter((o["created_date"].date(), o["order_state"]) for o in orders)
        yesterday = today - timedelta(days=1)
        # Only yesterday's still wait for acceptance: older ones would be past the 72 h window.
        assert states[(yesterday, "WAITING_ACCEPTANCE")] == 2
        assert sum(n for (day, state), n in states.items() if state == "WAITING_ACCEPTANCE") == 2
        assert all(states[(today - timedelta(days=n), "REFUSED")] == 1 for n in (1, 2, 3))
        assert states[(today - timedelta(days=3), "SHIPPING")] == 5
        window = sim.list_orders({"start_update_date": f"{first}T00:00:00Z", "end_update_date": f"{first}T23:59:59Z",
                                  "paginate": "false"})
        assert {o["order_id"] for o in window["orders"]} == {o["order_id"] for o in orders if o["created_date"].date() == first}


# ---- through the real servers --------------------------------------------------------------------


def test_orders_placed_in_the_running_sandbox_appear_in_or11():
    reference_file("shopify/admin-2026-07.schema.graphql")  # start_sandbox also serves the Shopify store
    from mirakl_pipelines.demo import start_sandbox
    from mirakl_pipelines.mirakl.client import MiraklClient

    scale = 0.001
    sandbox = start_sandbox(seed=3, orders_per_minute=3, rate_limit_scale=scale, backlog=2)
    try:
        backlog = set(sandbox.scenario.placed)
        assert sandbox.scenario.step(60) == 3 * len(sandbox.sims)
        new = set(sandbox.scenario.placed) - backlog
        assert len(new) == 3 * len(sandbox.sims)
        for code, server in sandbox.servers.items():
            if code == "shopify":
                continue
            with MiraklClient(server.url, sandbox.secrets[code], marketplace=code, rate_limit_scale=scale) as client:
                listed = client.list_orders()
                assert client.rejected == [], client.rejected
            ids = {order.order_id for order in listed}
            assert ids == {oid for c, oid in sandbox.scenario.placed if c == code}
            assert {oid for c, oid in new if c == code} <= ids
            states = Counter(order.order_state for order in listed)
            assert states == {"SHIPPING": 1, "WAITING_ACCEPTANCE": 4}
    finally:
        sandbox.stop()


# ---- a simulated hour: every kind of order at its rate ---------------------------------------------

HOUR_SETTINGS = dict(debit_delay=timedelta(seconds=20), deferred_debit_delay=timedelta(seconds=60),
                     payment_duration_day=timedelta(seconds=2), receive_delay=timedelta(minutes=3))
TAX_EXCLUDED_MARKET = "leroymerlin_fr"
SHIP_AFTER = timedelta(minutes=3)  # the "pipeline" ships what it accepted this long ago


@pytest.fixture(scope="module")
def hour():
    """Two marketplaces over an hour of 5-second steps (then 10 quiet minutes), with a stand-in for the pipeline:
    every minute it accepts the waiting orders and ships those it accepted 3 minutes ago."""
    now = {"value": START}
    sims = {code: MarketplaceSim(MarketplaceSettings(code=code, **HOUR_SETTINGS), clock=lambda: now["value"]) for code in MARKETS}
    scenario = Scenario(sims, CATALOGUE, ScenarioSettings(seed=5, tax_excluded_marketplaces=(TAX_EXCLUDED_MARKET,)))
    for step in range(840):
        now["value"] += timedelta(seconds=5)
        scenario.step(5 if step < 720 else 0)
        if step % 12 == 0:
            for sim in sims.values():
                for order in sim.list_orders({"order_state_codes": "WAITING_ACCEPTANCE", "paginate": "false"})["orders"]:
                    sim.accept(order["order_id"], {"order_lines": [{"id": line["order_line_id"], "accepted": True}
                                                                    for line in order["order_lines"]]})
                for order in sim.list_orders({"order_state_codes": "SHIPPING", "paginate": "false"})["orders"]:
                    if now["value"] - order["acceptance_decision_date"] >= SHIP_AFTER:
                        sim.ship(order["order_id"])
    served = {code: json.loads(to_json(sim.list_orders({"paginate": "false"})), parse_float=Decimal) for code, sim in sims.items()}
    orders = [order for code in MARKETS for order in sims[code].orders()]
    return scenario, sims, served, orders


def _lines_of(orders):
    return [line for order in orders for line in order["order_lines"]]


# (name, predicate on an order, lowest and highest share over the hour's 480 orders)
HOUR_CASES = [
    ("a promotion", lambda o: any(line["promotions"] for line in o["order_lines"]), 0.07, 0.25),
    ("PERCENTAGE_OFF", lambda o: _has_promotion(o, "PERCENTAGE_OFF"), 0.01, 0.1),
    ("AMOUNT_OFF", lambda o: _has_promotion(o, "AMOUNT_OFF"), 0.01, 0.1),
    ("AMOUNT_OFF apportioned over lines", lambda o: any(p["apportioned"] for line in o["order_lines"] for p in line["promotions"]), 0.002, 0.06),
    ("FREE_ITEMS 3 for 2", lambda o: _has_promotion(o, "FREE_ITEMS"), 0.005, 0.08),
    ("REDUCED_UNIT_PRICE", lambda o: _has_promotion(o, "REDUCED_UNIT_PRICE"), 0.005, 0.08),
    ("line fees", lambda o: any(line["fees"] for line in o["order_lines"]), 0.04, 0.18),
    ("a lot at a volume price", lambda o: any((line["price_additional_info"] or "").startswith("Lot de") for line in o["order_lines"]), 0.02, 0.12),
    ("shipped abroad", lambda o: o["customer"]["shipping_address"]["country_iso_code"] != "FRA", 0.15, 0.35),
    ("a tax the marketplace collects", lambda o: any(part["payable_to_shop"] is False for line in o["order_lines"]
                                                     for tax in line["taxes"] for part in (tax.get("amount_breakdown") or {}).get("parts", [])), 0.05, 0.25),
    ("B2B organisation", lambda o: o["customer"]["organization"] is not None, 0.04, 0.18),
    ("relay point", lambda o: o["shipping_pudo_id"] is not None and o["shipping_zone_code"] == "FR-RELAIS", 0.1, 0.3),
    ("PAY_ON_ACCEPTANCE", lambda o: o["payment_workflow"] == "PAY_ON_ACCEPTANCE", 0.65, 0.9),
    ("PAY_ON_SHIPMENT", lambda o: o["payment_workflow"] == "PAY_ON_SHIPMENT", 0.02, 0.11),
    ("PAY_ON_DELIVERY", lambda o: o["payment_workflow"] == "PAY_ON_DELIVERY", 0.02, 0.11),
    ("PAY_ON_DUE_DATE (B2B terms)", lambda o: o["payment_workflow"] == "PAY_ON_DUE_DATE", 0.02, 0.12),
    ("NO_CUSTOMER_PAYMENT_CONFIRMATION", lambda o: o["payment_workflow"] == "NO_CUSTOMER_PAYMENT_CONFIRMATION", 0.005, 0.07),
    ("paid directly to the seller", lambda o: o["customer_directly_pays_seller"], 0.003, 0.05),
    ("cancelled whole after acceptance", lambda o: o["order_state"] == "CANCELED" and _cancelled_units(o) > 0, 0.01, 0.06),
    ("cancelled in part after acceptance", lambda o: o["order_state"] != "CANCELED" and _cancelled_units(o) > 0, 0.005, 0.06),
    ("never paid", lambda o: o["order_state"] == "WAITING_DEBIT", 0.01, 0.1),
]


def _has_promotion(order: dict, kind: str) -> bool:
    return any(p["configuration"]["type"] == kind for line in order["order_lines"] for p in line["promotions"])


def _cancelled_units(order: dict) -> int:
    return sum(c["quantity"] for line in order["order_lines"] for c in line["cancelations"])


@pytest.mark.parametrize("name, predicate, low, high", HOUR_CASES, ids=[c[0] for c in HOUR_CASES])
def test_a_simulated_hour_plays_every_kind_at_its_rate(hour, name, predicate, low, high):
    _, _, _, orders = hour
    assert len(orders) == 4 * 60 * len(MARKETS)
    assert low <= _share(orders, predicate) <= high, (name, _share(orders, predicate))


def test_the_hour_served_validates_against_the_spec_and_adds_up(hour):
    _, sims, served, _ = hour
    for code, body in served.items():
        validate(schema_ref("OR11_Response_200"), body)
        for order in body["orders"]:
            assert consistency_errors(order, reading="keep") == [], order["order_id"]
        other = "TAX_INCLUDED" if code == TAX_EXCLUDED_MARKET else "TAX_EXCLUDED"
        view = json.loads(to_json(sims[code].list_orders({"paginate": "false", "order_tax_mode": other})), parse_float=Decimal)
        validate(schema_ref("OR11_Response_200"), view)
        for order in view["orders"]:
            assert consistency_errors(order, reading="keep", promotion_configuration=False) == [], order["order_id"]


def test_one_marketplace_quotes_tax_excluded_with_odd_divisions(hour):
    _, _, served, _ = hour
    modes = {code: {o["order_tax_mode"] for o in body["orders"]} for code, body in served.items()}
    assert modes == {TAX_EXCLUDED_MARKET: {"TAX_EXCLUDED"}, "decathlon_fr": {"TAX_INCLUDED"}}
    excluded = _lines_of(served[TAX_EXCLUDED_MARKET]["orders"])
    odd = [line for line in excluded if line["price"] + sum(p["deduced_amount"] for p in line["promotions"])
           != line["price_unit"] * line["quantity"] and not line["cancelations"]]
    assert odd, "a TAX_EXCLUDED lot whose price does not divide by its quantity"
    for line in odd:  # price exact, price_unit its rounded quotient
        gross = line["price"] + sum(p["deduced_amount"] for p in line["promotions"])
        assert line["price_unit"] == (gross / line["quantity"]).quantize(Decimal("0.01")) != gross / line["quantity"]
    unit_prices = {line["offer_sku"]: line["price_unit"] for line in excluded if not line["promotions"]
                   and not (line["price_additional_info"] or "") and line["offer_sku"] in CATALOGUE_PRICES}
    assert unit_prices["ALP-TRAIL-42"] == Decimal("74.92")  # 89.90 net of 20 % VAT


def test_addresses_abroad_carry_their_states_and_national_phones(hour):
    _, _, _, orders = hour
    addresses = [o["customer"]["shipping_address"] for o in orders]
    countries = Counter(a["country_iso_code"] for a in addresses)
    assert len(countries) >= 8, countries
    states = {(a["country_iso_code"], a["state"]) for a in addresses}
    assert {("CAN", "Québec"), ("CAN", "QC")} & states and {("ITA", "TO"), ("ITA", "Lazio"), ("ITA", "MI")} & states
    assert ("JPN", "東京都") in states or ("JPN", "Osaka") in states
    for address in addresses:
        region = pycountry.countries.get(alpha_3=address["country_iso_code"]).alpha_2
        number = phonenumbers.parse(address["phone"], region)
        assert phonenumbers.is_possible_number(number), (address["country_iso_code"], address["phone"])
    french = [a["phone"] for a in addresses if a["country_iso_code"] == "FRA"]
    assert any(re.fullmatch(r"0\d( \d\d){4}", phone) for phone in french)  # "06 12 34 56 78"


def test_cancellations_come_seconds_to_a_minute_after_acceptance(hour):
    scenario, sims, _, _ = hour
    kinds = Counter(kind for _, _, kind in scenario.cancellations)
    assert kinds["full"] >= 5 and kinds["partial"] >= 3, kinds
    for code, order_id, kind in scenario.cancellations:
        order = sims[code].get_order(order_id)
        accepted = order["acceptance_decision_date"]
        created = [c["created_date"] for line in order["order_lines"] for c in line["cancelations"]]
        assert created and all(timedelta(seconds=5) <= moment - accepted <= timedelta(seconds=65) for moment in created)
        assert all(c["reason_code"] == "34" for line in order["order_lines"] for c in line["cancelations"])
        if kind == "full":
            assert order["order_state"] == "CANCELED" and {line["order_line_state"] for line in order["order_lines"]} == {"CANCELED"}
        else:
            assert order["order_state"] != "CANCELED"


def test_debits_arrive_later_per_workflow(hour):
    _, _, _, orders = hour
    seen = Counter()
    for order in orders:
        workflow, debited = order["payment_workflow"], order["customer_debited_date"]
        shipped = max((line["shipped_date"] for line in order["order_lines"] if line["shipped_date"]), default=None)
        received = max((line["received_date"] for line in order["order_lines"] if line["received_date"]), default=None)
        if workflow == "NO_CUSTOMER_PAYMENT_CONFIRMATION" or order["customer_directly_pays_seller"]:
            assert debited is None
            seen["never"] += 1
        elif workflow == "PAY_ON_SHIPMENT" and shipped and debited:
            assert debited == shipped + HOUR_SETTINGS["deferred_debit_delay"]
            seen[workflow] += 1
        elif workflow == "PAY_ON_DELIVERY" and received and debited:
            assert debited == received + HOUR_SETTINGS["deferred_debit_delay"]
            seen[workflow] += 1
        elif workflow == "PAY_ON_DUE_DATE" and debited:
            assert debited == order["acceptance_decision_date"] + order["payment_duration"] * HOUR_SETTINGS["payment_duration_day"]
            seen[workflow] += 1
        if workflow != "PAY_ON_ACCEPTANCE" and debited is not None:  # later debits change no state
            assert order["order_state"] != "WAITING_DEBIT" and order["transaction_number"]
    assert all(seen[kind] >= 3 for kind in ("never", "PAY_ON_SHIPMENT", "PAY_ON_DELIVERY", "PAY_ON_DUE_DATE")), seen


def test_the_plain_day_has_none_of_the_variety():
    scenario = make_scenario(**{k: v for k, v in vars(ScenarioSettings.plain()).items() if k != "seed"})
    orders = place_many(scenario, 50)
    assert {o["payment_workflow"] for o in orders} == {"PAY_ON_ACCEPTANCE"}
    assert not any(line["promotions"] or line["fees"] for o in orders for line in o["order_lines"])
    assert {o["customer"]["shipping_address"]["country_iso_code"] for o in orders} == {"FRA"}
    assert not scenario.planned_cancellations


def test_the_showcase_pays_the_backlog_on_shipment_and_cancels_the_first_live_orders():
    scenario = make_scenario(showcase=True, partial_cancel_share=0.0, full_cancel_share=0.0)
    scenario.seed_backlog(per_marketplace=3)
    for sim in scenario.sims.values():
        waiting = [o for o in sim.orders() if o["order_state"] == "WAITING_ACCEPTANCE"]
        assert [o["payment_workflow"] for o in waiting] == ["PAY_ON_SHIPMENT"]
    assert not scenario.planned_cancellations  # the backlog is not the showcase's: it was placed before the demo
    place_many(scenario, per_marketplace=4)
    kinds = Counter((code, plan["kind"]) for (code, _), plan in scenario.planned_cancellations.items())
    assert kinds == {(code, kind): 1 for code in scenario.sims for kind in ("partial", "full")}
    live = scenario.placed[3 * len(MARKETS):]
    assert all(live.index(key) < 3 * len(MARKETS) for key in scenario.planned_cancellations)  # among the first orders
    plain = make_scenario(partial_cancel_share=0.0, full_cancel_share=0.0)
    plain.seed_backlog(per_marketplace=3)
    place_many(plain, per_marketplace=4)
    assert not plain.planned_cancellations  # without the showcase, chance alone decides
