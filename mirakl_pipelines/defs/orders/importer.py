"""One marketplace's order batch: decide acceptances in Mirakl, create the Shopify orders, keep them in step,
remember everything.

The business rules are in `sync/`; this module sequences the API calls and the ledger writes so
that a crash at any point is repaired by the next run:
- a Shopify order is created at most once per Mirakl order: the ledger is checked first, then
  Shopify itself by the order's unique reference metafield (`orderByIdentifier`), and only then is
  `orderCreate` called;
- acceptance promises no stock twice: units of orders accepted earlier but not yet in Shopify (any
  marketplace of the store) are reserved from the ledger;
- an imported order follows what Mirakl says next (the ledger's follow-ups): the debit arrives →
  `orderMarkAsPaid`; units cancelled → their fulfilment is put on hold at once and an operator is
  told; the address Mirakl hid until acceptance shows → the order is completed and its hold released;
- an order that cannot be imported or accepted goes to the exception queue with a reason an
  operator can act on, and never stops the rest of the batch.
"""

import hashlib
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional

from mirakl_pipelines.config import MarketplaceConfig, ShopifyStoreConfig
from mirakl_pipelines.defs.alerts import Alerts
from mirakl_pipelines.defs.crash_points import crash_point
from mirakl_pipelines.defs.orders import raw_dataset
from mirakl_pipelines.defs.streaming import PartitionSnapshot
from mirakl_pipelines.ledger import Ledger, OrderLineRecord, OrderLink
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.mirakl.errors import (
    CallBudgetExceeded,
    MiraklError,
    MiraklInvalidState,
    MiraklRateLimited,
    MiraklServerError,
)
from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.shopify.client import ShopifyClient
from mirakl_pipelines.shopify.errors import ShopifyError, ShopifyUserError
from mirakl_pipelines.shopify.models import ShopifyOrderRef, Variant
from mirakl_pipelines.sync.acceptance import accept_all, acceptance_deadline, decide_acceptance
from mirakl_pipelines.sync.acceptance_outcome import DecisionOutcome, outcome_from_order, outcome_from_status
from mirakl_pipelines.sync.eligibility import address_follows, is_complete_address, skip_reason
from mirakl_pipelines.sync.holds import ADDRESS_HOLD_REASON, HOLD_REASON, HOLDABLE_STATUSES, hold_handle, plan_holds
from mirakl_pipelines.sync.order_lines import (
    CANCELLATION_AMOUNTS, LineAmountError, cancelled_quantity, is_dead, live_line, live_quantity,
)
from mirakl_pipelines.sync.order_mapping import (
    MappingError, OrderCreateRequest, addresses_update, build_order_create, source_identifier,
)
from mirakl_pipelines.sync.payments import payment_status
from mirakl_pipelines.sync.sku_map import SkuMap

WAITING_ACCEPTANCE = "WAITING_ACCEPTANCE"
# Exception kinds an import can raise; a successful import resolves them.
IMPORT_EXCEPTION_KINDS = ("unknown_sku", "missing_address", "invalid_order", "currency", "import_failed")
ACCEPTANCE_EXCEPTION_KINDS = ("acceptance_failed", "acceptance_needed")
CANCELLED_AFTER_IMPORT = "cancelled_after_import"
FOLLOW_UP_FAILED = "follow_up_failed"
ADDRESS_HOLD = hold_handle("address", "pending")
# Orders parsed and processed together by a run (observe, decide, import): what bounds its memory (a parsed
# order weighs ~60 KB as models, so 200 take ~12 MB).
CHUNK_ORDERS = 200
LEDGER_READ_BATCH = 5000  # order links read at once when sorting the day's settled orders from the others
# orderCreate calls in flight at once (see _import_all).
IMPORT_WORKERS = 3
# Worth another OR21 later in the run; any other Mirakl error is a refusal to report at once.
TRANSIENT_MIRAKL_ERRORS = (MiraklServerError, MiraklRateLimited, CallBudgetExceeded)
def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class BatchReport:
    considered: int = 0
    examined: int = 0  # parsed and checked this run; the others were settled in the ledger already
    eligible: int = 0
    imported: int = 0
    recovered: int = 0  # found already in Shopify (a previous run died before its ledger write)
    already_imported: int = 0
    failed: int = 0
    accepted: int = 0
    refused: int = 0
    left_for_operator: int = 0
    acceptance_failed: int = 0
    marked_paid: int = 0  # imported pending, marked paid once Mirakl showed the debit
    units_held: int = 0  # units cancelled in Mirakl after import, put on hold in Shopify
    addresses_completed: int = 0
    follow_ups_failed: int = 0
    skipped: Counter = field(default_factory=Counter)
    imported_orders: list[dict] = field(default_factory=list)  # preview rows

    @classmethod
    def total(cls, reports: list["BatchReport"]) -> "BatchReport":
        """The sum of several days' reports (a backfill's run)."""
        total = cls()
        for report in reports:
            for name, value in vars(report).items():
                setattr(total, name, getattr(total, name) + value)
        return total


