"""Order lines: each Mirakl line's live units and amounts, the OR21 decision sent, the units imported into
Shopify and the cancelled units handled there; and what follows from them: the stock promised to accepted
orders not yet in Shopify, and the imported orders with a follow-up to do."""

from datetime import datetime
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

import sqlalchemy as sa

from mirakl_pipelines.ledger.base import LedgerBase
from mirakl_pipelines.ledger.errors import InvalidLedgerInput
from mirakl_pipelines.ledger.records import (
    ADDRESS_STATES, LINE_DECISIONS, PAYMENT_STATES, WAITING_ACCEPTANCE, OrderLineRecord, OrderLink,
)
from mirakl_pipelines.ledger.tables import order_lines as lines_t
from mirakl_pipelines.ledger.tables import order_links as links_t
from mirakl_pipelines.ledger.tables import stock_sent as stock_sent_t
from mirakl_pipelines.ledger.timestamps import require_aware

# Mirakl states after which an order no longer holds back stock it has not yet taken in Shopify.
_FINISHED_STATES = ("REFUSED", "CANCELED", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED")
# Snapshot columns: replaced by every newer snapshot. The others (decision, imported, held) are the ledger's own.
_SNAPSHOT_COLUMNS = ("sku", "line_state", "ordered_quantity", "cancelled_quantity", "live_quantity", "price", "shipping",
                     "fees", "commission_fee", "commission_vat", "commission_vat_rate", "total_commission")
_MONEY_COLUMNS = _SNAPSHOT_COLUMNS[5:]


def write_lines(conn: sa.Connection, upsert, marketplace: str, mirakl_order_id: str,
                lines: Sequence[OrderLineRecord], now: datetime) -> None:
    """Upsert a snapshot's lines inside the caller's transaction (observe_order), keeping the ledger's own columns."""
    if not lines:
        return
    for line in lines:
        for name in _MONEY_COLUMNS:
            value = getattr(line, name)
            if value is not None and (isinstance(value, (float, bool)) or not isinstance(value, (Decimal, int))):
                raise InvalidLedgerInput(f"order {mirakl_order_id!r} line {line.order_line_id!r}: {name} money must be "
                                         f"a Decimal, got {type(value).__name__} {value!r}")
    rows = [{"marketplace": marketplace, "mirakl_order_id": mirakl_order_id, "order_line_id": line.order_line_id,
             **{name: getattr(line, name) for name in _SNAPSHOT_COLUMNS}, "held_quantity": 0, "updated_at": now}
            for line in lines]
    stmt = upsert(lines_t).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[lines_t.c.marketplace, lines_t.c.mirakl_order_id, lines_t.c.order_line_id],
        set_={**{name: stmt.excluded[name] for name in _SNAPSHOT_COLUMNS}, "updated_at": stmt.excluded.updated_at},
    )
    conn.execute(stmt)


