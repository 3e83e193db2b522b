"""Holding exactly the cancelled units still to fulfil, and naming those that cannot be held."""

from dataclasses import dataclass

from mirakl_pipelines.sync.holds import hold_handle, plan_holds


@dataclass
class Item:
    id: str
    mirakl_line_id: str | None
    remaining_quantity: int


@dataclass
class FO:
    id: str
    status: str
    line_items: list


def test_a_partial_cancellation_holds_only_the_cancelled_units():
    fo = FO("fo1", "OPEN", [Item("a", "L1", 3), Item("b", "L2", 1), Item("fee", None, 1)])
    plan = plan_holds([fo], {"L1": 1})
    (hold,) = plan.holds
    assert (hold.fulfilment_order_id, hold.lines, hold.units) == ("fo1", {"a": 1}, {"L1": 1})
    assert plan.not_held == {} and plan.held == {"L1": 1}


def test_a_whole_cancellation_holds_the_whole_fulfilment_order():
    fo = FO("fo1", "OPEN", [Item("a", "L1", 3), Item("b", "L2", 1)])
    (hold,) = plan_holds([fo], {"L1": 3, "L2": 1}).holds
    assert hold.lines is None and hold.units == {"L1": 3, "L2": 1}


def test_a_line_split_over_two_shopify_lines_and_fulfilment_orders():
    fos = [FO("fo1", "OPEN", [Item("a", "L1", 2), Item("a2", "L1", 1)]), FO("fo2", "OPEN", [Item("c", "L1", 2)])]
    plan = plan_holds(fos, {"L1": 4})
    assert [(h.fulfilment_order_id, h.lines) for h in plan.holds] == [("fo1", None), ("fo2", {"c": 1})]
    assert plan.held == {"L1": 4}


def test_units_already_fulfilled_cannot_be_held():
    fos = [FO("fo1", "CLOSED", [Item("a", "L1", 0)]), FO("fo2", "OPEN", [Item("b", "L1", 1)])]
    plan = plan_holds(fos, {"L1": 3})
    assert plan.held == {"L1": 1} and plan.not_held == {"L1": 2}


def test_a_held_fulfilment_order_takes_another_hold_only_whole():
    held = FO("fo1", "ON_HOLD", [Item("a", "L1", 2), Item("b", "L2", 1)])
    assert plan_holds([held], {"L1": 1}).not_held == {"L1": 1}
    (hold,) = plan_holds([held], {"L1": 2, "L2": 1}).holds
    assert hold.lines is None


def test_handles_fit_shopifys_limit():
    assert hold_handle("cancel", "X" * 100) == ("mirakl-cancel-" + "X" * 100)[:64]
