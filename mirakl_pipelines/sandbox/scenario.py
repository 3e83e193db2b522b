"""A marketplace day, played on the sandbox: customers order on each marketplace, pay (or not).

Deterministic for a seed. Orders are single- and multi-line with several quantities, relay-point
deliveries (`shipping_pudo_id`), B2B buyers, non-ASCII names, SKUs the shop does not know, and
orders that are never paid — the cases the order flow must handle. Fault knobs live on each
simulator (`sim.faults`, `store.faults`).
"""

import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSim

CUSTOMERS = [
    ("Zoë", "Lefèvre"), ("Jürgen", "Müller"), ("Łukasz", "Żółkiewski"), ("Søren", "Ærø"), ("José", "Núñez"),
    ("Amélie", "Poulain"), ("Chloé", "Béranger"), ("Inès", "Gaël"), ("Marco", "Rossi"), ("Anna", "Nowak"),
    ("Léa", "Dubois"), ("Thomas", "Martin"), ("Camille", "Bernard"), ("Hugo", "Petit"), ("Ōtsuka", "Hanako"),
]
ADDRESSES = [
    ("12 rue de la République", "69002", "Lyon", "FRA"), ("4 place Bellecour", "69002", "Lyon", "FRA"),
    ("27 avenue Jean Jaurès", "75019", "Paris", "FRA"), ("8 quai des Chartrons", "33000", "Bordeaux", "FRA"),
    ("15 rue Sainte-Catherine", "59000", "Lille", "FRA"), ("Königstraße 21", "70173", "Stuttgart", "DEU"),
    ("Calle de Alcalá 45", "28014", "Madrid", "ESP"), ("Via Roma 10", "10121", "Torino", "ITA"),
    ("Rue Neuve 3", "1000", "Bruxelles", "BEL"),
]
COMPANIES = ["Club Alpin de Grenoble", "Trail Évasion SARL", "Bergsport GmbH"]


@dataclass
class ScenarioSettings:
    seed: int = 7
    orders_per_minute: float = 4.0  # per marketplace
    multi_line_share: float = 0.35
    unknown_sku_share: float = 0.05
    never_paid_share: float = 0.05
    pudo_share: float = 0.2
    b2b_share: float = 0.1


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

    def _pick_variants(self, count: int) -> list[dict]:
        """Distinct variants, well-stocked ones more often: marketplaces sell what the shop lists as available."""
        pool, picks = list(self.variants), []
        while pool and len(picks) < count:
            variant = self.rng.choices(pool, weights=[5 + v.get("stock", 0) for v in pool])[0]
            picks.append(variant)
            pool.remove(variant)
        return picks

    def _lines(self) -> list[dict]:
        count = self.rng.choice([2, 2, 3]) if self.rng.random() < self.settings.multi_line_share else 1
        picks = self._pick_variants(count)
        lines = [{"sku": v["sku"], "title": self.titles[v["sku"]], "quantity": self.rng.choice([1, 1, 1, 2, 3]),
                  "unit_price": Decimal(str(v["price"]))} for v in picks]
        if self.unknown_skus and self.rng.random() < self.settings.unknown_sku_share:
            sku = self.rng.choice(self.unknown_skus)
            lines[-1] = {"sku": sku, "title": f"Unlisted item {sku}", "quantity": 1, "unit_price": Decimal("19.90")}
        return lines

    def place_order(self, code: str, created: datetime | None = None, state: str = "WAITING_ACCEPTANCE") -> dict:
        sim = self.sims[code]
        self._counter += 1
        first, last = self.rng.choice(CUSTOMERS)
        street, zip_code, city, country = self.rng.choice(ADDRESSES)
        address = {"firstname": first, "lastname": last, "street_1": street, "zip_code": zip_code, "city": city,
                   "country_iso_code": country, "phone": f"+336{self.rng.randint(10000000, 99999999)}"}
        b2b = self.rng.random() < self.settings.b2b_share
        order = build_order(
            order_id=f"{code[:3].upper()}-{self._counter}-A",
            lines=self._lines(),
            created=created or sim.now(),
            customer={"firstname": first, "lastname": last},
            shipping_address=address,
            billing_address=address,
            shipping_pudo_id=f"PUDO-{self.rng.randint(1000, 9999)}" if self.rng.random() < self.settings.pudo_share else None,
            organization={"name": self.rng.choice(COMPANIES), "organization_id": f"ORG-{self._counter}"} if b2b else None,
            state=state,
        )
        # A never-paid order stays in debit until the operator cancels it: it must never reach Shopify.
        sim.add_order(order, never_pay=self.rng.random() < self.settings.never_paid_share)
        self.placed.append((code, order["order_id"]))
        return order

    def seed_backlog(self, per_marketplace: int = 3) -> None:
        """Orders placed before the demo started, so the first runs have work to do: every other one was
        accepted and paid earlier (SHIPPING), the others still wait for acceptance."""
        for code, sim in self.sims.items():
            for i in range(per_marketplace):
                state = "SHIPPING" if i % 2 == 0 else "WAITING_ACCEPTANCE"
                self.place_order(code, created=sim.now() - timedelta(minutes=5 * (per_marketplace - i)), state=state)

    def step(self, elapsed_seconds: float) -> int:
        """Place the orders due after `elapsed_seconds` and let the marketplaces' clocks act. Returns orders placed."""
        placed = 0
        for code, sim in self.sims.items():
            self._carry[code] += Fraction(str(self.settings.orders_per_minute)) * Fraction(str(elapsed_seconds)) / 60
            while self._carry[code] >= 1:
                self._carry[code] -= 1
                self.place_order(code)
                placed += 1
            sim.tick()
        return placed

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        while not stop.wait(interval):
            self.step(interval)
