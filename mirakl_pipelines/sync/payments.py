"""Whether the customer has paid a Mirakl order, as Mirakl says it: the debit date, nothing else.

An order in SHIPPING is cleared to ship, not necessarily paid: PAY_ON_DELIVERY, PAY_ON_DUE_DATE,
PAY_ON_SHIPMENT and NO_CUSTOMER_PAYMENT_CONFIRMATION orders reach SHIPPING before any debit, and a
customer who pays the seller directly is never debited by the marketplace. Shopify books such an
order pending; the importer marks it paid (orderMarkAsPaid) once Mirakl shows the debit.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.sync.order_lines import live_order_lines

# States in which Mirakl itself still waits for the customer's debit before the order may ship.
AWAITING_DEBIT_STATES = frozenset({"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"})

_PENDING_REASONS = {
    "PAY_ON_DELIVERY": "pay on delivery: Mirakl confirms the customer's debit after delivery",
    "PAY_ON_SHIPMENT": "pay on shipment: the customer is debited once the order ships",
    "NO_CUSTOMER_PAYMENT_CONFIRMATION": "the marketplace does not confirm customer payments (NO_CUSTOMER_PAYMENT_CONFIRMATION)",
}


@dataclass(frozen=True)
class PaymentStatus:
    paid: bool
    paid_at: Optional[datetime]
    reason: str  # for people: why it is (not yet) paid


def payment_status(order: MiraklOrder) -> PaymentStatus:
    """Paid when Mirakl gives the customer's debit date (the order's, or every live line's)."""
    debited = order.customer_debited_date
    if debited is None:
        dates = [line.debited_date for line in live_order_lines(order)]
        if dates and all(d is not None for d in dates):
            debited = max(dates)
    if debited is not None:
        return PaymentStatus(True, debited, f"the customer was debited on {debited.isoformat()}")
    return PaymentStatus(False, None, _pending_reason(order))


def awaits_debit_before_shipping(order: MiraklOrder) -> bool:
    """Mirakl still waits for the debit before the order may ship (a PAY_ON_ACCEPTANCE order not yet paid)."""
    return order.order_state in AWAITING_DEBIT_STATES and not payment_status(order).paid


def _pending_reason(order: MiraklOrder) -> str:
    if order.customer_directly_pays_seller:
        return ("the customer pays the seller directly, not through the marketplace: "
                "mark the order paid in Shopify when the payment arrives")
    workflow = order.payment_workflow or "PAY_ON_ACCEPTANCE"
    if workflow == "PAY_ON_DUE_DATE":
        days = f" ({order.payment_duration} days)" if order.payment_duration else ""
        return f"pay on due date{days}: the customer is debited at the due date"
    return _PENDING_REASONS.get(workflow, "the customer has not been debited yet")


__all__ = ["AWAITING_DEBIT_STATES", "PaymentStatus", "awaits_debit_before_shipping", "payment_status"]
