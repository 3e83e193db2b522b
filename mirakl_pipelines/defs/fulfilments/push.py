"""One marketplace's shipment push: Shopify fulfilments (webhook inbox, sweep) → OR23 tracking → OR24 ship
→ OR74 invoice (when the marketplace wants it); or, where the marketplace has Mirakl's multiple shipments,
one Mirakl shipment per parcel (ST01, created shipped, with its lines and tracking) → OR74.

Every step is recorded in the ledger before the next one starts, so a crash between OR23 and OR24
resumes at OR24 and nothing is sent twice. OR23 is marked ``sending`` before the call: a process that
died right after it reads the order back once (OR11 by id) instead of sending the tracking again. OR24
on a SHIPPED order and OR74 of an already uploaded file are recognised as done. The Mirakl order a
fulfilment belongs to is read from the day's raw parquet (the partition of its last update), never
from OR11: OR11 may be called once a minute at most, and the push must take seconds.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Sequence

from mirakl_pipelines.config import PROJECT_ROOT, MarketplaceConfig
from mirakl_pipelines.defs.crash_points import crash_point
from mirakl_pipelines.defs.fulfilments.invoices import InvoiceNotReady, InvoiceUnavailable, fetch_invoice
from mirakl_pipelines.defs.orders.assets import FLOW as ORDERS_FLOW
from mirakl_pipelines.defs.orders import raw_dataset
from mirakl_pipelines.ledger import FulfilmentPush, Ledger
from mirakl_pipelines.ledger.records import STEP_STATES_SETTLED, STEP_STATES_TO_DO
from mirakl_pipelines.mirakl.client import MAX_IDS_PER_CALL, MiraklClient
from mirakl_pipelines.mirakl.errors import (
    CallBudgetExceeded, MiraklDocumentRejected, MiraklError, MiraklInvalidState, MiraklOutcomeUnknown, MiraklRetryLater,
    MiraklServerError,
)
from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.mirakl.shipments import NewShipment, ShipmentTracking
from mirakl_pipelines.shopify.models import Fulfilment
from mirakl_pipelines.sync.carriers import CarrierLike, CarrierMap
from mirakl_pipelines.sync.shipments import (
    DEAD_ORDER_STATES,
    SHIPPED_STATES,
    decide_shipment,
    fulfilled_quantities,
    fulfilment_from_webhook,
    latest_tracking,
    parcel_lines,
    state_decision,
    tracking_differs,
    tracking_payload,
)
from mirakl_pipelines.sync.order_lines import live_order_lines, live_quantity
from mirakl_pipelines.webhooks.topics import FULFILMENT_TOPICS

CARRIER_EXCEPTION = "unknown_carrier"
SHIPMENT_EXCEPTION = "shipment_failed"
INVOICE_EXCEPTION = "invoice_failed"
INVOICE_MISSING = "invoice_missing"
READ_BACK_WAIT_SECONDS = 5.0
# A step left `sending` this long is taken over: the run sending it died (a live call, retries included, is done by then).
SENDING_TIMEOUT = timedelta(minutes=3)


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
    invoices_uploaded: int = 0
    invoices_waiting: int = 0  # the invoice does not exist yet at its source
    invoice_failures: int = 0


@dataclass(frozen=True)
class LateFulfilment:
    push: FulfilmentPush
    mirakl_state: str  # as read back from Mirakl, or "unverified" when the read-back could not cover it


@dataclass(frozen=True)
class Unacknowledged:
    late: list[LateFulfilment]
    by_refresh: int  # orders whose state the orders refresh read after our last attempt
    read_back: int  # orders read back from Mirakl by this check (OR11 by id)
    unverified: int  # orders left on the ledger's word (OR11 slot busy)
    note: str | None = None


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
    sending_timeout: timedelta = SENDING_TIMEOUT
    invoice_headers: dict[str, str] = field(default_factory=dict, repr=False)  # may hold a secret
    report: PushReport = field(default_factory=PushReport)
    _snapshots: raw_dataset.SnapshotReader | None = field(default=None, init=False, repr=False)

    def take_inbox(self) -> None:
        """Move this marketplace's fulfilment deliveries from the inbox into the ledger's pushes."""
        entries = self.ledger.unprocessed(topics=FULFILMENT_TOPICS)
        mine, foreign = [], []
        for entry in entries:
            link = self.ledger.order_link_by_shopify_id(str(entry.payload.get("order_id")))
            if link is None:
                foreign.append(entry.id)
            elif link.marketplace == self.marketplace.code:
                self.record(link.mirakl_order_id, fulfilment_from_webhook(entry.payload),
                            seen_at=entry.triggered_at or entry.received_at)
                mine.append(entry.id)
        self.report.not_ours += len(foreign)
        self.ledger.mark_processed(foreign, outcome="not imported by this project", now=self.now())
        self.ledger.mark_processed(mine, outcome=f"queued for {self.marketplace.code}", now=self.now())

    def record(self, mirakl_order_id: str, fulfilment: Fulfilment, seen_at: datetime | None = None) -> FulfilmentPush:
        """Store one version of a fulfilment; `seen_at` is when Shopify showed it (see upsert_fulfilment)."""
        self.report.fulfilments_received += 1
        return self.ledger.upsert_fulfilment(
            self.marketplace.code, mirakl_order_id, fulfilment.fulfilment_id,
            shopify_order_id=fulfilment.order_id or "", created_at=fulfilment.created_at,
            updated_at=fulfilment.updated_at, tracking_company=fulfilment.tracking_company,
            tracking_number=fulfilment.tracking_number, tracking_url=fulfilment.tracking_url,
            line_quantities=dict(fulfilment.lines), status=fulfilment.status,
            invoice=self.marketplace.fulfilments.invoice.enabled, seen_at=seen_at,
            tracking_numbers=fulfilment.tracking_numbers, now=self.now(),
        )

    def push(self) -> PushReport:
        """Send what the ledger says is still to do: every order's shipping first, then the invoices of those shipped
        (an invoice fetch and upload takes longer than OR23 + OR24: the run's later orders never wait behind it)."""
        shipped = []
        for order_id in dict.fromkeys(p.mirakl_order_id for p in self.ledger.pushes_to_do(self.marketplace.code)):
            pushes = self.ledger.get_pushes(self.marketplace.code, order_id)
            if self.marketplace.fulfilments.multiple_shipments:
                if not self._ship_parcels(order_id, pushes):
                    continue
            elif any(p.shipped for p in pushes):
                self._later_parcels(order_id, pushes)
            elif not self._ship(order_id, pushes):
                continue
            shipped.append(order_id)
        if self.marketplace.fulfilments.invoice.enabled:
            for order_id in shipped:
                self._upload_invoice(order_id, self.ledger.get_pushes(self.marketplace.code, order_id))
        return self.report

    def _ship(self, order_id: str, pushes: list[FulfilmentPush]) -> bool:
        """OR23 with the latest tracking, then OR24; True once Mirakl has the order SHIPPED."""
        code = self.marketplace.code
        order = self._mirakl_order(order_id)
        if order is None:
            self.report.waiting["order not fetched yet"] += 1
            return False
        fulfilments = [_as_fulfilment(p) for p in pushes]
        decision = decide_shipment(order, fulfilled_quantities(fulfilments), partial_shipments=self.marketplace.fulfilments.partial_shipments)
        if decision.action == "done":  # shipped in Mirakl's back office, or by an earlier run whose record was lost
            self._settle(order_id, "already", decision.reason)
            self.report.already_shipped += 1
            return True
        if decision.action in ("wait", "skip", "track"):
            self.report.waiting[decision.reason or decision.action] += 1
            state = "skipped" if decision.action == "skip" else "waiting"
            for p in pushes:
                self._note(p, "OR24", state, decision.reason)
            if decision.action == "track":
                self._track_early(order_id, fulfilments, pushes)
            return False
        latest = latest_tracking(fulfilments)
        step = "OR23"
        try:
            if latest is not None and not self._send_tracking(order_id, latest, pushes):
                return False
            step = "OR24"
            if not self._claim(pushes[0], "OR24"):
                return False
            shipped = self._ship_order(order_id)
        except CallBudgetExceeded as e:  # Mirakl asked to wait longer than a push does (Retry-After): nothing applied
            rows = [p.shopify_fulfillment_id for p in pushes] if step == "OR24" else [latest.fulfilment_id]
            self._leave_for_next_run(order_id, rows, step, e)
            return False
        except (MiraklError, ValueError) as e:
            self.report.failed += 1
            rows = [p.shopify_fulfillment_id for p in pushes] if step == "OR24" else [latest.fulfilment_id]
            for row in rows:
                self.ledger.record_step(code, order_id, row, step, "failed", now=self.now(), error=str(e))
            self.ledger.raise_exception(code, SHIPMENT_EXCEPTION, order_id, f"shipping order {order_id} failed at {step}: {e}",
                                        {}, now=self.now())
            return False
        self.report.shipped += shipped
        self.report.already_shipped += not shipped
        note = ("the Shopify fulfilments carry no tracking: shipped without OR23" if latest is None else
                f"Mirakl holds one tracking per order: {latest.fulfilment_id}'s was sent")
        self._settle(order_id, "done" if shipped else "already", note)
        self.ledger.resolve_exceptions(code, order_id, [CARRIER_EXCEPTION, SHIPMENT_EXCEPTION], now=self.now())
        return True

    def _track_early(self, order_id: str, fulfilments: list[Fulfilment], pushes: list[FulfilmentPush]) -> None:
        """Partial shipments without Mirakl's multiple shipments: the latest parcel's tracking goes out now (OR23),
        the earlier parcels' are superseded (Mirakl holds one tracking per order); OR24 waits for every unit."""
        latest = latest_tracking(fulfilments)
        if latest is None:
            return
        for p in pushes:
            if p.shopify_fulfillment_id != latest.fulfilment_id and p.or23.state not in STEP_STATES_SETTLED:
                self._note(p, "OR23", "skipped",
                           f"superseded by the later parcel {latest.fulfilment_id}: Mirakl holds one tracking per order")
        try:
            self._send_tracking(order_id, latest, pushes)
        except CallBudgetExceeded as e:
            self._leave_for_next_run(order_id, [latest.fulfilment_id], "OR23", e)
        except (MiraklError, ValueError) as e:
            self.report.failed += 1
            self.ledger.record_step(self.marketplace.code, order_id, latest.fulfilment_id, "OR23", "failed",
                                    now=self.now(), error=str(e))

    def _ship_parcels(self, order_id: str, pushes: list[FulfilmentPush]) -> bool:
        """Multiple shipments: each parcel not yet in Mirakl becomes a shipment (ST01, shipped, with its lines and
        tracking, the fulfilment id as package reference); True once every live unit is in a shipped parcel.

        ST01 is not idempotent: the parcel is claimed (OR24 `sending`) before the call, and a parcel found
        `sending` (its run died, or the answer was lost) is looked up in Mirakl (ST11 by package reference)
        before anything is sent again.
        """
        code = self.marketplace.code
        order = self._mirakl_order(order_id)
        if order is None:
            self.report.waiting["order not fetched yet"] += 1
            return False
        settled = state_decision(order)
        if settled is not None and settled.action == "done":
            self._settle(order_id, "already", settled.reason)
            self.report.already_shipped += 1
            return True
        if settled is not None:
            self.report.waiting[settled.reason] += 1
            for p in pushes:
                self._note(p, "OR24", "skipped" if settled.action == "skip" else "waiting", settled.reason)
            return False
        shipped: dict[str, int] = {}
        for p in pushes:
            if p.shipped:
                for line_id, units in p.line_quantities.items():
                    shipped[line_id] = shipped.get(line_id, 0) + units
        for p in pushes:
            if p.shipped or (p.shopify_status or "SUCCESS").upper() in ("CANCELLED", "ERROR", "FAILURE"):
                continue
            lines = parcel_lines(order, p.line_quantities, shipped)
            if not lines:
                self._note(p, "OR24", "skipped", "nothing left to ship in this parcel (its units are cancelled or "
                                                 "already in another shipment)")
                self._note(p, "OR23", "skipped", "no shipment for this parcel")
                continue
            if self._ship_parcel(order_id, p, lines):
                for line_id, units in lines.items():
                    shipped[line_id] = shipped.get(line_id, 0) + units
        complete = all(shipped.get(line.order_line_id, 0) >= live_quantity(line) for line in live_order_lines(order))
        if complete:
            self.ledger.resolve_exceptions(code, order_id, [CARRIER_EXCEPTION, SHIPMENT_EXCEPTION], now=self.now())
        return complete

    def _ship_parcel(self, order_id: str, push: FulfilmentPush, lines: dict[str, int]) -> bool:
        """One parcel as one Mirakl shipment; True once Mirakl has it shipped."""
        code, fid = self.marketplace.code, push.shopify_fulfillment_id
        tracking = None
        if push.tracking_number or push.tracking_company:
            choice = self.carriers.resolve(push.tracking_company, push.tracking_url, code, self.sh21,
                                           self.marketplace.fulfilments.accepts_unregistered_carriers)
            if not choice.shippable:
                self.report.carrier_exceptions += 1
                self._note(push, "OR24", "waiting", choice.reason)
                self.ledger.raise_exception(code, CARRIER_EXCEPTION, order_id, choice.reason,
                                            {"carrier": push.tracking_company, "yaml_line": choice.yaml_line}, now=self.now())
                return False
            try:
                tracking = ShipmentTracking.from_order_tracking(tracking_payload(choice, push.tracking_number))
            except ValueError as e:
                return self._parcel_failed(order_id, push, str(e))
        if not self._claim(push, "OR24"):
            return False
        try:
            found = self.mirakl.find_shipment(order_id, fid) if push.or24.state == "sending" else None
            if found is None:
                new = NewShipment(order_id=order_id, lines=lines, tracking=tracking, shipped=True, package_reference=fid)
                [outcome] = self.mirakl.create_shipments([new]).outcomes
                if outcome.error:
                    return self._parcel_failed(order_id, push, f"Mirakl refused the shipment: {outcome.error}")
                if outcome.shipment is None:  # answered without it: left `sending`, looked up next run
                    return False
                found = outcome.shipment
        except MiraklOutcomeUnknown as e:
            self.log.warning("ST01 for order %s parcel %s: %s; looked up in Mirakl next run", order_id, fid, e)
            return False
        except CallBudgetExceeded as e:
            # Nothing applied; a parcel whose earlier ST01 went unanswered stays `sending`, so it is looked up first.
            self._leave_for_next_run(order_id, [fid], "OR24", e, state="sending" if push.or24.state == "sending" else "pending")
            return False
        except MiraklError as e:
            return self._parcel_failed(order_id, push, str(e))
        crash_point("after_st01")
        others = [n for n in push.tracking_numbers or [] if n != push.tracking_number]
        note = (f"sent with shipment {found.id} (ST01)" + (
            f"; Mirakl holds one tracking per shipment: {', '.join(others)} stay in Shopify" if others else ""))
        sent = tracking.to_payload() if tracking else {}
        carrier = {"carrier_code": sent.get("carrier_code"), "carrier_name": sent.get("carrier_name"),
                   "carrier_url": sent.get("tracking_url")}
        self.ledger.record_step(code, order_id, fid, "OR23", "done" if tracking else "skipped", now=self.now(),
                                error=note if tracking else "the parcel carries no tracking", **carrier)
        self.ledger.record_step(code, order_id, fid, "OR24", "done", now=self.now(), shipment_id=found.id)
        self.report.tracking_sent += tracking is not None
        self.report.shipped += 1
        return True

    def _parcel_failed(self, order_id: str, push: FulfilmentPush, reason: str) -> bool:
        self.report.failed += 1
        self.ledger.record_step(self.marketplace.code, order_id, push.shopify_fulfillment_id, "OR24", "failed",
                                now=self.now(), error=reason)
        self.ledger.raise_exception(self.marketplace.code, SHIPMENT_EXCEPTION, order_id,
                                    f"shipping parcel {push.shopify_fulfillment_id} of order {order_id} failed: {reason}",
                                    {}, now=self.now())
        return False

    def _send_tracking(self, order_id: str, latest: Fulfilment, pushes: list[FulfilmentPush]) -> bool:
        """OR23 for the latest fulfilment unless Mirakl has it already; False when its carrier is unknown."""
        code = self.marketplace.code
        target = next(p for p in pushes if p.shopify_fulfillment_id == latest.fulfilment_id)
        if target.or23.state in STEP_STATES_SETTLED:
            return True
        choice = self.carriers.resolve(latest.tracking_company, latest.tracking_url, code, self.sh21,
                                       self.marketplace.fulfilments.accepts_unregistered_carriers)
        if not choice.shippable:
            self.report.carrier_exceptions += 1
            self.ledger.record_step(code, order_id, target.shopify_fulfillment_id, "OR23", "waiting", now=self.now(),
                                    error=choice.reason)
            self.ledger.raise_exception(code, CARRIER_EXCEPTION, order_id, choice.reason,
                                        {"carrier": latest.tracking_company, "yaml_line": choice.yaml_line}, now=self.now())
            return False
        payload = tracking_payload(choice, latest.tracking_number)
        carrier = {name: payload.get(name) for name in ("carrier_code", "carrier_name", "carrier_url")}
        if not self._claim(target, "OR23", **carrier):
            return False
        if target.or23.state == "sending" and not self._tracking_missing(order_id, payload):
            # The run that sent OR23 last died before recording it, and Mirakl shows that tracking: not twice.
            self.ledger.record_step(code, order_id, target.shopify_fulfillment_id, "OR23", "already", now=self.now(), **carrier)
            return True
        try:
            self.mirakl.update_tracking(order_id, **payload)
        except (MiraklInvalidState, MiraklServerError) as e:
            # No usable answer (or a wrong state after one): the tracking may be in Mirakl all the same.
            current = self._read_back(order_id)
            if current is None or tracking_differs(current, payload):
                raise
            self.log.warning("OR23 for order %s: %s; Mirakl shows the tracking: recorded as sent", order_id, e)
        crash_point("after_or23")
        self.ledger.record_step(code, order_id, target.shopify_fulfillment_id, "OR23", "done", now=self.now(), **carrier)
        self.report.tracking_sent += 1
        crash_point("before_or24")
        return True

    def _ship_order(self, order_id: str) -> bool:
        """OR24; True when shipped by this call. A wrong state naming no shipped status, or no usable answer, is
        settled by reading the order back: SHIPPED there means the call went through (its answer was lost)."""
        try:
            return self.mirakl.ship_order(order_id)
        except (MiraklInvalidState, MiraklServerError) as e:
            current = self._read_back(order_id)
            settled = state_decision(current) if current is not None else None
            if settled is None or settled.action != "done":
                raise
            self.log.warning("OR24 for order %s: %s; %s: recorded as shipped", order_id, e, settled.reason)
            return isinstance(e, MiraklServerError) or e.after_unanswered_attempt

    def _read_back(self, order_id: str) -> MiraklOrder | None:
        """The order as Mirakl shows it now (OR11 by id) after a call without a usable answer; None when OR11's slot
        is not free within READ_BACK_WAIT_SECONDS (the push must take seconds) or the read fails."""
        try:
            with self.mirakl.waiting_at_most(READ_BACK_WAIT_SECONDS):
                found = self.mirakl.list_orders(order_ids=[order_id])
        except MiraklError as e:
            self.log.warning("order %s could not be read back: %s", order_id, e)
            return None
        return next((o for o in found if o.order_id == order_id), None)

    def _leave_for_next_run(self, order_id: str, rows: list[str], step: str, error: CallBudgetExceeded,
                            state: str = "pending") -> None:
        """A call put off (a Retry-After longer than a push waits, or a budget slot too far): the step stays to do,
        not failed."""
        why = "Mirakl asked to wait (Retry-After)" if isinstance(error, MiraklRetryLater) else "call budget: slot too far"
        self.report.waiting[f"{step}: {why}"] += 1
        self.log.warning("%s for order %s left for the next run: %s", step, order_id, error.message)
        for row in rows:
            self.ledger.record_step(self.marketplace.code, order_id, row, step, state, now=self.now(), error=error.message)

    def _note(self, seen: FulfilmentPush, step: str, state: str, error: str | None) -> None:
        """Record a step's outcome, unless the ledger holds that very outcome already (a waiting order is looked at
        on every run: its row is written when something changed, not every few seconds)."""
        outcome = seen.step(step)
        if (outcome.state, outcome.error) != (state, error):
            self.ledger.record_step(seen.marketplace, seen.mirakl_order_id, seen.shopify_fulfillment_id, step, state,
                                    now=self.now(), error=error)

    def _claim(self, seen: FulfilmentPush, step: str, **carrier: str | None) -> bool:
        """Mark the step sending before the call; False when another run is sending it (or has just sent it)."""
        if self.ledger.claim_step(seen, step, now=self.now(), stale_after=self.sending_timeout, **carrier):
            return True
        self.report.waiting[f"{step} being sent by another run"] += 1
        return False

    def _tracking_missing(self, order_id: str, payload: dict[str, str]) -> bool:
        """Read the order back (OR11 by id, only after an interrupted OR23) to see whether the tracking went through."""
        orders = self.mirakl.list_orders(order_ids=[order_id])
        return not orders or tracking_differs(orders[0], payload)

    def _later_parcels(self, order_id: str, pushes: list[FulfilmentPush]) -> None:
        """Fulfilments arriving after the order shipped: Mirakl takes OR23 only in SHIPPING and holds one tracking."""
        shipped_with = next(p.shopify_fulfillment_id for p in pushes if p.shipped)
        self._settle(order_id, "already",
                     f"order {order_id} was already SHIPPED in Mirakl (with {shipped_with}); Mirakl holds one tracking "
                     "per order, so this parcel's tracking stays in Shopify")

    def _settle(self, order_id: str, or24_state: str, or23_note: str | None) -> None:
        """Mark every fulfilment of a shipped order, as the ledger has them now: OR24 settled, an OR23 still to do
        skipped (with why)."""
        for p in self.ledger.get_pushes(self.marketplace.code, order_id):
            if p.or23.state not in STEP_STATES_SETTLED:
                self.ledger.record_step(self.marketplace.code, order_id, p.shopify_fulfillment_id, "OR23", "skipped",
                                        now=self.now(), error=or23_note)
            if p.or24.state not in STEP_STATES_SETTLED:
                self.ledger.record_step(self.marketplace.code, order_id, p.shopify_fulfillment_id, "OR24", or24_state,
                                        now=self.now())

    def _upload_invoice(self, order_id: str, pushes: list[FulfilmentPush]) -> None:
        """OR74 once per order (file name per order, so a repeat is recognised as already uploaded)."""
        code, invoice = self.marketplace.code, self.marketplace.fulfilments.invoice
        to_do = [p for p in pushes if p.or74.state in STEP_STATES_TO_DO]
        if not to_do:
            return

        def record(state: str, error: str | None = None) -> None:
            for p in to_do:
                self.ledger.record_step(code, order_id, p.shopify_fulfillment_id, "OR74", state, now=self.now(), error=error)

        if any(p.or74.state in STEP_STATES_SETTLED for p in pushes):
            return record("already")
        link = self.ledger.get_order_links(code, [order_id])[order_id]
        try:
            document = fetch_invoice(invoice, PROJECT_ROOT, order_name=link.shopify_order_name or "",
                                     mirakl_order_id=order_id, shopify_order_id=link.shopify_legacy_id or "",
                                     headers=self.invoice_headers)
        except InvoiceNotReady as e:
            self.report.invoices_waiting += 1
            for p in to_do:
                self._note(p, "OR74", "waiting", str(e))
            shipped_at = max((p.or24.at for p in pushes if p.shipped and p.or24.at), default=None)
            if shipped_at and self.now() - shipped_at >= timedelta(hours=invoice.missing_after_hours):
                self.ledger.raise_exception(
                    code, INVOICE_MISSING, order_id,
                    f"no invoice for order {order_id} {invoice.missing_after_hours} h after it shipped: {e}", {},
                    now=self.now())
            return None
        except InvoiceUnavailable as e:
            return self._invoice_failed(order_id, record, str(e))
        if not self._claim(to_do[0], "OR74"):
            return None
        try:
            self.mirakl.upload_invoice(order_id, file_name=document.file_name, content=document.content,
                                       type_code=invoice.type_code)
        except MiraklDocumentRejected as e:
            if not e.already_uploaded:
                return self._invoice_failed(order_id, record, f"{e} (sent {document.file_name} as type {invoice.type_code})")
            record("already")
        except CallBudgetExceeded as e:  # OR74's budget, or a long Retry-After: nothing applied, next run
            self.log.warning("OR74 for order %s left for the next run: %s", order_id, e.message)
            return record("pending", e.message)
        except (MiraklError, ValueError) as e:
            return self._invoice_failed(order_id, record, str(e))
        else:
            record("done")
            self.report.invoices_uploaded += 1
        self.ledger.resolve_exceptions(code, order_id, [INVOICE_EXCEPTION, INVOICE_MISSING], now=self.now())

    def _invoice_failed(self, order_id: str, record: Callable[..., None], reason: str) -> None:
        self.report.invoice_failures += 1
        record("failed", reason)
        self.ledger.raise_exception(self.marketplace.code, INVOICE_EXCEPTION, order_id,
                                    f"invoice upload (OR74) for order {order_id} failed: {reason}", {}, now=self.now())

    def unacknowledged(self, older_than: datetime, read_back_wait: float = READ_BACK_WAIT_SECONDS) -> "Unacknowledged":
        """Fulfilments older than `older_than` whose Mirakl order is not SHIPPED, verified against Mirakl.

        Candidates are the ledger's unshipped fulfilments. An order is verified by the orders refresh when its
        last OR11 window ended after our last attempt on it (the refresh records every order's state in its link,
        at no extra call); the others are read back with OR11 by id (≤ 100 per call, and only while OR11's
        once-a-minute slot is free within `read_back_wait`, so a check never holds a run for a minute). An order
        Mirakl shows shipped, or dead, is settled in the ledger and is not late; one neither way could verify stays
        late on the ledger's word and is counted as unverified.
        """
        code = self.marketplace.code
        candidates = self.ledger.unshipped(code, older_than=older_than)
        last_attempt: dict[str, datetime] = {}
        for p in candidates:
            moment = max(m for m in (p.or23.at, p.or24.at, p.fulfilment_created_at, p.created_at) if m is not None)
            last_attempt[p.mirakl_order_id] = max(moment, last_attempt.get(p.mirakl_order_id, moment))
        observed_until = self.ledger.get_watermark(ORDERS_FLOW, code, self.now().astimezone(timezone.utc).date())
        links = self.ledger.get_order_links(code, list(last_attempt))
        states: dict[str, str | None] = {
            order_id: links[order_id].mirakl_state for order_id, attempt in last_attempt.items()
            if observed_until is not None and observed_until > attempt and order_id in links
        }
        by_refresh = len(states)
        to_read = [order_id for order_id in last_attempt if order_id not in states]
        note = None
        try:
            with self.mirakl.waiting_at_most(read_back_wait):
                for start in range(0, len(to_read), MAX_IDS_PER_CALL):
                    batch = to_read[start:start + MAX_IDS_PER_CALL]
                    found = {o.order_id: o.order_state for o in self.mirakl.list_orders(order_ids=batch)}
                    states.update({order_id: found.get(order_id) for order_id in batch})
        except MiraklError as e:
            note = f"read back {len(states) - by_refresh} of {len(to_read)} orders; the rest on the ledger's word ({e})"
        late = []
        for push in candidates:
            state = states.get(push.mirakl_order_id, "unverified")
            if state in SHIPPED_STATES or state in DEAD_ORDER_STATES:
                outcome = "already" if state in SHIPPED_STATES else "skipped"
                self.ledger.record_step(code, push.mirakl_order_id, push.shopify_fulfillment_id, "OR24", outcome,
                                        now=self.now(), error=f"read back from Mirakl: order is {state}")
            else:
                late.append(LateFulfilment(push, state or "not found in Mirakl"))
        return Unacknowledged(late, by_refresh=by_refresh, read_back=len(states) - by_refresh,
                              unverified=len(last_attempt) - len(states), note=note)

    def _mirakl_order(self, order_id: str) -> MiraklOrder | None:
        """The latest snapshot the ledger saw, from the raw parquet (each day's file read once per push)."""
        link = self.ledger.get_order_links(self.marketplace.code, [order_id]).get(order_id)
        if link is None or link.mirakl_updated_at is None:
            return None
        if self._snapshots is None:
            self._snapshots = raw_dataset.SnapshotReader(self.warehouse_path, self.marketplace.code)
        return self._snapshots.get(order_id, link.snapshot_day, link.mirakl_updated_at.astimezone(timezone.utc).date())


def _as_fulfilment(push: FulfilmentPush) -> Fulfilment:
    return Fulfilment(
        fulfilment_id=push.shopify_fulfillment_id, created_at=push.fulfilment_created_at, lines=push.line_quantities,
        tracking_company=push.tracking_company, tracking_number=push.tracking_number, tracking_url=push.tracking_url,
        status=push.shopify_status or "SUCCESS", order_id=push.shopify_order_id, updated_at=push.fulfilment_updated_at,
        tracking_numbers=tuple(push.tracking_numbers or ()),
    )

