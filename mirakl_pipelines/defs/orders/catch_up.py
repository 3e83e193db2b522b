"""Refreshes owed: a live refresh that skipped (its OR11 slot was taken) or whose run failed is run again as
soon as the slot opens, not at the next cron tick.

The skip (or the run-failure sensor) records the debt in the ledger, one per marketplace; the catch-up sensor
(automation.py) reads the ledger every few seconds and requests one run per debt once its slot has opened.
Bounded by construction: one debt per marketplace, one run per debt (its run key and the sensor's cursor),
a settled debt (a fetch succeeded since) or a stale one is never requested, and a failed catch-up run owes
nothing (the schedule's next tick follows); a catch-up that skips again just re-owes, one slot later.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Iterable

from mirakl_pipelines.ledger.budget import RefreshDebt

CATCH_UP_TAG = "mirakl_pipelines/catch_up"
# A debt this old is not caught up any more (the sensor was off, say): the schedule's ticks have taken over.
STALE_AFTER = timedelta(minutes=10)
# About how long a requested run takes to reach its OR11 call (queue, process start, code load). Requested this
# long before its slot opens, a catch-up calls on the slot (waiting the rest, well within the refresh's patience)
# instead of ~10 s after it, so a chain of catch-ups keeps OR11's 61 s period rather than drifting to ~70 s.
LAUNCH_LEAD_SECONDS = 10.0


def owe_refresh(ledger, flow: str, code: str, day: date, wait_seconds: float, reason: str) -> datetime:
    """Record in the ledger that `code`'s refresh of `day` is owed once its slot opens, `wait_seconds` from now."""
    opens = datetime.now(timezone.utc) + timedelta(seconds=max(0.0, wait_seconds))
    return ledger.owe_refresh(flow, code, day, opens, reason)


def catch_up_run_key(debt: RefreshDebt) -> str:
    """One run per debt: owing again moves `owed_at`, so a re-owed refresh gets a new key."""
    return f"{debt.flow}-catch-up|{debt.marketplace}|{debt.owed_at.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S.%f}"


@dataclass(frozen=True)
class CatchUp:
    debt: RefreshDebt
    run_key: str
    day: date  # today: the refresh owed is the live one, whatever day it was owed on


def due_catch_ups(debts: Iterable[RefreshDebt], now: datetime, requested: dict[str, str],
                  marketplaces: Iterable[str], lead: timedelta = timedelta(0)) -> list[CatchUp]:
    """The debts to run now: slot open within `lead`, unsettled, fresh, of a configured marketplace, not requested
    yet (`requested`: marketplace → run key of the last catch-up asked for, the sensor's cursor)."""
    known = set(marketplaces)
    due = []
    for debt in debts:
        key = catch_up_run_key(debt)
        if (debt.marketplace in known and not debt.settled and debt.slot_opens_at <= now + lead
                and now - debt.owed_at <= STALE_AFTER and requested.get(debt.marketplace) != key):
            due.append(CatchUp(debt, key, now.date()))
    return due
