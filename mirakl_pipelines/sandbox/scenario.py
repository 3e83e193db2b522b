"""A marketplace day, played on the sandbox: customers order on each marketplace, pay (or not), cancel.

Deterministic for a seed: every choice about an order (its lines, customer, promotions, payment,
whether and how it will be cancelled) is drawn when it is placed, in placement order. What the day
holds, at the rates of `ScenarioSettings` (shares of orders):
- single- and multi-line orders with several quantities, SKUs the shop does not know;
- customers in France and abroad (Italy with a province or a region, Spain, Germany, Belgium, the UK,
  Switzerland, Canada with "Québec" or "QC", the US, Japan with its prefecture), phones in national
  formats, non-ASCII names, B2B organisations, relay-point deliveries (`shipping_pudo_id`, a relay zone);
- taxes of the destination: French VAT, another EU country's VAT, and taxes the marketplace collects
  itself (`payable_to_shop: false` on UK VAT, US sales tax, Canadian GST + QST, Swiss and Japanese
  taxes) — each line's taxes always positive;
- promotions of every type (PERCENTAGE_OFF, AMOUNT_OFF over the basket, apportioned when shared,
  FREE_ITEMS "3 for 2", REDUCED_UNIT_PRICE), line fees, lots sold at a volume price that does not
  divide by its quantity (`price_additional_info` says so);
- every payment workflow: PAY_ON_ACCEPTANCE for most, PAY_ON_SHIPMENT, PAY_ON_DELIVERY (some paid
  cash to the seller: `customer_directly_pays_seller`), NO_CUSTOMER_PAYMENT_CONFIRMATION, and B2B orders
  on payment terms (PAY_ON_DUE_DATE). When debits arrive is the marketplace's business (state.py
  settings `debit_delay`, `deferred_debit_delay`, `payment_duration_day`, `receive_delay`);
- orders never paid (they stay in debit), and cancellations by customer service once the order was
  accepted: some units of a line or a whole line (partial), or every line (full), `cancel_delay`
  seconds after acceptance — so some arrive after the order was imported into Shopify;
- marketplaces quoting prices TAX_EXCLUDED (`tax_excluded_marketplaces`): unit prices are the
  catalogue's (tax included, French VAT) net of VAT.
Fault knobs live on each simulator (`sim.faults`, `store.faults`).
"""

import random
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSim

