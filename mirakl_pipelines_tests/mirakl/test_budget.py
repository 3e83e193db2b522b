import json
import re
import threading

import pytest

from mirakl_pipelines.mirakl.budget import MIN_INTERVAL_SECONDS, InMemoryBudget, min_interval
from mirakl_pipelines_tests.reference import reference_file


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_reserve_books_consecutive_slots():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    assert budget.reserve("m:OR11", 60) == 0
    assert budget.reserve("m:OR11", 60) == 60
    assert budget.reserve("m:OR11", 60) == 120
    clock.now += 100
    assert budget.reserve("m:OR11", 60) == 80  # slot 4 at t0+180, now t0+100


def test_slots_free_up_after_the_interval_and_keys_are_independent():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    assert budget.reserve("a:OR11", 60) == 0
    assert budget.reserve("b:OR11", 60) == 0
    assert budget.reserve("a:SH21", 86400) == 0
    clock.now += 61
    assert budget.reserve("a:OR11", 60) == 0


def test_refused_reservation_books_nothing():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    budget.reserve("m:OR11", 60)
    assert budget.reserve("m:OR11", 60, max_wait=10) == 60  # refused: the caller will not call
    assert budget.reserve("m:OR11", 60, max_wait=10) == 60  # still 60, not pushed to 120
    clock.now += 60
    assert budget.reserve("m:OR11", 60, max_wait=10) == 0


def test_reserve_is_thread_safe():
    clock = FakeClock()
    budget = InMemoryBudget(clock)
    waits: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(50):
            wait = budget.reserve("m:OR11", 1.0)
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [float(i) for i in range(400)]  # every slot booked once, none shared


def test_min_interval_persona_scale_and_unlimited():
    assert min_interval("OR11") == 60
    assert min_interval("OR11", "external_partner") == 900
    assert min_interval("SH21", "external_partner") == 86400  # no persona-specific limit: the default applies
    assert min_interval("OR11", scale=0.001) == pytest.approx(0.06)
    assert min_interval("OR21") == 0 and min_interval("OR24") == 0 and min_interval("NOPE") == 0
    with pytest.raises(ValueError, match="persona"):
        min_interval("OR11", "partner")
    with pytest.raises(ValueError, match="scale"):
        min_interval("OR11", scale=-1)


# --- the table against the contract -----------------------------------------------------------------

_UNITS = {"second": 1, "seconds": 1, "minute": 60, "minutes": 60, "min": 60, "hour": 3600, "hours": 3600,
          "day": 86400, "days": 86400, "24 hours": 86400}
_COUNT_WORDS = {"once": 1, "twice": 2}


def _interval_from_text(text: str) -> float | None:
    """Shortest interval allowed by a 'Maximum usage' text, read independently of the table; None if per-event."""
    text = text.lower()
    clauses: list[float] = []
    for count, unit in re.findall(r"(\d+) (?:times|calls|per)?\s*(?:per|/)\s*(second|min|minute|hour|day)\b", text):
        clauses.append(_UNITS[unit] / int(count))
    for word, unit in re.findall(r"\b(once|twice) (?:per|a|every) (second|minute|hour|day)\b", text):
        clauses.append(_UNITS[unit] / _COUNT_WORDS[word])
    for count, unit in re.findall(r"every (\d+) (seconds?|minutes?|hours?)", text):
        clauses.append(int(count) * _UNITS[unit])
    for unit in re.findall(r"every (second|minute|hour|day)\b", text):
        clauses.append(_UNITS[unit])
    for count, unit in re.findall(r"(\d+) per (second|minute|hour|day)", text):
        clauses.append(_UNITS[unit] / int(count))
    # Alternatives ("Differential: once per minute - Full: once per day", "with offers only … with products")
    # describe different uses; the table keeps the lightest use, i.e. the shortest interval.
    # Clauses of one use ("20 times per min, 60 times per hour") all bind: the longest wins.
    if not clauses:
        return None
    if " - " in text or " with offers and products" in text:
        return min(clauses)
    return max(clauses)


def _index() -> dict[str, dict]:
    data = json.loads(reference_file("mirakl/operations-index.json").read_text())
    return {op["operationId"]: op for op in data["operations"]}


def test_headline_limits_match_the_operations_index():
    ops = _index()
    assert "once per minute" in ops["OR11"]["call_frequency_max"].lower()
    assert min_interval("OR11") == 60
    assert ops["SH21"]["call_frequency_max"] == "Maximum usage: Once per day"
    assert min_interval("SH21") == 86400
    assert "20 times per min, 60 times per hour" in ops["TL02"]["call_frequency_max"]
    assert min_interval("TL02") == 60  # 60/hour binds harder than 20/min
    assert "Once every 15 seconds" in ops["STO02"]["call_frequency_max"]
    assert min_interval("STO02") == 15
    assert "5 calls per second" in ops["OR31"]["call_frequency_max"]
    assert min_interval("OR31") == pytest.approx(0.2)


def test_every_table_entry_matches_its_documented_maximum():
    ops = _index()
    mismatches = []
    for operation, limits in MIN_INTERVAL_SECONDS.items():
        assert operation in ops, f"{operation} is not an operation of the seller API"
        documented = _interval_from_text(ops[operation]["call_frequency_max"] or "")
        if documented is None or documented != pytest.approx(limits["default"]):
            mismatches.append((operation, ops[operation]["call_frequency_max"], limits["default"], documented))
    assert not mismatches


def test_every_numeric_documented_limit_is_in_the_table():
    """A documented numeric maximum missing from the table would be an operation called without pacing."""
    missing = []
    for operation, op in _index().items():
        text = op["call_frequency_max"] or ""
        if _interval_from_text(text) is not None and "as many times" not in text and operation not in MIN_INTERVAL_SECONDS:
            missing.append((operation, text))
    assert not missing


def test_external_partner_limit_matches_the_spec():
    spec = json.loads(reference_file("mirakl/mirakl-mmp-seller-openapi.json").read_text())
    documented = {}
    for path_item in spec["paths"].values():
        for op in path_item.values():
            if not isinstance(op, dict) or "External Partner:" not in op.get("description", ""):
                continue
            partner_part = op["description"].split("External Partner:", 1)[1]
            maximum = re.search(r'max-call-frequency">(.*?)</div>', partner_part, re.S).group(1)
            documented[op["operationId"]] = re.sub(r"<br/>", " ", maximum)
    assert set(documented) == {op for op, limits in MIN_INTERVAL_SECONDS.items() if "external_partner" in limits}
    assert "every 15 minutes" in documented["OR11"]
    assert min_interval("OR11", "external_partner") == 15 * 60
