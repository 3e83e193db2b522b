"""One Mirakl marketplace's orders and their state machine (NOTES §4), independent of HTTP.

How payment is modelled, per `payment_workflow` (the spec names the workflows and says nothing of
their timing; NOTES §4 infers the states; the delays are ours):
- PAY_ON_ACCEPTANCE: accepting an order puts it in WAITING_DEBIT and schedules the customer's debit
  `debit_delay` later; when it is due the order goes to SHIPPING with `customer_debited_date` set.
- The other workflows go to SHIPPING at acceptance, not debited. The debit (customer_debited_date,
  transaction_date/number, the live lines' debited_date, last_updated_date) arrives later, with no
  state change: PAY_ON_SHIPMENT `deferred_debit_delay` after the order is SHIPPED (whole order: with
  multiple shipments, once its last parcel shipped), PAY_ON_DELIVERY `deferred_debit_delay` after it is
  RECEIVED, PAY_ON_DUE_DATE `payment_duration` x `payment_duration_day` after acceptance (in whatever
  state the order then is, unless refused or canceled). The spec says payment_duration "has currently
  no impact on the order workflow": it only dates the debit here.
- NO_CUSTOMER_PAYMENT_CONFIRMATION and `customer_directly_pays_seller` orders are never debited by Mirakl.
- `pay()` debits at once (also an undebited deferred workflow, early); `fail_payment()` makes a
  PAY_ON_ACCEPTANCE debit fail, which cancels the order (PA01 REFUSED); an order added with
  `never_pay=True` never gets its debit (it stays in WAITING_DEBIT until `pay()` or `cancel()`).
- Receipt: `receive()` (the customer confirms) or, when `receive_delay` is set, automatically that long
  after shipment: SHIPPED lines and order go RECEIVED with the lines' `received_date`.

Cancellations: `cancel()` cancels the whole order (OR29-like, no amounts). `cancel_lines()` is an
operator / customer-service cancellation of some units of some lines before they ship (also after
acceptance and import): each line gets a `cancelations[]` entry with the units' share of the line's
price, shipping, taxes, fees and commission, placed in cents so that all of a line's cancellations add
up exactly to the line's amounts when every unit is cancelled (never more). Units already in a live
shipment (multiple shipments) cannot be cancelled. A line goes CANCELED when all its units are
cancelled, the order when no live line is left. The spec does not say whether a line's amounts change:
by default they stay as ordered (the spec's OR11 example lists a 12.34 cancellation on a line still
priced 165 = 55 x 3); with `cancelations_reduce_line_price` the line's price, shipping, taxes, fees,
commission and totals are reduced by each cancellation (quantity and price_unit unchanged).
Tax rule NONE ("you must provide the amount of tax") is treated like PROPORTIONAL_TO_AMOUNT: the
operator cancelling provides the proportional amounts.

Mixed acceptance: refused lines go to REFUSED; the order follows its accepted lines, and its
amounts stay as built (the spec says nothing about re-totalling).

Every transition stamps `last_updated_date` (order and changed lines) with the moment it happened,
which is the due time for timed transitions, so OR11 update-date windows see it where it belongs.
"""

import collections
import copy
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Mapping

from mirakl_pipelines.sandbox.faults import Faults
from mirakl_pipelines.sandbox.mirakl.carriers import default_carriers, tracking_url
from mirakl_pipelines.sandbox.mirakl.documents import (
    DEFAULT_DOCUMENT_TYPES, check_documents, public_document, stored_document,
)
from mirakl_pipelines.sandbox.mirakl.orders import (
    ACCEPTED_STATES, CANCELLABLE_LINE_STATES, DEAD_LINE_STATES, ORDER_STATES, PAYMENT_WORKFLOWS, RECEIVED_STATES,
    SHIPPED_STATES, TAX_MODES, ListingInsertions, in_tax_mode, is_debited_by_mirakl, q2, refresh_flags,
    refresh_totals, stamp_debit,
)
from mirakl_pipelines.sandbox.mirakl.ratelimits import CallFrequencyLimiter
from mirakl_pipelines.sandbox.mirakl.wire import parse_datetime

ORDER_IDS_LIMIT = 100
DEFAULT_PAGE_SIZE = 10  # Mirakl's default `max`, which bit real connectors (stripe-mirakl-connector#48)
MAX_PAGE_SIZE = 100  # nobody documents the ceiling; larger values are clamped (NOTES §2.4)