CUSTOMERS = [
    ("Zoë", "Lefèvre"), ("Jürgen", "Müller"), ("Łukasz", "Żółkiewski"), ("Søren", "Ærø"), ("José", "Núñez"),
    ("Amélie", "Poulain"), ("Chloé", "Béranger"), ("Inès", "Gaël"), ("Marco", "Rossi"), ("Anna", "Nowak"),
    ("Léa", "Dubois"), ("Thomas", "Martin"), ("Camille", "Bernard"), ("Hugo", "Petit"), ("Ōtsuka", "Hanako"),
]
# French addresses: (street, zip, city, state as marketplaces send it)
ADDRESSES = [
    ("12 rue de la République", "69002", "Lyon", None), ("4 place Bellecour", "69002", "Lyon", None),
    ("27 avenue Jean Jaurès", "75019", "Paris", None), ("8 quai des Chartrons", "33000", "Bordeaux", None),
    ("15 rue Sainte-Catherine", "59000", "Lille", None), ("3 chemin des Vignes", "97200", "Fort-de-France", "Martinique"),
]
# Abroad: alpha-3 -> (addresses, phone patterns (# = a digit), taxes as [(code, rate %, payable_to_shop)])
ABROAD = {
    "DEU": ([("Königstraße 21", "70173", "Stuttgart", None), ("Friedrichstraße 43", "10117", "Berlin", "Berlin"),
             ("Marienplatz 8", "80331", "München", "Bayern")], ["030 #######", "0151 ########", "+49 89 ########"],
            [("VAT-DE", "19", True)]),
    "ESP": ([("Calle de Alcalá 45", "28014", "Madrid", "Madrid"), ("Carrer de Mallorca 401", "08013", "Barcelona", "Barcelona")],
            ["912 ## ## ##", "+34 6## ### ###"], [("VAT-ES", "21", True)]),
    "ITA": ([("Via Roma 10", "10121", "Torino", "TO"), ("Via del Corso 120", "00186", "Roma", "Lazio"),
             ("Corso Buenos Aires 5", "20124", "Milano", "MI")], ["+39 06 #### ####", "333 ### ####"], [("VAT-IT", "22", True)]),
    "BEL": ([("Rue Neuve 3", "1000", "Bruxelles", None), ("Meir 50", "2000", "Antwerpen", "Antwerpen")],
            ["0470 ## ## ##", "+32 2 ### ## ##"], [("VAT-BE", "21", True)]),
    "GBR": ([("221B Baker Street", "NW1 6XE", "London", None), ("10 Deansgate", "M3 1AZ", "Manchester", "Greater Manchester")],
            ["+44 (0)20 7946 0###", "07700 900###"], [("UK-VAT", "20", False)]),  # collected by the marketplace (<= £135)
    "CHE": ([("Bahnhofstrasse 12", "8001", "Zürich", "ZH")], ["044 ### ## ##", "+41 79 ### ## ##"], [("CH-MWST", "8.1", False)]),
    "CAN": ([("1200 rue Sainte-Catherine O", "H3B 1K9", "Montréal", "Québec"), ("300 Grande Allée E", "G1R 2H5", "Québec", "QC")],
            ["(514) 555-01##", "+1 418 555 01##"], [("GST", "5", False), ("QST", "9.975", False)]),
    "USA": ([("113 MacDougal Street", "10012", "New York", "NY"), ("500 Market St", "94105", "San Francisco", "California")],
            ["(212) 555-01##", "+1-415-555-01##"], [("US-SALES-TAX", "8.875", False)]),  # marketplace facilitator
    "JPN": ([("1-2-3 Shibuya", "150-0002", "Shibuya-ku", "東京都"), ("4-5 Umeda, Kita-ku", "530-0001", "Osaka", "Osaka")],
            ["03-####-####", "090-####-####"], [("JCT", "10", False)]),
}
FRENCH_PHONES = ["06 ## ## ## ##", "07 ## ## ## ##", "+33 6 ## ## ## ##", "01 ## ## ## ##"]
FRENCH_VAT = [("TVA20", "20", None)]
COMPANIES = ["Club Alpin de Grenoble", "Trail Évasion SARL", "Bergsport GmbH"]
PROMOTION_KINDS = [("PERCENTAGE_OFF", 35), ("AMOUNT_OFF", 25), ("FREE_ITEMS", 20), ("REDUCED_UNIT_PRICE", 20)]
FEES = [("SERVICE_FEE", "0.99"), ("GIFT_WRAP", "3.90"), ("CARD_FEE", "0.50")]
RELAY_NETWORKS = [("MR", "Mondial Relay"), ("CHR", "Chronopost Relais"), ("PR", "Pickup Station")]


