import json
import math
import re
import threading

import pytest

from mirakl_pipelines.mirakl.budget import MIN_INTERVAL_SECONDS, InMemoryBudget, min_interval
from mirakl_pipelines_tests.reference import reference_file


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_reserve_books_consecutive_slots():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    assert budget.reserve("m:OR11", 60) == 0
    assert budget.reserve("m:OR11", 60) == 60
    assert budget.reserve("m:OR11", 60) == 120
    clock.now += 100
    assert budget.reserve("m:OR11", 60) == 80  # slot 4 at t0+180, now t0+100


def test_slots_free_up_after_the_interval_and_keys_are_independent():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    assert budget.reserve("a:OR11", 60) == 0
    assert budget.reserve("b:OR11", 60) == 0
    assert budget.reserve("a:SH21", 86400) == 0
    clock.now += 61
    assert budget.reserve("a:OR11", 60) == 0


def test_refused_reservation_books_nothing():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    budget.reserve("m:OR11", 60)
    assert budget.reserve("m:OR11", 60, max_wait=10) == 60  # refused: the caller will not call
    assert budget.reserve("m:OR11", 60, max_wait=10) == 60  # still 60, not pushed to 120
    clock.now += 60
    assert budget.reserve("m:OR11", 60, max_wait=10) == 0


def test_reserve_is_thread_safe():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    waits: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(50):
            wait = budget.reserve("m:OR11", 1.0)
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [float(i) for i in range(400)]  # every slot booked once, none shared


def test_min_interval_persona_scale_and_unlimited():
    assert min_interval("OR11") == 60
    assert min_interval("OR11", "external_partner") == 900
    assert min_interval("SH21", "external_partner") == 86400  # no persona-specific limit: the default applies
    assert min_interval("OR11", scale=0.001) == pytest.approx(0.06)
    assert min_interval("OR21") == 0 and min_interval("OR24") == 0 and min_interval("NOPE") == 0
    with pytest.raises(ValueError, match="persona"):
        min_interval("OR11", "partner")
    with pytest.raises(ValueError, match="scale"):
        min_interval("OR11", scale=-1)


# --- the table against the contract -----------------------------------------------------------------

_UNITS = {"second": 1, "seconds": 1, "minute": 60, "minutes": 60, "min": 60, "hour": 3600, "hours": 3600,
          "day": 86400, "days": 86400, "24 hours": 86400}
_COUNT_WORDS = {"once": 1, "twice": 2}


def _interval_from_text(text: str) -> float | None:
    """Shortest interval allowed by a 'Maximum usage' text, read independently of the table; None if per-event."""
    text = text.lower()
    clauses: list[float] = []
    for count, unit in re.findall(r"(\d+) (?:times|calls|per)?\s*(?:per|/)\s*(second|min|minute|hour|day)\b", text):
        clauses.append(_UNITS[unit] / int(count))
    for word, unit in re.findall(r"\b(once|twice) (?:per|a|every) (second|minute|hour|day)\b", text):
        clauses.append(_UNITS[unit] / _COUNT_WORDS[word])
    for count, unit in re.findall(r"every (\d+) (seconds?|minutes?|hours?)", text):
        clauses.append(int(count) * _UNITS[unit])
    for unit in re.findall(r"every (second|minute|hour|day)\b", text):
        clauses.append(_UNITS[unit])
    for count, unit in re.findall(r"(\d+) per (second|minute|hour|day)", text):
        clauses.append(_UNITS[unit] / int(count))
    # Alternatives ("Differential: once per minute - Full: once per day", "with offers only … with products")
    # describe different uses; the table keeps the lightest use, i.e. the shortest interval.
    # Clauses of one use ("20 times per min, 60 times per hour") all bind: the longest wins.
    if not clauses:
        return None
    if " - " in text or " with offers and products" in text:
        return min(clauses)
    return max(clauses)


def _index() -> dict[str, dict]:
    data = json.loads(reference_file("mirakl/operations-index.json").read_text())
    return {op["operationId"]: op for op in data["operations"]}


def test_headline_limits_match_the_operations_index():
    ops = _index()
    assert "once per minute" in ops["OR11"]["call_frequency_max"].lower()
    assert min_interval("OR11") == 60
    assert ops["SH21"]["call_frequency_max"] == "Maximum usage: Once per day"
    assert min_interval("SH21") == 86400
    assert "20 times per min, 60 times per hour" in ops["TL02"]["call_frequency_max"]
    assert min_interval("TL02") == 60  # 60/hour binds harder than 20/min
    assert "Once every 15 seconds" in ops["STO02"]["call_frequency_max"]
    assert min_interval("STO02") == 15
    assert "5 calls per second" in ops["OR31"]["call_frequency_max"]
    assert min_interval("OR31") == pytest.approx(0.2)