@dataclass
class MarketplaceSettings:
    code: str = "sandbox_fr"
    api_key: str = "sandbox-key"
    shop_id: int | None = None
    acceptance_window: timedelta = timedelta(days=3)  # auto-refusal after this (acceptance_decision_date stays null)
    debit_delay: timedelta = timedelta(seconds=30)  # WAITING_DEBIT -> SHIPPING for paid orders
    deferred_debit_delay: timedelta = timedelta(seconds=30)  # PAY_ON_SHIPMENT / PAY_ON_DELIVERY: shipped / received -> debit
    payment_duration_day: timedelta = timedelta(days=1)  # PAY_ON_DUE_DATE debits payment_duration of these after acceptance
    receive_delay: timedelta | None = None  # SHIPPED -> RECEIVED automatically this long after shipment (None: never)
    cancelations_reduce_line_price: bool = False  # cancel_lines also lowers the line's amounts (see the docstring)
    hide_addresses_before_acceptance: bool = False  # customer addresses null until accepted
    partial_acceptance: bool = True  # False -> ORDER_PARTIAL_ACCEPTANCE_DISABLED on mixed decisions
    accepts_unregistered_carriers: bool = True
    rate_limit_scale: float = 1.0  # multiply every documented min interval (tests use ~0.001)
    update_date_slack: timedelta = timedelta(seconds=60)  # OR11 start_update_date: Mirakl subtracts a delta
    carriers: list[dict] = field(default_factory=default_carriers)
    reject_shipments: bool = False  # OR24 answers 400 while set (an operator blocking the shop's shipments)
    multiple_shipments: bool = False  # the operator's multiple-shipments feature: ST01/ST11/ST23/ST24 (shipments.py)
    document_types: list[dict] = field(default_factory=lambda: [dict(t) for t in DEFAULT_DOCUMENT_TYPES])  # DO01
    # Offers and stock imports (offers.py): processing delays and the faults a stock flow must survive.
    stock_import_waiting: timedelta = timedelta(seconds=1)  # STO01 -> RUNNING after this
    stock_import_running: timedelta = timedelta(seconds=2)  # RUNNING -> COMPLETE / FAILED after this
    stock_import_stuck: bool = False  # a RUNNING import never completes while set
    stock_import_fail: bool = False  # imports completing while set FAIL whole
    stock_import_skip_skus: list[str] = field(default_factory=list)  # lines of these SKUs silently dropped
    stock_import_skip_share: float = 0.0  # 0..1: this share of SKUs (by hash) silently dropped too
    offer_export_delay: timedelta = timedelta(seconds=2)  # OF52 export PENDING -> COMPLETED after this
    offer_export_fail: bool = False  # exports end FAILED while set


# Settings that may change while the server runs (POST /_sandbox/settings).
RUNTIME_SETTINGS = ("reject_shipments", "accepts_unregistered_carriers", "partial_acceptance", "hide_addresses_before_acceptance",
                    "multiple_shipments")


