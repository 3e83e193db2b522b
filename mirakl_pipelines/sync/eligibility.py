"""Which Mirakl orders are imported into Shopify, and why the others are skipped.

The rules are business rules, not API rules: a marketplace may list an order that Shopify must not
see yet (awaiting its debit) or ever (refused, canceled). An order cleared to ship but not yet paid
(pay on delivery, due date…) is imported: it cannot be paid before it ships (see payments.py).
"""

from collections import Counter
from collections.abc import Iterable
from typing import Optional

from mirakl_pipelines.config import MarketplaceConfig
from mirakl_pipelines.mirakl.models import Address, MiraklOrder
from mirakl_pipelines.sync.order_lines import live_order_lines
from mirakl_pipelines.sync.payments import awaits_debit_before_shipping

SKIP_REASONS: dict[str, str] = {
    "refused": "the order was refused (by the shop or automatically at the end of the acceptance window)",
    "canceled": "the order was canceled on the marketplace",
    "state_not_imported": "the order's state is not one of the states this marketplace imports (orders.states)",
    "no_lines": "the order has no unit left to ship (every line refused or canceled)",
    "not_paid": "Mirakl still waits for the customer's debit before the order may ship, and orders.paid_only is set",
    "no_shipping_address": "the shipping address is missing or lacks street, city or country",
}
WAITING_ACCEPTANCE = "WAITING_ACCEPTANCE"


def is_complete_address(address: Optional[Address]) -> bool:
    """An address a carrier can deliver to: street, city and country are all present."""
    return bool(
        address is not None
        and (address.street_1 or "").strip()
        and (address.city or "").strip()
        and (address.country_iso_code or "").strip()
    )


def address_follows(order: MiraklOrder, marketplace: MarketplaceConfig) -> bool:
    """The address may come later: an order imported before acceptance, on a marketplace that hides
    addresses until then, must be imported without it (or it is never accepted and Mirakl refuses it)."""
    return marketplace.acceptance.mode == "after_import" and order.order_state == WAITING_ACCEPTANCE


def skip_reason(order: MiraklOrder, marketplace: MarketplaceConfig) -> str | None:
    """The code (a key of SKIP_REASONS) of why `order` is not imported, or None when it is eligible."""
    cfg = marketplace.orders
    if order.order_state == "REFUSED":
        return "refused"
    if order.order_state == "CANCELED":
        return "canceled"
    if order.order_state not in cfg.states:
        return "state_not_imported"
    if not live_order_lines(order):
        return "no_lines"
    if cfg.paid_only and awaits_debit_before_shipping(order):
        return "not_paid"
    if (cfg.require_shipping_address and not is_complete_address(order.shipping_address)
            and not address_follows(order, marketplace)):
        return "no_shipping_address"
    return None


def summarize_skips(reasons: Iterable[str | None]) -> dict[str, int]:
    """Count skipped orders per reason code (eligible orders, None, are not counted), sorted by code."""
    counts = Counter(reason for reason in reasons if reason is not None)
    return dict(sorted(counts.items()))


__all__ = ["SKIP_REASONS", "address_follows", "is_complete_address", "skip_reason", "summarize_skips"]
