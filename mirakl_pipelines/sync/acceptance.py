"""Whether to accept a Mirakl order (OR21), and how urgent the decision is.

OR21 must decide every line of the order in one call, so a decision covers every line not already
refused or cancelled (a line whose units were all cancelled is refused). Stock is checked against
Shopify's variants minus the units already promised: orders accepted earlier but not yet in Shopify
(the ledger's reservations, any marketplace of the store) and earlier orders of the same batch.
Without that, ten orders for the last pair of shoes would all be accepted.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Optional

from mirakl_pipelines.config import AcceptanceConfig
from mirakl_pipelines.mirakl.models import MiraklOrder, OrderLine
from mirakl_pipelines.shopify.models import Variant
from mirakl_pipelines.sync.order_lines import is_dead, live_order_lines, live_quantity

ACTIONS = ("accept", "refuse", "partial", "leave")
URGENCY_WARN_ELAPSED = 0.5  # past half the window: warn
URGENCY_ERROR_REMAINING = 0.1  # last 10 % of the window (or past it): error


@dataclass(frozen=True)
class AcceptanceDecision:
    action: str  # "accept" | "refuse" | "partial" | "leave" (leave = an operator must decide)
    lines: dict[str, bool] = field(default_factory=dict)  # order_line_id -> accepted; empty for leave
    reason: Optional[str] = None  # why lines are refused or the order left, naming SKUs and quantities

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown acceptance action {self.action!r}; expected one of {ACTIONS}")


def accept_all(order: MiraklOrder) -> AcceptanceDecision:
    """Accept every live line: for mode "after_import", once the Shopify order exists."""
    return AcceptanceDecision("accept", _undecided(order, {line.order_line_id: True for line in live_order_lines(order)}), None)


def _undecided(order: MiraklOrder, decided: dict[str, bool]) -> dict[str, bool]:
    """`decided` plus a refusal for every other line OR21 still needs a decision on (no unit left to ship)."""
    return {line.order_line_id: decided.get(line.order_line_id, False) for line in order.order_lines if not is_dead(line)}


def _shortfall(line: OrderLine, variant: Optional[Variant], needed: int, reserved: int) -> Optional[str]:
    """Why `line` cannot be served (None when it can). `needed` counts this line and earlier lines of the order."""
    quantity = live_quantity(line)
    if not line.sku:
        return f"line {line.order_line_id} has no SKU (×{quantity})"
    if variant is None:
        return f"{line.sku} ×{quantity}: unknown SKU in Shopify"
    if variant.can_serve(reserved + needed):
        return None
    available = variant.available or 0
    return f"{line.sku} ×{quantity}: {available} available, {reserved + needed - quantity} already reserved"


def decide_acceptance(
    order: MiraklOrder,
    variants: Mapping[str, Variant],
    cfg: AcceptanceConfig,
    reserved: dict[str, int] | None = None,
) -> AcceptanceDecision:
    """Decide OR21 for `order` under `cfg.mode`; `variants` is keyed by SKU.

    `reserved` maps SKU -> units already promised (accepted orders not yet in Shopify, earlier orders of
    this batch); the units of the lines this decision accepts are added to it.
    """
    if cfg.mode == "manual":
        return AcceptanceDecision("leave", {}, "manual acceptance")
    if cfg.mode == "after_import":
        return AcceptanceDecision(
            "leave", {}, "acceptance after import: accept with accept_all() once the Shopify order exists"
        )
    lines = live_order_lines(order)
    if not lines:
        return AcceptanceDecision("leave", {}, f"order {order.order_id} has no line to decide")
    reserved = {} if reserved is None else reserved
    needed_in_order: dict[str, int] = {}
    servable: dict[str, bool] = {}
    problems: list[str] = []
    for line in lines:
        sku = line.sku or ""
        needed = needed_in_order.get(sku, 0) + live_quantity(line)
        problem = _shortfall(line, variants.get(sku) if sku else None, needed, reserved.get(sku, 0))
        servable[line.order_line_id] = problem is None
        if problem is None:
            needed_in_order[sku] = needed  # refused lines do not consume stock
        else:
            problems.append(problem)
    if not problems:
        action, reason = "accept", None
    elif not cfg.refuse_unservable:
        return AcceptanceDecision("leave", {}, "cannot serve: " + "; ".join(problems))
    elif not any(servable.values()):
        action, reason = "refuse", "refused, cannot serve: " + "; ".join(problems)
    else:
        action, reason = "partial", "refused lines, cannot serve: " + "; ".join(problems)
    for sku, quantity in needed_in_order.items():
        reserved[sku] = reserved.get(sku, 0) + quantity
    return AcceptanceDecision(action, _undecided(order, servable), reason)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def acceptance_deadline(order: MiraklOrder, cfg: AcceptanceConfig) -> datetime | None:
    """When Mirakl auto-refuses the order: its creation plus the marketplace's acceptance window."""
    if order.created_date is None:
        return None
    return _utc(order.created_date) + timedelta(hours=cfg.window_hours)


def acceptance_urgency(deadline: datetime, window: timedelta, now: datetime) -> str:
    """"ok", "warn" once half the window has elapsed, "error" in its last 10 % or past the deadline."""
    if window <= timedelta(0):
        raise ValueError(f"acceptance window must be positive, got {window}")
    remaining = _utc(deadline) - _utc(now)
    if remaining <= window * URGENCY_ERROR_REMAINING:
        return "error"
    if remaining <= window * (1 - URGENCY_WARN_ELAPSED):
        return "warn"
    return "ok"


__all__ = [
    "AcceptanceDecision", "accept_all", "acceptance_deadline", "acceptance_urgency", "decide_acceptance",
]
