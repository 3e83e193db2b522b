"""Fulfilment pushes on both backends: newest fulfilment wins, step outcomes survive, crashes resume exactly."""

import threading
from datetime import datetime, timedelta, timezone

import pytest

from mirakl_pipelines.ledger import InvalidLedgerInput, Ledger
from mirakl_pipelines.ledger.fulfilments import UnknownFulfilmentPush
from mirakl_pipelines.ledger.records import FulfilmentPush

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MKP = "decathlon_fr"


def upsert(ledger, fulfilment="F-1", *, order="M-1", updated=T0, number="6A123", company="Colissimo",
           url="https://track/6A123", lines=None, now=None, invoice=False, status="success", marketplace=MKP,
           created=T0):
    return ledger.upsert_fulfilment(
        marketplace,
        order,
        fulfilment,
        shopify_order_id="gid://shopify/Order/11",
        created_at=created,
        updated_at=updated,
        tracking_company=company,
        tracking_number=number,
        tracking_url=url,
        line_quantities={"M-1-1": 2} if lines is None else lines,
        status=status,
        invoice=invoice,
        now=now or updated or T0,
    )


def test_a_new_fulfilment_starts_with_every_step_to_do(ledger):
    push = upsert(ledger, invoice=True, now=T0 + timedelta(seconds=3))
    assert isinstance(push, FulfilmentPush)
    assert (push.marketplace, push.mirakl_order_id, push.shopify_fulfillment_id) == (MKP, "M-1", "F-1")
    assert (push.shopify_order_id, push.shopify_status) == ("gid://shopify/Order/11", "success")
    assert (push.tracking_company, push.tracking_number, push.tracking_url) == ("Colissimo", "6A123", "https://track/6A123")
    assert push.line_quantities == {"M-1-1": 2}
    assert (push.or23.state, push.or24.state, push.or74.state) == ("pending", "pending", "pending")
    assert push.steps_to_do == ("OR23", "OR24", "OR74")
    assert (push.fulfilment_created_at, push.fulfilment_updated_at) == (T0, T0)
    assert push.created_at == push.updated_at == T0 + timedelta(seconds=3)
    assert push.attempts == 0 and not push.shipped
    assert upsert(ledger, "F-2").or74.state == "skipped"


def test_steps_record_outcome_time_error_carrier_and_attempts(ledger):
    upsert(ledger)
    t1, t2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    failed = ledger.record_step(MKP, "M-1", "F-1", "OR23", "failed", now=t1, error="503 from Mirakl")
    assert (failed.or23.state, failed.or23.at, failed.or23.error, failed.attempts) == ("failed", t1, "503 from Mirakl", 1)
    done = ledger.record_step(MKP, "M-1", "F-1", "OR23", "done", now=t2, carrier_code="COLISSIMO")
    assert (done.or23.state, done.or23.error, done.attempts) == ("done", None, 2)
    assert (done.carrier_code, done.carrier_name, done.carrier_url) == ("COLISSIMO", None, None)
    waiting = ledger.record_step(MKP, "M-1", "F-1", "OR24", "waiting", now=t2, error="line M-1-2 not fulfilled")
    assert waiting.attempts == 2  # waiting made no call
    assert waiting.carrier_code == "COLISSIMO"  # kept when not given
    unregistered = ledger.record_step(MKP, "M-1", "F-1", "OR23", "done", now=t2, carrier_name="Coursier Zoé",
                                      carrier_url="https://zoe.example/track")
    assert (unregistered.carrier_code, unregistered.carrier_name, unregistered.carrier_url) == (
        None, "Coursier Zoé", "https://zoe.example/track")
    assert ledger.get_pushes(MKP, "M-1") == [unregistered]


