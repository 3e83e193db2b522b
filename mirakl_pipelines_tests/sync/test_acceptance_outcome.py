"""What Mirakl's current state says about an OR21 decision whose answer was lost."""

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.sync.acceptance_outcome import DecisionOutcome, outcome_from_order, outcome_from_status

DECIDED = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def _order(line_states: dict[str, str], state: str, decided: bool = True) -> MiraklOrder:
    return MiraklOrder.model_validate({
        "order_id": "O-1", "order_state": state, "acceptance_decision_date": DECIDED.isoformat() if decided else None,
        "order_lines": [{"order_line_id": line_id, "order_line_state": s} for line_id, s in line_states.items()],
    })


def _as_mirakl_applies(sent: dict[str, bool], accepted_state: str) -> MiraklOrder:
    """The order as the sandbox (and Mirakl, NOTES §4) leaves it once `sent` is applied."""
    lines = {line_id: accepted_state if ok else "REFUSED" for line_id, ok in sent.items()}
    return _order(lines, accepted_state if any(sent.values()) else "REFUSED")


decisions = st.dictionaries(st.from_regex(r"O-1-[0-9]{1,2}", fullmatch=True), st.booleans(), min_size=1, max_size=6)
accepted_states = st.sampled_from(["WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED", "RECEIVED"])


@given(decisions, accepted_states)
def test_the_decision_we_sent_is_recognised_as_applied(sent, accepted_state):
    assert outcome_from_order(sent, _as_mirakl_applies(sent, accepted_state)).kind == "applied"


@given(decisions, accepted_states, st.data())
def test_any_other_decision_is_someone_elses(sent, accepted_state, data):
    flipped = data.draw(st.sampled_from(sorted(sent)))
    other = dict(sent, **{flipped: not sent[flipped]})
    outcome = outcome_from_order(sent, _as_mirakl_applies(other, accepted_state))
    assert outcome.kind == "elsewhere" and flipped in outcome.reason


@given(decisions)
def test_an_undecided_order_means_the_call_did_not_apply(sent):
    order = _order({line_id: "WAITING_ACCEPTANCE" for line_id in sent}, "WAITING_ACCEPTANCE", decided=False)
    assert outcome_from_order(sent, order).kind == "waiting"


def test_lines_cancelled_after_acceptance_still_show_the_acceptance():
    order = _order({"O-1-1": "CANCELED", "O-1-2": "SHIPPING"}, "SHIPPING")
    assert outcome_from_order({"O-1-1": True, "O-1-2": True}, order).kind == "applied"


def test_an_order_cancelled_before_any_decision_was_decided_elsewhere():
    order = _order({"O-1-1": "CANCELED"}, "CANCELED", decided=False)
    outcome = outcome_from_order({"O-1-1": True}, order)
    assert outcome.kind == "elsewhere" and "cancelled before any decision" in outcome.reason


def test_auto_refusal_of_an_accepted_order_is_elsewhere():
    order = _order({"O-1-1": "REFUSED"}, "REFUSED", decided=False)
    assert outcome_from_order({"O-1-1": True}, order).kind == "elsewhere"


@pytest.mark.parametrize("lines, why", [
    ({"O-1-2": "SHIPPING"}, "has no line O-1-1"),
    ({"O-1-1": "SOME_NEW_STATE"}, "SOME_NEW_STATE"),
    ({"O-1-1": "SHIPPING", "O-1-3": "WAITING_ACCEPTANCE"}, "still undecided"),
])
def test_what_cannot_be_told_is_unknown(lines, why):
    sent = {line_id: True for line_id in lines if line_id != "O-1-2"} or {"O-1-1": True}
    outcome = outcome_from_order(sent, _order(lines, "SHIPPING"))
    assert outcome.kind == "unknown" and why in outcome.reason


@pytest.mark.parametrize("sent, status, kind", [
    ({"a": True, "b": True}, "WAITING_DEBIT", "applied"),
    ({"a": True}, "SHIPPING", "applied"),
    ({"a": False, "b": False}, "REFUSED", "applied"),
    ({"a": True}, "REFUSED", "elsewhere"),
    ({"a": False}, "SHIPPING", "elsewhere"),
    ({"a": True, "b": False}, "SHIPPING", "unknown"),  # which lines were refused needs the lines
    ({"a": True, "b": False}, "REFUSED", "elsewhere"),
    ({"a": True}, "CANCELED", "unknown"),  # before or after a decision?
    ({"a": True}, "WAITING_ACCEPTANCE", "unknown"),
    ({"a": True}, None, "unknown"),  # Mirakl did not name the state
    ({"a": True}, "A_STATE_FROM_NEXT_YEAR", "unknown"),
])
def test_the_state_a_400_names_settles_whole_order_decisions(sent, status, kind):
    assert outcome_from_status(sent, status).kind == kind


def test_bad_input_is_refused_naming_it():
    with pytest.raises(ValueError, match="no line decision"):
        outcome_from_status({}, "SHIPPING")
    with pytest.raises(ValueError, match="O-1"):
        outcome_from_order({}, _order({}, "SHIPPING"))
    with pytest.raises(ValueError, match="unknown decision outcome"):
        DecisionOutcome("maybe", "")
