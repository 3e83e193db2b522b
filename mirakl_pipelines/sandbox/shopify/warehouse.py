"""The sandbox shop's warehouse: fulfils open fulfilment orders after a delay, with tracking numbers.

Each fulfilment goes through `fulfillment_create`, the code path of the GraphQL mutation, so it
changes the store and sends webhooks exactly as a merchant's fulfilment would. Carriers follow a
French web shop's mix (exact Shopify company names); a share of orders goes with a carrier no
marketplace mapping knows, and a share ships partially: some lines (or part of a line) first, the
rest one delay later, as a second parcel with the same carrier.

Deterministic for a seed: every choice for a fulfilment order comes from a generator seeded with
(seed, order or fulfilment order id, parcel number), so the outcome does not depend on when or how
often `step` runs.

Held fulfilment orders (status ON_HOLD, e.g. an order being cancelled on the marketplace) are never
shipped; when a hold split one, the unheld part is a fulfilment order of its own and ships as usual.
A share of parcels carries two tracking numbers (a second box or a relabel), sent in one fulfilment as
Shopify's `numbers`/`urls`.
"""

import collections
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from mirakl_pipelines.sandbox.shopify.fulfillment_create import fulfillment_create
from mirakl_pipelines.sandbox.shopify.fulfillment_orders import FULFILLABLE_STATUSES
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore
from mirakl_pipelines.sandbox.shopify.tracking import (
    FRENCH_CARRIER_WEIGHTS,
    FRENCH_CARRIERS,
    UNMAPPED_CARRIERS,
    tracking_number,
)
from mirakl_pipelines.sandbox.ticker import Ticker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shipment:
    """One parcel the warehouse sent: a fulfilment in the store."""
    order_name: str
    fulfillment_id: str
    fulfillment_order_id: str
    company: str
    number: str
    url: str
    partial: bool  # lines remain to ship after this parcel
    quantity: int
    numbers: tuple[str, ...] = ()  # every tracking number of the fulfilment (the first is `number`)
    urls: tuple[str, ...] = ()


