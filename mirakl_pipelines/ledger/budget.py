"""A call budget shared by every process using the ledger (same protocol as mirakl.budget.CallBudget).

``reserve`` books the caller's slot atomically in one upsert, so two runs polling the same
marketplace space their calls ``min_interval`` apart instead of both calling at once.
"""

import math

import sqlalchemy as sa

from mirakl_pipelines.ledger.base import LedgerBase, require_text
from mirakl_pipelines.ledger.errors import InvalidLedgerInput
from mirakl_pipelines.ledger.tables import call_budget as b


class CallBudgetSlots(LedgerBase):
    def reserve(self, key: str, min_interval: float) -> float:
        """Book the next slot, max(now, last slot + min_interval); return the seconds to wait for it."""
        require_text(key, "key", "call budget")
        if not isinstance(min_interval, (int, float)) or not math.isfinite(min_interval) or min_interval < 0:
            raise InvalidLedgerInput(f"call budget {key!r}: min_interval must be a finite number >= 0, got {min_interval!r}")
        now = float(self._clock())
        stmt = self._upsert(b).values(key=key, last_slot=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=[b.c.key],
            set_={
                "last_slot": self._greatest(
                    sa.literal(now, sa.Double), b.c.last_slot + sa.literal(float(min_interval), sa.Double)
                )
            },
        ).returning(b.c.last_slot)
        with self._write() as conn:
            slot = conn.execute(stmt).scalar_one()
        return max(0.0, slot - now)
