"""Client-side pacing for Shopify's calculated-cost leaky bucket.

Shopify answers every GraphQL request with `extensions.cost.throttleStatus{maximumAvailable,
currentlyAvailable, restoreRate}` and refuses (THROTTLED) a request whose *requested* cost exceeds what
is currently available. Rather than hitting the wall and backing off, the throttle keeps the last status
and when it was seen, estimates the bucket now (`min(max, last + restoreRate × elapsed)`) and sleeps just
long enough for the operation's expected cost (its last `requestedQueryCost`) to fit. Throughput then
approaches the restore rate. Nothing about plans is hard-coded: until a status is seen, requests go
straight out.

The estimate is a virtual clock: each request debits its expected cost when it leaves, so threads
sharing one throttle queue behind each other instead of all seeing the same budget. A debit can push
the estimate below zero; that is "debt" the next caller waits off. A fresh server status replaces the
estimate, less what the other requests still in flight will be charged: the server has not seen them yet.
"""

import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

DEFAULT_COST = 10  # Shopify's documented base cost of a mutation; used until an operation's cost is seen
SAFETY_MARGIN_SECONDS = 0.001  # rounding between our clock and the server's; a wasted millisecond beats a THROTTLED


@dataclass(frozen=True)
class BucketStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float
    seen_at: float  # clock() when observed

    def available_at(self, now: float) -> float:
        """Estimated points available at `now` (may be negative while queued requests are in debt)."""
        return min(self.maximum_available, self.currently_available + self.restore_rate * (now - self.seen_at))


def parse_cost(extensions: Optional[dict]) -> Optional[dict]:
    """`extensions.cost` of a response, or None when the answer carried none (errors, 429, 5xx)."""
    if not isinstance(extensions, dict):
        return None
    cost = extensions.get("cost")
    return cost if isinstance(cost, dict) else None


class CostThrottle:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 default_cost: int = DEFAULT_COST):
        self.clock = clock
        self.sleep = sleep
        self.default_cost = default_cost
        self.status: Optional[BucketStatus] = None
        self.requested_costs: dict[str, int] = {}
        self.waited_seconds = 0.0
        self._lock = threading.Lock()
        self._in_flight = 0.0  # expected cost of the requests sent and not yet answered
        self._local = threading.local()  # this thread's own in-flight debit

    def expected_cost(self, operation: str) -> float:
        cost = float(self.requested_costs.get(operation, self.default_cost))
        if self.status is not None:
            cost = min(cost, self.status.maximum_available)  # never wait for more than the bucket can hold
        return cost

    def delay_for(self, operation: str, now: Optional[float] = None) -> float:
        """Seconds to wait before `operation` fits in the bucket (0 when it fits or nothing is known yet)."""
        status = self.status
        if status is None or status.restore_rate <= 0:
            return 0.0
        now = self.clock() if now is None else now
        missing = self.expected_cost(operation) - status.available_at(now)
        return missing / status.restore_rate + SAFETY_MARGIN_SECONDS if missing > 0 else 0.0

    def acquire(self, operation: str) -> float:
        """Wait until `operation` fits, debit its expected cost from the estimate; return the seconds waited."""
        with self._lock:
            now = self.clock()
            delay = self.delay_for(operation, now)
            status = self.status
            debit = self.expected_cost(operation)
            self._in_flight += debit
            self._local.debit = getattr(self._local, "debit", 0.0) + debit
            if status is not None:
                departure = now + delay
                self.status = BucketStatus(
                    maximum_available=status.maximum_available,
                    currently_available=status.available_at(departure) - self.expected_cost(operation),
                    restore_rate=status.restore_rate,
                    seen_at=departure,
                )
        return self.wait(delay)

    def settle(self) -> None:
        """This thread's request is answered (or failed): its debit is no longer in flight. Idempotent."""
        with self._lock:
            self._settle_locked()

    def _settle_locked(self) -> None:
        self._in_flight = max(0.0, self._in_flight - getattr(self._local, "debit", 0.0))
        self._local.debit = 0.0

    def observe(self, operation: str, cost: Optional[dict]) -> None:
        """Record a response's `extensions.cost`: the operation's requested cost and the bucket as the server sees it."""
        with self._lock:
            self._settle_locked()
            if not cost:
                return
            requested = cost.get("requestedQueryCost")
            if requested is not None:
                self.requested_costs[operation] = int(requested)
            throttle_status = cost.get("throttleStatus") or {}
            try:
                self.status = BucketStatus(
                    maximum_available=float(throttle_status["maximumAvailable"]),
                    currently_available=float(throttle_status["currentlyAvailable"]) - self._in_flight,
                    restore_rate=float(throttle_status["restoreRate"]),
                    seen_at=self.clock(),
                )
            except (KeyError, TypeError, ValueError):
                pass  # a partial status teaches nothing about the bucket; keep the last good one

    def refusal_wait(self, cost: Optional[dict], retry_after: Optional[float]) -> float:
        """Extra seconds to wait after a THROTTLED/429 refusal, before the next acquire().

        Retry-After wins when the server sent one. A refusal that carried a bucket status has been
        observed, so the next acquire() already waits (requested − available)/restoreRate: nothing extra.
        Without either, wait 1 s (what Shopify's own clients do).
        """
        if retry_after is not None:
            return max(0.0, retry_after)
        status = (cost or {}).get("throttleStatus") or {}
        if (cost or {}).get("requestedQueryCost") is not None and status.get("restoreRate") and \
                status.get("currentlyAvailable") is not None:
            return 0.0
        return 1.0

    def wait(self, seconds: float) -> float:
        if seconds > 0:
            self.sleep(seconds)
            with self._lock:
                self.waited_seconds += seconds
        return max(seconds, 0.0)
