"""Never call a Mirakl operation more often than its documented maximum call frequency.

Mirakl publishes no quotas, only a per-operation "Maximum usage" (operations-index.json,
NOTES §5); operators suspend integrations that ignore it. Each limit is reduced here to the
shortest interval between two calls that respects every clause of the text (TL02's "20 times
per min, 60 times per hour" binds at 60/hour, hence one call a minute), and a CallBudget books
slots per key (``"<marketplace>:<operation>"``) so that concurrent runs share one pace. The
in-memory budget serves one process; the ledger provides a persistent one with the same protocol.
"""

import math
import threading
import time
from typing import Callable, Protocol

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

# Seconds between two calls, per operation and persona ("default" or "external_partner").
# Operations documented "at each …" (per business event) or with no limit are absent: unlimited.
# OF01/OF51/OF52 list the lighter variant (offers only / differential); the heavier one is a different use.
MIN_INTERVAL_SECONDS: dict[str, dict[str, float]] = {
    "A01": {"default": DAY},
    "A02": {"default": DAY},
    "A21": {"default": DAY},
    "AF01": {"default": DAY},
    "CH11": {"default": DAY},
    "CUR01": {"default": DAY},
    "DO01": {"default": DAY},
    "H11": {"default": HOUR},
    "IV01": {"default": DAY},  # "and as many times as there are invoice pages": pages are free
    "L01": {"default": DAY},
    "OF01": {"default": MINUTE},
    "OF02": {"default": MINUTE},
    "OF03": {"default": MINUTE},
    "OF04": {"default": MINUTE},
    "OF24": {"default": MINUTE},
    "OF51": {"default": MINUTE},
    "OF52": {"default": MINUTE},
    "OF53": {"default": 10.0},
    "OF61": {"default": DAY},
    "OR04": {"default": MINUTE},
    "OR07": {"default": MINUTE},  # 60 per hour
    "OR11": {"default": MINUTE, "external_partner": 15 * MINUTE},
    "OR13": {"default": 5 * MINUTE},
    "OR14": {"default": 2.0},
    "OR31": {"default": 0.2},  # 5 calls per second
    "OR32": {"default": MINUTE},
    "OR75": {"default": DAY},
    "P41": {"default": 15 * MINUTE},
    "P42": {"default": MINUTE},
    "P51": {"default": MINUTE},
    "PL11": {"default": 5 * MINUTE},
    "PM11": {"default": HOUR},
    "PR03": {"default": MINUTE},
    "PR04": {"default": MINUTE},
    "PRI01": {"default": MINUTE},
    "PRI02": {"default": MINUTE},
    "PRI03": {"default": MINUTE},
    "RT11": {"default": 5 * MINUTE},
    "SBC11": {"default": DAY},
    "SH11": {"default": DAY},
    "SH12": {"default": DAY},
    "SH21": {"default": DAY},
    "SH31": {"default": DAY},
    "SH42": {"default": HOUR},
    "SH52": {"default": HOUR},
    "ST12": {"default": 5 * MINUTE},
    "STO01": {"default": MINUTE},
    "STO02": {"default": 15.0},
    "STO03": {"default": MINUTE},
    "TL02": {"default": MINUTE},  # 20/min and 60/hour: the hourly clause binds
    "TL03": {"default": DAY},
    "TL04": {"default": 10.0},
    "VL11": {"default": HOUR},
}

PERSONAS = ("default", "external_partner")


def min_interval(operation: str, persona: str = "default", scale: float = 1.0) -> float:
    """Shortest allowed interval between two calls of `operation`, in seconds × `scale`; 0 when unlimited.

    `scale` compresses time for the sandbox and tests (0.001 turns a minute into 60 ms). A persona
    without its own limit uses the default one.
    """
    if persona not in PERSONAS:
        raise ValueError(f"unknown Mirakl call-frequency persona {persona!r}; expected one of {PERSONAS}")
    if scale < 0:
        raise ValueError(f"rate-limit scale must be >= 0, got {scale}")
    limits = MIN_INTERVAL_SECONDS.get(operation)
    if not limits:
        return 0.0
    return limits.get(persona, limits["default"]) * scale


class CallBudget(Protocol):
    def reserve(self, key: str, min_interval: float, max_wait: float = math.inf) -> float:
        """Book the next slot for `key` and return the seconds to wait before using it.

        When that wait would exceed `max_wait` nothing is booked (the caller will not call) and
        the wait is returned all the same, so refused attempts never push later slots back.
        """
        ...


class InMemoryBudget:
    """Thread-safe CallBudget for one process: the next free slot per key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str, min_interval: float, max_wait: float = math.inf) -> float:
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0, got {min_interval} for {key!r}")
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot.get(key, now))
            wait = slot - now
            if wait <= max_wait:
                self._next_slot[key] = slot + min_interval
            return wait