def test_crash_between_or23_and_or24_resumes_at_or24_only(ledger):
    upsert(ledger)
    ledger.record_step(MKP, "M-1", "F-1", "OR23", "done", now=T0, carrier_code="COLISSIMO")
    # The process dies here; the next run knows only the ledger.
    [push] = ledger.pushes_to_do(MKP)
    assert push.steps_to_do == ("OR24",)
    ledger.record_step(MKP, "M-1", "F-1", "OR24", "already", now=T0 + timedelta(seconds=5))
    assert ledger.pushes_to_do(MKP) == []
    assert ledger.get_pushes(MKP, "M-1")[0].shipped


def test_an_older_or_equal_version_changes_nothing(ledger):
    upsert(ledger, updated=T0 + timedelta(minutes=5), number="NEW")
    before = ledger.record_step(MKP, "M-1", "F-1", "OR23", "done", now=T0 + timedelta(minutes=6))
    for stale in (T0, T0 + timedelta(minutes=5)):  # fulfillments/create after /update; a redelivery
        push = upsert(ledger, updated=stale, number="OLD" if stale == T0 else "NEW2", now=T0 + timedelta(hours=1))
        assert push == before


def test_a_newer_version_with_the_same_tracking_keeps_step_outcomes(ledger):
    upsert(ledger)
    ledger.record_step(MKP, "M-1", "F-1", "OR23", "done", now=T0)
    ledger.record_step(MKP, "M-1", "F-1", "OR24", "done", now=T0)
    later = T0 + timedelta(minutes=3)
    push = upsert(ledger, updated=later, lines={"M-1-1": 2, "M-1-2": 1}, status="success")
    assert (push.or23.state, push.or24.state) == ("done", "done")
    assert push.line_quantities == {"M-1-1": 2, "M-1-2": 1}
    assert (push.fulfilment_updated_at, push.updated_at, push.created_at) == (later, later, T0)


@pytest.mark.parametrize("change", [{"number": "6A999"}, {"company": "DHL"}, {"url": None}])
def test_changed_tracking_sends_or23_again_and_keeps_the_rest(ledger, change):
    upsert(ledger, invoice=True)
    ledger.record_step(MKP, "M-1", "F-1", "OR23", "failed", now=T0, error="unknown carrier")
    ledger.record_step(MKP, "M-1", "F-1", "OR24", "done", now=T0)
    ledger.record_step(MKP, "M-1", "F-1", "OR74", "done", now=T0)
    later = T0 + timedelta(minutes=10)
    push = upsert(ledger, updated=later, invoice=False, **change)
    assert (push.or23.state, push.or23.error, push.or23.at) == ("pending", None, later)
    assert (push.or24.state, push.or74.state) == ("done", "done")
    assert push.steps_to_do == ("OR23",)


def test_empty_tracking_is_stored_as_absent_and_adding_it_counts_as_a_change(ledger):
    push = upsert(ledger, number="", url="", company=None)
    assert (push.tracking_number, push.tracking_url, push.tracking_company) == (None, None, None)
    ledger.record_step(MKP, "M-1", "F-1", "OR23", "skipped", now=T0)
    assert upsert(ledger, updated=T0 + timedelta(minutes=1), number="", url="", company=None).or23.state == "skipped"
    assert upsert(ledger, updated=T0 + timedelta(minutes=2), number="X1", url="", company=None).or23.state == "pending"


def test_pushes_to_do_lists_pending_failed_and_waiting_steps_per_marketplace(ledger):
    for name in ("F-done", "F-failed", "F-waiting", "F-invoice"):
        upsert(ledger, name, invoice=name == "F-invoice")
        ledger.record_step(MKP, "M-1", name, "OR23", "done", now=T0)
        ledger.record_step(MKP, "M-1", name, "OR24", "done", now=T0)
    ledger.record_step(MKP, "M-1", "F-failed", "OR24", "failed", now=T0, error="timeout")
    ledger.record_step(MKP, "M-1", "F-waiting", "OR24", "waiting", now=T0)
    upsert(ledger, "F-other", marketplace="leroymerlin_fr")
    todo = {p.shopify_fulfillment_id: p.steps_to_do for p in ledger.pushes_to_do(MKP)}
    assert todo == {"F-failed": ("OR24",), "F-waiting": ("OR24",), "F-invoice": ("OR74",)}
    assert [p.shopify_fulfillment_id for p in ledger.pushes_to_do("leroymerlin_fr")] == ["F-other"]