def test_every_table_entry_matches_its_documented_maximum():
    ops = _index()
    mismatches = []
    for operation, limits in MIN_INTERVAL_SECONDS.items():
        assert operation in ops, f"{operation} is not an operation of the seller API"
        documented = _interval_from_text(ops[operation]["call_frequency_max"] or "")
        if documented is None or documented != pytest.approx(limits["default"]):
            mismatches.append((operation, ops[operation]["call_frequency_max"], limits["default"], documented))
    assert not mismatches


def test_every_numeric_documented_limit_is_in_the_table():
    """A documented numeric maximum missing from the table would be an operation called without pacing."""
    missing = []
    for operation, op in _index().items():
        text = op["call_frequency_max"] or ""
        if _interval_from_text(text) is not None and "as many times" not in text and operation not in MIN_INTERVAL_SECONDS:
            missing.append((operation, text))
    assert not missing


def test_external_partner_limit_matches_the_spec():
    spec = json.loads(reference_file("mirakl/mirakl-mmp-seller-openapi.json").read_text())
    documented = {}
    for path_item in spec["paths"].values():
        for op in path_item.values():
            if not isinstance(op, dict) or "External Partner:" not in op.get("description", ""):
                continue
            partner_part = op["description"].split("External Partner:", 1)[1]
            maximum = re.search(r'max-call-frequency">(.*?)</div>', partner_part, re.S).group(1)
            documented[op["operationId"]] = re.sub(r"<br/>", " ", maximum)
    assert set(documented) == {op for op, limits in MIN_INTERVAL_SECONDS.items() if "external_partner" in limits}
    assert "every 15 minutes" in documented["OR11"]
    assert min_interval("OR11", "external_partner") == 15 * 60


# --- live and background bookings ------------------------------------------------------------------

from hypothesis import given, settings as hypothesis_settings, strategies as st  # noqa: E402

from mirakl_pipelines.mirakl.budget import (  # noqa: E402
    BACKGROUND,
    LIVE,
    BackgroundBudget,
    Booking,
    SlotState,
    book_slot,
)

I = 60.0


def test_a_background_booking_takes_one_slot_after_a_live_one_then_lets_the_next_live_through():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    assert budget.book("k", I, priority=LIVE).wait == 0  # live at t0
    first = budget.book("k", I, priority=BACKGROUND)
    assert first.booked and first.wait == I  # right after a live booking: the next slot, t0+60
    second = budget.book("k", I, priority=BACKGROUND)
    assert not second.booked and second.wait == 2 * I  # never two background slots in a row ahead
    clock.now += 10
    live = budget.book("k", I, priority=LIVE)
    assert live.booked and live.wait == 2 * I - 10  # t0+120: delayed one interval by the background slot, no more


def test_a_refused_live_caller_holds_the_slot_against_background_callers_until_it_books():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    budget.book("k", I)  # t0
    refused = budget.book("k", I, max_wait=20)
    assert not refused.booked and refused.wait == I  # the refresh skips: its slot t0+60 is held for it
    clock.now += I + 5  # the slot opened; the catch-up is on its way
    held = budget.book("k", I, priority=BACKGROUND)
    assert not held.booked and held.wait == pytest.approx(I + I - (I + 5))  # until t0+120 at most
    assert budget.book("k", I, max_wait=20).wait == 0  # the catch-up books at once, releasing the hold
    after = budget.book("k", I, priority=BACKGROUND)
    assert after.booked and after.wait == I  # and the background caller follows it


def test_a_hold_expires_when_no_live_caller_claims_it():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    budget.book("k", I)
    budget.book("k", I, max_wait=1)  # refused: hold until t0+120
    clock.now += 2 * I
    assert budget.book("k", I, priority=BACKGROUND).booked


def test_background_slot_free_now_is_booked_whatever_came_before():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    assert budget.book("k", I, priority=BACKGROUND).booked
    clock.now += I
    previous = clock.now - I
    assert budget.book("k", I, priority=BACKGROUND) == Booking(0.0, True, SlotState(clock.now, BACKGROUND, None,
                                                                                   previous_slot=previous))


def test_unknown_priority_is_refused():
    with pytest.raises(ValueError, match="priority 'urgent'"):
        book_slot(SlotState(), 0.0, I, 0.0, "urgent")


_steps = st.lists(st.tuples(st.floats(0, 3 * I), st.sampled_from([LIVE, BACKGROUND]),
                            st.sampled_from([0.0, 20.0, I, 150.0, float("inf")])), max_size=40)


