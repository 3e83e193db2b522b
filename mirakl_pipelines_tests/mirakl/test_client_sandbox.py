"""MiraklClient against the Mirakl sandbox over loopback HTTP: the client and the simulator agree on the wire.

Skipped (saying why) until the sandbox modules exist.
"""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

state = pytest.importorskip("mirakl_pipelines.sandbox.mirakl.state", reason="the Mirakl sandbox (state.py) is not there yet")
orders_mod = pytest.importorskip("mirakl_pipelines.sandbox.mirakl.orders", reason="the Mirakl sandbox (orders.py) is not there yet")
app_mod = pytest.importorskip("mirakl_pipelines.sandbox.mirakl.app", reason="the Mirakl sandbox (app.py) is not there yet")

from mirakl_pipelines.mirakl.budget import InMemoryBudget  # noqa: E402
from mirakl_pipelines.mirakl.client import MiraklClient  # noqa: E402
from mirakl_pipelines.mirakl.errors import (  # noqa: E402
    CallBudgetExceeded,
    MiraklAuthError,
    MiraklInvalidState,
    MiraklServerError,
)
from mirakl_pipelines.sandbox.server import serve_in_thread  # noqa: E402

SCALE = 0.001
KEY = "k"
SKU = "ALP-TRAIL-42"


def _add(sim, order_id: str, *, state_code: str = "WAITING_ACCEPTANCE", lines: int = 1, created: datetime | None = None):
    sim.add_order(
        orders_mod.build_order(
            order_id=order_id,
            lines=[{"sku": SKU, "title": "Shoe", "quantity": 1, "unit_price": Decimal("89.90")} for _ in range(lines)],
            created=created or datetime.now(UTC),
            state=state_code,
        )
    )


@pytest.fixture
def sim():
    return state.MarketplaceSim(state.MarketplaceSettings(api_key=KEY, rate_limit_scale=SCALE))


@pytest.fixture
def server(sim):
    running = serve_in_thread(app_mod.create_mirakl_app(sim), name="mirakl-sandbox")
    yield running
    running.stop()


