"""One marketplace's shipment push: Shopify fulfilments (webhook inbox, sweep) → OR23 tracking → OR24 ship.

Every step is recorded in the ledger before the next one starts, so a crash between OR23 and OR24
resumes at OR24 and nothing is sent twice. The Mirakl order a fulfilment belongs to is read from the
day's raw parquet (the partition of its last update), never from OR11: OR11 may be called once a
minute at most, and the push must take seconds.
"""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import pyarrow as pa

from mirakl_pipelines.config import MarketplaceConfig
from mirakl_pipelines.defs.io import read_partition
from mirakl_pipelines.defs.orders import raw_dataset
from mirakl_pipelines.ledger import FulfilmentPush, Ledger
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.mirakl.errors import MiraklError
from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.shopify.models import Fulfilment
from mirakl_pipelines.sync.carriers import CarrierLike, CarrierMap
from mirakl_pipelines.sync.shipments import (
    decide_shipment,
    fulfilled_quantities,
    fulfilment_from_webhook,
    latest_tracking,
    tracking_payload,
)
from mirakl_pipelines.webhooks.topics import FULFILMENT_TOPICS

CARRIER_EXCEPTION = "unknown_carrier"
SHIPMENT_EXCEPTION = "shipment_failed"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class PushReport:
    fulfilments_received: int = 0
    not_ours: int = 0  # fulfilments of orders this project did not import
    tracking_sent: int = 0
    shipped: int = 0
    already_shipped: int = 0
    waiting: Counter = field(default_factory=Counter)
    carrier_exceptions: int = 0
    failed: int = 0


