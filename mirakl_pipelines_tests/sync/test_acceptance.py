from datetime import datetime, timedelta, timezone

import pytest

from mirakl_pipelines.config import AcceptanceConfig
from mirakl_pipelines.shopify.models import Variant
from mirakl_pipelines.sync.acceptance import (
    AcceptanceDecision,
    accept_all,
    acceptance_deadline,
    acceptance_urgency,
    decide_acceptance,
)
from mirakl_pipelines_tests.sync.orders import order

AUTO = AcceptanceConfig(mode="auto")
AUTO_REFUSE = AcceptanceConfig(mode="auto", refuse_unservable=True)
UTC = timezone.utc


def waiting_order(order_id="Order_1-A", **lines):
    """An order awaiting acceptance with one line per SKU=quantity (SKU spelled with _ for -)."""
    return order(
        order_id=order_id,
        order_state="WAITING_ACCEPTANCE",
        customer_debited_date=None,
        order_lines=[
            {"order_line_id": f"{order_id}-{i}", "order_line_state": "WAITING_ACCEPTANCE",
             "offer_sku": sku.replace("_", "-"), "quantity": quantity}
            for i, (sku, quantity) in enumerate(lines.items(), start=1)
        ],
    )


VARIANTS = {
    "IN-STOCK": Variant(id="gid://shopify/ProductVariant/1", sku="IN-STOCK", available=5),
    "LOW": Variant(id="gid://shopify/ProductVariant/2", sku="LOW", available=1),
    "EMPTY": Variant(id="gid://shopify/ProductVariant/3", sku="EMPTY", available=0),
    "UNTRACKED": Variant(id="gid://shopify/ProductVariant/4", sku="UNTRACKED", available=0, tracked=False),
    "PREORDER": Variant(id="gid://shopify/ProductVariant/5", sku="PREORDER", available=-3, inventory_policy="CONTINUE"),
    "UNKNOWN-STOCK": Variant(id="gid://shopify/ProductVariant/6", sku="UNKNOWN-STOCK", available=None),
}


@pytest.mark.parametrize(
    ("lines", "cfg", "action", "accepted", "reason_parts"),
    [
        ({"IN_STOCK": 5}, AUTO, "accept", {1: True}, []),  # exactly enough
        ({"IN_STOCK": 2, "LOW": 1}, AUTO, "accept", {1: True, 2: True}, []),
        ({"UNTRACKED": 50}, AUTO, "accept", {1: True}, []),
        ({"PREORDER": 4}, AUTO, "accept", {1: True}, []),  # CONTINUE sells past zero
        ({"IN_STOCK": 6}, AUTO, "leave", {}, ["IN-STOCK ×6: 5 available, 0 already reserved"]),
        ({"IN_STOCK": 1, "EMPTY": 1}, AUTO, "leave", {}, ["EMPTY ×1: 0 available"]),
        ({"GHOST": 1}, AUTO, "leave", {}, ["GHOST ×1: unknown SKU"]),
        ({"UNKNOWN_STOCK": 1}, AUTO, "leave", {}, ["UNKNOWN-STOCK ×1: 0 available"]),
        ({"IN_STOCK": 6}, AUTO_REFUSE, "refuse", {1: False}, ["IN-STOCK ×6"]),
        ({"EMPTY": 1, "GHOST": 2}, AUTO_REFUSE, "refuse", {1: False, 2: False}, ["EMPTY ×1", "GHOST ×2"]),
        ({"IN_STOCK": 2, "LOW": 2, "GHOST": 1}, AUTO_REFUSE, "partial", {1: True, 2: False, 3: False},
         ["LOW ×2: 1 available", "GHOST ×1: unknown SKU"]),
        ({"IN_STOCK": 1}, AcceptanceConfig(mode="manual"), "leave", {}, ["manual acceptance"]),
        ({"GHOST": 1}, AcceptanceConfig(mode="manual", refuse_unservable=True), "leave", {}, ["manual acceptance"]),
    ],
)
def test_decisions(lines, cfg, action, accepted, reason_parts):
    o = waiting_order(**lines)
    decision = decide_acceptance(o, VARIANTS, cfg)
    assert decision.action == action
    assert decision.lines == {f"Order_1-A-{i}": ok for i, ok in accepted.items()}
    for part in reason_parts:
        assert part in decision.reason
    if action == "accept":
        assert decision.reason is None


def test_lines_of_the_same_sku_add_up_within_an_order():
    o = waiting_order(IN_STOCK=3)
    o.order_lines.append(o.order_lines[0].model_copy(update={"order_line_id": "Order_1-A-2"}))
    decision = decide_acceptance(o, VARIANTS, AUTO_REFUSE)
    assert decision.action == "partial"
    assert decision.lines == {"Order_1-A-1": True, "Order_1-A-2": False}
    assert "IN-STOCK ×3: 5 available, 3 already reserved" in decision.reason


