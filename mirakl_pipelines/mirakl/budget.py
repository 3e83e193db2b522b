"""Never call a Mirakl operation more often than its documented maximum call frequency.

Mirakl publishes no quotas, only a per-operation "Maximum usage" (operations-index.json,
NOTES §5); operators suspend integrations that ignore it. Each limit is reduced here to the
shortest interval between two calls that respects every clause of the text (TL02's "20 times
per min, 60 times per hour" binds at 60/hour, hence one call a minute), and a CallBudget books
slots per key (``"<marketplace>:<operation>"``) so that concurrent runs share one pace. The
in-memory budget serves one process; the ledger provides a persistent one with the same protocol.

Bookings have two classes (``book``): LIVE callers (the refreshes) book the next slot as always;
BACKGROUND callers (backfills, close-outs) never hold a live caller back by more than one interval:
they yield while a refused live caller is owed the next slot, and book ahead only right after a live
booking (so at most one background slot ever sits between two live ones). The interval between two
booked slots is absolute, whatever their class.
"""

import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional, Protocol

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

# Seconds between two calls, per operation and persona ("default" or "external_partner").
# Operations documented "at each …" (per business event) or with no limit are absent: unlimited.
# OF01/OF51/OF52 list the lighter variant (offers only / differential); the heavier one is a different use.
MIN_INTERVAL_SECONDS: dict[str, dict[str, float]] = {
    "A01": {"default": DAY},
    "A02": {"default": DAY},
    "A21": {"default": DAY},
    "AF01": {"default": DAY},
    "CH11": {"default": DAY},
    "CUR01": {"default": DAY},
    "DO01": {"default": DAY},
    "H11": {"default": HOUR},
    "IV01": {"default": DAY},  # "and as many times as there are invoice pages": pages are free
    "L01": {"default": DAY},
    "OF01": {"default": MINUTE},
    "OF02": {"default": MINUTE},
    "OF03": {"default": MINUTE},
    "OF04": {"default": MINUTE},
    "OF24": {"default": MINUTE},
    "OF51": {"default": MINUTE},
    "OF52": {"default": MINUTE},
    "OF53": {"default": 10.0},
    "OF61": {"default": DAY},
    "OR04": {"default": MINUTE},
    "OR07": {"default": MINUTE},  # 60 per hour
    "OR11": {"default": MINUTE, "external_partner": 15 * MINUTE},
    "OR13": {"default": 5 * MINUTE},
    "OR14": {"default": 2.0},
    "OR31": {"default": 0.2},  # 5 calls per second
    "OR32": {"default": MINUTE},
    "OR75": {"default": DAY},
    "P41": {"default": 15 * MINUTE},
    "P42": {"default": MINUTE},
    "P51": {"default": MINUTE},
    "PL11": {"default": 5 * MINUTE},
    "PM11": {"default": HOUR},
    "PR03": {"default": MINUTE},
    "PR04": {"default": MINUTE},
    "PRI01": {"default": MINUTE},
    "PRI02": {"default": MINUTE},
    "PRI03": {"default": MINUTE},
    "RT11": {"default": 5 * MINUTE},
    "SBC11": {"default": DAY},
    "SH11": {"default": DAY},
    "SH12": {"default": DAY},
    "SH21": {"default": DAY},
    "SH31": {"default": DAY},
    "SH42": {"default": HOUR},
    "SH52": {"default": HOUR},
    "ST12": {"default": 5 * MINUTE},
    "STO01": {"default": MINUTE},
    "STO02": {"default": 15.0},
    "STO03": {"default": MINUTE},
    "TL02": {"default": MINUTE},  # 20/min and 60/hour: the hourly clause binds
    "TL03": {"default": DAY},
    "TL04": {"default": 10.0},
    "VL11": {"default": HOUR},
}

PERSONAS = ("default", "external_partner")