@dataclass
class ShipmentPush:
    marketplace: MarketplaceConfig
    mirakl: MiraklClient
    ledger: Ledger
    carriers: CarrierMap
    sh21: Sequence[CarrierLike]
    warehouse_path: str | Path
    log: logging.Logger
    now: Callable[[], datetime] = _utcnow
    report: PushReport = field(default_factory=PushReport)
    _days: dict = field(default_factory=dict, init=False, repr=False)

    def take_inbox(self) -> None:
        """Move this marketplace's fulfilment deliveries from the inbox into the ledger's pushes."""
        entries = self.ledger.unprocessed(topics=FULFILMENT_TOPICS)
        mine, foreign = [], []
        for entry in entries:
            link = self.ledger.order_link_by_shopify_id(str(entry.payload.get("order_id")))
            if link is None:
                foreign.append(entry.id)
            elif link.marketplace == self.marketplace.code:
                self.record(link.mirakl_order_id, fulfilment_from_webhook(entry.payload))
                mine.append(entry.id)
        self.report.not_ours += len(foreign)
        self.ledger.mark_processed(foreign, outcome="not imported by this project", now=self.now())
        self.ledger.mark_processed(mine, outcome=f"queued for {self.marketplace.code}", now=self.now())

    def record(self, mirakl_order_id: str, fulfilment: Fulfilment) -> FulfilmentPush:
        self.report.fulfilments_received += 1
        return self.ledger.upsert_fulfilment(
            self.marketplace.code, mirakl_order_id, fulfilment.fulfilment_id,
            shopify_order_id=fulfilment.order_id or "", created_at=fulfilment.created_at,
            updated_at=fulfilment.updated_at, tracking_company=fulfilment.tracking_company,
            tracking_number=fulfilment.tracking_number, tracking_url=fulfilment.tracking_url,
            line_quantities=dict(fulfilment.lines), status=fulfilment.status, now=self.now(),
        )

    def push(self) -> PushReport:
        """Send what the ledger says is still to do, order by order."""
        by_order: dict[str, list[FulfilmentPush]] = defaultdict(list)
        for push in self.ledger.pushes_to_do(self.marketplace.code):
            by_order[push.mirakl_order_id].append(push)
        for order_id in by_order:
            self._push_order(order_id, self.ledger.get_pushes(self.marketplace.code, order_id))
        return self.report

    def _push_order(self, order_id: str, pushes: list[FulfilmentPush]) -> None:
        code = self.marketplace.code
        order = self._mirakl_order(order_id)
        if order is None:
            self.report.waiting["order not fetched yet"] += 1
            return
        fulfilments = [_as_fulfilment(p) for p in pushes]
        decision = decide_shipment(order, fulfilled_quantities(fulfilments), partial_shipments=self.marketplace.fulfilments.partial_shipments)
        if decision.action in ("wait", "skip"):
            self.report.waiting[decision.reason or decision.action] += 1
            for p in pushes:
                self.ledger.record_step(code, order_id, p.shopify_fulfillment_id, "OR24", "waiting", now=self.now(),
                                        error=decision.reason)
            return
        latest = latest_tracking(fulfilments)
        target = next(p for p in pushes if p.shopify_fulfillment_id == latest.fulfilment_id)
        choice = self.carriers.resolve(latest.tracking_company, latest.tracking_url, code, self.sh21,
                                       self.marketplace.fulfilments.accepts_unregistered_carriers)
        if not choice.shippable:
            self.report.carrier_exceptions += 1
            self.ledger.record_step(code, order_id, target.shopify_fulfillment_id, "OR23", "waiting", now=self.now(),
                                    error=choice.reason)
            self.ledger.raise_exception(code, CARRIER_EXCEPTION, order_id, choice.reason,
                                        {"carrier": latest.tracking_company, "yaml_line": choice.yaml_line}, now=self.now())
            return
        try:
            if target.or23.state not in ("done", "already"):
                payload = tracking_payload(choice, latest.tracking_number)
                self.mirakl.update_tracking(order_id, **payload)
                self.ledger.record_step(code, order_id, target.shopify_fulfillment_id, "OR23", "done", now=self.now(),
                                        carrier_code=payload.get("carrier_code"), carrier_name=payload.get("carrier_name"),
                                        carrier_url=payload.get("carrier_url"))
                self.report.tracking_sent += 1
            shipped = self.mirakl.ship_order(order_id)
        except (MiraklError, ValueError) as e:
            self.report.failed += 1
            self.ledger.record_step(code, order_id, target.shopify_fulfillment_id, "OR24", "failed", now=self.now(), error=str(e))
            self.ledger.raise_exception(code, SHIPMENT_EXCEPTION, order_id, f"shipping order {order_id} failed: {e}", {},
                                        now=self.now())
            return
        state = "done" if shipped else "already"
        self.report.shipped += shipped
        self.report.already_shipped += not shipped
        for p in pushes:
            self.ledger.record_step(code, order_id, p.shopify_fulfillment_id, "OR24", state, now=self.now())
        self.ledger.resolve_exceptions(code, order_id, [CARRIER_EXCEPTION, SHIPMENT_EXCEPTION], now=self.now())

    def _mirakl_order(self, order_id: str) -> MiraklOrder | None:
        link = self.ledger.get_order_links(self.marketplace.code, [order_id]).get(order_id)
        if link is None or link.mirakl_updated_at is None:
            return None
        table, rows = self._day(link.mirakl_updated_at.astimezone(timezone.utc).date())
        return raw_dataset.parse(table, [rows[order_id]])[0] if order_id in rows else None

    def _day(self, day: date) -> tuple[pa.Table, dict[str, int]]:
        """The day's raw orders and the row of each, read once per push however many of its orders ship."""
        if day not in self._days:
            table = read_partition(self.warehouse_path, raw_dataset.DATASET, self.marketplace.code, day, raw_dataset.SCHEMA)
            self._days[day] = table, {k.order_id: k.index for k in raw_dataset.keys(table)}
        return self._days[day]


def _as_fulfilment(push: FulfilmentPush) -> Fulfilment:
    return Fulfilment(
        fulfilment_id=push.shopify_fulfillment_id, created_at=push.fulfilment_created_at, lines=push.line_quantities,
        tracking_company=push.tracking_company, tracking_number=push.tracking_number, tracking_url=push.tracking_url,
        status=push.shopify_status or "SUCCESS", order_id=push.shopify_order_id, updated_at=push.fulfilment_updated_at,
    )