@dataclass
class ScenarioSettings:
    seed: int = 7
    orders_per_minute: float = 4.0  # per marketplace
    multi_line_share: float = 0.35
    unknown_sku_share: float = 0.05
    never_paid_share: float = 0.05
    pudo_share: float = 0.2
    b2b_share: float = 0.1
    international_share: float = 0.3  # shipped outside France
    promotion_share: float = 0.15
    fee_share: float = 0.1
    volume_price_share: float = 0.06  # one line sold as a lot at a price that does not divide by its quantity
    # Workflows other than PAY_ON_ACCEPTANCE, as shares of the non-B2B orders; B2B orders are on payment terms
    # (PAY_ON_DUE_DATE) `b2b_due_date_share` of the time.
    payment_workflow_shares: dict[str, float] = field(default_factory=lambda: {
        "PAY_ON_SHIPMENT": 0.06, "PAY_ON_DELIVERY": 0.04, "NO_CUSTOMER_PAYMENT_CONFIRMATION": 0.03})
    directly_pays_seller_share: float = 0.02  # cash on delivery to the seller (PAY_ON_DELIVERY, never debited by Mirakl)
    b2b_due_date_share: float = 0.6
    partial_cancel_share: float = 0.04  # some units or lines cancelled by customer service after acceptance
    full_cancel_share: float = 0.03  # every line cancelled after acceptance
    cancel_delay_seconds: tuple[float, float] = (5.0, 60.0)  # after acceptance
    tax_excluded_marketplaces: tuple[str, ...] = ()  # marketplaces whose orders are quoted TAX_EXCLUDED
    # The demo's first minutes show the flows that chance might leave out: the backlog's order awaiting acceptance
    # is paid on shipment (imported unpaid, marked paid once shipped and debited), and each marketplace's first two
    # orders placed live are cancelled after acceptance, in part then in full.
    showcase: bool = False

    @classmethod
    def plain(cls, **overrides) -> "ScenarioSettings":
        """The day before the variety: French TAX_INCLUDED orders paid on acceptance, no promotions, fees or
        cancellations (for benchmarks that measure the pipeline, not the importer's edge cases)."""
        base = dict(international_share=0.0, promotion_share=0.0, fee_share=0.0, volume_price_share=0.0,
                    payment_workflow_shares={}, directly_pays_seller_share=0.0, b2b_due_date_share=0.0,
                    partial_cancel_share=0.0, full_cancel_share=0.0)
        return cls(**{**base, **overrides})


