"""Order links: one row per (marketplace, Mirakl order) with its import and acceptance state."""

from datetime import date, datetime
from typing import Iterable, Mapping, Sequence

import sqlalchemy as sa

from mirakl_pipelines.ledger.base import LedgerBase, require_text
from mirakl_pipelines.ledger.errors import InvalidLedgerInput, UnknownOrderLink
from mirakl_pipelines.ledger.records import (
    ACCEPTANCE_RETRYABLE,
    ACCEPTANCE_STATES,
    IMPORT_STATES,
    WAITING_ACCEPTANCE,
    ADDRESS_STATES,
    PAYMENT_STATES,
    OrderLineRecord,
    OrderLink,
)
from mirakl_pipelines.ledger.order_lines import set_imported_quantities, write_lines
from mirakl_pipelines.ledger.tables import order_links as t
from mirakl_pipelines.ledger.timestamps import UtcDateTime, require_aware

_IN_CHUNK = 500  # ids per IN (…) list, well under every backend's parameter limit
_ACCEPTED_STATES = ("accepted", "partial")


def _record(marketplace: str, mirakl_order_id: str) -> str:
    return f"order {mirakl_order_id!r} of marketplace {marketplace!r}"


class OrderLinks(LedgerBase):
    def observe_order(
        self,
        marketplace: str,
        mirakl_order_id: str,
        *,
        commercial_id: str | None,
        mirakl_state: str | None,
        created_at: datetime | None,
        updated_at: datetime | None,
        acceptance_deadline: datetime | None,
        eligible: bool,
        skip_reason: str | None,
        now: datetime,
        snapshot_day: date | None = None,
        mirakl_paid: bool | None = None,
        mirakl_has_address: bool | None = None,
        lines: Sequence[OrderLineRecord] = (),
    ) -> OrderLink:
        """Record what Mirakl says about an order (and its lines); keeps import/acceptance outcomes already recorded.

        A snapshot older than the stored one (``updated_at`` earlier) changes nothing, so
        overlapping look-back windows cannot roll an order back. `snapshot_day` is the partition
        whose raw file holds this snapshot.
        """
        record = _record(marketplace, mirakl_order_id)
        require_text(marketplace, "marketplace", record)
        require_text(mirakl_order_id, "mirakl_order_id", record)
        if not isinstance(eligible, bool):
            raise InvalidLedgerInput(f"{record}: eligible must be a bool, got {eligible!r}")
        if eligible and skip_reason:
            raise InvalidLedgerInput(f"{record}: an eligible order has no skip_reason (got {skip_reason!r})")
        created_at = require_aware(created_at, "created_at", record)
        updated_at = require_aware(updated_at, "updated_at", record)
        acceptance_deadline = require_aware(acceptance_deadline, "acceptance_deadline", record)
        now = require_aware(now, "now", record, optional=False)

        stmt = self._upsert(t).values(
            marketplace=marketplace,
            mirakl_order_id=mirakl_order_id,
            commercial_id=commercial_id,
            mirakl_state=mirakl_state,
            eligible=eligible,
            skip_reason=skip_reason,
            import_state="pending" if eligible else "skipped",
            acceptance_state="pending" if mirakl_state == WAITING_ACCEPTANCE else "not_applicable",
            mirakl_created_at=created_at,
            mirakl_updated_at=updated_at,
            acceptance_deadline=acceptance_deadline,
            first_seen_at=now,
            eligible_since=now if eligible else None,
            updated_at=now,
            snapshot_day=snapshot_day,
            mirakl_paid=mirakl_paid,
            mirakl_has_address=mirakl_has_address,
        )
        new = stmt.excluded
        if eligible:
            import_state = sa.case((t.c.import_state == "skipped", "pending"), else_=t.c.import_state)
            eligible_since = sa.func.coalesce(t.c.eligible_since, new.eligible_since)
        else:
            import_state = sa.case((t.c.import_state == "imported", "imported"), else_="skipped")
            eligible_since = t.c.eligible_since
        if mirakl_state == WAITING_ACCEPTANCE:
            acceptance_state = sa.case((t.c.acceptance_state == "not_applicable", "pending"), else_=t.c.acceptance_state)
        else:
            acceptance_state = t.c.acceptance_state
        not_older = sa.or_(
            t.c.mirakl_updated_at.is_(None),
            new.mirakl_updated_at.is_(None),
            new.mirakl_updated_at >= t.c.mirakl_updated_at,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.marketplace, t.c.mirakl_order_id],
            set_={
                "commercial_id": sa.func.coalesce(new.commercial_id, t.c.commercial_id),
                "mirakl_state": new.mirakl_state,
                "eligible": new.eligible,
                "skip_reason": new.skip_reason,
                "import_state": import_state,
                "acceptance_state": acceptance_state,
                "mirakl_created_at": sa.func.coalesce(new.mirakl_created_at, t.c.mirakl_created_at),
                "mirakl_updated_at": new.mirakl_updated_at,
                "acceptance_deadline": new.acceptance_deadline,
                "eligible_since": eligible_since,
                "updated_at": new.updated_at,
                "snapshot_day": sa.func.coalesce(new.snapshot_day, t.c.snapshot_day),
                "mirakl_paid": new.mirakl_paid,
                "mirakl_has_address": new.mirakl_has_address,
            },
            where=not_older,
        )
        with self._write() as conn:
            conn.execute(stmt)
            row = conn.execute(sa.select(t).where(*_key(marketplace, mirakl_order_id))).mappings().one()
            if row["mirakl_updated_at"] == updated_at:  # this snapshot is the one kept: its lines too
                write_lines(conn, self._upsert, marketplace, mirakl_order_id, lines, now)
        return OrderLink.from_row(row)

    def get_order_links(self, marketplace: str, ids: Iterable[str]) -> dict[str, OrderLink]:
        """The links among ``ids`` that exist, keyed by Mirakl order id."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, OrderLink] = {}
        with self._read() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start : start + _IN_CHUNK]
                query = sa.select(t).where(t.c.marketplace == marketplace, t.c.mirakl_order_id.in_(chunk))
                for row in conn.execute(query).mappings():
                    found[row["mirakl_order_id"]] = OrderLink.from_row(row)
        return found

    def record_import(
        self,
        marketplace: str,
        mirakl_order_id: str,
        *,
        shopify_order_id: str,
        shopify_order_name: str | None,
        shopify_legacy_id: str | None,
        now: datetime,
        payment_state: str | None = None,
        address_state: str | None = None,
        imported_quantities: Mapping[str, int] | None = None,
    ) -> None:
        """The order now exists in Shopify: how it was booked (paid or pending, with or without its address)
        and how many units of each Mirakl line it holds."""
        record = _record(marketplace, mirakl_order_id)
        require_text(shopify_order_id, "shopify_order_id", record)
        now = require_aware(now, "now", record, optional=False)
        if payment_state is not None and payment_state not in PAYMENT_STATES:
            raise InvalidLedgerInput(f"{record}: payment_state {payment_state!r} is not one of {list(PAYMENT_STATES)}")
        if address_state is not None and address_state not in ADDRESS_STATES:
            raise InvalidLedgerInput(f"{record}: address_state {address_state!r} is not one of {list(ADDRESS_STATES)}")
        values = dict(
            import_state="imported",
            shopify_order_id=shopify_order_id,
            shopify_order_name=shopify_order_name,
            shopify_legacy_id=None if shopify_legacy_id is None else str(shopify_legacy_id),
            imported_at=sa.func.coalesce(t.c.imported_at, sa.literal(now, UtcDateTime)),
            updated_at=now,
        )
        if payment_state is not None:
            values["payment_state"] = payment_state
        if address_state is not None:
            values["address_state"] = address_state
        with self._write() as conn:
            result = conn.execute(sa.update(t).where(*_key(marketplace, mirakl_order_id)).values(**values))
            if result.rowcount == 0:
                raise UnknownOrderLink(marketplace, mirakl_order_id)
            set_imported_quantities(conn, marketplace, mirakl_order_id, imported_quantities or {}, now)

    def record_import_failure(self, marketplace: str, mirakl_order_id: str, *, now: datetime) -> None:
        """Mark the import failed (to be retried); an order already imported stays imported."""
        now = require_aware(now, "now", _record(marketplace, mirakl_order_id), optional=False)
        self._update_link(
            marketplace,
            mirakl_order_id,
            import_state=sa.case((t.c.import_state == "imported", "imported"), else_="failed"),
            updated_at=now,
        )

    def record_acceptance(self, marketplace: str, mirakl_order_id: str, *, state: str, now: datetime) -> None:
        record = _record(marketplace, mirakl_order_id)
        if state not in ACCEPTANCE_STATES:
            raise InvalidLedgerInput(f"{record}: acceptance state {state!r} is not one of {list(ACCEPTANCE_STATES)}")
        now = require_aware(now, "now", record, optional=False)
        values = {"acceptance_state": state, "updated_at": now}
        if state in _ACCEPTED_STATES:
            values["accepted_at"] = sa.func.coalesce(t.c.accepted_at, sa.literal(now, UtcDateTime))
        self._update_link(marketplace, mirakl_order_id, **values)

    def pending_imports(self, marketplace: str, *, eligible_before: datetime) -> list[OrderLink]:
        """Eligible orders not yet imported that became eligible before ``eligible_before`` (oldest first)."""
        eligible_before = require_aware(eligible_before, "eligible_before", f"marketplace {marketplace!r}", optional=False)
        query = (
            sa.select(t)
            .where(
                t.c.marketplace == marketplace,
                t.c.eligible.is_(True),
                t.c.import_state != "imported",
                t.c.eligible_since < eligible_before,
            )
            .order_by(t.c.eligible_since, t.c.mirakl_order_id)
        )
        return self._links(query)

    def awaiting_acceptance(self, marketplace: str) -> list[OrderLink]:
        """Orders Mirakl still shows WAITING_ACCEPTANCE whose acceptance is not done (nearest deadline first)."""
        query = (
            sa.select(t)
            .where(
                t.c.marketplace == marketplace,
                t.c.mirakl_state == WAITING_ACCEPTANCE,
                t.c.acceptance_state.in_(ACCEPTANCE_RETRYABLE),
            )
            .order_by(sa.nulls_last(t.c.acceptance_deadline.asc()), t.c.mirakl_order_id)
        )
        return self._links(query)

    def count_links(self, marketplace: str | None = None) -> dict[str, int]:
        """Number of links per import state (every state present, zero when none)."""
        query = sa.select(t.c.import_state, sa.func.count()).group_by(t.c.import_state)
        if marketplace is not None:
            query = query.where(t.c.marketplace == marketplace)
        counts = dict.fromkeys(IMPORT_STATES, 0)
        with self._read() as conn:
            for state, count in conn.execute(query):
                counts[state] = count
        return counts

    def _links(self, query) -> list[OrderLink]:
        with self._read() as conn:
            return [OrderLink.from_row(row) for row in conn.execute(query).mappings()]

    def _update_link(self, marketplace: str, mirakl_order_id: str, **values) -> None:
        with self._write() as conn:
            result = conn.execute(sa.update(t).where(*_key(marketplace, mirakl_order_id)).values(**values))
            if result.rowcount == 0:
                raise UnknownOrderLink(marketplace, mirakl_order_id)


def _key(marketplace: str, mirakl_order_id: str):
    return (t.c.marketplace == marketplace, t.c.mirakl_order_id == mirakl_order_id)
