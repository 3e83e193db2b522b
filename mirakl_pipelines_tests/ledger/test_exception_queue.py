"""The exception queue on both backends: one open row per record and kind, resolve, history."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from mirakl_pipelines.ledger import ExceptionRecord, InvalidLedgerInput
from mirakl_pipelines.ledger.tables import exception_queue

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MKP = "decathlon_fr"


def test_raise_creates_an_open_exception(ledger):
    record = ledger.raise_exception(MKP, "unknown_sku", "O-1", "SKU 'X-9' is not in Shopify", {"sku": "X-9"}, now=T0)
    assert isinstance(record, ExceptionRecord)
    assert (record.marketplace, record.kind, record.record_id, record.status) == (MKP, "unknown_sku", "O-1", "open")
    assert (record.reason, record.details, record.occurrences) == ("SKU 'X-9' is not in Shopify", {"sku": "X-9"}, 1)
    assert record.first_seen_at == record.last_seen_at == T0 and record.resolved_at is None
    assert ledger.open_exceptions() == [record]


def test_raising_again_bumps_occurrences_and_refreshes_reason_and_details(ledger):
    first = ledger.raise_exception(MKP, "unknown_sku", "O-1", "SKU X-9 unknown", {"sku": "X-9"}, now=T0)
    second = ledger.raise_exception(MKP, "unknown_sku", "O-1", "SKUs X-9, X-8 unknown", {"skus": ["X-9", "X-8"]},
                                    now=T0 + timedelta(minutes=15))
    assert second.id == first.id
    assert second.occurrences == 2
    assert (second.reason, second.details) == ("SKUs X-9, X-8 unknown", {"skus": ["X-9", "X-8"]})
    assert (second.first_seen_at, second.last_seen_at) == (T0, T0 + timedelta(minutes=15))
    assert len(ledger.open_exceptions()) == 1


def test_same_record_different_kind_or_marketplace_are_separate(ledger):
    ledger.raise_exception(MKP, "unknown_sku", "O-1", "r", now=T0)
    ledger.raise_exception(MKP, "missing_address", "O-1", "r", now=T0)
    ledger.raise_exception("carrefour_fr", "unknown_sku", "O-1", "r", now=T0)
    assert len(ledger.open_exceptions()) == 3
    assert [e.kind for e in ledger.open_exceptions(MKP)] == ["unknown_sku", "missing_address"]
    assert [e.marketplace for e in ledger.open_exceptions(kinds=["unknown_sku"])] == [MKP, "carrefour_fr"]
    assert ledger.open_exceptions(MKP, kinds=["currency"]) == []


def test_resolve_closes_open_exceptions_of_the_record(ledger):
    ledger.raise_exception(MKP, "unknown_sku", "O-1", "r", now=T0)
    ledger.raise_exception(MKP, "import_failed", "O-1", "r", now=T0)
    ledger.raise_exception(MKP, "acceptance_failed", "O-1", "r", now=T0)
    ledger.raise_exception(MKP, "unknown_sku", "O-2", "r", now=T0)
    assert ledger.resolve_exceptions(MKP, "O-1", kinds=["unknown_sku", "import_failed"], now=T0 + timedelta(hours=1)) == 2
    assert sorted((e.record_id, e.kind) for e in ledger.open_exceptions()) == [("O-1", "acceptance_failed"), ("O-2", "unknown_sku")]
    assert ledger.resolve_exceptions(MKP, "O-1", now=T0 + timedelta(hours=2)) == 1
    assert ledger.resolve_exceptions(MKP, "O-1", now=T0 + timedelta(hours=3)) == 0
    assert [e.record_id for e in ledger.open_exceptions()] == ["O-2"]


def test_raising_after_resolve_opens_a_new_row_and_keeps_history(ledger):
    first = ledger.raise_exception(MKP, "currency", "O-1", "USD order on a EUR store", now=T0)
    ledger.raise_exception(MKP, "currency", "O-1", "USD order on a EUR store", now=T0)
    ledger.resolve_exceptions(MKP, "O-1", now=T0 + timedelta(minutes=5))
    again = ledger.raise_exception(MKP, "currency", "O-1", "still USD", now=T0 + timedelta(minutes=10))
    assert again.id != first.id
    assert (again.occurrences, again.first_seen_at, again.status) == (1, T0 + timedelta(minutes=10), "open")
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(exception_queue).order_by(exception_queue.c.id)).mappings().all()
    assert [(r["status"], r["occurrences"]) for r in rows] == [("resolved", 2), ("open", 1)]
    assert rows[0]["resolved_at"] == T0 + timedelta(minutes=5)


def test_details_keep_decimal_money_and_datetimes_as_text(ledger):
    record = ledger.raise_exception(
        MKP, "invalid_order", "O-1", "total mismatch", {"total": Decimal("12.30"), "at": T0}, now=T0
    )
    assert record.details == {"total": "12.30", "at": "2026-03-02T09:00:00+00:00"}


def test_bad_input_is_refused_naming_the_record(ledger):
    with pytest.raises(InvalidLedgerInput, match=r"unknown_sku exception for 'O-1'.*reason must be a non-empty string"):
        ledger.raise_exception(MKP, "unknown_sku", "O-1", "", now=T0)
    with pytest.raises(InvalidLedgerInput, match=r"'O-1'.*details must be a dict"):
        ledger.raise_exception(MKP, "unknown_sku", "O-1", "r", ["not", "a", "dict"], now=T0)
    with pytest.raises(InvalidLedgerInput, match=r"'O-1'.*cannot be stored as JSON"):
        ledger.raise_exception(MKP, "unknown_sku", "O-1", "r", {"x": object()}, now=T0)
    with pytest.raises(InvalidLedgerInput, match=r"'O-1'.*naive"):
        ledger.raise_exception(MKP, "unknown_sku", "O-1", "r", now=datetime(2026, 1, 1))
    assert ledger.open_exceptions() == []