class MiraklApiError(Exception):
    """An API error as Mirakl answers it: HTTP status, error code (OR21's list, or our own), message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class MarketplaceSim:
    def __init__(
        self,
        settings: MarketplaceSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] | None = None,
    ):
        self.settings = settings or MarketplaceSettings()
        self.faults = Faults()
        self.listing_insertions = ListingInsertions()  # orders entering an OR11 listing while it pages (tests)
        self.calls: collections.Counter = collections.Counter()  # served calls per operation code
        self.rejected: collections.Counter = collections.Counter()  # calls answered 429 by the frequency limits
        self._clock = clock or _utc_now
        self._offset = timedelta(0)
        self._orders: dict[str, dict] = {}
        self._meta: dict[str, dict] = {}
        self._next_id = 0
        self._documents: dict[str, list[dict]] = {}  # order id -> OR74 uploads, bytes included
        self._next_document_id = 2000
        self._next_cancelation_id = 1000
        self._lock = threading.RLock()
        limiter_args = {"monotonic": monotonic} if monotonic else {}
        self.limiter = CallFrequencyLimiter(self.settings.rate_limit_scale, **limiter_args)
        from mirakl_pipelines.sandbox.mirakl.shipments import ShipmentBook  # here: shipments.py imports this module
        self.shipments = ShipmentBook(self.settings, self._orders, self._lock, self.now)
        from mirakl_pipelines.sandbox.mirakl.offers import OfferBook  # here: offers.py imports this module
        self.offers = OfferBook(self.settings, self._lock, self.now)

    # ---- clock -------------------------------------------------------------------------------

    def now(self) -> datetime:
        moment = self._clock()
        if moment.tzinfo is None:
            raise ValueError(f"the sandbox clock returned a naive datetime {moment!r}; it must be tz-aware")
        return (moment + self._offset).astimezone(timezone.utc)

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError(f"the sandbox clock only moves forward (got {delta})")
        with self._lock:
            self._offset += delta
        self.tick()

    def tick(self) -> None:
        """Apply every time-based transition that is due: auto-refusal, debits (also deferred ones), receipt."""
        with self._lock:
            now = self.now()
            for order_id in self._orders:
                self._tick_order(order_id, now)
            self.offers.tick(now)

    def _tick_order(self, order_id: str, now: datetime) -> None:
        order, meta = self._orders[order_id], self._meta[order_id]
        if order["order_state"] == "WAITING_ACCEPTANCE":
            due = order["created_date"] + self.settings.acceptance_window
            if now >= due:
                self._auto_refuse(order, due)
        elif order["order_state"] == "WAITING_DEBIT" and meta["debit_due"] and now >= meta["debit_due"]:
            if meta["payment_failed"]:
                self._cancel(order, meta["debit_due"], reason="PAYMENT_REFUSED")
            elif not meta["never_pay"]:
                self._debit(order, meta["debit_due"])
        else:
            self._tick_after_acceptance(order, meta, now)

    def _tick_after_acceptance(self, order: dict, meta: dict, now: datetime) -> None:
        """Automatic receipt (receive_delay) and the deferred debits of the other payment workflows."""
        if order["order_state"] == "SHIPPED" and self.settings.receive_delay is not None:
            shipped = _latest(order, "shipped_date")
            if shipped is not None and now >= shipped + self.settings.receive_delay:
                self._receive(order, shipped + self.settings.receive_delay)
        due = self._deferred_debit_due(order, meta)
        if due is not None and now >= due:
            self._debit(order, due)

    def _deferred_debit_due(self, order: dict, meta: dict) -> datetime | None:
        if order.get("customer_debited_date") is not None or meta["never_pay"] or not is_debited_by_mirakl(order):
            return None
        workflow, state = order.get("payment_workflow"), order["order_state"]
        if workflow == "PAY_ON_SHIPMENT" and state in SHIPPED_STATES:
            shipped = _latest(order, "shipped_date")
            return shipped + self.settings.deferred_debit_delay if shipped else None
        if workflow == "PAY_ON_DELIVERY" and state in RECEIVED_STATES:
            received = _latest(order, "received_date")
            return received + self.settings.deferred_debit_delay if received else None
        if workflow == "PAY_ON_DUE_DATE" and state in ACCEPTED_STATES and meta.get("accepted_at"):
            return meta["accepted_at"] + (order.get("payment_duration") or 0) * self.settings.payment_duration_day
        return None

    # ---- operator / customer side ------------------------------------------------------------

    def new_order_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return f"{self.settings.code.upper()}-{self._next_id:06d}-A"

    def add_order(self, order: dict, *, never_pay: bool = False) -> dict:
        """Store a full OR11-shaped order (see build_order) and return it."""
        order_id = order.get("order_id")
        if not order_id:
            raise ValueError("the order has no order_id; build it with build_order()")
        with self._lock:
            if order_id in self._orders:
                raise ValueError(f"order {order_id!r} already exists in marketplace {self.settings.code!r}")
            stored = copy.deepcopy(order)
            self._orders[order_id] = stored
            self._meta[order_id] = {
                "never_pay": never_pay,
                "payment_failed": False,
                "debit_due": None,
                "accepted": stored["order_state"] in ACCEPTED_STATES,
                "accepted_at": (stored["acceptance_decision_date"] or stored["created_date"])
                if stored["order_state"] in ACCEPTED_STATES else None,
            }
            if stored["order_state"] == "WAITING_DEBIT" and stored.get("payment_workflow") == "PAY_ON_ACCEPTANCE":
                self._meta[order_id]["debit_due"] = (stored["acceptance_decision_date"] or stored["created_date"]) + self.settings.debit_delay
            self._hold_stock(stored)
            # Only the new order's due transitions: ticking every order on each add would make placing n orders
            # cost n² (50,000 orders for the memory benchmark); the others move on the next API call, as before.
            self._tick_order(order_id, self.now())
            result = copy.deepcopy(stored)
        return result

    def get_order(self, order_id: str) -> dict:
        """The internal full view (addresses included); KeyError if unknown."""
        self.tick()
        with self._lock:
            if order_id not in self._orders:
                raise KeyError(f"no order {order_id!r} in marketplace {self.settings.code!r}")
            return copy.deepcopy(self._orders[order_id])

    def orders(self) -> list[dict]:
        self.tick()
        with self._lock:
            return [copy.deepcopy(o) for o in self._sorted(self._orders.values())]

    def pay(self, order_id: str) -> dict:
        """The customer's debit succeeds now (PA01 OK): a WAITING_DEBIT order goes to SHIPPING."""
        self.tick()
        with self._lock:
            order = self._known(order_id)
            deferred = (
                order["order_state"] in ACCEPTED_STATES and order.get("customer_debited_date") is None
                and order.get("payment_workflow") != "PAY_ON_ACCEPTANCE" and is_debited_by_mirakl(order)
            )
            if order["order_state"] not in {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"} and not deferred:
                raise ValueError(
                    f"order {order_id!r} cannot be paid: it is {order['order_state']}, only WAITING_DEBIT orders "
                    "(or accepted orders of another workflow not debited yet) await payment"
                )
            self._debit(order, self.now())
            return copy.deepcopy(order)

    def fail_payment(self, order_id: str) -> dict:
        """The customer's debit fails (PA01 REFUSED): the order is canceled now, or when its debit falls due."""
        self.tick()
        with self._lock:
            order = self._known(order_id)
            state = order["order_state"]
            if state in {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}:
                self._cancel(order, self.now(), reason="PAYMENT_REFUSED")
            elif state in {"STAGING", "WAITING_ACCEPTANCE"}:
                self._meta[order_id]["payment_failed"] = True
            else:
                raise ValueError(f"order {order_id!r} cannot fail payment: it is {state}, its debit is already settled")
            return copy.deepcopy(order)

    def cancel(self, order_id: str) -> dict:
        """The operator (or customer service) cancels the whole order before shipment."""
        self.tick()
        with self._lock:
            order = self._known(order_id)
            if order["order_state"] not in {"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING"}:
                raise ValueError(f"order {order_id!r} cannot be canceled: it is {order['order_state']}")
            self._cancel(order, self.now(), reason="OPERATOR_CANCELED")
            self.shipments.order_canceled(order_id, order["last_updated_date"])  # its open shipments are canceled too
            return copy.deepcopy(order)

    def cancel_lines(self, order_id: str, quantities: Mapping[str, int], reason_code: str = "34") -> dict:
        """Operator / customer service cancels `quantities[order_line_id]` units of accepted lines before they
        ship (reason "34": cancelled by the client prior to shipping, RE01's example). See the module docstring."""
        self.tick()
        with self._lock:
            order = self._known(order_id)
            where = f"order {order_id!r}"
            if not isinstance(quantities, Mapping) or not quantities:
                raise ValueError(f"{where}: give the units to cancel per order line, e.g. {{\"{order_id}-1\": 1}}")
            if not isinstance(reason_code, str) or not reason_code.strip():
                raise ValueError(f"{where}: reason_code must be a non-empty string (a CANCELATION reason of RE01)")
            lines = {line["order_line_id"]: line for line in order["order_lines"]}
            in_shipments = self.shipments.booked_units(order_id)
            for line_id, quantity in quantities.items():
                line = lines.get(line_id)
                if line is None:
                    raise ValueError(f"{where} has no order line {line_id!r}")
                if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                    raise ValueError(f"{where} line {line_id}: the quantity to cancel must be a whole number >= 1 (got {quantity!r})")
                if line["order_line_state"] not in CANCELLABLE_LINE_STATES:
                    raise ValueError(
                        f"{where} line {line_id} cannot be cancelled: it is {line['order_line_state']} "
                        f"(units are cancelled once accepted and before they ship: {', '.join(sorted(CANCELLABLE_LINE_STATES))})")
                left = line["quantity"] - _cancelled_units(line) - in_shipments.get(line_id, 0)
                if quantity > left:
                    raise ValueError(
                        f"{where} line {line_id}: cannot cancel {quantity} unit(s), only {left} left to cancel "
                        f"(ordered {line['quantity']}, cancelled {_cancelled_units(line)}, in shipments {in_shipments.get(line_id, 0)})")
            now = self.now()
            for line_id, quantity in quantities.items():
                self._cancel_units(lines[line_id], quantity, reason_code, now)
            order["last_updated_date"] = now
            live = [line for line in order["order_lines"] if line["order_line_state"] not in DEAD_LINE_STATES]
            if not live:
                order.update(order_state="CANCELED", order_state_reason_code=reason_code)
                self._meta[order_id]["debit_due"] = None
            refresh_totals(order)
            refresh_flags(order)
            self._hold_stock(order)
            if live:
                self.shipments.settle(order_id)  # the units left may all be in shipped parcels already
            else:
                self.shipments.order_canceled(order_id, now)
            return copy.deepcopy(order)

    def receive(self, order_id: str) -> dict:
        """The customer confirms receipt (front OR25): a SHIPPED order and its shipped lines go RECEIVED."""
        self.tick()
        with self._lock:
            order = self._known(order_id)
            if order["order_state"] not in {"SHIPPED", "TO_COLLECT"}:
                raise ValueError(f"order {order_id!r} cannot be received: it is {order['order_state']}, not SHIPPED")
            self._receive(order, self.now())
            return copy.deepcopy(order)

    # ---- API operations (the app translates HTTP to these) -----------------------------------

    def admit(self, operation: str, *, counts_for_limit: bool = True) -> int | None:
        """Book one API call: None to serve it, else the Retry-After seconds for a 429. Also applies due transitions."""
        retry_after = self.limiter.acquire(operation) if counts_for_limit else None
        with self._lock:
            if retry_after is not None:
                self.rejected[operation] += 1
                return retry_after
            self.calls[operation] += 1
        self.tick()
        return None

    def list_orders(self, params: Mapping[str, str]) -> dict:
        """OR11: filter, sort and page the live orders; the page as Mirakl returns it."""
        query = _ListQuery.parse(params, self.settings.update_date_slack)
        with self._lock:
            selected = [o for o in self._orders.values() if query.matches(o)]
            selected = self._sorted(selected, descending=query.descending)
            page = selected[query.offset: query.offset + query.max] if query.paginate else selected[query.offset:]
            views = [self._public_view(o, query.tax_mode) for o in page]
        for order in self.listing_insertions.due(query.offset):  # a paging fault, see ListingInsertions
            self.add_order(order)
        return {"orders": views, "total_count": len(selected)}

    def accept(self, order_id: str, body: Any) -> None:
        """OR21: every line of the order decided in one call."""
        with self._lock:
            order = self._api_order(order_id)
            decisions = _parse_decisions(body)
            lines = {line["order_line_id"]: line for line in order["order_lines"]}
            waiting = order["order_state"] == "WAITING_ACCEPTANCE" and all(
                line["order_line_state"] == "WAITING_ACCEPTANCE" for line in lines.values()
            )
            if not waiting:
                raise MiraklApiError(
                    400, "ORDER_INVALID_STATE",
                    f"Order {order_id} cannot be accepted or refused: its lines are not all WAITING_ACCEPTANCE. "
                    f"Current status is {order['order_state']}",
                )
            unknown = [line_id for line_id in decisions if line_id not in lines]
            if unknown:
                raise MiraklApiError(400, "ORDER_LINE_NOT_FOUND", f"Order line(s) {', '.join(unknown)} not found in order {order_id}")
            missing = [line_id for line_id in lines if line_id not in decisions]
            if missing:
                raise MiraklApiError(
                    400, "ORDER_LINE_ACCEPTANCE_DECISION_MISSING",
                    f"Some order lines are missing from the acceptance decision of order {order_id}: {', '.join(missing)}",
                )
            accepted = {line_id for line_id, ok in decisions.items() if ok}
            if accepted and len(accepted) < len(lines) and not self.settings.partial_acceptance:
                raise MiraklApiError(
                    400, "ORDER_PARTIAL_ACCEPTANCE_DISABLED",
                    f"Partial acceptance is disabled: accept or refuse every line of order {order_id}",
                )
            self._decide(order, accepted, self.now())

    def update_tracking(self, order_id: str, body: Any) -> None:
        """OR23: carrier and tracking number; no state change."""
        with self._lock:
            order = self._api_order(order_id)
            if not isinstance(body, dict):
                raise MiraklApiError(400, "VALIDATION_ERROR", f"OR23 on order {order_id}: the body must be a JSON object")
            fields = {}
            for name in ("carrier_code", "carrier_name", "carrier_standard_code", "carrier_url", "tracking_number"):
                value = body.get(name)
                if value is not None and not isinstance(value, str):
                    raise MiraklApiError(400, "VALIDATION_ERROR", f"Error with field {name}. Please check the field datatype.")
                fields[name] = value or None  # connectors send "" for unknown values (Magento connector)
            if order["order_state"] not in {"SHIPPING", "SHIPPED"}:
                raise MiraklApiError(
                    400, "ORDER_INVALID_STATE",
                    f"Tracking cannot be updated on order {order_id}. Current status is {order['order_state']}",
                )
            order.update(resolve_tracking(self.settings, fields, f"order {order_id}"))
            order["last_updated_date"] = self.now()

    def ship(self, order_id: str) -> None:
        """OR24: SHIPPING -> SHIPPED, shipped_date on the lines (and on the order, which the spec does not list)."""
        with self._lock:
            order = self._api_order(order_id)
            if self.settings.reject_shipments and order["order_state"] == "SHIPPING":
                # What an operator's block looks like from the shop: a 400 naming no state (the order stays SHIPPING).
                raise MiraklApiError(
                    400, "SHIPMENT_REFUSED",
                    f"Order {order_id} cannot be shipped: shipment validation is suspended for your shop by the operator",
                )
            if order["order_state"] != "SHIPPING":
                raise MiraklApiError(
                    400, "ORDER_INVALID_STATE",
                    f"Order {order_id} cannot be shipped. Current status is {order['order_state']}",
                )
            now = self.now()
            for line in order["order_lines"]:
                if line["order_line_state"] == "SHIPPING":
                    line.update(order_line_state="SHIPPED", shipped_date=now, last_updated_date=now)
            order.update(order_state="SHIPPED", shipped_date=now, last_updated_date=now)
            refresh_flags(order)
            self.shipments.order_shipped(order_id, now)  # its open shipments leave with it

    def upload_documents(self, order_id: str, entries: list[dict], files: dict[str, bytes]) -> dict:
        """OR74: store the valid documents; the 200 body lists only those in error (spec)."""
        with self._lock:
            order = self._api_order(order_id)
            existing = self._documents.setdefault(order_id, [])
            types = {t["code"] for t in self.settings.document_types}
            accepted, failed = check_documents(entries, files, existing, types)
            now = self.now()
            for entry in accepted:
                self._next_document_id += 1
                existing.append(stored_document(self._next_document_id, order_id, entry, files[entry["file_name"]], now))
            if any(entry["type_code"] == "CUSTOMER_INVOICE" for entry in accepted):
                order["has_invoice"] = True
            return {"errors_count": len(failed), "order_documents": failed}

    def list_documents(self, params: Mapping[str, str]) -> dict:
        """OR72: the documents of the orders in `order_ids` (required; unknown ids simply have none)."""
        order_ids = _id_list(params, "order_ids")
        if not order_ids:
            raise _bad("The parameter : order_ids is required")
        with self._lock:
            docs = [public_document(d) for order_id in sorted(order_ids) for d in self._documents.get(order_id, [])]
        return {"order_documents": docs, "total_count": len(docs)}

    def documents(self, order_id: str) -> list[dict]:
        """Internal view: one order's documents, metadata only; KeyError if the order is unknown."""
        with self._lock:
            self._known(order_id)
            return [public_document(d) for d in self._documents.get(order_id, [])]

    def document_content(self, order_id: str, document_id: int) -> tuple[dict, bytes]:
        with self._lock:
            for doc in self._documents.get(order_id, []):
                if doc["id"] == document_id:
                    return public_document(doc), doc["_content"]
        raise KeyError(f"no document {document_id} on order {order_id!r} in marketplace {self.settings.code!r}")

    def apply_settings(self, **knobs: Any) -> dict:
        """Change runtime settings (booleans of RUNTIME_SETTINGS, and the offers' knobs of offers.RUNTIME_KNOBS);
        returns them all."""
        from mirakl_pipelines.sandbox.mirakl.offers import RUNTIME_KNOBS, parse_knob
        unknown = sorted(set(knobs) - set(RUNTIME_SETTINGS) - set(RUNTIME_KNOBS))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {list(RUNTIME_SETTINGS) + list(RUNTIME_KNOBS)}")
        wrong = sorted(name for name, value in knobs.items() if name in RUNTIME_SETTINGS and not isinstance(value, bool))
        if wrong:
            raise ValueError(f"setting(s) {wrong} must be true or false")
        values = {name: parse_knob(name, value) if name in RUNTIME_KNOBS else value for name, value in knobs.items()}
        with self._lock:
            for name, value in values.items():
                setattr(self.settings, name, value)
        return self.runtime_settings()

    def runtime_settings(self) -> dict:
        from mirakl_pipelines.sandbox.mirakl.offers import RUNTIME_KNOBS, knob_value
        return {name: knob_value(getattr(self.settings, name)) for name in (*RUNTIME_SETTINGS, *RUNTIME_KNOBS)}

    def list_carriers(self) -> dict:
        """SH21, sorted by label as the spec says."""
        return {"carriers": sorted(copy.deepcopy(self.settings.carriers), key=lambda c: c["label"].casefold())}

    # ---- transitions -------------------------------------------------------------------------

    def _decide(self, order: dict, accepted: set[str], now: datetime) -> None:
        order["acceptance_decision_date"] = now
        self._meta[order["order_id"]]["accepted_at"] = now if accepted else None
        for line in order["order_lines"]:
            line["order_line_state"] = "WAITING_DEBIT" if line["order_line_id"] in accepted else "REFUSED"
            line["last_updated_date"] = now
        meta = self._meta[order["order_id"]]
        if not accepted:
            order["order_state"] = "REFUSED"
        elif order.get("payment_workflow") == "PAY_ON_ACCEPTANCE":
            order["order_state"] = "WAITING_DEBIT"
            meta["debit_due"] = now + self.settings.debit_delay
            meta["accepted"] = True
        else:
            meta["accepted"] = True
            order["order_state"] = "SHIPPING"
            for line in order["order_lines"]:
                if line["order_line_state"] == "WAITING_DEBIT":
                    line["order_line_state"] = "SHIPPING"
        order["last_updated_date"] = now
        refresh_flags(order)
        self._hold_stock(order)

    def _hold_stock(self, order: dict) -> None:
        """As Mirakl does: placing an order takes its units from the offers; units refused or cancelled before
        shipment go back (offers.py). Shipped units stay taken."""
        for line in order["order_lines"]:
            live = line["order_line_state"] not in DEAD_LINE_STATES
            units = line["quantity"] - _cancelled_units(line) if live else 0
            self.offers.hold(order["order_id"], line["order_line_id"], line["offer_sku"], units)

    def _cancel_units(self, line: dict, quantity: int, reason_code: str, now: datetime) -> None:
        """Append one cancelation to `line`: its units' share of every amount, cumulative in cents."""
        reduced = self.settings.cancelations_reduce_line_price
        previous = line["cancelations"]
        before = _cancelled_units(line)
        after = before + quantity

        def share(current: Decimal, cancelled: Decimal) -> Decimal:
            ordered = current + cancelled if reduced else current
            return q2(ordered * after / line["quantity"]) - q2(ordered * before / line["quantity"])

        def taxes(field: str, cancel_field: str) -> list[dict]:
            result = []
            for tax in line.get(field) or []:
                done = sum((t["amount"] for c in previous for t in c.get(cancel_field) or [] if t["code"] == tax["code"]), Decimal(0))
                entry = {"amount": share(tax["amount"], done), "code": tax["code"], "rate": tax.get("rate")}
                if tax.get("amount_breakdown"):
                    part = dict(tax["amount_breakdown"]["parts"][-1], amount=entry["amount"])
                    entry["amount_breakdown"] = {"parts": [part]}
                result.append(entry)
            return result

        def amounts(field: str, cancel_field: str) -> list[dict]:
            return [
                {"amount": share(item["amount"], sum((x["amount"] for c in previous for x in c.get(cancel_field) or []
                                                      if x["code"] == item["code"]), Decimal(0))), "code": item["code"]}
                for item in line.get(field) or []
            ]

        commission_taxes = amounts("commission_taxes", "commission_taxes")
        commission = share(line["commission_fee"], sum((c["commission_amount"] for c in previous), Decimal(0)))
        self._next_cancelation_id += 1
        cancelation = {
            "amount": share(line["price"], sum((c["amount"] for c in previous), Decimal(0))),
            "commission_amount": commission,
            "commission_taxes": commission_taxes,
            "commission_total_amount": commission + sum((t["amount"] for t in commission_taxes), Decimal(0)),
            "created_date": now,
            "fees": amounts("fees", "fees"),
            "id": str(self._next_cancelation_id),
            "quantity": quantity,
            "reason_code": reason_code,
            "shipping_amount": share(line["shipping_price"], sum((c["shipping_amount"] for c in previous), Decimal(0))),
            "shipping_taxes": taxes("shipping_taxes", "shipping_taxes"),
            "taxes": taxes("taxes", "taxes"),
        }
        previous.append(cancelation)
        if reduced:
            _deduct(line, cancelation)
        line["last_updated_date"] = now
        if after == line["quantity"]:
            line.update(order_line_state="CANCELED", order_line_state_reason_code=reason_code)

    def _auto_refuse(self, order: dict, at: datetime) -> None:
        order["order_state"] = "REFUSED"
        order["acceptance_decision_date"] = None  # Mirakl: null when automatically refused
        for line in order["order_lines"]:
            if line["order_line_state"] == "WAITING_ACCEPTANCE":
                line.update(order_line_state="REFUSED", last_updated_date=at)
        order["last_updated_date"] = at
        refresh_flags(order)
        self._hold_stock(order)

    def _debit(self, order: dict, at: datetime) -> None:
        """The customer's debit: WAITING_DEBIT goes to SHIPPING (PAY_ON_ACCEPTANCE); later debits change no state."""
        digest = hashlib.sha1(f"{order['order_id']}|{at.isoformat()}".encode()).hexdigest()
        stamp_debit(order, at, f"TR-{digest[:10].upper()}")
        for line in order["order_lines"]:
            if line["order_line_state"] in {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}:
                line.update(order_line_state="SHIPPING", last_updated_date=at)
            elif line["order_line_state"] not in DEAD_LINE_STATES:
                line["last_updated_date"] = max(at, line["last_updated_date"])
        if order["order_state"] in {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}:
            order["order_state"] = "SHIPPING"
        order["last_updated_date"] = max(at, order["last_updated_date"])
        self._meta[order["order_id"]]["debit_due"] = None
        refresh_flags(order)

    def _receive(self, order: dict, at: datetime) -> None:
        for line in order["order_lines"]:
            if line["order_line_state"] in {"SHIPPED", "TO_COLLECT"}:
                line.update(order_line_state="RECEIVED", received_date=at, last_updated_date=at)
        order.update(order_state="RECEIVED", last_updated_date=max(at, order["last_updated_date"]))
        refresh_flags(order)

    def _cancel(self, order: dict, at: datetime, reason: str) -> None:
        for line in order["order_lines"]:
            if line["order_line_state"] not in {"REFUSED", "CANCELED"}:
                line.update(order_line_state="CANCELED", last_updated_date=at)
        order.update(order_state="CANCELED", order_state_reason_code=reason, last_updated_date=at)
        self._meta[order["order_id"]]["debit_due"] = None
        refresh_flags(order)
        self._hold_stock(order)

    # ---- helpers -----------------------------------------------------------------------------

    def _known(self, order_id: str) -> dict:
        if order_id not in self._orders:
            raise KeyError(f"no order {order_id!r} in marketplace {self.settings.code!r}")
        return self._orders[order_id]

    def _api_order(self, order_id: str) -> dict:
        if order_id not in self._orders:
            raise MiraklApiError(404, "ORDER_NOT_FOUND", f"Order with id {order_id} not found")
        return self._orders[order_id]

    def _public_view(self, order: dict, tax_mode: str | None) -> dict:
        view = in_tax_mode(order, tax_mode or order["order_tax_mode"],
                           cancelations_reduce_line_price=self.settings.cancelations_reduce_line_price)
        if self.settings.hide_addresses_before_acceptance and not self._meta[order["order_id"]]["accepted"]:
            customer = view["customer"]
            customer["billing_address"] = None
            customer["shipping_address"] = None
            if customer.get("organization"):
                customer["organization"].pop("address", None)
        return view

    @staticmethod
    def _sorted(orders, descending: bool = False) -> list[dict]:
        # "Sort by creation date, and then by order identifier" (OR11 `sort=dateCreated`)
        return sorted(orders, key=lambda o: (o["created_date"], o["order_id"]), reverse=descending)


def resolve_tracking(settings: MarketplaceSettings, fields: Mapping[str, str | None], where: str) -> dict:
    """OR23's carrier rules, shared by ST01/ST23: the order's shipping_* tracking fields, else MiraklApiError 400.

    `fields`: carrier_code, carrier_name, carrier_standard_code, carrier_url, tracking_number (None when absent).
    A registered carrier (SH21 code) gets its label and its URL computed; an unregistered one, when the
    marketplace accepts them, needs a name and keeps the URL given.
    """
    carrier = next((c for c in settings.carriers if c["code"] == fields["carrier_code"]), None)
    if carrier is not None:
        if "{trackingId}" in (carrier.get("tracking_url") or "") and not fields["tracking_number"]:
            raise MiraklApiError(
                400, "VALIDATION_ERROR", f"tracking_number is mandatory for carrier {carrier['code']} on {where}",
            )
        return {
            "shipping_carrier_code": carrier["code"],
            "shipping_carrier_standard_code": carrier.get("standard_code"),
            "shipping_company": carrier["label"],
            "shipping_tracking": fields["tracking_number"],
            "shipping_tracking_url": tracking_url(carrier, fields["tracking_number"]),
        }
    if fields["carrier_code"] and not settings.accepts_unregistered_carriers:
        raise MiraklApiError(
            400, "CARRIER_NOT_FOUND", f"Carrier {fields['carrier_code']} is not registered on this marketplace (see SH21)",
        )
    if not settings.accepts_unregistered_carriers:
        raise MiraklApiError(
            400, "CARRIER_NOT_FOUND", f"carrier_code is mandatory on {where}: this marketplace only accepts registered carriers",
        )
    if not fields["carrier_name"]:
        raise MiraklApiError(400, "VALIDATION_ERROR", f"carrier_name is mandatory for an unregistered carrier on {where}")
    return {
        "shipping_carrier_code": fields["carrier_code"],
        "shipping_carrier_standard_code": fields["carrier_standard_code"],
        "shipping_company": fields["carrier_name"],
        "shipping_tracking": fields["tracking_number"],
        "shipping_tracking_url": fields["carrier_url"],
    }


def _latest(order: dict, field: str) -> datetime | None:
    """The latest `shipped_date` / `received_date` of the order's lines (or the order's own)."""
    moments = [line[field] for line in order["order_lines"] if line.get(field)]
    return max(moments) if moments else order.get(field)


def _cancelled_units(line: dict) -> int:
    return sum(c.get("quantity") or 0 for c in line.get("cancelations") or [])


def _deduct(line: dict, cancelation: dict) -> None:
    """The reducing reading: the line's amounts lose what the cancelation took (quantity and price_unit stay)."""
    line["price"] -= cancelation["amount"]
    line["shipping_price"] -= cancelation["shipping_amount"]
    for name in ("taxes", "shipping_taxes", "fees", "commission_taxes"):
        taken = {item["code"]: item["amount"] for item in cancelation.get(name) or []}
        for item in line.get(name) or []:
            item["amount"] -= taken.get(item["code"], Decimal(0))
            parts = (item.get("amount_breakdown") or {}).get("parts") or []
            if parts:
                parts[-1]["amount"] = item["amount"] - sum((p["amount"] for p in parts[:-1]), Decimal(0))
    line["commission_fee"] -= cancelation["commission_amount"]
    commission_taxes = line.get("commission_taxes") or []
    line["commission_vat"] = commission_taxes[0]["amount"] if commission_taxes else Decimal(0)
    line["total_commission"] = line["commission_fee"] + sum((t["amount"] for t in commission_taxes), Decimal(0))


def _parse_decisions(body: Any) -> dict[str, bool]:
    if not isinstance(body, dict) or not isinstance(body.get("order_lines"), list):
        raise MiraklApiError(400, "VALIDATION_ERROR", 'The body must be {"order_lines": [{"id": ..., "accepted": ...}]}')
    decisions: dict[str, bool] = {}
    for index, item in enumerate(body["order_lines"]):
        if item is None:
            raise MiraklApiError(400, "ORDER_LINE_NULL_ELEMENT", f"order_lines[{index}] is null")
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not isinstance(item.get("accepted"), bool):
            raise MiraklApiError(
                400, "VALIDATION_ERROR", f"order_lines[{index}] must have a string id and a boolean accepted (got {item!r})"
            )
        if item["id"] in decisions:
            raise MiraklApiError(400, "ORDER_LINE_DUPLICATE_ID", f"Order line {item['id']} appears twice in order_lines")
        decisions[item["id"]] = item["accepted"]
    return decisions


@dataclass
class _ListQuery:
    """OR11's query parameters, validated; 400 naming the parameter otherwise."""

    order_ids: set[str] | None = None
    states: set[str] | None = None
    references_for_customer: set[str] | None = None
    references_for_seller: set[str] | None = None
    channel_codes: set[str] | None = None
    only_null_channel: bool = False
    start_date: datetime | None = None
    end_date: datetime | None = None
    start_update_date: datetime | None = None
    end_update_date: datetime | None = None
    customer_debited: bool | None = None
    payment_workflow: str | None = None
    has_incident: bool | None = None
    tax_mode: str | None = None
    paginate: bool = True
    max: int = DEFAULT_PAGE_SIZE
    offset: int = 0
    descending: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, str], slack: timedelta) -> "_ListQuery":
        q = cls()
        q.order_ids = _id_list(params, "order_ids")
        q.references_for_customer = _id_list(params, "order_references_for_customer")
        q.references_for_seller = _id_list(params, "order_references_for_seller")
        q.channel_codes = _id_list(params, "channel_codes")
        q.states = _id_list(params, "order_state_codes")
        if q.states:
            unknown = sorted(q.states - set(ORDER_STATES))
            if unknown:
                raise _bad(f"Invalid value {', '.join(unknown)} for the parameter : order_state_codes")
        q.only_null_channel = _bool(params, "only_null_channel") or False
        q.start_date = _date(params, "start_date")
        q.end_date = _date(params, "end_date")
        start_update = _date(params, "start_update_date")
        # "Mirakl will subtract a time delta to ensure no orders are missed": expect duplicates across polls.
        # (never below the smallest date: a start near year 1 is "from the beginning", found by schemathesis)
        floor = datetime.min.replace(tzinfo=timezone.utc)
        q.start_update_date = start_update - min(slack, start_update - floor) if start_update else None
        q.end_update_date = _date(params, "end_update_date")
        q.customer_debited = _bool(params, "customer_debited")
        q.has_incident = _bool(params, "has_incident")
        q.payment_workflow = params.get("payment_workflow") or None
        if q.payment_workflow and q.payment_workflow not in PAYMENT_WORKFLOWS:
            raise _bad(f"Invalid value {q.payment_workflow} for the parameter : payment_workflow")
        q.tax_mode = params.get("order_tax_mode") or None
        if q.tax_mode and q.tax_mode not in TAX_MODES:
            raise _bad(f"Invalid value {q.tax_mode} for the parameter : order_tax_mode")
        paginate = _bool(params, "paginate")
        q.paginate = True if paginate is None else paginate
        q.max = min(_int(params, "max", DEFAULT_PAGE_SIZE, minimum=1), MAX_PAGE_SIZE)
        q.offset = _int(params, "offset", 0, minimum=0)
        sort = params.get("sort")
        if sort and sort != "dateCreated":
            raise _bad(f"Invalid value {sort} for the parameter : sort (OR11 sorts by dateCreated)")
        direction = (params.get("order") or "asc").lower()
        if direction not in {"asc", "desc"}:
            raise _bad(f"Invalid value {params.get('order')} for the parameter : order (asc or desc)")
        q.descending = direction == "desc"
        return q

    def matches(self, o: dict) -> bool:
        refs = o.get("references") or {}
        channel = (o.get("channel") or {}).get("code")
        checks = [
            self.order_ids is None or o["order_id"] in self.order_ids,
            self.states is None or o["order_state"] in self.states,
            self.references_for_customer is None or refs.get("order_reference_for_customer") in self.references_for_customer,
            self.references_for_seller is None or refs.get("order_reference_for_seller") in self.references_for_seller,
            self.channel_codes is None or channel in self.channel_codes or (self.only_null_channel and channel is None),
            not self.only_null_channel or self.channel_codes is not None or channel is None,
            self.start_date is None or o["created_date"] >= self.start_date,
            self.end_date is None or o["created_date"] <= self.end_date,
            self.start_update_date is None or o["last_updated_date"] >= self.start_update_date,
            self.end_update_date is None or o["last_updated_date"] <= self.end_update_date,
            self.customer_debited is None or (o.get("customer_debited_date") is not None) == self.customer_debited,
            self.payment_workflow is None or o.get("payment_workflow") == self.payment_workflow,
            self.has_incident is None or bool(o.get("has_incident")) == self.has_incident,
        ]
        return all(checks)


def _bad(message: str) -> MiraklApiError:
    return MiraklApiError(400, "INVALID_PARAMETER", message)


def _id_list(params: Mapping[str, str], name: str) -> set[str] | None:
    raw = params.get(name)
    if raw is None:
        return None
    ids = {part.strip() for part in raw.split(",") if part.strip()}
    if len(ids) > ORDER_IDS_LIMIT:
        raise _bad(f"The limit of {ORDER_IDS_LIMIT} is exceeded for the parameter : {name}")
    return ids


def _bool(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() not in {"true", "false"}:
        raise _bad(f"Invalid value {raw} for the parameter : {name} (true or false)")
    return raw.lower() == "true"


def _int(params: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"Invalid value {raw} for the parameter : {name} (an integer)") from None
    if value < minimum:
        raise _bad(f"Invalid value {raw} for the parameter : {name} (at least {minimum})")
    return value


def _date(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return parse_datetime(raw, f"the parameter : {name}")
    except ValueError as e:
        raise _bad(f"Invalid date {raw} for the parameter : {name} ({e})") from None
