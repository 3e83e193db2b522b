"""Which Mirakl orders are imported into Shopify, and why the others are skipped.

The rules are business rules, not API rules: a marketplace may list an order that Shopify must not
see yet (unpaid, address still hidden before acceptance) or ever (refused, canceled).
"""

from collections import Counter
from collections.abc import Iterable
from typing import Optional

from mirakl_pipelines.config import OrderImportConfig
from mirakl_pipelines.mirakl.models import Address, MiraklOrder, OrderLine

SKIP_REASONS: dict[str, str] = {
    "refused": "the order was refused (by the shop or automatically at the end of the acceptance window)",
    "canceled": "the order was canceled on the marketplace",
    "state_not_imported": "the order's state is not one of the states this marketplace imports (orders.states)",
    "no_lines": "the order has no line left to import (none, or all refused or canceled)",
    "not_paid": "the customer has not been debited yet and orders.paid_only is set",
    "no_shipping_address": "the shipping address is missing or lacks street, city or country",
}

# States in which the customer has been debited: Mirakl only moves an order to SHIPPING once the debit
# is confirmed, so these count as paid even when customer_debited_date is absent from the payload.
PAID_STATES = frozenset({"SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"})

# Line states that will never be shipped: such lines are neither imported nor decided.
DEAD_LINE_STATES = frozenset({"REFUSED", "CANCELED"})


def is_paid(order: MiraklOrder) -> bool:
    """Whether the customer has paid: a debit date, or a state Mirakl only reaches after the debit."""
    return order.customer_debited_date is not None or order.order_state in PAID_STATES


def live_lines(order: MiraklOrder) -> list[OrderLine]:
    """The lines still to be fulfilled: refused and canceled lines are dropped."""
    return [line for line in order.order_lines if line.order_line_state not in DEAD_LINE_STATES]


def is_complete_address(address: Optional[Address]) -> bool:
    """An address a carrier can deliver to: street, city and country are all present."""
    return bool(
        address is not None
        and (address.street_1 or "").strip()
        and (address.city or "").strip()
        and (address.country_iso_code or "").strip()
    )


def skip_reason(order: MiraklOrder, cfg: OrderImportConfig) -> str | None:
    """The code (a key of SKIP_REASONS) of why `order` is not imported, or None when it is eligible."""
    if order.order_state == "REFUSED":
        return "refused"
    if order.order_state == "CANCELED":
        return "canceled"
    if order.order_state not in cfg.states:
        return "state_not_imported"
    if not live_lines(order):
        return "no_lines"
    if cfg.paid_only and not is_paid(order):
        return "not_paid"
    if cfg.require_shipping_address and not is_complete_address(order.shipping_address):
        return "no_shipping_address"
    return None


def summarize_skips(reasons: Iterable[str | None]) -> dict[str, int]:
    """Count skipped orders per reason code (eligible orders, None, are not counted), sorted by code."""
    counts = Counter(reason for reason in reasons if reason is not None)
    return dict(sorted(counts.items()))


__all__ = [
    "DEAD_LINE_STATES", "PAID_STATES", "SKIP_REASONS", "is_complete_address", "is_paid", "live_lines",
    "skip_reason", "summarize_skips",
]
