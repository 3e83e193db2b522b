"""Order lines on both backends: snapshots with exact money, decisions, reservations and follow-ups."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from mirakl_pipelines.ledger import InvalidLedgerInput, OrderLineRecord

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
D = Decimal


def line(line_id, sku="SKU-A", ordered=2, cancelled=0, live=None, state="WAITING_ACCEPTANCE", **money):
    return OrderLineRecord(order_line_id=line_id, sku=sku, line_state=state, ordered_quantity=ordered,
                           cancelled_quantity=cancelled, live_quantity=ordered - cancelled if live is None else live,
                           **money)


def observe(ledger, order_id, lines, *, marketplace="mk_a", state="WAITING_ACCEPTANCE", updated=T0, **flags):
    return ledger.observe_order(marketplace, order_id, commercial_id=None, mirakl_state=state, created_at=T0,
                                updated_at=updated, acceptance_deadline=None, eligible=True, skip_reason=None,
                                now=updated, lines=lines, **flags)


def test_lines_keep_exact_money_and_follow_newer_snapshots_only(ledger):
    observe(ledger, "O-1", [line("O-1-1", price=D("19.99"), commission_fee=D("2.9985"), commission_vat_rate=D("20"))],
            snapshot_day=date(2026, 3, 2), mirakl_paid=False)
    (got,) = ledger.get_order_lines("mk_a", "O-1").values()
    assert (got.price, got.commission_fee, got.commission_vat_rate) == (D("19.99"), D("2.9985"), D("20"))
    later = T0 + timedelta(minutes=5)
    link = observe(ledger, "O-1", [line("O-1-1", cancelled=1, price=D("9.99"))], updated=later, mirakl_paid=True)
    assert link.snapshot_day == date(2026, 3, 2)  # kept: no new day given
    assert link.mirakl_paid is True
    observe(ledger, "O-1", [line("O-1-1", cancelled=0, price=D("19.99"))], updated=T0)  # an older snapshot: ignored
    (got,) = ledger.get_order_lines("mk_a", "O-1").values()
    assert (got.cancelled_quantity, got.live_quantity, got.price) == (1, 1, D("9.99"))


def test_money_refuses_floats(ledger):
    with pytest.raises(InvalidLedgerInput, match="money must be a Decimal"):
        observe(ledger, "O-F", [line("O-F-1", price=19.99)])


def test_reserved_units_count_accepted_orders_not_yet_in_shopify_across_marketplaces(ledger):
    observe(ledger, "A-1", [line("A-1-1", sku="SHOE", ordered=2), line("A-1-2", sku="LAMP", ordered=1)])
    observe(ledger, "B-1", [line("B-1-1", sku="SHOE", ordered=3)], marketplace="mk_b")
    observe(ledger, "A-2", [line("A-2-1", sku="SHOE", ordered=5)])  # not decided yet: not reserved
    for marketplace, order_id, decisions, state in [("mk_a", "A-1", {"A-1-1": True, "A-1-2": False}, "partial"),
                                                   ("mk_b", "B-1", {"B-1-1": True}, "accepted")]:
        ledger.record_line_decisions(marketplace, order_id, decisions, now=T0)
        ledger.record_acceptance(marketplace, order_id, state=state, now=T0)
    assert ledger.reserved_units(["mk_a", "mk_b"]) == {"SHOE": 5}
    assert ledger.reserved_units(["mk_a"]) == {"SHOE": 2}
    ledger.record_import("mk_b", "B-1", shopify_order_id="gid://shopify/Order/1", shopify_order_name="#1",
                         shopify_legacy_id="1", now=T0, imported_quantities={"B-1-1": 3})
    assert ledger.reserved_units(["mk_a", "mk_b"]) == {"SHOE": 2}  # in Shopify now: its stock counts it
    observe(ledger, "A-1", [line("A-1-1", sku="SHOE", ordered=2, state="CANCELED", live=0)], state="CANCELED",
            updated=T0 + timedelta(minutes=1))
    assert ledger.reserved_units(["mk_a", "mk_b"]) == {}


def test_stock_also_counts_orders_waiting_for_an_automatic_acceptance(ledger):
    observe(ledger, "A-1", [line("A-1-1", sku="SHOE", ordered=2)])  # waiting, nothing decided yet
    observe(ledger, "B-1", [line("B-1-1", sku="SHOE", ordered=3)], marketplace="mk_b")
    assert ledger.reserved_units(["mk_a", "mk_b"]) == {}  # acceptance's view: only what it promised
    assert ledger.reserved_units(["mk_a", "mk_b"], waiting_in=["mk_a"]) == {"SHOE": 2}  # mk_b accepts by hand
    ledger.record_line_decisions("mk_a", "A-1", {"A-1-1": False}, now=T0)
    ledger.record_acceptance("mk_a", "A-1", state="refused", now=T0)
    assert ledger.reserved_units(["mk_a", "mk_b"], waiting_in=["mk_a"]) == {}


def test_units_in_flight_count_orders_placed_after_the_stock_line_was_sent_and_not_in_shopify(ledger):
    import pandas as pd

    sent = pd.DataFrame({"offer_sku": ["SHOE", "LAMP"], "quantity": [5, 5]})
    ledger.record_stock_import("mk_a", "I-1", mode="full", run_id=None, lines=sent, snapshot_at=T0, now=T0)
    observe(ledger, "A-1", [line("A-1-1", sku="SHOE", ordered=2), line("A-1-2", sku="HAT", ordered=1)])  # at T0
    observe(ledger, "A-0", [line("A-0-1", sku="LAMP", ordered=1)])
    ledger.record_import("mk_a", "A-0", shopify_order_id="gid://shopify/Order/1", shopify_order_name="#1",
                         shopify_legacy_id="1", now=T0, imported_quantities={"A-0-1": 1})  # Shopify shows it now
    observe(ledger, "B-1", [line("B-1-1", sku="SHOE", ordered=3)], marketplace="mk_b")
    assert ledger.units_in_flight("mk_a") == {"SHOE": 2}
    later = T0 + timedelta(seconds=1)
    ledger.record_stock_import("mk_a", "I-2", mode="delta", run_id=None, lines=sent.iloc[:1], snapshot_at=later, now=later)
    assert ledger.units_in_flight("mk_a") == {}  # the new line set the offer after that order


def test_follow_ups_find_debits_addresses_and_cancellations_to_bring_into_shopify(ledger):
    def imported(order_id, **kwargs):
        observe(ledger, order_id, [line(f"{order_id}-1", state="SHIPPING")], state="SHIPPING", mirakl_paid=False,
                mirakl_has_address=False)
        ledger.record_import("mk_a", order_id, shopify_order_id=f"gid://shopify/Order/{order_id}", shopify_order_name=None,
                             shopify_legacy_id=None, now=T0, imported_quantities={f"{order_id}-1": 2}, **kwargs)

    imported("PAY", payment_state="pending", address_state="complete")
    imported("ADDR", payment_state="paid", address_state="missing")
    imported("HOLD", payment_state="paid", address_state="complete")
    imported("NOTHING", payment_state="pending", address_state="complete")
    assert ledger.follow_ups("mk_a") == []  # nothing new from Mirakl yet
    later = T0 + timedelta(minutes=3)
    observe(ledger, "PAY", [line("PAY-1", state="SHIPPING")], state="SHIPPING", updated=later, mirakl_paid=True)
    observe(ledger, "ADDR", [line("ADDR-1", state="SHIPPING")], state="SHIPPING", updated=later, mirakl_has_address=True)
    observe(ledger, "HOLD", [line("HOLD-1", cancelled=1, state="SHIPPING")], state="SHIPPING", updated=later)
    assert [link.mirakl_order_id for link in ledger.follow_ups("mk_a")] == ["ADDR", "HOLD", "PAY"]
    assert ledger.get_order_lines("mk_a", "HOLD")["HOLD-1"].to_hold == 1
    ledger.record_payment("mk_a", "PAY", "paid", now=later)
    ledger.record_address("mk_a", "ADDR", "complete", now=later)
    ledger.record_held("mk_a", "HOLD", {"HOLD-1": 1}, now=later)
    assert ledger.follow_ups("mk_a") == []
    with pytest.raises(InvalidLedgerInput):
        ledger.record_payment("mk_a", "PAY", "maybe", now=later)
