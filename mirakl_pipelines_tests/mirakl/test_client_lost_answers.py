"""MiraklClient against a hostile sandbox: writes applied whose answer is lost, and a Retry-After longer than the
client waits. Real loopback HTTP; the sandbox applies the write, then answers 502 (or drops the connection)."""

import pytest

from mirakl_pipelines.mirakl.errors import (
    CallBudgetExceeded,
    MiraklInvalidState,
    MiraklRateLimited,
    MiraklRetryLater,
)
from mirakl_pipelines_tests.mirakl.conftest import RecordingSleep
from mirakl_pipelines_tests.mirakl.test_client_sandbox import _add, _line_ids, make_client, server, sim  # noqa: F401


@pytest.mark.parametrize("lost_as", [502, 504, 0])
def test_or21_applied_but_unanswered_then_retried_says_so(sim, make_client, lost_as):  # noqa: F811
    _add(sim, "LA-1-A", lines=2)
    client = make_client()
    (order,) = client.list_orders(order_ids=["LA-1-A"])
    sim.faults.update(lose_writes=1, lost_answer_status=lost_as)
    with pytest.raises(MiraklInvalidState) as caught:
        client.accept_order("LA-1-A", _line_ids(order))
    assert caught.value.after_unanswered_attempt is True
    assert caught.value.current_status in ("WAITING_DEBIT", "SHIPPING")
    assert client.calls["OR21"] == 2 and sim.calls["OR21"] == 2


def test_invalid_state_without_a_lost_answer_is_not_flagged(sim, make_client):  # noqa: F811
    _add(sim, "LA-2-A", state_code="SHIPPING")
    with pytest.raises(MiraklInvalidState) as caught:
        make_client().accept_order("LA-2-A", {"LA-2-A-1": True})
    assert caught.value.after_unanswered_attempt is False


@pytest.mark.parametrize("lost_as", [502, 0])
def test_or24_applied_but_unanswered_counts_as_shipped_by_this_call(sim, make_client, lost_as):  # noqa: F811
    _add(sim, "LS-1-A", state_code="SHIPPING")
    client = make_client()
    sim.faults.update(lose_writes=1, lost_answer_status=lost_as)
    assert client.ship_order("LS-1-A") is True
    assert sim.get_order("LS-1-A")["order_state"] == "SHIPPED"
    assert client.calls["OR24"] == 2
    assert client.ship_order("LS-1-A") is False  # a later repeat is "already shipped"


def test_or23_applied_but_unanswered_is_retried_to_success(sim, make_client):  # noqa: F811
    _add(sim, "LT-1-A", state_code="SHIPPING")
    client = make_client()
    sim.faults.update(lose_writes=1)
    client.update_tracking("LT-1-A", carrier_code="UPS", tracking_number="1Z999AA10123456784")
    assert sim.get_order("LT-1-A")["shipping_tracking"] == "1Z999AA10123456784"
    assert client.calls["OR23"] == 2


def test_retry_after_beyond_max_wait_fails_at_once_saying_how_long(sim, make_client):  # noqa: F811
    _add(sim, "RA-1-A")
    sleep = RecordingSleep()
    client = make_client(sleep=sleep, max_wait=0.12)  # 120 API seconds (×0.001): Mirakl's hour is far beyond it
    sim.faults.update(burst_429=1, retry_after_seconds=3600)
    with pytest.raises(MiraklRetryLater) as caught:
        client.list_orders()
    error = caught.value
    assert isinstance(error, CallBudgetExceeded) and isinstance(error, MiraklRateLimited)  # both handlings catch it
    assert error.retry_after == 3600 and error.wait == pytest.approx(3.6) and error.status == 429
    assert "3600 s" in str(error) and "OR11" in str(error) and "sandbox" in str(error) and "next run" in str(error)
    assert "120 s" in str(error)  # what the caller waits, on Mirakl's time axis
    assert client.calls["OR11"] == 1 and not sleep.waits  # not retried, nothing slept
    assert [o.order_id for o in client.list_orders()] == ["RA-1-A"]  # the work is done by the next call


def test_retry_after_within_max_wait_is_waited_and_retried(sim, make_client):  # noqa: F811
    _add(sim, "RA-2-A")
    sleep = RecordingSleep()
    client = make_client(sleep=sleep, max_wait=0.12)
    sim.faults.update(burst_429=1, retry_after_seconds=60)
    assert [o.order_id for o in client.list_orders()] == ["RA-2-A"]
    assert pytest.approx(0.06) in sleep.waits