class OrderLineBook(LedgerBase):
    def get_order_lines(self, marketplace: str, mirakl_order_id: str) -> dict[str, OrderLineRecord]:
        """The order's lines as last recorded, keyed by line id."""
        query = sa.select(lines_t).where(*_order(marketplace, mirakl_order_id)).order_by(lines_t.c.order_line_id)
        with self._read() as conn:
            return {row["order_line_id"]: OrderLineRecord.from_row(row) for row in conn.execute(query).mappings()}

    def record_line_decisions(self, marketplace: str, mirakl_order_id: str, decisions: Mapping[str, bool], *,
                              now: datetime) -> None:
        """The OR21 decision sent per line: accepted lines hold stock back until the order is in Shopify."""
        now = require_aware(now, "now", f"order {mirakl_order_id!r}", optional=False)
        with self._write() as conn:
            for line_id, accepted in decisions.items():
                conn.execute(sa.update(lines_t).where(*_order(marketplace, mirakl_order_id),
                                                      lines_t.c.order_line_id == line_id)
                             .values(decision=LINE_DECISIONS[0] if accepted else LINE_DECISIONS[1], updated_at=now))

    def record_held(self, marketplace: str, mirakl_order_id: str, held: Mapping[str, int], *, now: datetime) -> None:
        """Units of each line whose cancellation is now handled in Shopify (a running total per line)."""
        now = require_aware(now, "now", f"order {mirakl_order_id!r}", optional=False)
        with self._write() as conn:
            for line_id, quantity in held.items():
                if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
                    raise InvalidLedgerInput(f"order {mirakl_order_id!r} line {line_id!r}: held quantity must be a "
                                             f"whole number >= 0, got {quantity!r}")
                conn.execute(sa.update(lines_t).where(*_order(marketplace, mirakl_order_id),
                                                      lines_t.c.order_line_id == line_id)
                             .values(held_quantity=quantity, updated_at=now))

    def record_payment(self, marketplace: str, mirakl_order_id: str, state: str, *, now: datetime) -> None:
        self._follow_up_state(marketplace, mirakl_order_id, "payment_state", state, PAYMENT_STATES, now)

    def record_address(self, marketplace: str, mirakl_order_id: str, state: str, *, now: datetime) -> None:
        self._follow_up_state(marketplace, mirakl_order_id, "address_state", state, ADDRESS_STATES, now)

    def reserved_units(self, marketplaces: Iterable[str], *, waiting_in: Iterable[str] = ()) -> dict[str, int]:
        """Units per SKU promised to Mirakl orders accepted (OR21 sent) but not yet created in Shopify, whose
        `available` does not count them yet: acceptance must not promise them twice, nor stock publish them.

        `waiting_in`: marketplaces whose orders waiting for acceptance will be accepted without a person (auto
        mode): their lines not decided yet count too (the stock flow's view; acceptance itself decides them)."""
        codes, waiting = list(marketplaces), list(waiting_in)
        promised = sa.and_(links_t.c.marketplace.in_(codes), links_t.c.acceptance_state.in_(("accepted", "partial")),
                           lines_t.c.decision == "accepted")
        if waiting:
            undecided = sa.and_(links_t.c.marketplace.in_(waiting), links_t.c.mirakl_state == WAITING_ACCEPTANCE,
                                links_t.c.acceptance_state.in_(("pending", "failed")), lines_t.c.decision.is_(None))
            promised = sa.or_(promised, undecided)
        query = (
            sa.select(lines_t.c.sku, sa.func.sum(lines_t.c.live_quantity))
            .select_from(lines_t.join(links_t, sa.and_(lines_t.c.marketplace == links_t.c.marketplace,
                                                       lines_t.c.mirakl_order_id == links_t.c.mirakl_order_id)))
            .where(
                promised,
                links_t.c.import_state != "imported",
                sa.or_(links_t.c.mirakl_state.is_(None), links_t.c.mirakl_state.not_in(_FINISHED_STATES)),
                lines_t.c.sku.is_not(None),
            )
            .group_by(lines_t.c.sku)
        )
        with self._read() as conn:
            return {sku: int(units) for sku, units in conn.execute(query) if units}

    def units_in_flight(self, marketplace: str) -> dict[str, int]:
        """Units per SKU of the marketplace's orders placed on Mirakl after the stock line that set the offer's
        quantity was sent, and not in Shopify yet: Mirakl took them off the offer itself, Shopify's `available` does
        not show them, so they explain an offer showing less than the stock computed from Shopify."""
        sent = stock_sent_t
        query = (
            sa.select(lines_t.c.sku, sa.func.sum(lines_t.c.live_quantity))
            .select_from(lines_t.join(links_t, sa.and_(lines_t.c.marketplace == links_t.c.marketplace,
                                                       lines_t.c.mirakl_order_id == links_t.c.mirakl_order_id))
                         .join(sent, sa.and_(sent.c.marketplace == lines_t.c.marketplace, sent.c.offer_sku == lines_t.c.sku)))
            .where(links_t.c.marketplace == marketplace, links_t.c.mirakl_created_at >= sent.c.sent_at,
                   links_t.c.import_state != "imported")
            .group_by(lines_t.c.sku)
        )
        with self._read() as conn:
            return {sku: int(units) for sku, units in conn.execute(query) if units}

    def follow_ups(self, marketplace: str) -> list[OrderLink]:
        """Imported orders with something to bring into Shopify: a debit to mark paid, an address to complete,
        cancelled units to hold."""
        to_hold = sa.exists().where(
            lines_t.c.marketplace == links_t.c.marketplace, lines_t.c.mirakl_order_id == links_t.c.mirakl_order_id,
            sa.func.coalesce(lines_t.c.imported_quantity, 0) - lines_t.c.live_quantity > lines_t.c.held_quantity,
        )
        query = sa.select(links_t).where(
            links_t.c.marketplace == marketplace,
            links_t.c.import_state == "imported",
            sa.or_(
                sa.and_(links_t.c.payment_state == "pending", links_t.c.mirakl_paid.is_(True),
                        links_t.c.mirakl_state.not_in(("CANCELED", "REFUSED"))),  # a dead order is not marked paid
                sa.and_(links_t.c.address_state == "missing", links_t.c.mirakl_has_address.is_(True)),
                to_hold,
            ),
        ).order_by(links_t.c.mirakl_order_id)
        with self._read() as conn:
            return [OrderLink.from_row(row) for row in conn.execute(query).mappings()]

    def _follow_up_state(self, marketplace: str, mirakl_order_id: str, column: str, state: str,
                         allowed: tuple[str, ...], now: datetime) -> None:
        if state not in allowed:
            raise InvalidLedgerInput(f"order {mirakl_order_id!r}: {column} {state!r} is not one of {list(allowed)}")
        now = require_aware(now, "now", f"order {mirakl_order_id!r}", optional=False)
        with self._write() as conn:
            conn.execute(sa.update(links_t).where(links_t.c.marketplace == marketplace,
                                                  links_t.c.mirakl_order_id == mirakl_order_id)
                         .values({column: state, "updated_at": now}))


def set_imported_quantities(conn: sa.Connection, marketplace: str, mirakl_order_id: str,
                            quantities: Mapping[str, int], now: datetime) -> None:
    """Units of each line created in Shopify (inside record_import's transaction)."""
    for line_id, quantity in quantities.items():
        conn.execute(sa.update(lines_t).where(*_order(marketplace, mirakl_order_id), lines_t.c.order_line_id == line_id)
                     .values(imported_quantity=quantity, updated_at=now))


def _order(marketplace: str, mirakl_order_id: str):
    return (lines_t.c.marketplace == marketplace, lines_t.c.mirakl_order_id == mirakl_order_id)