@hypothesis_settings(max_examples=300, deadline=None)
@given(_steps)
def test_priority_invariants(steps):
    """Mirakl's limit holds whatever the class; a live caller waits at most one interval more than live
    bookings alone impose; no background slot is booked while a refused live caller is owed its slot."""
    clock = FakeClock(0.0)
    budget = InMemoryBudget(clock)
    slots: list[float] = []
    last_live = None
    owed = None  # (refused at, slot it would have had) while no live caller has booked since
    for advance, priority, max_wait in steps:
        clock.now += advance
        booking = budget.book("k", I, max_wait, priority)
        if priority == LIVE:
            bound = max(0.0, (last_live + I - clock.now) if last_live is not None else 0.0) + I
            assert booking.wait <= bound + 1e-9
            if booking.booked:
                last_live, owed = clock.now + booking.wait, None
            else:
                owed = clock.now + booking.wait
        elif booking.booked:
            assert owed is None or clock.now >= owed + I, "a background caller took the slot owed to a live one"
        if booking.booked:
            slots.append(clock.now + booking.wait)
    assert slots == sorted(slots)
    assert all(b - a >= I - 1e-9 for a, b in zip(slots, slots[1:]))


class SteppedClock(FakeClock):
    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_background_budget_waits_behind_the_live_caller_owed_the_slot():
    clock = SteppedClock()
    shared = InMemoryBudget(clock)
    shared.book("k", I)
    shared.book("k", I, max_wait=0)  # a live caller refused: owed t0+60, held to t0+120
    background = BackgroundBudget(shared, sleep=clock.sleep, clock=clock)
    assert background.reserve("k", I, max_wait=300) == 0.0  # polled until the hold ended at t0+120, then booked
    assert clock.now == pytest.approx(1000 + 2 * I)


def test_background_budget_gives_up_past_max_wait_booking_nothing():
    clock = SteppedClock()
    shared = InMemoryBudget(clock)
    shared.book("k", I)
    shared.book("k", I, max_wait=0)
    background = BackgroundBudget(shared, sleep=clock.sleep, clock=clock)
    assert background.reserve("k", I, max_wait=30) > 30  # the client raises CallBudgetExceeded, unsent
    assert clock.now <= 1000 + 30
    live = shared.book("k", I, max_wait=I)
    assert live.booked and clock.now + live.wait == 1000 + I  # nothing was booked: the live caller's slot did not move


# --- slots given back: a run that died waiting for its slot ----------------------------------------------------

from mirakl_pipelines.mirakl.budget import OwnedBudget, claim_slot, release_slot  # noqa: E402


def test_a_slot_booked_by_a_run_that_never_called_is_given_back():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    budget.book("k", I)  # a call at t0
    clock.now += 30
    dead = OwnedBudget(budget, "run-1")
    assert dead.reserve("k", I) == 30  # run-1 books t0+60 and dies while it waits
    assert budget.release("k", "run-1")
    assert budget.book("k", I).wait == 30  # the next caller gets t0+60, not t0+120
    assert not budget.release("k", "run-1")  # given back once; the slot is someone else's now


def test_a_claimed_slot_or_another_owners_slot_is_never_given_back():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    owned = OwnedBudget(budget, "run-1")
    owned.reserve("k", I)
    owned.spend("k")  # about to call: spent whatever happens next
    assert not budget.release("k", "run-1")
    assert OwnedBudget(budget, "run-2").reserve("k", I) == I
    assert not budget.release("k", "run-1")  # not the last slot's owner
    budget.book("k", I, priority=BACKGROUND)  # someone booked after run-2's slot
    assert not budget.release("k", "run-2")  # only the last slot can be given back
    assert BackgroundBudget(OwnedBudget(budget, "run-3"), sleep=lambda s: None).reserve("k", I, max_wait=0) > 0


@given(st.lists(st.tuples(st.sampled_from(["book", "claim", "release"]), st.sampled_from(["a", "b", None]),
                          st.floats(0, 200)), max_size=30))
@hypothesis_settings(max_examples=200, deadline=None)
def test_calls_are_never_closer_than_the_interval_whatever_is_given_back(steps):
    """Every booking not given back is a call (its owner may call even when it could no longer claim it); giving
    back only the last, unclaimed slot never brings two calls closer than the interval."""
    state, now, bookings = SlotState(), 0.0, []
    for action, owner, advance in steps:
        now += advance
        if action == "book":
            state = book_slot(state, now, I, math.inf, LIVE, owner).state
            bookings.append({"slot": state.last_slot, "owner": owner, "given_back": False})
        elif action == "claim" and owner is not None:
            state = claim_slot(state, owner)
        elif owner is not None:
            released = release_slot(state, owner)
            if released != state:
                assert bookings[-1]["owner"] == owner and not bookings[-1]["given_back"]
                bookings[-1]["given_back"] = True
                bookings = [b for b in bookings if not b["given_back"]]
            state = released
    calls = sorted(b["slot"] for b in bookings)
    assert all(later - earlier >= I - 1e-9 for earlier, later in zip(calls, calls[1:]))
