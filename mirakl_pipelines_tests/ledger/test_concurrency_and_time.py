"""Concurrent writers and tz-aware timestamps."""

import threading
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from mirakl_pipelines.ledger import Ledger

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MKP = "decathlon_fr"


def _run_in_threads(workers):
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def wrap(work):
        try:
            start.wait()
            work()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not [t for t in threads if t.is_alive()], "a writer thread hung"
    assert errors == [], errors


def _writer(url: str, name: str, rounds: int):
    def work():
        # Each thread has its own Ledger (own engine and pool), like two Dagster runs would.
        with Ledger.connect(url) as ledger:
            for i in range(rounds):
                order_id = f"{name}-{i}"
                ledger.observe_order(MKP, order_id, commercial_id=None, mirakl_state="WAITING_ACCEPTANCE",
                                     created_at=T0, updated_at=T0, acceptance_deadline=None, eligible=True,
                                     skip_reason=None, now=T0)
                # Both threads also hit the same rows: shared order, shared exception, shared budget key.
                ledger.observe_order(MKP, "shared", commercial_id=None, mirakl_state="SHIPPING", created_at=T0,
                                     updated_at=T0 + timedelta(seconds=i), acceptance_deadline=None, eligible=True,
                                     skip_reason=None, now=T0 + timedelta(seconds=i))
                ledger.record_import(MKP, order_id, shopify_order_id=f"gid://shopify/Order/{name}{i}",
                                     shopify_order_name=None, shopify_legacy_id=None, now=T0)
                ledger.raise_exception(MKP, "acceptance_needed", "shared", f"seen by {name}", now=T0)
                ledger.set_watermark("orders", MKP, T0.date(), T0 + timedelta(seconds=i))
                ledger.reserve("shared-key", 0.0)
                ledger.count_links(MKP)
    return work


def test_two_threads_write_the_same_ledger_without_database_is_locked(ledger_url):
    rounds = 40
    with Ledger.connect(ledger_url):
        pass  # schema first, then measure only concurrent writes
    _run_in_threads([_writer(ledger_url, "a", rounds), _writer(ledger_url, "b", rounds)])
    with Ledger.connect(ledger_url) as ledger:
        assert ledger.count_links(MKP) == {"pending": 1, "imported": 2 * rounds, "failed": 0, "skipped": 0}
        [shared] = ledger.open_exceptions(MKP)
        assert shared.occurrences == 2 * rounds
        assert ledger.get_watermark("orders", MKP, T0.date()) == T0 + timedelta(seconds=rounds - 1)


def test_concurrent_reservations_book_distinct_slots(ledger_url):
    fixed_now = 5_000.0
    waits: list[float] = []
    lock = threading.Lock()

    def reserver():
        with Ledger.connect(ledger_url, clock=lambda: fixed_now) as ledger:
            for _ in range(25):
                wait = ledger.reserve("decathlon_fr:OR21", 1.0)
                with lock:
                    waits.append(wait)

    _run_in_threads([reserver, reserver])
    assert sorted(waits) == [float(i) for i in range(50)]


def test_concurrent_first_connects_create_the_schema_once(ledger_url):
    _run_in_threads([lambda: Ledger.connect(ledger_url).close() for _ in range(3)])
    with Ledger.connect(ledger_url) as ledger:
        assert ledger.count_links() == {"pending": 0, "imported": 0, "failed": 0, "skipped": 0}


def test_every_timestamp_comes_back_tz_aware_utc(ledger):
    tokyo = timezone(timedelta(hours=9))
    link = ledger.observe_order(
        MKP, "O-1", commercial_id=None, mirakl_state="WAITING_ACCEPTANCE",
        created_at=datetime(2026, 3, 2, 18, 0, tzinfo=tokyo), updated_at=T0,
        acceptance_deadline=T0 + timedelta(days=3), eligible=True, skip_reason=None, now=T0,
    )
    ledger.record_import(MKP, "O-1", shopify_order_id="gid://shopify/Order/1", shopify_order_name=None,
                         shopify_legacy_id=None, now=T0)
    ledger.record_acceptance(MKP, "O-1", state="accepted", now=T0)
    link = ledger.get_order_links(MKP, ["O-1"])["O-1"]
    stamps = [link.mirakl_created_at, link.mirakl_updated_at, link.acceptance_deadline, link.first_seen_at,
              link.eligible_since, link.imported_at, link.accepted_at, link.updated_at]
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(0) for s in stamps)
    assert link.mirakl_created_at == T0  # 18:00 in Tokyo is 09:00 UTC
    exc = ledger.raise_exception(MKP, "currency", "O-1", "r", now=T0)
    assert exc.first_seen_at.utcoffset() == timedelta(0)


def test_sqlite_stores_utc_text_so_sql_comparisons_are_right(tmp_path):
    """An instant given in +02:00 must compare as UTC inside SQL (pending_imports relies on it)."""
    with Ledger.connect(f"sqlite:///{tmp_path / 'l.sqlite'}") as ledger:
        plus_two = timezone(timedelta(hours=2))
        ledger.observe_order(MKP, "O-1", commercial_id=None, mirakl_state="SHIPPING", created_at=None,
                             updated_at=None, acceptance_deadline=None, eligible=True, skip_reason=None,
                             now=datetime(2026, 3, 2, 11, 30, tzinfo=plus_two))  # 09:30 UTC
        with ledger.engine.connect() as conn:
            raw = conn.execute(sa.text("SELECT eligible_since FROM order_links")).scalar()
        assert raw.startswith("2026-03-02 09:30:00")
        assert ledger.pending_imports(MKP, eligible_before=T0 + timedelta(minutes=31))
        assert not ledger.pending_imports(MKP, eligible_before=T0 + timedelta(minutes=30))