def test_unshipped_lists_live_fulfilments_older_than_the_threshold_without_or24(ledger):
    cases = {"F-old-pending": ("pending", "success"), "F-old-failed": ("failed", "success"),
             "F-old-skipped": ("skipped", None), "F-old-done": ("done", "success"),
             "F-old-already": ("already", "success"), "F-old-cancelled": ("pending", "cancelled")}
    for name, (state, status) in cases.items():
        upsert(ledger, name, order=f"O-{name}", created=T0, status=status)
        ledger.record_step(MKP, f"O-{name}", name, "OR24", state, now=T0)
    upsert(ledger, "F-recent", order="O-recent", created=T0 + timedelta(minutes=50), updated=T0 + timedelta(minutes=50))
    upsert(ledger, "F-elsewhere", order="O-x", marketplace="leroymerlin_fr")
    late = ledger.unshipped(MKP, older_than=T0 + timedelta(minutes=30))
    # skipped: the Mirakl order will never ship (refused, canceled), so it is not late either
    assert [p.shopify_fulfillment_id for p in late] == ["F-old-failed", "F-old-pending"]
    assert {p.shopify_fulfillment_id for p in ledger.unshipped(MKP, older_than=T0 + timedelta(hours=2))} == {
        "F-old-failed", "F-old-pending", "F-recent"}
    assert ledger.unshipped(MKP, older_than=T0) == []


def test_several_fulfilments_of_one_order_are_kept_apart(ledger):
    upsert(ledger, "F-1", lines={"M-1-1": 1}, created=T0)
    upsert(ledger, "F-2", lines={"M-1-2": 3}, created=T0 + timedelta(minutes=1))
    ledger.record_step(MKP, "M-1", "F-2", "OR24", "done", now=T0)
    pushes = ledger.get_pushes(MKP, "M-1")
    assert [(p.shopify_fulfillment_id, p.line_quantities, p.or24.state) for p in pushes] == [
        ("F-1", {"M-1-1": 1}, "pending"), ("F-2", {"M-1-2": 3}, "done")]
    assert ledger.get_pushes(MKP, "M-unknown") == []


def test_bad_input_is_refused_naming_the_fulfilment(ledger):
    with pytest.raises(InvalidLedgerInput, match="fulfilment 'F-1' of order 'M-1'.*quantity of line 'M-1-1'"):
        upsert(ledger, lines={"M-1-1": 0})
    with pytest.raises(InvalidLedgerInput, match="fulfilment 'F-1'.*naive"):
        upsert(ledger, updated=datetime(2026, 3, 2, 9, 0))
    with pytest.raises(InvalidLedgerInput, match="fulfilment 'F-1'.*tracking_number"):
        upsert(ledger, number=12345)
    upsert(ledger)
    with pytest.raises(InvalidLedgerInput, match="step 'OR99'"):
        ledger.record_step(MKP, "M-1", "F-1", "OR99", "done", now=T0)
    with pytest.raises(InvalidLedgerInput, match="OR24 state 'shipped'"):
        ledger.record_step(MKP, "M-1", "F-1", "OR24", "shipped", now=T0)
    with pytest.raises(UnknownFulfilmentPush, match="fulfilment 'F-9' of order 'M-1'"):
        ledger.record_step(MKP, "M-1", "F-9", "OR24", "done", now=T0)


