"""A call budget shared by every process using the ledger (the mirakl.budget.CallBudget protocol).

``reserve`` books the caller's slot atomically in one upsert, so two runs polling the same
marketplace space their calls ``min_interval`` apart instead of both calling at once. Slots are
wall-clock epoch seconds because several processes (and machines) share them.
"""

import math

import sqlalchemy as sa

from mirakl_pipelines.ledger.base import LedgerBase, require_text
from mirakl_pipelines.ledger.errors import InvalidLedgerInput
from mirakl_pipelines.ledger.tables import call_budget as b


def _non_negative(value, name: str, key: str, *, allow_inf: bool) -> float:
    ok = isinstance(value, (int, float)) and not math.isnan(value) and value >= 0 and (allow_inf or math.isfinite(value))
    if not ok:
        raise InvalidLedgerInput(f"call budget {key!r}: {name} must be a {'' if allow_inf else 'finite '}number >= 0, got {value!r}")
    return float(value)


class CallBudgetSlots(LedgerBase):
    def reserve(self, key: str, min_interval: float, max_wait: float = math.inf) -> float:
        """Book the next slot, max(now, last slot + min_interval); return the seconds to wait for it.

        When that wait would exceed ``max_wait`` nothing is booked (the caller will not call) and
        the wait is returned all the same, so refused attempts never push later slots back.
        """
        require_text(key, "key", "call budget")
        interval = _non_negative(min_interval, "min_interval", key, allow_inf=False)
        max_wait = _non_negative(max_wait, "max_wait", key, allow_inf=True)
        now = float(self._clock())
        next_slot = self._greatest(sa.literal(now, sa.Double), b.c.last_slot + sa.literal(interval, sa.Double))
        within = None if math.isinf(max_wait) else next_slot <= sa.literal(now + max_wait, sa.Double)
        stmt = self._upsert(b).values(key=key, last_slot=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[b.c.key], set_={"last_slot": next_slot}, where=within
        ).returning(b.c.last_slot)
        with self._write() as conn:
            slot = conn.execute(stmt).scalar_one_or_none()
            if slot is None:  # the wait exceeds max_wait: report it, book nothing
                last = conn.execute(sa.select(b.c.last_slot).where(b.c.key == key)).scalar_one()
                return max(now, last + interval) - now
        return max(0.0, slot - now)
