"""Fulfilment pushes: one row per (marketplace, Mirakl order, Shopify fulfilment) with each Mirakl step's outcome.

The row is the resume point: a push that died after OR23 finds OR23 done and OR24 pending, and
sends only OR24. Webhooks arrive duplicated and out of order, so an upsert only takes a fulfilment
version newer than the stored one, and only a change of tracking sends OR23 again.
"""

from datetime import datetime, timedelta
from typing import Mapping

import sqlalchemy as sa

from mirakl_pipelines.ledger.base import LedgerBase, require_text
from mirakl_pipelines.ledger.errors import InvalidLedgerInput, LedgerError
from mirakl_pipelines.ledger.records import (
    PUSH_STEPS,
    STEP_STATES,
    STEP_STATES_SETTLED,
    STEP_STATES_TO_DO,
    FulfilmentPush,
)
from mirakl_pipelines.ledger.tables import fulfilment_pushes as f
from mirakl_pipelines.ledger.timestamps import require_aware

# Steps whose state means a call reached Mirakl (counted in ``attempts``).
_CALLED_STATES = ("done", "already", "failed")
# Shopify fulfilment statuses that will never ship anything.
_DEAD_FULFILMENT_STATUSES = ("cancelled", "error", "failure")


class UnknownFulfilmentPush(LedgerError, LookupError):
    """A step outcome was recorded for a fulfilment the ledger has not stored."""

    def __init__(self, marketplace: str, mirakl_order_id: str, fulfillment_id: str):
        super().__init__(
            f"fulfilment {fulfillment_id!r} of order {mirakl_order_id!r} (marketplace {marketplace!r}) is not in the "
            "ledger; call upsert_fulfilment() before recording its steps"
        )


def _record(marketplace: str, mirakl_order_id: str, fulfillment_id: str) -> str:
    return f"fulfilment {fulfillment_id!r} of order {mirakl_order_id!r} (marketplace {marketplace!r})"


def _check_quantities(line_quantities, record: str) -> dict[str, int]:
    if not isinstance(line_quantities, Mapping):
        raise InvalidLedgerInput(f"{record}: line_quantities must be a mapping of Mirakl order line id to quantity")
    checked = {}
    for line, quantity in line_quantities.items():
        require_text(line, "line_quantities key (Mirakl order line id)", record)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise InvalidLedgerInput(f"{record}: quantity of line {line!r} must be an int >= 1, got {quantity!r}")
        checked[line] = quantity
    return checked


