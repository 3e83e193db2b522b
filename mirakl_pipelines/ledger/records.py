"""What the ledger hands back: frozen snapshots of rows, and the states they can be in."""

from dataclasses import dataclass
from datetime import datetime
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

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "OrderLink":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


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