class Warehouse:
    def __init__(self, store: ShopifyStore, *, seed: int = 0, delay_seconds: float = 60.0, partial_share: float = 0.15,
                 unknown_carrier_share: float = 0.05, two_numbers_share: float = 0.05,
                 carriers: list[tuple[str, str]] | None = None,
                 carrier_weights: dict[str, float] | None = None,
                 unknown_carriers: list[tuple[str, str]] | None = None):
        for name, share in (("partial_share", partial_share), ("unknown_carrier_share", unknown_carrier_share),
                            ("two_numbers_share", two_numbers_share)):
            if not 0 <= share <= 1:
                raise ValueError(f"warehouse {name}: {share} is not a share between 0 and 1")
        if delay_seconds < 0:
            raise ValueError(f"warehouse delay_seconds: {delay_seconds} must not be negative")
        self.store = store
        self.seed = seed
        self.delay = timedelta(seconds=delay_seconds)
        self.partial_share = partial_share
        self.unknown_carrier_share = unknown_carrier_share
        self.two_numbers_share = two_numbers_share
        self.carriers = list(carriers or FRENCH_CARRIERS)
        if not self.carriers:
            raise ValueError("warehouse carriers: at least one (company, url template) is required")
        weights = carrier_weights if carrier_weights is not None else FRENCH_CARRIER_WEIGHTS
        self.weights = [weights.get(company, 1) for company, _ in self.carriers]
        self.unknown_carriers = list(unknown_carriers if unknown_carriers is not None else UNMAPPED_CARRIERS)
        self.shipments: list[Shipment] = []
        self._last_parcel_at: dict[str, datetime] = {}  # on the clock `step` is given, which tests move
        self._ticker = Ticker("shopify-warehouse", self.step, log)
        self.errors = self._ticker.errors  # refused fulfilments by message, failed steps

    # --- choices ---------------------------------------------------------------------------------
    def _rng(self, *parts: str) -> random.Random:
        return random.Random("|".join([str(self.seed), *parts]))  # str seeds are hashed with SHA-512: stable

    def carrier_for(self, order_id: str) -> tuple[str, str]:
        """(company, URL template) for an order; every parcel of the order goes with it."""
        rng = self._rng(order_id, "carrier")
        if self.unknown_carriers and rng.random() < self.unknown_carrier_share:
            return rng.choice(self.unknown_carriers)
        return rng.choices(self.carriers, weights=self.weights)[0]

    def _first_parcel(self, fo: dict, rng: random.Random) -> list[dict] | None:
        """FulfillmentOrderLineItemInputs for a partial first parcel, or None to ship everything."""
        open_lines = [line for line in fo["lineItems"] if line["remainingQuantity"] > 0]
        units = sum(line["remainingQuantity"] for line in open_lines)
        if units < 2 or rng.random() >= self.partial_share:
            return None
        if len(open_lines) > 1:
            chosen = rng.sample(open_lines, rng.randint(1, len(open_lines) - 1))
            chosen.sort(key=open_lines.index)
            return [{"id": line["id"], "quantity": line["remainingQuantity"]} for line in chosen]
        line = open_lines[0]
        return [{"id": line["id"], "quantity": rng.randint(1, line["remainingQuantity"] - 1)}]

    # --- running ---------------------------------------------------------------------------------
    def due(self, now: datetime) -> list[dict]:
        """Open or started fulfilment orders (never held ones) waiting for at least the delay (since creation or the
        warehouse's last parcel)."""
        due = []
        for fo in self.store.fulfillment_orders.values():
            if fo["status"] not in FULFILLABLE_STATUSES:
                continue
            order = self.store.order_record(fo["orderId"])
            if order is None or order.get("cancelledAt"):
                continue
            since = self._last_parcel_at.get(fo["id"]) or _parse(fo["createdAt"])
            if now - since >= self.delay:
                due.append(fo)
        return due

    def step(self, now: datetime | None = None) -> list[Shipment]:
        """Ship every fulfilment order that is due at `now` (default: the wall clock); the parcels sent."""
        now = now or datetime.now(timezone.utc)
        sent = []
        with self.store.lock:
            for fo in self.due(now):
                shipment = self._ship(fo)
                if shipment is not None:
                    sent.append(shipment)
                    self._last_parcel_at[fo["id"]] = now
        self.shipments += sent
        return sent

    def _ship(self, fo: dict) -> Shipment | None:
        parcel = len(fo["fulfillments"]) + 1
        rng = self._rng(fo["id"], str(parcel))
        company, template = self.carrier_for(fo["orderId"])
        lines = self._first_parcel(fo, rng) if parcel == 1 else None
        numbers = [tracking_number(company, rng)]
        # Its own generator: the other choices for a seed stay what they were before this one existed.
        second = self._rng(fo["id"], str(parcel), "second number")
        if second.random() < self.two_numbers_share:
            numbers.append(tracking_number(company, second))
        urls = [template.format(number=n) for n in numbers]
        tracking = {"number": numbers[0], "url": urls[0], "company": company} if len(numbers) == 1 \
            else {"numbers": numbers, "urls": urls, "company": company}
        group = {"fulfillmentOrderId": fo["id"]}
        if lines:
            group["fulfillmentOrderLineItems"] = lines
        result = fulfillment_create(self.store, {
            "lineItemsByFulfillmentOrder": [group], "notifyCustomer": False, "trackingInfo": tracking,
        })
        if result["userErrors"]:
            self.errors[result["userErrors"][0]["message"]] += 1
            log.warning("warehouse could not fulfil %s: %s", fo["id"], result["userErrors"])
            return None
        fulfillment = result["fulfillment"]
        return Shipment(order_name=fo["orderName"], fulfillment_id=fulfillment["id"], fulfillment_order_id=fo["id"],
                        company=company, number=numbers[0], url=urls[0], partial=fo["status"] != "CLOSED",
                        quantity=fulfillment["totalQuantity"], numbers=tuple(numbers), urls=tuple(urls))

    def start(self, interval_seconds: float = 1.0) -> None:
        """Step every `interval_seconds` in a background thread until `stop()`."""
        self._ticker.start(interval_seconds)

    def stop(self, timeout: float = 5.0) -> None:
        self._ticker.stop(timeout)

    def stats(self) -> dict:
        return {
            "shipments": len(self.shipments),
            "partial": sum(s.partial for s in self.shipments),
            "two_numbers": sum(len(s.numbers) > 1 for s in self.shipments),
            "by_company": dict(collections.Counter(s.company for s in self.shipments)),
            "errors": dict(self.errors),
        }


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))