def min_interval(operation: str, persona: str = "default", scale: float = 1.0) -> float:
    """Shortest allowed interval between two calls of `operation`, in seconds × `scale`; 0 when unlimited.

    `scale` compresses time for the sandbox and tests (0.001 turns a minute into 60 ms). A persona
    without its own limit uses the default one.
    """
    if persona not in PERSONAS:
        raise ValueError(f"unknown Mirakl call-frequency persona {persona!r}; expected one of {PERSONAS}")
    if scale < 0:
        raise ValueError(f"rate-limit scale must be >= 0, got {scale}")
    limits = MIN_INTERVAL_SECONDS.get(operation)
    if not limits:
        return 0.0
    return limits.get(persona, limits["default"]) * scale


LIVE = "live"
BACKGROUND = "background"
PRIORITIES = (LIVE, BACKGROUND)


@dataclass(frozen=True)
class SlotState:
    """What a budget key remembers: its last booked slot, that slot's class, and until when background
    callers leave the next slot to a live caller that was refused (None: no live caller owed).

    A booking may name its `owner` (a run id): until the owner claims the slot (it is about to call), the slot
    can be given back, e.g. when the run was killed while it waited for it; `previous_slot` is what the key
    falls back to. A slot without an owner counts as claimed: it is never given back."""

    last_slot: Optional[float] = None
    last_priority: str = LIVE
    live_hold_until: Optional[float] = None
    owner: Optional[str] = None
    claimed: bool = True
    previous_slot: Optional[float] = None

    def booked(self, slot: float, priority: str, owner: Optional[str]) -> "SlotState":
        return SlotState(slot, priority, None, owner, owner is None, self.last_slot)


@dataclass(frozen=True)
class Booking:
    """The answer to one booking: the seconds to wait for the slot when `booked`, else the seconds until the
    caller may try again (its slot would be that far, or a live caller is owed it); and the key's new state."""

    wait: float
    booked: bool
    state: SlotState


def book_slot(state: SlotState, now: float, interval: float, max_wait: float, priority: str = LIVE,
              owner: Optional[str] = None) -> Booking:
    """Decide one booking (pure; the budgets store ``state`` and apply this under their lock).

    LIVE: book max(now, last slot + interval) when within `max_wait`; when not, book nothing and hold that
    slot (and one interval after it, to claim it) against background callers. A live booking releases the hold.
    BACKGROUND: never while a hold runs; a future slot only right after a live booking; otherwise only a
    slot free now. So a live caller arriving at t waits at most max(t, last live slot + interval) + interval − t.
    """
    if priority not in PRIORITIES:
        raise ValueError(f"unknown call-budget priority {priority!r}; expected one of {PRIORITIES}")
    next_slot = now if state.last_slot is None else max(now, state.last_slot + interval)
    wait = next_slot - now
    if priority == LIVE:
        if wait <= max_wait:
            return Booking(wait, True, state.booked(next_slot, LIVE, owner))
        hold = max(state.live_hold_until or -math.inf, next_slot + interval)
        return Booking(wait, False, replace(state, live_hold_until=hold))
    hold = state.live_hold_until if state.live_hold_until is not None and state.live_hold_until > now else None
    if hold is not None:
        return Booking(max(wait, hold - now), False, state)
    if wait > max_wait or (wait > 0 and state.last_priority != LIVE):
        return Booking(wait, False, replace(state, live_hold_until=None))
    return Booking(wait, True, state.booked(next_slot, BACKGROUND, owner))


def claim_slot(state: SlotState, owner: str) -> SlotState:
    """The owner of the last slot is about to call on it: from now on the slot is spent, whatever happens."""
    return replace(state, claimed=True) if state.owner == owner and not state.claimed else state


def release_slot(state: SlotState, owner: str) -> SlotState:
    """Give back the last slot when `owner` booked it and never claimed it (the run died waiting for it): the key
    falls back to the slot before, so the next caller need not wait for a call that was never made. A slot
    booked after it by someone else is kept (only the last slot can be given back)."""
    if state.owner != owner or state.claimed:
        return state
    return SlotState(state.previous_slot, LIVE, state.live_hold_until)