@dataclass
class OrderBatch:
    marketplace: MarketplaceConfig
    store: ShopifyStoreConfig
    mirakl: MiraklClient
    shopify: ShopifyClient
    ledger: Ledger
    alerts: Alerts
    log: logging.Logger
    warehouse_path: str | Path | None = None  # where the raw snapshots of other days are read (follow-ups)
    store_marketplaces: tuple[str, ...] = ()  # every marketplace selling from this store (reservations)
    sku_map: Optional[SkuMap] = None  # offer SKUs whose Shopify SKU differs (the stock policy's mapping file)
    now: Callable[[], datetime] = _utcnow
    chunk_size: int = CHUNK_ORDERS  # orders parsed and processed at once (memory is bounded by a chunk)
    report: BatchReport = field(default_factory=BatchReport)
    _follow_up_ids: set[str] = field(default_factory=set, init=False, repr=False)

    def run(self, day: date) -> BatchReport:
        """Process the day's raw orders (the `mirakl_orders` partition of `day`), a chunk at a time.

        The orders with something to do are told from the partition's key columns and the ledger; only they are
        parsed, `chunk_size` at a time, and each chunk is observed, decided and imported before the next is read:
        memory is bounded by a chunk, not by the day. Follow-ups come last, once for the run.
        """
        if self.warehouse_path is None:
            raise ValueError("OrderBatch.run reads the day's partition: warehouse_path is required")
        self._follow_up_ids = {link.mirakl_order_id for link in self.ledger.follow_ups(self.marketplace.code)}
        followed: dict[str, MiraklOrder] = {}  # snapshots _follow_up may need, so it does not read them again
        with raw_dataset.open_day(self.warehouse_path, self.marketplace.code, day) as snapshot:
            todo, links = self._unsettled(snapshot)
            for orders in raw_dataset.iter_orders(snapshot, todo, self.chunk_size):
                imported_before = len(self.report.imported_orders)
                # The chunk's links leave the run's map with it: what is held stays bounded by a chunk.
                chunk_links = {o.order_id: links.pop(o.order_id) for o in orders if o.order_id in links}
                self._process_chunk(orders, chunk_links, day)
                keep = self._follow_up_ids | {r["mirakl_order_id"] for r in self.report.imported_orders[imported_before:]}
                followed.update((o.order_id, o) for o in orders if o.order_id in keep)
        self._follow_up(followed)
        return self.report

    def _process_chunk(self, orders: list[MiraklOrder], links: dict[str, OrderLink], day: date) -> None:
        reasons = self._observe(orders, links, day)
        to_decide = [o for o in orders if self._awaits_decision(links[o.order_id])]
        to_import = [o for o in orders if self._needs_import(links[o.order_id], reasons[o.order_id])]
        variants = self._variants(to_decide + to_import)
        if self.marketplace.acceptance.mode != "after_import":
            self._decide(to_decide, variants)
        self._import_all(to_import, variants)

    # -- ledger bookkeeping -------------------------------------------------------------------

    def _unsettled(self, day: PartitionSnapshot) -> tuple[list[str], dict[str, OrderLink]]:
        """The ids of the day's orders with something to do; the others are only counted.

        From the key columns and the ledger alone: the raw JSON is parsed (later, by chunks) only for orders whose
        snapshot is new to the ledger or still awaits a decision or an import, so a refresh that finds nothing
        new stays cheap however many orders the day holds. Returns the ids and the links of those orders.
        """
        todo, pending = [], {}
        # The ledger is read a batch at a time and only the links of orders with something to do are kept.
        for batch in raw_dataset.iter_keys(day, LEDGER_READ_BATCH):
            links = self.ledger.get_order_links(self.marketplace.code, [k.order_id for k in batch])
            for key in batch:
                link = links.get(key.order_id)
                if link is not None and self._settled(key, link):
                    self._count(None if link.eligible else link.skip_reason)
                    self.report.already_imported += link.import_state == "imported"
                else:
                    todo.append(key.order_id)
                    if link is not None:
                        pending[key.order_id] = link
        self.report.examined = len(todo)
        return todo, pending

    def _settled(self, key: "raw_dataset.OrderKey", link: OrderLink) -> bool:
        seen = link.mirakl_state == key.order_state and link.mirakl_updated_at == key.last_updated_date
        pending_work = (self._awaits_decision(link) or (link.eligible and link.import_state != "imported")
                        or key.order_id in self._follow_up_ids)
        return seen and not pending_work

    def _count(self, reason: str | None) -> None:
        self.report.considered += 1
        if reason is None:
            self.report.eligible += 1
        else:
            self.report.skipped[reason] += 1

    def _observe(self, orders: list[MiraklOrder], links: dict[str, OrderLink], day: date) -> dict[str, str | None]:
        """Record each order's snapshot (and its lines) in the ledger when it changed; returns its skip reason."""
        reasons = {}
        for order in orders:
            reason = reasons[order.order_id] = skip_reason(order, self.marketplace)
            self._count(reason)
            known = links.get(order.order_id)
            if (known is not None and known.mirakl_state == order.order_state
                    and known.mirakl_updated_at == order.last_updated_date and known.eligible == (reason is None)):
                continue
            links[order.order_id] = self.ledger.observe_order(
                self.marketplace.code,
                order.order_id,
                commercial_id=order.commercial_id,
                mirakl_state=order.order_state,
                created_at=order.created_date,
                updated_at=order.last_updated_date,
                acceptance_deadline=acceptance_deadline(order, self.marketplace.acceptance),
                eligible=reason is None,
                skip_reason=reason,
                now=self.now(),
                snapshot_day=day,
                mirakl_paid=payment_status(order).paid,
                mirakl_has_address=is_complete_address(order.shipping_address),
                lines=line_records(order, CANCELLATION_AMOUNTS[self.marketplace.orders.cancellation_amounts]),
            )
        return reasons

    # The ledger holds the latest state seen of each order (an older day's file may hold an older
    # snapshot): decisions follow the ledger, and only an eligible snapshot is imported.
    def _awaits_decision(self, link: OrderLink) -> bool:
        return link.mirakl_state == WAITING_ACCEPTANCE and link.acceptance_state in ("pending", "left", "failed")

    def _needs_import(self, link: OrderLink, reason: str | None) -> bool:
        if link.import_state == "imported":
            self.report.already_imported += 1
            return False
        return link.eligible and reason is None

    def _variants(self, orders: list[MiraklOrder]) -> Mapping[str, Variant]:
        """The Shopify variant of each order line's offer SKU (the SKU mapping file's exceptions applied)."""
        skus = sorted({line.sku for o in orders for line in o.order_lines if line.sku})
        if not skus:
            return {}
        shopify_sku = self.sku_map.offers if self.sku_map is not None else {}
        found = self.shopify.variants_by_sku(sorted({shopify_sku.get(s, s) for s in skus}))
        return {s: found[shopify_sku.get(s, s)] for s in skus if shopify_sku.get(s, s) in found}

    # -- acceptance ---------------------------------------------------------------------------

    def _decide(self, orders: list[MiraklOrder], variants: Mapping[str, Variant]) -> None:
        if not orders:
            return
        # Units promised to orders accepted earlier but not yet in Shopify: its `available` does not count them.
        reserved = self.ledger.reserved_units(self.store_marketplaces or (self.marketplace.code,))
        for order in orders:
            decision = decide_acceptance(order, variants, self.marketplace.acceptance, reserved)
            if decision.action == "leave":
                self.report.left_for_operator += 1
                self.ledger.record_acceptance(self.marketplace.code, order.order_id, state="left", now=self.now())
                self.ledger.raise_exception(
                    self.marketplace.code, "acceptance_needed", order.order_id,
                    f"order {order.order_id} needs an operator's decision: {decision.reason}",
                    {"lines": {line.order_line_id: line.sku for line in order.order_lines}}, now=self.now(),
                )
                continue
            self._send_decision(order, decision.lines, decision.action, decision.reason)

    # How long a read-back after an unanswered OR21 may wait for OR11's once-a-minute slot (API seconds): the
    # slot after the refresh's listing (about a minute), not a second one, so a run waits at most once.
    _REREAD_WAIT_SECONDS = 75.0

    def _send_decision(self, order: MiraklOrder, lines: dict[str, bool], action: str, reason: str | None) -> None:
        attempts = self.marketplace.acceptance.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                self.mirakl.accept_order(order.order_id, lines)
                break
            except CallBudgetExceeded as e:  # a Retry-After longer than we wait: nothing applied, pending for next run
                self.log.warning("OR21 for order %s left for the next run: %s", order.order_id, e.message)
                return
            except MiraklInvalidState as e:
                # No longer awaiting acceptance: our own earlier attempt whose answer was lost, or a decision made
                # elsewhere (back office, auto-refusal). What Mirakl shows now tells which.
                self._settle_unanswered(order, lines, action, reason, outcome_from_status(lines, e.current_status),
                                        f"OR21 for order {order.order_id}: {e}")
                return
            except TRANSIENT_MIRAKL_ERRORS as e:
                if attempt == attempts:
                    text = f"OR21 for order {order.order_id} failed after {attempts} attempts: {e}"
                    if isinstance(e, MiraklServerError):  # no usable answer: it may have applied all the same
                        self._settle_unanswered(order, lines, action, reason,
                                                DecisionOutcome("unknown", "no answer"), text)
                    else:
                        self._acceptance_failed(order, lines, text)
                    return
                self.log.warning("OR21 for %s failed (attempt %d/%d): %s", order.order_id, attempt, attempts, e)
            except MiraklError as e:  # refused by Mirakl: sending it again would not help
                self._acceptance_failed(order, lines, f"Mirakl refused the decision on order {order.order_id}: {e}")
                return
        self._decision_applied(order, lines, action, reason)

    def _decision_applied(self, order: MiraklOrder, lines: dict[str, bool], action: str, reason: str | None) -> None:
        code = self.marketplace.code
        state = {"accept": "accepted", "refuse": "refused", "partial": "partial"}[action]
        self.report.accepted += action in ("accept", "partial")
        self.report.refused += action == "refuse"
        self.ledger.record_line_decisions(code, order.order_id, lines, now=self.now())
        self.ledger.record_acceptance(code, order.order_id, state=state, now=self.now())
        self.ledger.resolve_exceptions(code, order.order_id, ACCEPTANCE_EXCEPTION_KINDS, now=self.now())
        if reason:
            self.log.info("order %s: %s (%s)", order.order_id, action, reason)

    def _settle_unanswered(self, order: MiraklOrder, lines: dict[str, bool], action: str, reason: str | None,
                           outcome: DecisionOutcome, text: str) -> None:
        """An OR21 without a usable answer: decide what happened from the order's state (reading it back when the
        error did not say enough), and record that rather than the error."""
        if outcome.kind == "unknown":
            current = self._read_back(order.order_id)
            if current is not None:
                outcome = outcome_from_order(lines, current)
        if outcome.kind == "applied":
            self.log.warning("order %s: %s; Mirakl shows the decision applied (%s)", order.order_id, text, outcome.reason)
            self._decision_applied(order, lines, action, reason)
        elif outcome.kind == "elsewhere":
            self.log.info("order %s is no longer awaiting acceptance: %s", order.order_id, outcome.reason)
            self.ledger.record_acceptance(self.marketplace.code, order.order_id, state="not_applicable", now=self.now())
        elif outcome.kind == "waiting":
            self._acceptance_failed(order, lines, f"{text}; {outcome.reason}: sent again next run")
        else:
            self._acceptance_failed(order, lines, f"{text}; whether the decision applied is unknown ({outcome.reason}): "
                                                  "check the order in the marketplace's back office")

    def _read_back(self, order_id: str) -> MiraklOrder | None:
        """The order as Mirakl shows it now (OR11 by id), or None when OR11's slot is too far or the call fails."""
        try:
            with self.mirakl.waiting_at_most(self._REREAD_WAIT_SECONDS * self.mirakl.rate_limit_scale):
                found = self.mirakl.list_orders(order_ids=[order_id])
        except MiraklError as e:
            self.log.warning("order %s could not be read back after an unanswered OR21: %s", order_id, e)
            return None
        return next((o for o in found if o.order_id == order_id), None)

    def _acceptance_failed(self, order: MiraklOrder, lines: dict[str, bool], text: str) -> None:
        self.report.acceptance_failed += 1
        self.ledger.record_acceptance(self.marketplace.code, order.order_id, state="failed", now=self.now())
        self.ledger.raise_exception(
            self.marketplace.code, "acceptance_failed", order.order_id, text, {"decision": lines}, now=self.now()
        )
        self.alerts.send(f"Acceptance failed on {self.marketplace.name}", text, logger=self.log)

    # -- import -------------------------------------------------------------------------------

    def _import_all(self, orders: list[MiraklOrder], variants: Mapping[str, Variant]) -> None:
        code = self.marketplace.code
        requests = {}
        for order in orders:
            try:
                requests[order.order_id] = build_order_create(
                    order, variants, self.marketplace, self.store,
                    allow_missing_address=address_follows(order, self.marketplace))
            except MappingError as e:
                self._import_failed(order, _exception_kind(e.kind), e.reason, {"kind": e.kind})
        if not requests:
            return
        # Look Shopify up before creating, reading each order directly by its unique reference (orderByIdentifier,
        # 25 per request; the orders(query:) search index lags writes by seconds): an order created by a run that
        # died before its ledger write is linked, never created twice.
        self.shopify.ensure_order_ref_definition()
        existing = self.shopify.orders_by_ref(source_identifier(code, oid) for oid in requests)
        by_id = {o.order_id: o for o in orders}
        for order_id in requests:
            ref = existing.get(source_identifier(code, order_id))
            if ref is not None:
                self.report.recovered += 1
                self.log.warning("order %s was already in Shopify as %s: linking it, not creating it again", order_id, ref.name)
                self._imported(by_id[order_id], ref, requests[order_id])
        # Creates overlap a little: one connection waits on the network more than on Shopify's cost
        # bucket, and the client's throttle (shared by the workers) keeps the bucket from running dry.
        # Ledger writes and the report stay on this thread.
        to_create = [oid for oid in requests if source_identifier(code, oid) not in existing]
        with ThreadPoolExecutor(IMPORT_WORKERS, thread_name_prefix="order-create") as pool:
            futures = {pool.submit(self.shopify.create_order, requests[oid].order, requests[oid].options): oid
                       for oid in to_create}
            for future in as_completed(futures):
                order = by_id[futures[future]]
                try:
                    ref = future.result()
                except ShopifyUserError as e:
                    self._import_failed(order, "import_failed", f"Shopify refused order {order.order_id}: {e}",
                                        {"user_errors": e.user_errors})
                    continue
                except ShopifyError as e:
                    self._import_failed(order, "import_failed", f"Shopify call failed for order {order.order_id}: {e}", {})
                    continue
                self._imported(order, ref, requests[order.order_id])

    def _imported(self, order: MiraklOrder, ref: ShopifyOrderRef, request: OrderCreateRequest) -> None:
        code = self.marketplace.code
        crash_point("after_shopify_create")
        if not request.with_address:
            # The warehouse must not ship before the address Mirakl still hides is in Shopify. Held before the
            # ledger write: a crash in between holds it again under the same handle (recognised as held).
            self._hold_whole(ref.id, ADDRESS_HOLD, ADDRESS_HOLD_REASON,
                             "waiting for the shipping address: the marketplace shows it once the order is accepted")
        self.ledger.record_import(
            code, order.order_id, shopify_order_id=ref.id, shopify_order_name=ref.name,
            shopify_legacy_id=ref.legacy_id, now=self.now(), payment_state="paid" if request.paid else "pending",
            address_state="complete" if request.with_address else "missing", imported_quantities=request.quantities,
        )
        self.ledger.resolve_exceptions(code, order.order_id, IMPORT_EXCEPTION_KINDS, now=self.now())
        self.report.imported += 1
        self.report.imported_orders.append(
            {"mirakl_order_id": order.order_id, "shopify_order": ref.name, "url": self.store.admin_order_url(ref.legacy_id)}
        )
        if self.marketplace.acceptance.mode == "after_import" and order.order_state == WAITING_ACCEPTANCE:
            decision = accept_all(order)
            self._send_decision(order, decision.lines, decision.action, decision.reason)

    def _import_failed(self, order: MiraklOrder, kind: str, reason: str, details: dict) -> None:
        self.report.failed += 1
        self.ledger.record_import_failure(self.marketplace.code, order.order_id, now=self.now())
        raised = self.ledger.raise_exception(self.marketplace.code, kind, order.order_id, reason, details, now=self.now())
        if raised.occurrences == 1:
            self.log.warning("order %s not imported (%s): %s", order.order_id, kind, reason)
        else:  # retried every run until fixed: said once as a warning, the queue keeps the count
            self.log.debug("order %s still not imported (%s, attempt %d since %s): %s", order.order_id, kind,
                           raised.occurrences, raised.first_seen_at, reason)

    # -- follow-ups of imported orders ------------------------------------------------------------------

    def _follow_up(self, parsed: Mapping[str, MiraklOrder]) -> None:
        """Bring into Shopify what Mirakl said since the import: cancellations first (so a hold released for the
        address never frees cancelled units), then the address, then the debit."""
        links = self.ledger.follow_ups(self.marketplace.code)
        if not links:
            return
        snapshots = raw_dataset.SnapshotReader(self.warehouse_path, self.marketplace.code) if self.warehouse_path else None
        for link in links:
            order = parsed.get(link.mirakl_order_id)
            if order is None and snapshots is not None:
                updated = link.mirakl_updated_at.astimezone(timezone.utc).date() if link.mirakl_updated_at else None
                order = snapshots.get(link.mirakl_order_id, link.snapshot_day, updated)
            if order is None or order.last_updated_date != link.mirakl_updated_at:
                continue  # the snapshot the ledger saw is in no partition read here: the next run of its day does it
            try:
                self._hold_cancelled(order, link)
                if link.address_state == "missing" and is_complete_address(order.shipping_address):
                    self._complete_address(order, link)
                if (link.payment_state == "pending" and payment_status(order).paid
                        and order.order_state not in ("CANCELED", "REFUSED")):
                    self.shopify.mark_order_paid(link.shopify_order_id)
                    self.ledger.record_payment(self.marketplace.code, order.order_id, "paid", now=self.now())
                    self.report.marked_paid += 1
            except (ShopifyError, MappingError) as e:
                self.report.follow_ups_failed += 1
                self.ledger.raise_exception(
                    self.marketplace.code, FOLLOW_UP_FAILED, order.order_id,
                    f"order {order.order_id} ({link.shopify_order_name}): bringing Mirakl's latest changes into Shopify "
                    f"failed, tried again next run: {e}", {}, now=self.now())
                continue
            self.ledger.resolve_exceptions(self.marketplace.code, order.order_id, [FOLLOW_UP_FAILED], now=self.now())

    def _hold_cancelled(self, order: MiraklOrder, link: OrderLink) -> None:
        """Units Mirakl cancelled after the import: hold them in Shopify at once, and tell an operator.

        One handle per target (the held totals it brings the lines to): a run that died between the holds and the
        ledger write finds its handle on a fulfilment order and records the holds instead of placing them twice.
        """
        code = self.marketplace.code
        lines = self.ledger.get_order_lines(code, order.order_id)
        to_hold = {line_id: line.to_hold for line_id, line in lines.items() if line.to_hold > 0}
        if not to_hold:
            return
        target = {line_id: lines[line_id].held_quantity + units for line_id, units in to_hold.items()}
        handle = hold_handle("cancel", _digest(repr(sorted(target.items()))))
        fulfilment_orders = self.shopify.fulfilment_orders(link.shopify_order_id)
        plan = plan_holds(fulfilment_orders, to_hold)
        if not any(hold.handle == handle for fo in fulfilment_orders for hold in fo.holds):
            notes = f"canceled on {self.marketplace.name} (Mirakl order {order.order_id}): do not ship"
            for hold in plan.holds:
                self.shopify.hold_fulfilment_order(hold.fulfilment_order_id, reason=HOLD_REASON, handle=handle,
                                                   notes=notes, lines=hold.lines)
        self.ledger.record_held(code, order.order_id, target, now=self.now())
        self.report.units_held += sum(plan.held.values())
        reason = _cancellation_reason(self.marketplace.name, order, link, plan.held, plan.not_held)
        self.ledger.raise_exception(code, CANCELLED_AFTER_IMPORT, order.order_id, reason,
                                    {"held": plan.held, "not_held": plan.not_held}, now=self.now())
        self.log.warning("order %s: %s", order.order_id, reason)

    def _complete_address(self, order: MiraklOrder, link: OrderLink) -> None:
        addresses = addresses_update(order)
        # Shopify's orderUpdate takes no billing address (2026-07): the shipping address is what the warehouse needs.
        self.shopify.update_order_addresses(link.shopify_order_id, shipping_address=addresses["shippingAddress"])
        for fo in self.shopify.fulfilment_orders(link.shopify_order_id):
            ours = [hold.id for hold in fo.holds if hold.handle == ADDRESS_HOLD]
            if ours:
                self.shopify.release_fulfilment_hold(fo.id, ours)
        self.ledger.record_address(self.marketplace.code, order.order_id, "complete", now=self.now())
        self.report.addresses_completed += 1

    def _hold_whole(self, shopify_order_id: str, handle: str, reason: str, notes: str) -> None:
        for fo in self.shopify.fulfilment_orders(shopify_order_id):
            if fo.status in HOLDABLE_STATUSES:
                self.shopify.hold_fulfilment_order(fo.id, reason=reason, handle=handle, notes=notes, lines=None)


