"""A call budget shared by every process using the ledger (the mirakl.budget.CallBudget protocol), and the
live refreshes it owes.

``book`` applies ``mirakl.budget.book_slot`` (live and background classes) to the key's row under a row
lock (PostgreSQL ``FOR UPDATE``; SQLite's write lock from BEGIN IMMEDIATE), so two runs polling the same
marketplace space their calls ``min_interval`` apart instead of both calling at once. Slots are wall-clock
epoch seconds because several processes (and machines) share them.

A refresh that could not get its slot (or whose run failed) is recorded as owed (``owe_refresh``): one row
per flow and marketplace, settled by any successful fetch (a watermark) ending after it was owed.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Optional

import sqlalchemy as sa

from mirakl_pipelines.ledger.base import LedgerBase, require_text
from mirakl_pipelines.ledger.errors import InvalidLedgerInput
from mirakl_pipelines.ledger.tables import call_budget as b
from mirakl_pipelines.ledger.tables import refresh_debts as d
from mirakl_pipelines.ledger.tables import sync_watermarks as w
from mirakl_pipelines.ledger.timestamps import require_aware
from mirakl_pipelines.mirakl.budget import LIVE, Booking, SlotState, book_slot, claim_slot, release_slot

# Placeholder slot of a new key's row: long enough ago that the first call never waits.
_NEVER = -1e18


def _slot(value: Optional[float]) -> Optional[float]:
    return None if value is None or value <= _NEVER else value


def _non_negative(value, name: str, key: str, *, allow_inf: bool) -> float:
    ok = isinstance(value, (int, float)) and not math.isnan(value) and value >= 0 and (allow_inf or math.isfinite(value))
    if not ok:
        raise InvalidLedgerInput(f"call budget {key!r}: {name} must be a {'' if allow_inf else 'finite '}number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RefreshDebt:
    flow: str
    marketplace: str
    day: date
    owed_since: datetime
    owed_at: datetime
    slot_opens_at: datetime
    reason: str
    times: int
    settled: bool  # a fetch ending after `owed_at` succeeded since


class CallBudgetSlots(LedgerBase):
    def book(self, key: str, min_interval: float, max_wait: float = math.inf, priority: str = LIVE,
             owner: Optional[str] = None) -> Booking:
        """Apply ``book_slot`` to `key` atomically across processes; see mirakl.budget for the two classes."""
        interval = _non_negative(min_interval, "min_interval", key, allow_inf=False)
        max_wait = _non_negative(max_wait, "max_wait", key, allow_inf=True)
        if owner is not None:
            require_text(owner, "owner", f"call budget {key!r}")
        with self._locked_state(key) as (now, state, store):
            booking = book_slot(state, now, interval, max_wait, priority, owner)
            store(booking.state)
        return booking

    def claim(self, key: str, owner: str) -> None:
        """`owner` is about to call on the last slot of `key`, which it booked: the slot can no longer be given back."""
        with self._locked_state(key) as (_, state, store):
            store(claim_slot(state, owner))

    def release(self, key: str, owner: str) -> bool:
        """Give back the last slot of `key` if `owner` booked it and never claimed it; whether it was."""
        with self._locked_state(key) as (_, state, store):
            new = release_slot(state, owner)
            store(new)
        return new != state

    def release_unclaimed(self, owner: str, prefix: str = "") -> list[str]:
        """Give back every slot (of keys starting with `prefix`) that `owner` booked and never claimed: a run that died
        while it waited for its slots. Returns the keys released."""
        require_text(owner, "owner", "call budget release")
        with self._read() as conn:
            keys = conn.execute(sa.select(b.c.key).where(
                b.c.last_owner == owner, sa.not_(sa.func.coalesce(b.c.last_claimed, True)), b.c.key.startswith(prefix)
            )).scalars().all()
        return [key for key in keys if self.release(key, owner)]

    @contextmanager
    def _locked_state(self, key: str):
        """The key's state read under its row lock, with the time read under it too and a `store` for the new state."""
        require_text(key, "key", "call budget")
        placeholder = self._upsert(b).values(key=key, last_slot=_NEVER).on_conflict_do_nothing(index_elements=[b.c.key])
        with self._write() as conn:
            conn.execute(placeholder)
            row = conn.execute(sa.select(b).where(b.c.key == key).with_for_update()).one()
            now = float(self._clock())  # read under the lock: a booking computed before it could land early
            state = SlotState(_slot(row.last_slot), row.last_priority or LIVE, row.live_hold_until, row.last_owner,
                              True if row.last_claimed is None else row.last_claimed, _slot(row.previous_slot))

            def store(new: SlotState) -> None:
                if new != state:
                    conn.execute(sa.update(b).where(b.c.key == key).values(
                        last_slot=_NEVER if new.last_slot is None else new.last_slot, last_priority=new.last_priority,
                        live_hold_until=new.live_hold_until, last_owner=new.owner, last_claimed=new.claimed,
                        previous_slot=new.previous_slot))

            yield now, state, store

    def reserve(self, key: str, min_interval: float, max_wait: float = math.inf) -> float:
        """Book the next slot at live priority, max(now, last slot + min_interval); return the seconds to wait for it.

        When that wait would exceed ``max_wait`` nothing is booked (the caller will not call) and the wait is
        returned all the same, so refused attempts never push later slots back (they hold the slot against
        background callers, see ``book_slot``).
        """
        return self.book(key, min_interval, max_wait).wait

    def next_slot(self, key: str, min_interval: float) -> float:
        """When a live caller could call next (epoch seconds; now when the slot is free), booking nothing."""
        require_text(key, "key", "call budget")
        with self._read() as conn:
            last = conn.execute(sa.select(b.c.last_slot).where(b.c.key == key)).scalar_one_or_none()
        now = float(self._clock())
        return now if last is None else max(now, last + _non_negative(min_interval, "min_interval", key, allow_inf=False))

    # ---- refreshes owed ------------------------------------------------------------------------------

    def owe_refresh(self, flow: str, marketplace: str, day: date, slot_opens_at: datetime, reason: str) -> datetime:
        """Record that a live refresh of `marketplace` is owed from `slot_opens_at` on; return when it was owed.

        One row per flow and marketplace: owing again moves it to the latest skip (day, slot, reason), keeping
        `owed_since` while the previous debt is unsettled.
        """
        record = f"refresh owed {flow}/{marketplace}"
        require_text(flow, "flow", record)
        require_text(marketplace, "marketplace", record)
        require_text(reason, "reason", record)
        if not isinstance(day, date) or isinstance(day, datetime):
            raise InvalidLedgerInput(f"{record}: day must be a datetime.date, got {type(day).__name__} {day!r}")
        slot_opens_at = require_aware(slot_opens_at, "slot_opens_at", record, optional=False)
        now = datetime.fromtimestamp(float(self._clock()), timezone.utc)
        values = dict(day=day, owed_at=now, slot_opens_at=slot_opens_at, reason=reason)
        first = self._upsert(d).values(flow=flow, marketplace=marketplace, owed_since=now, times=1, **values)
        with self._write() as conn:
            # Two owers at once (a skip and the failure sensor): the insert does nothing for the second, which
            # then updates under the row lock.
            if conn.execute(first.on_conflict_do_nothing(index_elements=[d.c.flow, d.c.marketplace])).rowcount == 0:
                previous = conn.execute(
                    sa.select(d.c.owed_since, d.c.owed_at, d.c.times)
                    .where(d.c.flow == flow, d.c.marketplace == marketplace).with_for_update()
                ).one()
                settled = self._settled(conn, flow, marketplace, previous.owed_at)
                conn.execute(sa.update(d).where(d.c.flow == flow, d.c.marketplace == marketplace).values(
                    owed_since=now if settled else previous.owed_since, times=1 if settled else previous.times + 1,
                    **values))
        return now

    def refresh_debts(self, flow: str) -> list[RefreshDebt]:
        """Every marketplace's latest refresh debt for `flow`, settled or not, by marketplace."""
        settled = sa.exists().where(w.c.flow == d.c.flow, w.c.marketplace == d.c.marketplace,
                                    w.c.window_end >= d.c.owed_at)
        query = sa.select(*d.c, settled.label("settled")).where(d.c.flow == flow).order_by(d.c.marketplace)
        with self._read() as conn:
            return [RefreshDebt(**{**row._mapping, "settled": bool(row.settled)}) for row in conn.execute(query)]

    @staticmethod
    def _settled(conn: sa.Connection, flow: str, marketplace: str, owed_at: datetime) -> bool:
        query = sa.select(sa.exists().where(w.c.flow == flow, w.c.marketplace == marketplace, w.c.window_end >= owed_at))
        return bool(conn.execute(query).scalar())