@pytest.fixture
def make_client(server):
    clients = []

    def make(**kwargs) -> MiraklClient:
        options = dict(rate_limit_scale=SCALE, timeout=5.0, marketplace="sandbox", budget=InMemoryBudget())
        options.update(kwargs)
        client = MiraklClient(server.url, options.pop("api_key", KEY), **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _line_ids(order) -> dict[str, bool]:
    return {line.order_line_id: True for line in order.order_lines}


def test_pagination_over_250_orders(sim, make_client):
    start = datetime.now(UTC) - timedelta(hours=1)
    for i in range(250):
        _add(sim, f"P-{i:04d}-A", created=start + timedelta(seconds=i))
    client = make_client()
    result = client.list_orders()
    assert sorted(o.order_id for o in result) == [f"P-{i:04d}-A" for i in range(250)]
    assert all(isinstance(o.total_price, Decimal) for o in result)
    assert result[0].order_lines[0].sku == SKU
    assert 3 <= client.calls["OR11"] <= 3 * (1 + client.max_retries)  # 3 pages of 100 (sandbox default: 10)


def test_order_ids_batched_and_filtered(sim, make_client):
    for i in range(220):
        _add(sim, f"I-{i:04d}-A")
    wanted = [f"I-{i:04d}-A" for i in range(220) if i % 10]  # 198 ids: 2 batches (Mirakl refuses > 100)
    client = make_client()
    result = client.list_orders(order_ids=wanted)
    assert sorted(o.order_id for o in result) == sorted(wanted)  # the sandbox answers 400 to > 100 ids
    # Two listings; a third request only if latency made the second land early and it was retried.
    assert client.calls["OR11"] in (2, 3)


def test_updated_window_and_states_filter(sim, make_client):
    _add(sim, "W-1-A", state_code="SHIPPING")
    _add(sim, "W-2-A", state_code="WAITING_ACCEPTANCE")
    client = make_client()
    now = datetime.now(UTC)
    result = client.list_orders(updated_from=now - timedelta(hours=1), updated_to=now + timedelta(minutes=1),
                                states=["SHIPPING"])
    assert [o.order_id for o in result] == ["W-1-A"]


def test_accept_round_trip_and_second_decision_is_invalid_state(sim, make_client):
    _add(sim, "A-1-A", lines=2)
    client = make_client()
    (order,) = client.list_orders(order_ids=["A-1-A"])
    assert order.order_state == "WAITING_ACCEPTANCE"
    client.accept_order("A-1-A", _line_ids(order))
    (accepted,) = client.list_orders(order_ids=["A-1-A"])
    assert accepted.order_state != "WAITING_ACCEPTANCE"
    assert all(line.order_line_state != "WAITING_ACCEPTANCE" for line in accepted.order_lines)
    with pytest.raises(MiraklInvalidState):
        client.accept_order("A-1-A", _line_ids(order))


def test_tracking_and_ship_round_trip_then_already_shipped(sim, make_client):
    _add(sim, "S-1-A", state_code="SHIPPING")
    client = make_client()
    client.update_tracking("S-1-A", carrier_code="UPS", tracking_number="1Z999AA10123456784")
    assert client.ship_order("S-1-A") is True
    (shipped,) = client.list_orders(order_ids=["S-1-A"])
    assert shipped.order_state == "SHIPPED"
    assert shipped.shipping_tracking == "1Z999AA10123456784"
    assert client.ship_order("S-1-A") is False  # a retried OR24 after success must not fail the fulfilment


def test_ship_before_acceptance_is_invalid_state(sim, make_client):
    _add(sim, "S-2-A")
    with pytest.raises(MiraklInvalidState) as caught:
        make_client().ship_order("S-2-A")
    assert caught.value.current_status == "WAITING_ACCEPTANCE"


def test_carriers(make_client):
    carriers = make_client().list_carriers()
    assert carriers and all(c.code and c.label for c in carriers)


def test_wrong_key_is_an_auth_error(make_client):
    client = make_client(api_key="wrong")
    with pytest.raises(MiraklAuthError):
        client.list_orders()
    assert client.calls["OR11"] == 1


def test_429_storm_recovered_honouring_retry_after(sim, make_client):
    _add(sim, "R-1-A")
    sim.faults.update(burst_429=3, retry_after_seconds=1)
    client = make_client()
    assert [o.order_id for o in client.list_orders()] == ["R-1-A"]
    assert client.calls["OR11"] == 4


def test_5xx_burst_recovered_and_persistent_5xx_raises(sim, make_client):
    _add(sim, "F-1-A")
    sim.faults.update(error_5xx_rate=0.5, seed=3)
    client = make_client(max_retries=10)
    assert [o.order_id for o in client.list_orders()] == ["F-1-A"]
    sim.faults.update(error_5xx_rate=1.0)
    failing = make_client(max_retries=2)
    started = time.monotonic()
    with pytest.raises(MiraklServerError) as caught:
        failing.list_carriers()
    assert caught.value.status == 503 and failing.calls["SH21"] == 3
    assert time.monotonic() - started < 2


def test_timeouts_then_recovery(sim, make_client):
    _add(sim, "T-1-A")
    sim.faults.update(latency_ms=300)
    client = make_client(timeout=0.05, max_retries=1)
    with pytest.raises(MiraklServerError) as caught:
        client.list_orders()
    assert caught.value.status is None and client.calls["OR11"] == 2
    sim.faults.update(latency_ms=0)
    assert [o.order_id for o in make_client(timeout=0.5).list_orders()] == ["T-1-A"]


def test_dropped_connections_on_reads_and_writes(sim, make_client):
    _add(sim, "C-1-A", state_code="SHIPPING")
    sim.faults.update(drop_rate=0.5, seed=11)
    client = make_client(max_retries=10)
    assert [o.order_id for o in client.list_orders()] == ["C-1-A"]
    assert client.ship_order("C-1-A") in (True, False)  # False only if a dropped attempt had already shipped it
    sim.faults.update(drop_rate=0.0)
    (order,) = client.list_orders(order_ids=["C-1-A"])
    assert order.order_state == "SHIPPED"


def test_budget_enforced_between_listings(sim, make_client, recording_sleep):
    paced = make_client(sleep=recording_sleep)  # OR11: 60 s -> 63 ms with the margin
    started = time.monotonic()
    paced.list_orders()
    paced.list_orders()
    assert time.monotonic() - started >= 0.06
    # The budget waited (what is left of the interval after the first listing: less under load), not a retry.
    assert recording_sleep.waits and 0 < recording_sleep.waits[0] <= 0.063
    assert sim.rejected["OR11"] == 0


def test_budget_refuses_a_listing_it_cannot_wait_for(sim, make_client):
    strict = make_client(budget=InMemoryBudget(), rate_limit_scale=1.0, max_wait=1.0)
    strict.list_orders()
    calls_before = sim.calls["OR11"]
    with pytest.raises(CallBudgetExceeded):
        strict.list_orders()
    assert sim.calls["OR11"] == calls_before  # refused before anything was sent