def test_reserved_units_carry_across_a_batch():
    reserved: dict[str, int] = {}
    first = decide_acceptance(waiting_order("A", IN_STOCK=3, UNTRACKED=2), VARIANTS, AUTO, reserved)
    assert first.action == "accept"
    assert reserved == {"IN-STOCK": 3, "UNTRACKED": 2}
    second = decide_acceptance(waiting_order("B", IN_STOCK=3), VARIANTS, AUTO, reserved)
    assert second.action == "leave"
    assert "IN-STOCK ×3: 5 available, 3 already reserved" in second.reason
    assert reserved == {"IN-STOCK": 3, "UNTRACKED": 2}  # a left order reserves nothing
    third = decide_acceptance(waiting_order("C", IN_STOCK=2), VARIANTS, AUTO, reserved)
    assert third.action == "accept"
    assert reserved["IN-STOCK"] == 5
    assert decide_acceptance(waiting_order("D", IN_STOCK=1), VARIANTS, AUTO, reserved).action == "leave"


def test_partial_acceptance_reserves_only_the_accepted_lines():
    reserved = {"LOW": 0}
    decision = decide_acceptance(waiting_order("A", IN_STOCK=2, LOW=4), VARIANTS, AUTO_REFUSE, reserved)
    assert decision.action == "partial"
    assert reserved == {"LOW": 0, "IN-STOCK": 2}


def test_without_reserved_dict_nothing_is_shared():
    assert decide_acceptance(waiting_order("A", LOW=1), VARIANTS, AUTO).action == "accept"
    assert decide_acceptance(waiting_order("B", LOW=1), VARIANTS, AUTO).action == "accept"


def test_refused_lines_are_not_decided_again():
    o = waiting_order(IN_STOCK=1, EMPTY=1)
    o.order_lines[1].order_line_state = "REFUSED"
    assert decide_acceptance(o, VARIANTS, AUTO).lines == {"Order_1-A-1": True}


def test_after_import_mode_is_left_to_the_caller_and_accept_all_accepts_every_live_line():
    o = waiting_order(GHOST=1, EMPTY=2)
    left = decide_acceptance(o, VARIANTS, AcceptanceConfig(mode="after_import"))
    assert (left.action, left.lines) == ("leave", {})
    assert "accept_all" in left.reason
    assert accept_all(o) == AcceptanceDecision("accept", {"Order_1-A-1": True, "Order_1-A-2": True}, None)


def test_order_without_lines_is_left():
    decision = decide_acceptance(order(order_lines=[]), VARIANTS, AUTO)
    assert decision.action == "leave" and "no line" in decision.reason


def test_unknown_action_is_rejected():
    with pytest.raises(ValueError, match="unknown acceptance action"):
        AcceptanceDecision("maybe", {}, None)


# -- deadline and urgency --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created", "hours", "expected"),
    [
        ("2026-03-14T09:30:00Z", 72, datetime(2026, 3, 17, 9, 30, tzinfo=UTC)),
        ("2026-03-14T09:30:00+02:00", 120, datetime(2026, 3, 19, 7, 30, tzinfo=UTC)),
        ("2026-03-14T09:30:00", 0.5, datetime(2026, 3, 14, 10, 0, tzinfo=UTC)),  # naive = UTC
        (None, 72, None),
    ],
)
def test_acceptance_deadline(created, hours, expected):
    deadline = acceptance_deadline(order(created_date=created), AcceptanceConfig(window_hours=hours))
    assert deadline == expected


DEADLINE = datetime(2026, 3, 17, 9, 30, tzinfo=UTC)
WINDOW = timedelta(hours=72)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (DEADLINE - WINDOW, "ok"),  # just created
        (DEADLINE - timedelta(hours=36, seconds=1), "ok"),
        (DEADLINE - timedelta(hours=36), "warn"),  # half the window elapsed
        (DEADLINE - timedelta(hours=7, minutes=12, seconds=1), "warn"),
        (DEADLINE - timedelta(hours=7, minutes=12), "error"),  # last 10 %
        (DEADLINE, "error"),
        (DEADLINE + timedelta(days=3), "error"),  # past the deadline
    ],
)
def test_acceptance_urgency_boundaries(now, expected):
    assert acceptance_urgency(DEADLINE, WINDOW, now) == expected


def test_acceptance_urgency_rejects_an_empty_window():
    with pytest.raises(ValueError, match="must be positive"):
        acceptance_urgency(DEADLINE, timedelta(0), DEADLINE)
