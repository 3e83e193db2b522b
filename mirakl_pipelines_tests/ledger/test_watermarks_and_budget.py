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


# --- live and background classes, on both backends ----------------------------------------------------

def test_the_ledger_books_both_classes_as_the_pure_rule_does(clocked_ledger):
    from mirakl_pipelines.mirakl.budget import BACKGROUND, LIVE, InMemoryBudget

    ledger, clock = clocked_ledger
    memory = InMemoryBudget(clock=clock)
    steps = [(0, LIVE, 20), (1, BACKGROUND, 120), (1, BACKGROUND, 120), (5, LIVE, 20), (70, BACKGROUND, 120),
             (10, LIVE, 200), (200, BACKGROUND, 0), (1, LIVE, 0), (30, BACKGROUND, 120), (40, LIVE, 20),
             (0, BACKGROUND, 120)]
    for advance, priority, max_wait in steps:
        clock.now += advance
        expected = memory.book("decathlon_fr:OR11", 60, max_wait, priority)
        assert ledger.book("decathlon_fr:OR11", 60, max_wait, priority) == expected


def test_a_slot_a_dead_run_never_claimed_is_given_back_across_processes(clocked_ledger, ledger_url):
    from mirakl_pipelines.mirakl.budget import OwnedBudget

    ledger, clock = clocked_ledger
    ledger.reserve("decathlon_fr:OR11", 60)  # a call at t0
    clock.now += 10
    assert OwnedBudget(ledger, "run-dead").reserve("decathlon_fr:OR11", 60) == 50  # booked t0+60, then killed
    assert OwnedBudget(ledger, "run-live").reserve("leroymerlin_fr:OR11", 60) == 0
    OwnedBudget(ledger, "run-live").spend("leroymerlin_fr:OR11")  # that one called
    other = Ledger.connect(ledger_url, clock=clock)  # the run-failure sensor, another process
    try:
        assert other.release_unclaimed("run-live") == []  # it called: its slot stays spent
        assert other.release_unclaimed("run-dead", prefix="leroymerlin_fr:") == []
        assert other.release_unclaimed("run-dead", prefix="decathlon_fr:") == ["decathlon_fr:OR11"]
        assert other.release_unclaimed("run-dead") == []  # once
    finally:
        other.close()
    assert ledger.reserve("decathlon_fr:OR11", 60) == 50  # the catch-up gets t0+60, not t0+120
    assert ledger.reserve("leroymerlin_fr:OR11", 60) == 60


def test_a_refused_live_booking_holds_the_slot_in_the_ledger_for_other_processes(ledger_url):
    from mirakl_pipelines.mirakl.budget import BACKGROUND

    clock = FakeClock()
    refresh, backfill = Ledger.connect(ledger_url, clock=clock), Ledger.connect(ledger_url, clock=clock)
    try:
        assert refresh.reserve("k", 60) == 0
        assert refresh.reserve("k", 60, max_wait=20) == 60  # the refresh skips
        clock.now += 61
        assert not backfill.book("k", 60, 120, BACKGROUND).booked  # the other process leaves it to the catch-up
        assert refresh.reserve("k", 60, max_wait=20) == 0
        assert backfill.book("k", 60, 120, BACKGROUND).wait == pytest.approx(60)
        assert backfill.next_slot("k", 60) == pytest.approx(clock.now + 120)
    finally:
        refresh.close()
        backfill.close()