def _optional_text(value, field: str, record: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidLedgerInput(f"{record}: {field} must be a string or None, got {type(value).__name__} {value!r}")
    return value or None  # Shopify sends "" for "no tracking"; store it as absent


class FulfilmentPushes(LedgerBase):
    def upsert_fulfilment(
        self,
        marketplace: str,
        mirakl_order_id: str,
        shopify_fulfillment_id: str,
        *,
        shopify_order_id: str,
        created_at: datetime | None,
        updated_at: datetime | None,
        tracking_company: str | None,
        tracking_number: str | None,
        tracking_url: str | None,
        line_quantities: Mapping[str, int],
        status: str | None = None,
        invoice: bool = False,
        seen_at: datetime | None = None,
        tracking_numbers: list[str] | tuple[str, ...] = (),
        now: datetime,
    ) -> FulfilmentPush:
        """Store a fulfilment as Shopify shows it (``created_at``/``updated_at`` are Shopify's).

        A new row starts with OR23 and OR24 pending, and OR74 pending when ``invoice`` else skipped.
        An existing row takes the values only from a newer version, keeping every step outcome except
        that a change of tracking company, number or URL puts OR23 back to pending. Newer means a later
        ``updated_at``; Shopify's has whole seconds, so with an equal one, a later ``seen_at`` (when Shopify
        showed this version: the webhook's triggered-at, kept across redeliveries, or the sweep's read
        time). An older or equal version changes nothing. Returns the row as stored.
        """
        record = _record(marketplace, mirakl_order_id, shopify_fulfillment_id)
        for field, value in (("marketplace", marketplace), ("mirakl_order_id", mirakl_order_id),
                             ("shopify_fulfillment_id", shopify_fulfillment_id), ("shopify_order_id", shopify_order_id)):
            require_text(value, field, record)
        created_at = require_aware(created_at, "created_at", record)
        updated_at = require_aware(updated_at, "updated_at", record)
        seen_at = require_aware(seen_at, "seen_at", record)
        now = require_aware(now, "now", record, optional=False)
        tracking = {
            "tracking_company": _optional_text(tracking_company, "tracking_company", record),
            "tracking_number": _optional_text(tracking_number, "tracking_number", record),
            "tracking_url": _optional_text(tracking_url, "tracking_url", record),
        }
        quantities = _check_quantities(line_quantities, record)
        if not isinstance(invoice, bool):
            raise InvalidLedgerInput(f"{record}: invoice must be a bool, got {invoice!r}")

        stmt = self._upsert(f).values(
            marketplace=marketplace,
            mirakl_order_id=mirakl_order_id,
            shopify_fulfillment_id=shopify_fulfillment_id,
            shopify_order_id=shopify_order_id,
            shopify_status=_optional_text(status, "status", record),
            fulfilment_created_at=created_at,
            fulfilment_updated_at=updated_at,
            fulfilment_seen_at=seen_at,
            line_quantities=quantities,
            tracking_numbers=[_optional_text(n, "tracking_numbers", record) for n in tracking_numbers] or None,
            or23_state="pending",
            or24_state="pending",
            or74_state="pending" if invoice else "skipped",
            attempts=0,
            created_at=now,
            updated_at=now,
            **tracking,
        )
        new = stmt.excluded
        tracking_changed = sa.or_(*(f.c[name].is_distinct_from(new[name]) for name in tracking))
        newer = sa.or_(
            f.c.fulfilment_updated_at.is_(None),
            sa.and_(new.fulfilment_updated_at.is_not(None), new.fulfilment_updated_at > f.c.fulfilment_updated_at),
            sa.and_(
                new.fulfilment_updated_at == f.c.fulfilment_updated_at,
                new.fulfilment_seen_at.is_not(None),
                sa.or_(f.c.fulfilment_seen_at.is_(None), new.fulfilment_seen_at > f.c.fulfilment_seen_at),
            ),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[f.c.marketplace, f.c.mirakl_order_id, f.c.shopify_fulfillment_id],
            set_={
                "shopify_order_id": new.shopify_order_id,
                "shopify_status": sa.func.coalesce(new.shopify_status, f.c.shopify_status),
                "fulfilment_created_at": sa.func.coalesce(f.c.fulfilment_created_at, new.fulfilment_created_at),
                "fulfilment_updated_at": new.fulfilment_updated_at,
                "fulfilment_seen_at": new.fulfilment_seen_at,
                **{name: new[name] for name in tracking},
                "line_quantities": new.line_quantities,
                "tracking_numbers": new.tracking_numbers,
                "or23_state": sa.case((tracking_changed, "pending"), else_=f.c.or23_state),
                "or23_at": sa.case((tracking_changed, new.updated_at), else_=f.c.or23_at),
                "or23_error": sa.case((tracking_changed, sa.null()), else_=f.c.or23_error),
                "updated_at": new.updated_at,
            },
            where=newer,
        )
        with self._write() as conn:
            conn.execute(stmt)
            row = conn.execute(sa.select(f).where(*_key(marketplace, mirakl_order_id, shopify_fulfillment_id)))
            return FulfilmentPush.from_row(row.mappings().one())

    def record_step(
        self,
        marketplace: str,
        mirakl_order_id: str,
        fulfillment_id: str,
        step: str,
        state: str,
        *,
        now: datetime,
        error: str | None = None,
        carrier_code: str | None = None,
        carrier_name: str | None = None,
        carrier_url: str | None = None,
        shipment_id: str | None = None,
    ) -> FulfilmentPush:
        """Record a step's outcome (``error`` replaces the last one; None clears it); returns the row.

        With OR23, pass the carrier actually sent: ``carrier_code`` for a registered carrier, or
        ``carrier_name`` + ``carrier_url`` for an unregistered one; giving any replaces all three.
        ``shipment_id``: the Mirakl shipment created for the parcel (multiple shipments).
        """
        record = _record(marketplace, mirakl_order_id, fulfillment_id)
        values = _step_values(record, step, state, now, error,
                              {"carrier_code": carrier_code, "carrier_name": carrier_name, "carrier_url": carrier_url})
        if shipment_id is not None:
            values["shipment_id"] = require_text(shipment_id, "shipment_id", record)
        if state in _CALLED_STATES:
            values["attempts"] = f.c.attempts + 1
        stmt = sa.update(f).where(*_key(marketplace, mirakl_order_id, fulfillment_id)).values(**values).returning(*f.c)
        with self._write() as conn:
            row = conn.execute(stmt).mappings().one_or_none()
        if row is None:
            raise UnknownFulfilmentPush(marketplace, mirakl_order_id, fulfillment_id)
        return FulfilmentPush.from_row(row)

    def claim_step(
        self,
        seen: FulfilmentPush,
        step: str,
        *,
        now: datetime,
        stale_after: timedelta,
        carrier_code: str | None = None,
        carrier_name: str | None = None,
        carrier_url: str | None = None,
    ) -> bool:
        """Mark ``step`` of ``seen`` as ``sending`` unless another run got there first; True when the caller may send.

        Compare-and-set on the step's state and time as they were in ``seen``: of two runs pushing the same
        fulfilment, one wins and the other leaves it. A step already settled is never claimed; one another
        run left ``sending`` is taken over only once older than ``stale_after`` (that run died mid-call).
        """
        record = _record(seen.marketplace, seen.mirakl_order_id, seen.shopify_fulfillment_id)
        values = _step_values(record, step, "sending", now, None,
                              {"carrier_code": carrier_code, "carrier_name": carrier_name, "carrier_url": carrier_url})
        outcome = seen.step(step)
        if outcome.state in STEP_STATES_SETTLED:
            return False
        if outcome.state == "sending" and outcome.at is not None and now - outcome.at < stale_after:
            return False
        prefix = step.lower()
        stmt = sa.update(f).where(
            *_key(seen.marketplace, seen.mirakl_order_id, seen.shopify_fulfillment_id),
            f.c[f"{prefix}_state"] == outcome.state,
            f.c[f"{prefix}_at"].is_(None) if outcome.at is None else f.c[f"{prefix}_at"] == outcome.at,
        ).values(**values)
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def get_pushes(self, marketplace: str, mirakl_order_id: str) -> list[FulfilmentPush]:
        """Every fulfilment stored for an order, oldest first."""
        query = sa.select(f).where(f.c.marketplace == marketplace, f.c.mirakl_order_id == mirakl_order_id)
        return self._pushes(query)

    def pushes_to_do(self, marketplace: str) -> list[FulfilmentPush]:
        """Fulfilments with a step pending, failed or waiting, oldest first."""
        to_do = sa.or_(*(f.c[f"{s.lower()}_state"].in_(STEP_STATES_TO_DO) for s in PUSH_STEPS))
        return self._pushes(sa.select(f).where(f.c.marketplace == marketplace, to_do))

    def unshipped(self, marketplace: str, *, older_than: datetime) -> list[FulfilmentPush]:
        """Live fulfilments created before ``older_than`` whose OR24 is not done, already or skipped (oldest first).

        Skipped means the Mirakl order will never ship (refused, canceled): the reason is in ``or24.error``.
        """
        older_than = require_aware(older_than, "older_than", f"marketplace {marketplace!r}", optional=False)
        query = sa.select(f).where(
            f.c.marketplace == marketplace,
            f.c.or24_state.not_in((*STEP_STATES_SETTLED, "skipped")),
            sa.func.coalesce(f.c.fulfilment_created_at, f.c.created_at) < older_than,
            sa.or_(f.c.shopify_status.is_(None), f.c.shopify_status.not_in(_DEAD_FULFILMENT_STATUSES)),
        )
        return self._pushes(query)

    def _pushes(self, query) -> list[FulfilmentPush]:
        query = query.order_by(
            sa.func.coalesce(f.c.fulfilment_created_at, f.c.created_at), f.c.mirakl_order_id, f.c.shopify_fulfillment_id
        )
        with self._read() as conn:
            return [FulfilmentPush.from_row(row) for row in conn.execute(query).mappings()]


def _step_values(record: str, step: str, state: str, now: datetime, error: str | None, carrier: dict) -> dict:
    """The columns a step outcome writes; the carrier columns only when a carrier is given (all three replaced)."""
    if step not in PUSH_STEPS:
        raise InvalidLedgerInput(f"{record}: step {step!r} is not one of {list(PUSH_STEPS)}")
    if state not in STEP_STATES:
        raise InvalidLedgerInput(f"{record}: {step} state {state!r} is not one of {list(STEP_STATES)}")
    now = require_aware(now, "now", record, optional=False)
    prefix = step.lower()
    values = {f"{prefix}_state": state, f"{prefix}_at": now, f"{prefix}_error": _optional_text(error, "error", record),
              "updated_at": now}
    if any(value is not None for value in carrier.values()):
        values.update({name: _optional_text(value, name, record) for name, value in carrier.items()})
    return values


def _key(marketplace: str, mirakl_order_id: str, fulfillment_id: str):
    return (
        f.c.marketplace == marketplace,
        f.c.mirakl_order_id == mirakl_order_id,
        f.c.shopify_fulfillment_id == fulfillment_id,
    )
