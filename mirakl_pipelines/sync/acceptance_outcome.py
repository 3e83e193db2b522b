"""What became of an OR21 decision whose answer we did not get, judged from what Mirakl shows now.

An OR21 can apply and still look failed: Mirakl applies it, the answer is lost (5xx from a proxy,
dropped connection), the client retries, and the retry gets 400 ORDER_INVALID_STATE because the
order is no longer WAITING_ACCEPTANCE. Only the order's current state tells whether our decision
went through, someone else decided (back office, auto-refusal at the end of the window,
cancellation), or nothing happened yet. Mirakl's error often names the order's state ("Current
status is SHIPPING"): that settles a whole-order decision at no cost; a partial decision needs
the lines, so the order is read back.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from mirakl_pipelines.mirakl.models import MiraklOrder

OUTCOMES = ("applied", "elsewhere", "waiting", "unknown")
WAITING_STATES = frozenset({"STAGING", "WAITING_ACCEPTANCE"})
# Order states reached only through an acceptance of at least one line (NOTES §4).
ACCEPTED_ORDER_STATES = frozenset({
    "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED",
})
# Line states of an accepted line, later in its life included.
ACCEPTED_LINE_STATES = ACCEPTED_ORDER_STATES | {"INCIDENT_OPEN", "INCIDENT_CLOSED", "REFUNDED"}


@dataclass(frozen=True)
class DecisionOutcome:
    """`applied`: Mirakl shows the decision we sent (ours, or an identical one: same effect); `elsewhere`: Mirakl
    shows another decision or a cancellation; `waiting`: still undecided, the call did not apply; `unknown`: what
    Mirakl showed cannot tell (read the order back)."""

    kind: str
    reason: str

    def __post_init__(self) -> None:
        if self.kind not in OUTCOMES:
            raise ValueError(f"unknown decision outcome {self.kind!r}; expected one of {OUTCOMES}")


def _described(sent: Mapping[str, bool]) -> str:
    accepted = sum(1 for ok in sent.values() if ok)
    if accepted == len(sent):
        return "accept every line"
    return "refuse every line" if accepted == 0 else f"accept {accepted} of {len(sent)} lines"


def outcome_from_status(sent: Mapping[str, bool], status: Optional[str]) -> DecisionOutcome:
    """Judge from the order's state alone (as a 400 names it): enough for a whole-order accept or refuse."""
    if not sent:
        raise ValueError("no line decision was sent")
    wanted = _described(sent)
    if not status:
        return DecisionOutcome("unknown", "Mirakl did not say the order's state")
    if status in WAITING_STATES:
        return DecisionOutcome("unknown", f"the order is {status} but Mirakl refused the decision")
    all_accepted, all_refused = all(sent.values()), not any(sent.values())
    if status in ACCEPTED_ORDER_STATES:
        if all_accepted:
            return DecisionOutcome("applied", f"we sent {wanted}; the order is {status}")
        if all_refused:
            return DecisionOutcome("elsewhere", f"we sent {wanted} but the order is {status}: accepted elsewhere")
        return DecisionOutcome("unknown", f"the order is {status}; which lines were refused needs the lines")
    if status == "REFUSED":
        if all_refused:
            return DecisionOutcome("applied", f"we sent {wanted}; the order is REFUSED")
        return DecisionOutcome("elsewhere", f"we sent {wanted} but the order is REFUSED (by the operator or at "
                                            "the end of the acceptance window)")
    return DecisionOutcome("unknown", f"the order is {status}")


def outcome_from_order(sent: Mapping[str, bool], order: MiraklOrder) -> DecisionOutcome:
    """Judge from the order read back: line by line, what Mirakl shows against what we sent."""
    if not sent:
        raise ValueError(f"order {order.order_id}: no line decision was sent")
    wanted = _described(sent)
    lines = {line.order_line_id: line for line in order.order_lines}
    missing = [line_id for line_id in sent if line_id not in lines]
    if missing:
        return DecisionOutcome("unknown", f"order {order.order_id} has no line {', '.join(missing)}")
    decided_before_cancel = order.acceptance_decision_date is not None or order.order_state in ACCEPTED_ORDER_STATES
    shown: dict[str, Optional[bool]] = {}
    for line_id in sent:
        state = lines[line_id].order_line_state
        if state in WAITING_STATES:
            shown[line_id] = None
        elif state == "REFUSED":
            shown[line_id] = False
        elif state in ACCEPTED_LINE_STATES or (state == "CANCELED" and decided_before_cancel):
            shown[line_id] = True
        elif state == "CANCELED":
            return DecisionOutcome("elsewhere", f"order {order.order_id} was cancelled before any decision "
                                                f"(line {line_id} is CANCELED)")
        else:
            return DecisionOutcome("unknown", f"order {order.order_id} line {line_id} is {state or 'without a state'}")
    if all(value is None for value in shown.values()):
        return DecisionOutcome("waiting", f"order {order.order_id} is still {order.order_state}: the decision did "
                                          "not apply")
    if any(value is None for value in shown.values()):
        undecided = [line_id for line_id, value in shown.items() if value is None]
        return DecisionOutcome("unknown", f"order {order.order_id}: lines {', '.join(undecided)} are still undecided")
    differing = [line_id for line_id, ok in sent.items() if shown[line_id] != ok]
    if not differing:
        return DecisionOutcome("applied", f"we sent {wanted}; order {order.order_id} ({order.order_state}) shows it")
    detail = ", ".join(f"{line_id} {'accepted' if shown[line_id] else 'refused'}" for line_id in differing)
    return DecisionOutcome("elsewhere", f"we sent {wanted} but order {order.order_id} shows {detail}: decided elsewhere")


__all__ = ["DecisionOutcome", "outcome_from_order", "outcome_from_status"]
