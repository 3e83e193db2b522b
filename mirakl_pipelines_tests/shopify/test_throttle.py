"""Cost-bucket arithmetic of CostThrottle, on a fake clock (no real sleeping)."""

import threading

import pytest

from mirakl_pipelines.shopify.throttle import SAFETY_MARGIN_SECONDS, CostThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def cost(requested, available, maximum=1000, rate=50, actual=None):
    return {"requestedQueryCost": requested, "actualQueryCost": actual,
            "throttleStatus": {"maximumAvailable": maximum, "currentlyAvailable": available, "restoreRate": rate}}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def throttle(clock):
    return CostThrottle(clock=clock, sleep=clock.sleep, default_cost=10)


def test_no_wait_before_any_status_is_known(throttle, clock):
    assert throttle.acquire("OrderCreate") == 0
    assert clock.slept == []


def test_waits_exactly_for_the_missing_points(throttle, clock):
    throttle.observe("OrderCreate", cost(requested=20, available=5, rate=50))
    waited = throttle.acquire("OrderCreate")
    assert waited == pytest.approx((20 - 5) / 50 + SAFETY_MARGIN_SECONDS)
    assert throttle.waited_seconds == pytest.approx(waited)


def test_restoration_since_the_status_was_seen_is_counted(throttle, clock):
    throttle.observe("OrderCreate", cost(requested=20, available=5, rate=50))
    clock.now += 0.2  # 10 points restored: 15 available, 5 missing
    assert throttle.delay_for("OrderCreate") == pytest.approx(5 / 50 + SAFETY_MARGIN_SECONDS)
    clock.now += 1.0  # now full enough
    assert throttle.delay_for("OrderCreate") == 0


def test_estimate_never_exceeds_the_bucket(throttle, clock):
    throttle.observe("Q", cost(requested=900, available=0, maximum=100, rate=10))
    clock.now += 3600
    assert throttle.status.available_at(clock.now) == 100
    # A cost above the bucket is capped at the bucket: wait for a full bucket, not forever.
    clock.now = throttle.status.seen_at
    assert throttle.delay_for("Q") == pytest.approx(100 / 10 + SAFETY_MARGIN_SECONDS)


def test_expected_cost_is_per_operation_with_a_default(throttle):
    throttle.observe("OrderCreate", cost(requested=23, available=1000))
    throttle.observe("VariantsBySku", cost(requested=152, available=1000))
    assert throttle.expected_cost("OrderCreate") == 23
    assert throttle.expected_cost("VariantsBySku") == 152
    assert throttle.expected_cost("Unseen") == 10


def test_each_acquire_debits_so_back_to_back_requests_are_paced(throttle, clock):
    throttle.observe("OrderCreate", cost(requested=20, available=40, rate=50))
    waits = [throttle.acquire("OrderCreate") for _ in range(5)]
    # 40 points cover two requests; every further one waits 20/50 s.
    assert waits[:2] == [0, 0]
    assert waits[2:] == pytest.approx([0.4 + SAFETY_MARGIN_SECONDS] * 3, abs=2e-3)


def test_throughput_tends_to_the_restore_rate(throttle, clock):
    throttle.observe("OrderCreate", cost(requested=20, available=0, maximum=200, rate=50))
    start = clock.now
    for _ in range(100):
        throttle.acquire("OrderCreate")
    points_per_second = 100 * 20 / (clock.now - start)
    assert 0.95 * 50 <= points_per_second <= 50


def test_a_fresh_status_replaces_the_estimate(throttle, clock):
    throttle.observe("OrderCreate", cost(requested=20, available=0, rate=50))
    throttle.observe("OrderCreate", cost(requested=20, available=900, rate=50))
    assert throttle.delay_for("OrderCreate") == 0


def test_partial_cost_extension_keeps_the_last_good_status(throttle):
    throttle.observe("Q", cost(requested=20, available=5))
    throttle.observe("Q", {"requestedQueryCost": 30, "throttleStatus": None})
    assert throttle.status.currently_available == 5
    assert throttle.expected_cost("Q") == 30
    throttle.observe("Q", None)
    assert throttle.status.currently_available == 5


def test_after_a_throttled_answer_the_next_acquire_waits_requested_minus_available(throttle, clock):
    refusal = cost(requested=70, available=66, rate=50)
    throttle.observe("Q", refusal)
    assert throttle.refusal_wait(refusal, None) == 0  # acquire() does the waiting
    assert throttle.acquire("Q") == pytest.approx(4 / 50 + SAFETY_MARGIN_SECONDS)


def test_refusal_wait_rules(throttle):
    assert throttle.refusal_wait(cost(requested=70, available=66), retry_after=2.0) == 2.0
    assert throttle.refusal_wait(None, None) == 1.0
    assert throttle.refusal_wait({"requestedQueryCost": 5}, None) == 1.0
    assert throttle.refusal_wait(None, retry_after=0.0) == 0.0


def test_threads_sharing_a_throttle_queue_behind_each_other(clock):
    slept: list[float] = []
    lock = threading.Lock()

    def sleep(seconds):  # the clock stands still: all four threads ask at the same instant
        with lock:
            slept.append(seconds)

    throttle = CostThrottle(clock=clock, sleep=sleep)
    throttle.observe("OrderCreate", cost(requested=50, available=0, maximum=100, rate=50))
    threads = [threading.Thread(target=throttle.acquire, args=("OrderCreate",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Each thread reserved its own slot: waits are 1, 2, 3, 4 s, not four times 1 s.
    assert sorted(round(s, 2) for s in slept) == [1.0, 2.0, 3.0, 4.0]
