"""Sync watermarks (never backwards) and the persistent call budget, on both backends."""

from datetime import date, datetime, timedelta, timezone

import pytest

from mirakl_pipelines.ledger import InvalidLedgerInput, Ledger

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
DAY = date(2026, 3, 2)


def test_watermark_is_none_until_set(ledger):
    assert ledger.get_watermark("orders", "decathlon_fr", DAY) is None


def test_watermark_moves_forward_only(ledger):
    ledger.set_watermark("orders", "decathlon_fr", DAY, T0)
    ledger.set_watermark("orders", "decathlon_fr", DAY, T0 + timedelta(minutes=15))
    assert ledger.get_watermark("orders", "decathlon_fr", DAY) == T0 + timedelta(minutes=15)
    ledger.set_watermark("orders", "decathlon_fr", DAY, T0 + timedelta(minutes=5))
    assert ledger.get_watermark("orders", "decathlon_fr", DAY) == T0 + timedelta(minutes=15)


def test_watermarks_are_per_flow_marketplace_and_day(ledger):
    ledger.set_watermark("orders", "decathlon_fr", DAY, T0)
    ledger.set_watermark("refunds", "decathlon_fr", DAY, T0 + timedelta(hours=1))
    ledger.set_watermark("orders", "carrefour_fr", DAY, T0 + timedelta(hours=2))
    ledger.set_watermark("orders", "decathlon_fr", DAY + timedelta(days=1), T0 + timedelta(hours=3))
    assert ledger.get_watermark("orders", "decathlon_fr", DAY) == T0
    assert ledger.get_watermark("refunds", "decathlon_fr", DAY) == T0 + timedelta(hours=1)
    assert ledger.get_watermark("orders", "carrefour_fr", DAY) == T0 + timedelta(hours=2)
    assert ledger.get_watermark("orders", "decathlon_fr", DAY + timedelta(days=1)) == T0 + timedelta(hours=3)


def test_watermark_in_another_offset_is_stored_as_the_same_instant(ledger):
    paris = timezone(timedelta(hours=1))
    ledger.set_watermark("orders", "decathlon_fr", DAY, datetime(2026, 3, 2, 10, 30, tzinfo=paris))
    stored = ledger.get_watermark("orders", "decathlon_fr", DAY)
    assert stored == T0 + timedelta(minutes=30)
    assert stored.utcoffset() == timedelta(0)


def test_watermark_bad_input(ledger):
    with pytest.raises(InvalidLedgerInput, match=r"watermark orders/decathlon_fr/2026-03-02: window_end .* is naive"):
        ledger.set_watermark("orders", "decathlon_fr", DAY, datetime(2026, 3, 2, 9, 0))
    with pytest.raises(InvalidLedgerInput, match=r"day must be a datetime.date, got datetime"):
        ledger.set_watermark("orders", "decathlon_fr", T0, T0)


class FakeClock:
    def __init__(self, start: float = 1_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked_ledger(ledger_url):
    clock = FakeClock()
    connected = Ledger.connect(ledger_url, clock=clock)
    try:
        yield connected, clock
    finally:
        connected.close()


def test_two_reservations_in_a_row_the_second_waits_min_interval(clocked_ledger):
    ledger, _clock = clocked_ledger
    assert ledger.reserve("decathlon_fr:OR11", 2.5) == 0.0
    assert ledger.reserve("decathlon_fr:OR11", 2.5) == pytest.approx(2.5)
    assert ledger.reserve("decathlon_fr:OR11", 2.5) == pytest.approx(5.0)


def test_reservations_account_for_elapsed_time_and_keys_are_independent(clocked_ledger):
    ledger, clock = clocked_ledger
    assert ledger.reserve("k", 10) == 0.0
    clock.now += 4
    assert ledger.reserve("k", 10) == pytest.approx(6.0)  # slot at t+10
    assert ledger.reserve("other", 10) == 0.0
    clock.now += 100  # long idle: no debt carried over
    assert ledger.reserve("k", 10) == 0.0


def test_a_wait_over_max_wait_books_nothing(clocked_ledger):
    ledger, clock = clocked_ledger
    assert ledger.reserve("k", 10, max_wait=5) == 0.0
    assert ledger.reserve("k", 10, max_wait=5) == pytest.approx(10.0)  # refused: not booked
    assert ledger.reserve("k", 10, max_wait=5) == pytest.approx(10.0)  # so the slot did not move
    clock.now += 6
    assert ledger.reserve("k", 10, max_wait=5) == pytest.approx(4.0)  # now within max_wait: booked
    assert ledger.reserve("k", 10) == pytest.approx(14.0)


def test_the_ledger_is_a_mirakl_call_budget(ledger):
    from mirakl_pipelines.mirakl.budget import CallBudget, InMemoryBudget

    clock = FakeClock()
    memory = InMemoryBudget(clock=clock)
    persistent = type(ledger)(ledger.engine, clock=clock)
    budget: CallBudget = persistent
    steps = [(2.0, 1.0, 0.0), (2.0, 5.0, 0.0), (2.0, 1.0, 0.5), (2.0, 5.0, 3.0)]  # interval, max_wait, advance
    for interval, max_wait, advance in steps:
        clock.now += advance
        assert budget.reserve("OR11", interval, max_wait=max_wait) == pytest.approx(
            memory.reserve("OR11", interval, max_wait=max_wait)
        )


def test_reservation_with_the_real_clock(ledger):
    assert ledger.reserve("real", 0.5) == 0.0
    second = ledger.reserve("real", 0.5)
    assert 0.3 < second <= 0.5


def test_reserve_bad_input(ledger):
    with pytest.raises(InvalidLedgerInput, match=r"call budget 'k': min_interval must be a finite number >= 0"):
        ledger.reserve("k", -1)
    with pytest.raises(InvalidLedgerInput, match=r"call budget 'k': max_wait must be a number >= 0"):
        ledger.reserve("k", 1, max_wait=-0.5)
    with pytest.raises(InvalidLedgerInput, match=r"call budget: key must be a non-empty string"):
        ledger.reserve("", 1)