class Scenario:
    def __init__(self, sims: dict[str, MarketplaceSim], catalogue: dict, settings: ScenarioSettings | None = None):
        self.sims = sims
        self.settings = settings or ScenarioSettings()
        self.rng = random.Random(self.settings.seed)
        self.variants = [v for p in catalogue["products"] for v in p["variants"]]
        self.titles = {v["sku"]: f"{p['title']} {v['title']}".replace(" Default Title", "")
                       for p in catalogue["products"] for v in p["variants"]}
        self.unknown_skus = list(catalogue.get("unknown_skus", []))
        self._counter = 100000
        # Exact fractions: float steps of 0.1 would add up to 0.999… and place each order a step late.
        self._carry: dict[str, Fraction] = {code: Fraction(0) for code in sims}
        self.placed: list[tuple[str, str]] = []  # (marketplace code, order id)
        # Cancellations planned at placement: (code, order id) -> {"lines": {line id: units}, "delay": s, "kind"}
        self.planned_cancellations: dict[tuple[str, str], dict] = {}
        self.cancellations: list[tuple[str, str, str]] = []  # (code, order id, "partial" | "full") done
        self._showcase_cancellations = {code: ["partial", "full"] if self.settings.showcase else [] for code in sims}
        self._lock = threading.RLock()

    # ---- drawing an order ---------------------------------------------------------------------------

    def _pick_variants(self, count: int) -> list[dict]:
        """Distinct variants, well-stocked ones more often: marketplaces sell what the shop lists as available."""
        pool, picks = list(self.variants), []
        while pool and len(picks) < count:
            variant = self.rng.choices(pool, weights=[5 + v.get("stock", 0) for v in pool])[0]
            picks.append(variant)
            pool.remove(variant)
        return picks

    def _lines(self, tax_excluded: bool) -> list[dict]:
        count = self.rng.choice([2, 2, 3]) if self.rng.random() < self.settings.multi_line_share else 1
        picks = self._pick_variants(count)
        lines = [{"sku": v["sku"], "title": self.titles[v["sku"]], "quantity": self.rng.choice([1, 1, 1, 2, 3]),
                  "unit_price": _net(Decimal(str(v["price"])), tax_excluded)} for v in picks]
        if self.unknown_skus and self.rng.random() < self.settings.unknown_sku_share:
            sku = self.rng.choice(self.unknown_skus)
            lines[-1] = {"sku": sku, "title": f"Unlisted item {sku}", "quantity": 1,
                         "unit_price": _net(Decimal("19.90"), tax_excluded)}
        if self.rng.random() < self.settings.volume_price_share:
            self._volume_price(self.rng.choice(lines))
        if self.rng.random() < self.settings.fee_share:
            code, amount = self.rng.choice(FEES)
            self.rng.choice(lines).setdefault("fees", []).append({"code": code, "amount": amount})
        return lines

    def _volume_price(self, line: dict) -> None:
        """A lot of 3 at about 10 % off, priced so that it does not divide by 3 (price_unit rounded)."""
        unit = line.pop("unit_price")
        lot = (unit * 3 * Decimal("0.9")).quantize(Decimal("1"), rounding=ROUND_HALF_UP) - Decimal("0.10")
        if (lot * 100) % 3 == 0:
            lot -= Decimal("0.01")
        line.update(quantity=3, line_price=lot, price_additional_info=f"Lot de 3 : {lot} €")

    def _promotions(self, lines: list[dict]) -> list[dict]:
        """One promotion on the order; returns the basket promotions (those on lines are set on them)."""
        kind = self.rng.choices([k for k, _ in PROMOTION_KINDS], weights=[w for _, w in PROMOTION_KINDS])[0]
        self._counter += 1
        promo_id = f"PROMO-{self._counter}"
        line = self.rng.choice([line for line in lines if "unit_price" in line] or lines)
        if kind == "PERCENTAGE_OFF":
            pct = self.rng.choice(["10", "15", "20"])
            if len(lines) > 1 and self.rng.random() < 0.5:  # the same percentage on every line: not apportioned
                return [{"type": kind, "percentage_off": pct, "id": promo_id, "promo_code": f"SOLDES{pct}"}]
            line.setdefault("promotions", []).append({"type": kind, "percentage_off": pct, "id": promo_id})
        elif kind == "AMOUNT_OFF":
            # A basket amount, apportioned over the lines when there are several.
            return [{"type": kind, "amount_off": self.rng.choice(["5.00", "10.00"]), "id": promo_id, "promo_code": "BIENVENUE"}]
        elif kind == "FREE_ITEMS" and "unit_price" in line:
            line["quantity"] = 3  # "3 for 2": the free unit is part of the quantity
            line.setdefault("promotions", []).append(
                {"type": kind, "free_items_quantity": 1, "id": promo_id, "internal_description": "3 pour 2"})
        elif "unit_price" in line:
            reduced = (line["unit_price"] * Decimal("0.85")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            line.setdefault("promotions", []).append(
                {"type": "REDUCED_UNIT_PRICE", "reduced_unit_price": reduced, "id": promo_id, "campaign": "VENTE-FLASH"})
        return []

    def _address(self, first: str, last: str, abroad: bool) -> tuple[dict, list]:
        if abroad:
            country = self.rng.choice(sorted(ABROAD))
            places, phones, taxes = ABROAD[country]
        else:
            country, places, phones, taxes = "FRA", ADDRESSES, FRENCH_PHONES, FRENCH_VAT
        street, zip_code, city, state = self.rng.choice(places)
        phone = "".join(str(self.rng.randint(0, 9)) if c == "#" else c for c in self.rng.choice(phones))
        address = {"firstname": first, "lastname": last, "street_1": street, "zip_code": zip_code, "city": city,
                   "state": state, "country_iso_code": country, "phone": phone}
        tax_specs = [{"code": code, "rate": rate, **({} if payable is None else {"payable_to_shop": payable})}
                     for code, rate, payable in taxes]
        return address, tax_specs

    def _payment(self, b2b: bool) -> dict:
        if b2b and self.rng.random() < self.settings.b2b_due_date_share:
            return {"payment_workflow": "PAY_ON_DUE_DATE", "payment_duration": self.rng.choice([30, 45, 60]),
                    "payment_type": "VIREMENT"}
        if self.rng.random() < self.settings.directly_pays_seller_share:
            return {"payment_workflow": "PAY_ON_DELIVERY", "customer_directly_pays_seller": True,
                    "payment_type": "CONTRE_REMBOURSEMENT"}
        draw, edge = self.rng.random(), 0.0
        for workflow, share in sorted(self.settings.payment_workflow_shares.items()):
            edge += share
            if draw < edge:
                return {"payment_workflow": workflow}
        return {"payment_workflow": "PAY_ON_ACCEPTANCE"}

    def _plan_cancellation(self, code: str, order: dict, kind: str | None = None) -> bool:
        """Draw whether (and how) customer service cancels the order after acceptance (`kind` forces it); planned?"""
        draw = self.rng.random()
        delay = self.rng.uniform(*self.settings.cancel_delay_seconds)
        lines = order["order_lines"]
        full, partial = self.settings.full_cancel_share, self.settings.partial_cancel_share
        if kind == "full" or (kind is None and draw < full):
            plan = {"kind": "full", "lines": {line["order_line_id"]: line["quantity"] for line in lines}}
        elif kind == "partial" or (kind is None and draw < full + partial):
            several = [line for line in lines if line["quantity"] > 1]
            if several and (len(lines) == 1 or self.rng.random() < 0.6):
                line = self.rng.choice(several)
                plan = {"kind": "partial", "lines": {line["order_line_id"]: self.rng.randint(1, line["quantity"] - 1)}}
            elif len(lines) > 1:
                line = self.rng.choice(lines)
                plan = {"kind": "partial", "lines": {line["order_line_id"]: line["quantity"]}}
            else:
                return False  # one unit of one line: nothing to cancel in part
        else:
            return False
        self.planned_cancellations[(code, order["order_id"])] = {**plan, "delay": timedelta(seconds=delay)}
        return True

    def place_order(self, code: str, created: datetime | None = None, state: str = "WAITING_ACCEPTANCE",
                    workflow: str | None = None) -> dict:
        """Place one order; `workflow` forces its payment workflow (the backlog's paid orders)."""
        with self._lock:
            sim = self.sims[code]
            s = self.settings
            self._counter += 1
            order_id = f"{code[:3].upper()}-{self._counter}-A"
            tax_excluded = code in s.tax_excluded_marketplaces
            first, last = self.rng.choice(CUSTOMERS)
            pudo = self.rng.random() < s.pudo_share
            abroad = self.rng.random() < s.international_share and not pudo  # relay points are French here
            address, taxes = self._address(first, last, abroad)
            b2b = self.rng.random() < s.b2b_share
            lines = self._lines(tax_excluded)
            basket = self._promotions(lines) if self.rng.random() < s.promotion_share else []
            payment = self._payment(b2b)
            if workflow is not None:
                payment = {"payment_workflow": workflow}
            relay = self.rng.choice(RELAY_NETWORKS) if pudo else None
            pudo_id = f"{relay[0]}-{self.rng.randint(100000, 999999)}" if relay else None
            order = build_order(
                order_id=order_id,
                lines=lines,
                created=created or sim.now(),
                customer={"firstname": first, "lastname": last},
                shipping_address=address,
                billing_address=address,
                shipping_pudo_id=pudo_id,
                shipping_zone_code="FR-RELAIS" if relay else None,
                shipping_zone_label=f"Points relais {relay[1]}" if relay else None,
                organization={"name": self.rng.choice(COMPANIES), "organization_id": f"ORG-{self._counter}"} if b2b else None,
                state=state,
                tax_mode="TAX_EXCLUDED" if tax_excluded else "TAX_INCLUDED",
                taxes=taxes,
                basket_promotions=basket,
                **payment,
            )
            # A never-paid order stays in debit until the operator cancels it: it must never reach Shopify.
            sim.add_order(order, never_pay=self.rng.random() < s.never_paid_share)
            self.placed.append((code, order["order_id"]))
            if state == "WAITING_ACCEPTANCE":
                showcase = self._showcase_cancellations[code]
                kind = showcase[0] if showcase and created is None else None
                if self._plan_cancellation(code, order, kind) and kind:
                    showcase.pop(0)  # a one-unit order cannot be cancelled in part: the next order shows it
            return order

    def seed_backlog(self, per_marketplace: int = 3) -> None:
        """Orders placed before the demo started, so the first runs have work to do: every other one was
        accepted and paid earlier (SHIPPING, paid on acceptance), the others still wait for acceptance."""
        for code, sim in self.sims.items():
            for i in range(per_marketplace):
                state = "SHIPPING" if i % 2 == 0 else "WAITING_ACCEPTANCE"
                waiting = "PAY_ON_SHIPMENT" if self.settings.showcase else None
                self.place_order(code, created=sim.now() - timedelta(minutes=5 * (per_marketplace - i)), state=state,
                                 workflow="PAY_ON_ACCEPTANCE" if state == "SHIPPING" else waiting)

    def seed_past_days(self, days: int, per_day: int) -> date:
        """Orders placed on each of the `days` UTC days before today, so that a backfill of those partitions has
        work: most were accepted and paid that day (SHIPPING: the backfill imports them), the last of each day was
        refused (observed, not imported) and, yesterday only (inside every acceptance window), every third one
        still waits for acceptance (the backfill accepts it). Each order's updates stay within its day.
        Returns the first of those days."""
        first = None
        for code, sim in self.sims.items():
            today = sim.now().date()
            first = today - timedelta(days=days)
            for back in range(days, 0, -1):
                start = datetime.combine(today - timedelta(days=back), time.min, tzinfo=timezone.utc)
                # Ten minutes short of midnight: acceptance and debit are stamped minutes after creation.
                seconds = sorted(self.rng.uniform(0, 86_400 - 600) for _ in range(per_day))
                for i, second in enumerate(seconds):
                    state = ("REFUSED" if i == per_day - 1 else
                             "WAITING_ACCEPTANCE" if back == 1 and i % 3 == 1 else "SHIPPING")
                    self.place_order(code, created=start + timedelta(seconds=second), state=state,
                                     workflow="PAY_ON_ACCEPTANCE" if state == "SHIPPING" else None)
        return first

    # ---- the clock ------------------------------------------------------------------------------

    def step(self, elapsed_seconds: float) -> int:
        """Place the orders due after `elapsed_seconds`, cancel what is due, let the marketplaces' clocks act.
        Returns orders placed."""
        placed = 0
        for code, sim in self.sims.items():
            self._carry[code] += Fraction(str(self.settings.orders_per_minute)) * Fraction(str(elapsed_seconds)) / 60
            while self._carry[code] >= 1:
                self._carry[code] -= 1
                self.place_order(code)
                placed += 1
            sim.tick()
        self._cancel_due()
        return placed

    def _cancel_due(self) -> None:
        """Planned cancellations whose order was accepted `delay` ago; dropped once they cannot happen."""
        with self._lock:
            orders = {}
            for code, sim in self.sims.items():
                ids = [order_id for c, order_id in self.planned_cancellations if c == code]
                for start in range(0, len(ids), 100):  # OR11's id-list limit
                    listed = sim.list_orders({"order_ids": ",".join(ids[start:start + 100]), "paginate": "false"})
                    orders.update({(code, o["order_id"]): o for o in listed["orders"]})
            for key, plan in list(self.planned_cancellations.items()):
                code, order_id = key
                sim = self.sims[code]
                order = orders[key]
                if order["order_state"] in {"STAGING", "WAITING_ACCEPTANCE"}:
                    continue
                decided = order["acceptance_decision_date"]
                if decided is None or order["order_state"] not in {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING"}:
                    del self.planned_cancellations[key]  # refused, shipped or cancelled meanwhile
                    continue
                if sim.now() < decided + plan["delay"]:
                    continue
                del self.planned_cancellations[key]
                live = {line["order_line_id"] for line in order["order_lines"] if line["order_line_state"] != "REFUSED"}
                units = {line_id: n for line_id, n in plan["lines"].items() if line_id in live}
                if plan["kind"] == "full":
                    units = {line["order_line_id"]: line["quantity"] for line in order["order_lines"]
                             if line["order_line_id"] in live}
                if not units:
                    continue
                try:
                    sim.cancel_lines(order_id, units)
                except ValueError:
                    continue  # a parcel left first, or units are in a shipment: too late to cancel them
                self.cancellations.append((code, order_id, plan["kind"]))

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        while not stop.wait(interval):
            self.step(interval)


def _net(price: Decimal, tax_excluded: bool) -> Decimal:
    """A catalogue price (tax included, French VAT) as a marketplace quoting TAX_EXCLUDED shows it."""
    return (price / Decimal("1.2")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) if tax_excluded else price
