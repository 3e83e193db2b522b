"""Stock pushes on both backends: imports and their lines, settled by Mirakl's outcome, resumable after a crash."""

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from mirakl_pipelines.ledger import InvalidLedgerInput

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)
MKP = "decathlon_fr"


def lines(**quantities) -> pd.DataFrame:
    return pd.DataFrame({"offer_sku": pd.array(list(quantities), dtype="string"),
                         "quantity": pd.array(list(quantities.values()), dtype="Int64")})


def sent(ledger, **kw) -> dict[str, tuple[int, str]]:
    frame = ledger.sent_stock(MKP, **kw)
    return {r.offer_sku: (r.quantity, r.state) for r in frame.itertuples()}


def test_a_recorded_import_is_unfinished_and_its_lines_pending(ledger):
    ledger.record_stock_import(MKP, "I-1", mode="full", run_id="run-1", lines=lines(A=3, B=0), snapshot_at=T0,
                               now=T0 + timedelta(seconds=2))
    [unfinished] = ledger.unfinished_stock_imports(MKP)
    assert (unfinished.import_id, unfinished.status, unfinished.lines, unfinished.mode) == ("I-1", "SENT", 2, "full")
    assert not unfinished.finished and unfinished.snapshot_at == T0
    assert sent(ledger) == {"A": (3, "pending"), "B": (0, "pending")}
    assert ledger.last_stock_import(MKP).import_id == "I-1"
    assert ledger.unfinished_stock_imports("other") == [] and ledger.last_stock_import("other") is None


def test_complete_applies_every_line_but_the_rejected_ones(ledger):
    ledger.record_stock_import(MKP, "I-1", mode="delta", run_id=None, lines=lines(A=3, B=1, C=7), snapshot_at=T0, now=T0)
    ledger.update_stock_import(MKP, "I-1", "RUNNING", now=T0 + timedelta(seconds=5))
    assert ledger.unfinished_stock_imports(MKP)[0].status == "RUNNING"
    settled = ledger.settle_stock_import(MKP, "I-1", "COMPLETE", now=T0 + timedelta(seconds=9), lines_in_success=2,
                                         lines_in_error=1, rejected={"B": "offer not found"})
    assert settled == 3
    assert sent(ledger, states=("pending", "applied", "rejected", "failed")) == {
        "A": (3, "applied"), "B": (1, "rejected"), "C": (7, "applied")}
    [done] = ledger.stock_imports(MKP)
    assert (done.status, done.lines_in_success, done.lines_in_error, done.lines_rejected) == ("COMPLETE", 2, 1, 1)
    assert done.finished and ledger.unfinished_stock_imports(MKP) == []
    # A finished import is never moved back by a late status.
    ledger.update_stock_import(MKP, "I-1", "RUNNING", now=T0 + timedelta(seconds=10))
    assert ledger.stock_imports(MKP)[0].status == "COMPLETE"


def test_a_failed_import_leaves_its_lines_to_be_sent_again(ledger):
    ledger.record_stock_import(MKP, "I-1", mode="delta", run_id=None, lines=lines(A=3), snapshot_at=T0, now=T0)
    ledger.settle_stock_import(MKP, "I-1", "FAILED", now=T0, error="bad header")
    assert sent(ledger) == {}  # by default the lines not to send again: a failed one must be resent
    assert sent(ledger, states=("failed",)) == {"A": (3, "failed")}
    assert ledger.stock_imports(MKP)[0].error == "bad header"


def test_a_later_import_takes_a_sku_over_and_an_earlier_outcome_does_not_touch_it(ledger):
    ledger.record_stock_import(MKP, "I-1", mode="delta", run_id=None, lines=lines(A=3, B=2), snapshot_at=T0, now=T0)
    later = T0 + timedelta(minutes=1)
    ledger.record_stock_import(MKP, "I-2", mode="delta", run_id=None, lines=lines(A=5), snapshot_at=later, now=later)
    ledger.settle_stock_import(MKP, "I-1", "FAILED", now=later)
    assert sent(ledger, states=("pending", "failed")) == {"A": (5, "pending"), "B": (2, "failed")}
    assert [i.import_id for i in ledger.unfinished_stock_imports(MKP)] == ["I-2"]
    assert ledger.stock_import_skus(MKP, "I-1") == ["B"] and ledger.stock_import_skus(MKP, "I-2") == ["A"]


def test_many_lines_are_written_in_chunks(ledger):
    many = pd.DataFrame({"offer_sku": [f"SKU-{i:06d}" for i in range(12_001)], "quantity": [i % 9 for i in range(12_001)]})
    ledger.record_stock_import(MKP, "I-1", mode="full", run_id=None, lines=many, snapshot_at=T0, now=T0)
    rejected = {f"SKU-{i:06d}": "unknown" for i in range(0, 12_001, 2)}
    ledger.settle_stock_import(MKP, "I-1", "COMPLETE", now=T0, rejected=rejected)
    frame = ledger.sent_stock(MKP)
    assert len(frame) == 12_001 and (frame["state"] == "rejected").sum() == len(rejected)


@pytest.mark.parametrize("bad, message", [
    (lines(A=-1), "must be an int >= 0"),
    (pd.DataFrame({"offer_sku": [""], "quantity": [1]}), "offer_sku must be a non-empty string"),
    (pd.DataFrame({"sku": ["A"]}), "need offer_sku and quantity"),
])
def test_bad_lines_are_refused_naming_the_offer(ledger, bad, message):
    with pytest.raises(InvalidLedgerInput, match=message):
        ledger.record_stock_import(MKP, "I-1", mode="delta", run_id=None, lines=bad, snapshot_at=T0, now=T0)
    assert ledger.stock_imports(MKP) == []  # nothing half-written


def test_settling_needs_a_final_status(ledger):
    with pytest.raises(InvalidLedgerInput, match="COMPLETE or FAILED"):
        ledger.settle_stock_import(MKP, "I-1", "RUNNING", now=T0)