class CallBudget(Protocol):
    def reserve(self, key: str, min_interval: float, max_wait: float = math.inf) -> float:
        """Book the next slot for `key` and return the seconds to wait before using it.

        When that wait would exceed `max_wait` nothing is booked (the caller will not call) and
        the wait is returned all the same, so refused attempts never push later slots back.
        """
        ...


class PrioritisedBudget(CallBudget, Protocol):
    def book(self, key: str, min_interval: float, max_wait: float = math.inf, priority: str = LIVE,
             owner: Optional[str] = None) -> Booking:
        """`book_slot` applied atomically to `key`'s stored state."""
        ...

    def claim(self, key: str, owner: str) -> None:
        """`claim_slot` applied atomically to `key`'s stored state."""
        ...

    def release(self, key: str, owner: str) -> bool:
        """`release_slot` applied atomically to `key`'s stored state; whether a slot was given back."""
        ...


class InMemoryBudget:
    """Thread-safe CallBudget for one process: the slot state per key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._states: dict[str, SlotState] = {}
        self._lock = threading.Lock()

    def book(self, key: str, min_interval: float, max_wait: float = math.inf, priority: str = LIVE,
             owner: Optional[str] = None) -> Booking:
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0, got {min_interval} for {key!r}")
        with self._lock:
            booking = book_slot(self._states.get(key, SlotState()), self._clock(), min_interval, max_wait, priority,
                                owner)
            self._states[key] = booking.state
            return booking

    def reserve(self, key: str, min_interval: float, max_wait: float = math.inf) -> float:
        return self.book(key, min_interval, max_wait).wait

    def claim(self, key: str, owner: str) -> None:
        with self._lock:
            self._states[key] = claim_slot(self._states.get(key, SlotState()), owner)

    def release(self, key: str, owner: str) -> bool:
        with self._lock:
            state = self._states.get(key, SlotState())
            self._states[key] = release_slot(state, owner)
            return self._states[key] != state


class OwnedBudget:
    """A PrioritisedBudget whose bookings name their owner (a run id). The client claims each slot right before
    calling on it (`spend`), so a slot booked by a run that died while it waited can be given back
    (`PrioritisedBudget.release`, by the run-failure sensor) instead of costing the marketplace a whole interval."""

    def __init__(self, budget: PrioritisedBudget, owner: str):
        self._budget = budget
        self.owner = owner

    def book(self, key: str, min_interval: float, max_wait: float = math.inf, priority: str = LIVE,
             owner: Optional[str] = None) -> Booking:
        return self._budget.book(key, min_interval, max_wait, priority, owner or self.owner)

    def reserve(self, key: str, min_interval: float, max_wait: float = math.inf) -> float:
        return self.book(key, min_interval, max_wait).wait

    def spend(self, key: str) -> None:
        """The caller is about to call on its slot of `key`: claim it."""
        self._budget.claim(key, self.owner)


class BackgroundBudget:
    """A CallBudget view of a PrioritisedBudget for background callers (backfills, close-outs): books at
    BACKGROUND priority, trying again while a live caller is owed the slot, for at most `max_wait` in all.

    The client sleeps the wait returned, as for any budget; a wait over `max_wait` means nothing was booked.
    """

    def __init__(self, budget: PrioritisedBudget, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self._budget = budget
        self._sleep = sleep
        self._clock = clock

    def reserve(self, key: str, min_interval: float, max_wait: float = math.inf) -> float:
        started = self._clock()
        while True:
            waited = self._clock() - started
            booking = self._budget.book(key, min_interval, max(0.0, max_wait - waited), BACKGROUND)
            if booking.booked:
                return booking.wait
            if waited + booking.wait > max_wait:
                return waited + booking.wait
            # A held slot may be released early (the live caller booked): look again well before the hold ends.
            self._sleep(max(min(booking.wait, min_interval / 4), 1e-3))

    def spend(self, key: str) -> None:
        spend = getattr(self._budget, "spend", None)  # only owned bookings can be given back, so claimed
        if spend is not None:
            spend(key)
