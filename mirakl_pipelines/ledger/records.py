"""What the ledger hands back: frozen snapshots of rows, and the states they can be in."""

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, Mapping

IMPORT_STATES = ("pending", "imported", "failed", "skipped")
ACCEPTANCE_STATES = ("pending", "accepted", "refused", "partial", "left", "failed", "not_applicable")
# Acceptance outcomes that still need an OR21 call while the order waits for acceptance.
ACCEPTANCE_RETRYABLE = ("pending", "left", "failed")
EXCEPTION_STATUSES = ("open", "resolved")
WAITING_ACCEPTANCE = "WAITING_ACCEPTANCE"


@dataclass(frozen=True)
class OrderLink:
    marketplace: str
    mirakl_order_id: str
    commercial_id: str | None
    mirakl_state: str | None
    eligible: bool
    skip_reason: str | None
    import_state: str
    shopify_order_id: str | None
    shopify_order_name: str | None
    shopify_legacy_id: str | None
    acceptance_state: str
    mirakl_created_at: datetime | None
    mirakl_updated_at: datetime | None
    acceptance_deadline: datetime | None
    first_seen_at: datetime
    eligible_since: datetime | None
    imported_at: datetime | None
    accepted_at: datetime | None
    updated_at: datetime
    snapshot_day: date | None = None
    mirakl_paid: bool | None = None
    mirakl_has_address: bool | None = None
    payment_state: str | None = None  # Shopify: paid | pending
    address_state: str | None = None  # Shopify: complete | missing

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "OrderLink":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


PAYMENT_STATES = ("paid", "pending")
ADDRESS_STATES = ("complete", "missing")
LINE_DECISIONS = ("accepted", "refused")


@dataclass(frozen=True)
class OrderLineRecord:
    """One Mirakl order line as the latest snapshot states it (amounts None when they cannot be read)."""

    order_line_id: str
    sku: str | None
    line_state: str | None
    ordered_quantity: int
    cancelled_quantity: int
    live_quantity: int
    price: Decimal | None = None
    shipping: Decimal | None = None
    fees: Decimal | None = None
    commission_fee: Decimal | None = None
    commission_vat: Decimal | None = None
    commission_vat_rate: Decimal | None = None
    total_commission: Decimal | None = None
    # Kept by the ledger across snapshots:
    decision: str | None = None
    imported_quantity: int | None = None
    held_quantity: int = 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "OrderLineRecord":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @property
    def to_hold(self) -> int:
        """Units cancelled after import not yet handled in Shopify."""
        return max((self.imported_quantity or 0) - self.live_quantity - self.held_quantity, 0)


@dataclass(frozen=True)
class ExceptionRecord:
    id: int
    marketplace: str
    kind: str
    record_id: str
    reason: str
    details: dict
    status: str
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "ExceptionRecord":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


# Fulfilment pushes: the Mirakl calls made for one Shopify fulfilment, each with its own outcome.
PUSH_STEPS = ("OR23", "OR24", "OR74")  # tracking, ship, invoice upload
# pending: to send; done: Mirakl accepted it; already: Mirakl had it already (e.g. OR24 on a SHIPPED order);
# skipped: not needed (no tracking, no invoice configured); failed: to retry; waiting: blocked (e.g. other lines unfulfilled);
# sending: the call was about to go out when the process stopped, so it may have reached Mirakl: check before resending.
STEP_STATES = ("pending", "sending", "done", "already", "skipped", "failed", "waiting")
STEP_STATES_TO_DO = ("pending", "sending", "failed", "waiting")
STEP_STATES_SETTLED = ("done", "already")


@dataclass(frozen=True)
class StepOutcome:
    state: str
    at: datetime | None
    error: str | None


@dataclass(frozen=True)
class FulfilmentPush:
    marketplace: str
    mirakl_order_id: str
    shopify_fulfillment_id: str
    shopify_order_id: str
    shopify_status: str | None
    fulfilment_created_at: datetime | None
    fulfilment_updated_at: datetime | None
    fulfilment_seen_at: datetime | None
    tracking_company: str | None
    tracking_number: str | None
    tracking_url: str | None
    carrier_code: str | None
    carrier_name: str | None
    carrier_url: str | None
    line_quantities: dict[str, int]
    or23: StepOutcome
    or24: StepOutcome
    or74: StepOutcome
    attempts: int
    created_at: datetime
    updated_at: datetime
    tracking_numbers: list[str] | None = None
    shipment_id: str | None = None  # the Mirakl shipment (ST01) of this parcel, with multiple shipments

    def step(self, name: str) -> StepOutcome:
        """The outcome of ``name`` (OR23, OR24 or OR74)."""
        if name not in PUSH_STEPS:
            raise KeyError(f"unknown push step {name!r}; expected one of {list(PUSH_STEPS)}")
        return getattr(self, name.lower())

    @property
    def steps_to_do(self) -> tuple[str, ...]:
        """The steps still to send, in the order they must be sent."""
        return tuple(s for s in PUSH_STEPS if self.step(s).state in STEP_STATES_TO_DO)

    @property
    def shipped(self) -> bool:
        return self.or24.state in STEP_STATES_SETTLED

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "FulfilmentPush":
        steps = {
            s.lower(): StepOutcome(row[f"{s.lower()}_state"], row[f"{s.lower()}_at"], row[f"{s.lower()}_error"])
            for s in PUSH_STEPS
        }
        plain = {name: row[name] for name in cls.__dataclass_fields__ if name not in steps}
        return cls(**plain, **steps)


@dataclass(frozen=True)
class InboxEntry:
    """One stored webhook delivery; ``id`` is the readers' cursor."""

    id: int
    webhook_id: str
    topic: str
    shop_domain: str
    api_version: str
    event_id: str | None
    triggered_at: datetime | None
    received_at: datetime
    resource_id: str | None
    shopify_order_id: str | None
    payload_json: str
    processed_at: datetime | None
    outcome: str | None

    @cached_property
    def payload(self) -> dict:
        """The delivery's JSON body (decimals as Decimal, so money stays exact)."""
        return json.loads(self.payload_json, parse_float=Decimal)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "InboxEntry":
        values = {name: row[name] for name in cls.__dataclass_fields__ if name != "payload_json"}
        return cls(**values, payload_json=row["payload"])
