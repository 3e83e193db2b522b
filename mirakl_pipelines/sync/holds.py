"""Which Shopify fulfilment order units to put on hold when Mirakl cancels units of an imported order.

Mirakl may cancel an order, or some units of a line, after the order was created in Shopify (the
customer changed their mind, the payment failed, customer service). The warehouse must not ship them:
the units still to fulfil are put on hold at once (`fulfillmentOrderHold`, only the cancelled units, so
the rest of the order still ships); units already fulfilled cannot be held and are reported. The full
cancellation and refund in Shopify belong to the refunds flow.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional, Protocol

# Fulfilment order statuses whose units can still be held (a CLOSED or CANCELLED one has nothing left to ship).
HOLDABLE_STATUSES = frozenset({"OPEN", "IN_PROGRESS", "SCHEDULED", "ON_HOLD"})
HOLD_REASON = "OTHER"
ADDRESS_HOLD_REASON = "INCORRECT_ADDRESS"
MAX_HANDLE = 64  # Shopify's limit on a hold handle


class _FulfilmentOrderLine(Protocol):
    id: str
    mirakl_line_id: Optional[str]
    remaining_quantity: int


class _FulfilmentOrder(Protocol):
    id: str
    status: str
    line_items: Sequence[_FulfilmentOrderLine]


@dataclass(frozen=True)
class Hold:
    fulfilment_order_id: str
    lines: Optional[dict[str, int]]  # fulfilment order line item id -> units; None: the whole fulfilment order
    units: dict[str, int]  # Mirakl line id -> units this hold takes


@dataclass(frozen=True)
class HoldPlan:
    holds: list[Hold] = field(default_factory=list)
    # Mirakl line id -> units that cannot be held: already fulfilled (or in a held fulfilment order Shopify cannot split)
    not_held: dict[str, int] = field(default_factory=dict)

    @property
    def held(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for hold in self.holds:
            for line_id, units in hold.units.items():
                total[line_id] = total.get(line_id, 0) + units
        return total


def plan_holds(fulfilment_orders: Sequence[_FulfilmentOrder], to_hold: Mapping[str, int]) -> HoldPlan:
    """Holds taking `to_hold` units per Mirakl line id from the fulfilment orders' remaining units, open
    fulfilment orders first; a fulfilment order losing every remaining unit is held whole. One already on
    hold (waiting for its address, say) takes another hold only whole: Shopify cannot split a held one, and
    its units must stay held once the first hold is released."""
    wanted = {line_id: units for line_id, units in to_hold.items() if units > 0}
    holds = []
    for fo in sorted(fulfilment_orders, key=lambda fo: fo.status == "ON_HOLD"):
        if fo.status not in HOLDABLE_STATUSES:
            continue
        taken: dict[str, int] = {}
        units: dict[str, int] = {}
        for item in fo.line_items:
            need = wanted.get(item.mirakl_line_id or "", 0)
            take = min(need, max(item.remaining_quantity, 0))
            if take > 0:
                taken[item.id] = take
                units[item.mirakl_line_id] = units.get(item.mirakl_line_id, 0) + take
                wanted[item.mirakl_line_id] = need - take
        whole = bool(taken) and all(taken.get(item.id, 0) >= item.remaining_quantity for item in fo.line_items)
        if not taken or (fo.status == "ON_HOLD" and not whole):
            for line_id, count in units.items():  # give them back: not held by this plan
                wanted[line_id] += count
            continue
        holds.append(Hold(fo.id, None if whole else taken, units))
    return HoldPlan(holds, {line_id: units for line_id, units in wanted.items() if units > 0})


def hold_handle(kind: str, key: str) -> str:
    """A hold handle Shopify keeps unique per fulfilment order: a retry with the same handle is recognised."""
    return f"mirakl-{kind}-{key}"[:MAX_HANDLE]


__all__ = ["ADDRESS_HOLD_REASON", "HOLD_REASON", "HOLDABLE_STATUSES", "Hold", "HoldPlan", "hold_handle", "plan_holds"]