def line_records(order: MiraklOrder, reading: str | None = None) -> list[OrderLineRecord]:
    """The ledger's view of each line: units always, amounts when they can be read (the import names the problem
    otherwise); refused and cancelled lines keep no amounts (nothing is owed on them, no commission either)."""
    records = []
    for line in order.order_lines:
        amounts = {}
        if not is_dead(line):
            try:
                live = live_line(line, reading)
            except LineAmountError:
                live = None
            if live is not None:
                c = live.commission
                amounts = dict(price=live.price, shipping=live.shipping, fees=live.fee_total, commission_fee=c.fee,
                               commission_vat=c.vat, commission_vat_rate=c.vat_rate, total_commission=c.total)
        records.append(OrderLineRecord(
            order_line_id=line.order_line_id, sku=line.sku, line_state=line.order_line_state,
            ordered_quantity=max(line.quantity, 0), cancelled_quantity=cancelled_quantity(line),
            live_quantity=live_quantity(line), **amounts))
    return records


def _cancellation_reason(marketplace: str, order: MiraklOrder, link: OrderLink, held: Mapping[str, int],
                         not_held: Mapping[str, int]) -> str:
    skus = {line.order_line_id: line.sku for line in order.order_lines}

    def units(by_line: Mapping[str, int]) -> str:
        return "; ".join(f"{n} unit(s) of line {line_id} ({skus.get(line_id)})" for line_id, n in by_line.items())

    what = "the whole order" if order.order_state == "CANCELED" else "units of order"
    parts = [f"{marketplace} canceled {what} {order.order_id} after it was imported as {link.shopify_order_name}"]
    if held:
        parts.append(f"on hold in Shopify so the warehouse does not ship them: {units(held)}")
    if not_held:
        parts.append(f"already fulfilled (or in a held fulfilment order), stop the parcel or start a return: {units(not_held)}")
    return "; ".join(parts) + ". Cancel and refund them in Shopify (the refunds flow will do it once it exists)."


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _exception_kind(mapping_kind: str) -> str:
    return {"malformed": "invalid_order"}.get(mapping_kind, mapping_kind)