def test_concurrent_live_and_background_callers_never_break_the_interval(ledger_url):
    import threading

    from mirakl_pipelines.mirakl.budget import BackgroundBudget

    interval, slots, lock = 0.05, [], threading.Lock()
    ledgers = [Ledger.connect(ledger_url) for _ in range(4)]

    class Recording:  # the slot each booking stored, exactly
        def __init__(self, ledger):
            self.ledger = ledger

        def book(self, *args):
            booking = self.ledger.book(*args)
            if booking.booked:
                with lock:
                    slots.append(booking.state.last_slot)
            return booking

        def reserve(self, key, min_interval, max_wait=float("inf")):
            return self.book(key, min_interval, max_wait).wait

    def caller(ledger, background: bool):
        budget = BackgroundBudget(Recording(ledger)) if background else Recording(ledger)
        for _ in range(4):
            assert budget.reserve("shared:OR11", interval) >= 0

    threads = [threading.Thread(target=caller, args=(lg, i % 2 == 1)) for i, lg in enumerate(ledgers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for lg in ledgers:
            lg.close()
    slots.sort()
    assert len(slots) == 16
    assert min(b - a for a, b in zip(slots, slots[1:])) >= interval - 1e-6  # epoch doubles: ~0.2 µs resolution


def test_next_slot_books_nothing(clocked_ledger):
    ledger, clock = clocked_ledger
    assert ledger.next_slot("k", 10) == clock.now
    ledger.reserve("k", 10)
    assert ledger.next_slot("k", 10) == clock.now + 10
    assert ledger.reserve("k", 10) == pytest.approx(10)


# --- refreshes owed ------------------------------------------------------------------------------------

def _at(clock) -> datetime:
    return datetime.fromtimestamp(clock.now, timezone.utc)


def test_a_refresh_owed_is_listed_until_a_fetch_ends_after_it(clocked_ledger):
    ledger, clock = clocked_ledger
    assert ledger.refresh_debts("orders") == []
    owed_at = ledger.owe_refresh("orders", "decathlon_fr", DAY, _at(clock) + timedelta(seconds=40), "OR11 slot taken")
    (debt,) = ledger.refresh_debts("orders")
    assert (debt.marketplace, debt.day, debt.owed_at, debt.owed_since, debt.times, debt.settled) == (
        "decathlon_fr", DAY, owed_at, owed_at, 1, False)
    assert debt.slot_opens_at == owed_at + timedelta(seconds=40) and debt.reason == "OR11 slot taken"
    ledger.set_watermark("orders", "decathlon_fr", DAY, owed_at - timedelta(seconds=1))  # a fetch from before
    assert not ledger.refresh_debts("orders")[0].settled
    ledger.set_watermark("orders", "carrefour_fr", DAY, owed_at + timedelta(seconds=1))  # another marketplace
    assert not ledger.refresh_debts("orders")[0].settled
    ledger.set_watermark("orders", "decathlon_fr", DAY + timedelta(days=1), owed_at + timedelta(seconds=5))
    assert ledger.refresh_debts("orders")[0].settled  # any later fetch of the marketplace settles it
    assert ledger.refresh_debts("refunds") == []


def test_owing_again_keeps_one_row_per_marketplace(clocked_ledger):
    ledger, clock = clocked_ledger
    first = ledger.owe_refresh("orders", "decathlon_fr", DAY, _at(clock), "OR11 slot taken")
    clock.now += 70
    second = ledger.owe_refresh("orders", "decathlon_fr", DAY, _at(clock) + timedelta(seconds=10), "run r1 failed")
    (debt,) = ledger.refresh_debts("orders")
    assert (debt.owed_since, debt.owed_at, debt.times, debt.reason) == (first, second, 2, "run r1 failed")
    ledger.set_watermark("orders", "decathlon_fr", DAY, second + timedelta(seconds=1))
    clock.now += 70
    third = ledger.owe_refresh("orders", "decathlon_fr", DAY, _at(clock), "OR11 slot taken")
    (debt,) = ledger.refresh_debts("orders")
    assert (debt.owed_since, debt.owed_at, debt.times, debt.settled) == (third, third, 1, False)  # a new debt


def test_owe_refresh_bad_input(ledger):
    when = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    with pytest.raises(InvalidLedgerInput, match=r"refresh owed orders/: marketplace must be a non-empty string"):
        ledger.owe_refresh("orders", "", DAY, when, "x")
    with pytest.raises(InvalidLedgerInput, match=r"refresh owed orders/decathlon_fr: slot_opens_at .* is naive"):
        ledger.owe_refresh("orders", "decathlon_fr", DAY, datetime(2026, 3, 2, 9, 0), "x")
    with pytest.raises(InvalidLedgerInput, match=r"refresh owed orders/decathlon_fr: day must be a datetime.date"):
        ledger.owe_refresh("orders", "decathlon_fr", when, when, "x")
