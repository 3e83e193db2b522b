"""Per-operation call-frequency limits, as the spec's "Maximum usage" documents them.

Encoded here because the reference folder is not shipped; a test cross-checks this table against
operations-index.json. The limit is a minimum interval between two calls of one operation
(a token bucket of size one), measured on a monotonic clock and multiplied by `scale`.

Retry-After is written on the API's own time axis (unscaled seconds, rounded up), the same axis
the client's `rate_limit_scale` compresses: a sandbox and a client sharing one scale agree.
"""

import math
import threading
import time
from typing import Callable

MINUTE = 60.0
DAY = 86400.0

# Minimum seconds between two calls of each implemented operation; None: "at each <business event>".
MIN_INTERVAL_SECONDS: dict[str, float | None] = {
    "OR11": MINUTE,  # "Asynchronous: once per minute"; only a listing's first page (offset 0) counts
    "OR21": None,  # "At each new order on the Marketplace"
    "OR23": None,  # "At each order tracking information update"
    "OR24": None,  # "Each time the tracking number is entered (OR23)"
    "SH21": DAY,  # "Once per day"
    "ST01": None,  # "On each new shipment"
    "ST11": None,  # "at each shipment page display"
    "ST23": None,  # "On each shipment tracking info update"
    "ST24": None,  # "On each shipment shipping"
}

# The offers' and stock operations (offers.py), kept apart because their texts also use "every N seconds"
# and OF54 is a dynamic URL; test_offers_contract.py cross-checks them against operations-index.json.
OFFER_MIN_INTERVAL_SECONDS: dict[str, float | None] = {
    "OF21": None,  # "On each shop's offers page view"
    "OF52": MINUTE,  # "Differential: once per minute - Full: once per day"; only the differential limit is enforced
    "OF53": 10.0,  # "Every 10 seconds"
    "OF54": None,  # the export's file URLs: no documented limit
    "STO01": MINUTE,  # "Once per minute"
    "STO02": 15.0,  # "Once every 15 seconds"
    "STO03": MINUTE,  # "Once per minute"
}


class CallFrequencyLimiter:
    def __init__(self, scale: float = 1.0, monotonic: Callable[[], float] = time.monotonic):
        if scale <= 0:
            raise ValueError(f"rate_limit_scale must be > 0 (got {scale})")
        self.scale = scale
        self._monotonic = monotonic
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, operation: str) -> int | None:
        """Book a call: None when allowed, else the Retry-After seconds (API time axis) to answer with 429."""
        interval = MIN_INTERVAL_SECONDS.get(operation) or OFFER_MIN_INTERVAL_SECONDS.get(operation)
        if not interval:
            return None
        with self._lock:
            now = self._monotonic()
            last = self._last.get(operation)
            wait = 0.0 if last is None else last + interval * self.scale - now
            if wait > 0:
                return max(1, math.ceil(wait / self.scale))
            self._last[operation] = now
            return None

    def reset(self) -> None:
        with self._lock:
            self._last.clear()