def test_concurrent_deliveries_of_the_same_fulfilment_leave_the_newest(ledger_url):
    """Webhook runs racing on one fulfilment: whatever the interleaving, the newest version wins."""
    with Ledger.connect(ledger_url):
        pass
    errors: list[BaseException] = []
    versions = list(range(40))

    def deliver(order):
        try:
            with Ledger.connect(ledger_url) as own:
                for v in order:
                    upsert(own, updated=T0 + timedelta(seconds=v), number=f"N{v}", now=T0)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(o,)) for o in (versions, versions[::-1], versions[::2])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with Ledger.connect(ledger_url) as check:
        [push] = check.get_pushes(MKP, "M-1")
    assert (push.tracking_number, push.fulfilment_updated_at) == ("N39", T0 + timedelta(seconds=39))


def test_of_two_runs_claiming_the_same_step_one_wins(ledger):
    seen = upsert(ledger)
    t1 = T0 + timedelta(seconds=1)
    assert ledger.claim_step(seen, "OR23", now=t1, stale_after=timedelta(minutes=3), carrier_code="COLISSIMO")
    assert not ledger.claim_step(seen, "OR23", now=t1, stale_after=timedelta(minutes=3))  # read the same row: loses
    [row] = ledger.get_pushes(MKP, "M-1")
    assert (row.or23.state, row.or23.at, row.carrier_code) == ("sending", t1, "COLISSIMO")
    # A run that reads it now sees another run sending it: it leaves it, until that run must have died.
    assert not ledger.claim_step(row, "OR23", now=t1 + timedelta(minutes=2), stale_after=timedelta(minutes=3))
    assert ledger.claim_step(row, "OR23", now=t1 + timedelta(minutes=4), stale_after=timedelta(minutes=3))
    done = ledger.record_step(MKP, "M-1", "F-1", "OR23", "done", now=t1 + timedelta(minutes=5))
    assert not ledger.claim_step(done, "OR23", now=t1 + timedelta(hours=1), stale_after=timedelta(0))
    # Steps are claimed apart: OR24 is still free.
    assert ledger.claim_step(done, "OR24", now=t1 + timedelta(minutes=5), stale_after=timedelta(minutes=3))


def test_concurrent_claims_let_exactly_one_through(ledger):
    seen = upsert(ledger, "F-race")
    wins = []
    barrier = threading.Barrier(8)

    def claim():
        barrier.wait()
        wins.append(ledger.claim_step(seen, "OR24", now=datetime.now(timezone.utc), stale_after=timedelta(minutes=3)))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_a_same_second_edit_is_ordered_by_when_shopify_showed_it(ledger):
    # Shopify's updated_at has whole seconds: a tracking added in the same second as the create ties with it.
    upsert(ledger, number=None, url=None, company=None)
    ledger.upsert_fulfilment(MKP, "M-1", "F-1", shopify_order_id="gid://shopify/Order/11", created_at=T0, updated_at=T0,
                             tracking_company=None, tracking_number=None, tracking_url=None, line_quantities={"M-1-1": 2},
                             seen_at=T0 + timedelta(milliseconds=100), now=T0)
    ledger.record_step(MKP, "M-1", "F-1", "OR23", "skipped", now=T0)

    def version(number, seen_at):
        return ledger.upsert_fulfilment(
            MKP, "M-1", "F-1", shopify_order_id="gid://shopify/Order/11", created_at=T0, updated_at=T0,
            tracking_company="Colissimo", tracking_number=number, tracking_url=None, line_quantities={"M-1-1": 2},
            seen_at=seen_at, now=T0 + timedelta(seconds=5))

    edited = version("6A999", T0 + timedelta(milliseconds=700))
    assert (edited.tracking_number, edited.or23.state) == ("6A999", "pending")
    # The create redelivered late (Shopify keeps its triggered-at) and a version without a moment change nothing.
    assert version(None, T0 + timedelta(milliseconds=100)).tracking_number == "6A999"
    assert version(None, None).tracking_number == "6A999"
    assert version("6A998", T0 + timedelta(milliseconds=700)).tracking_number == "6A999"  # equal: not newer
