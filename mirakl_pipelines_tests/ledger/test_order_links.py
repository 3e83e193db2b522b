"""Order links on both backends: upserts keep outcomes, queries select the right orders."""

from datetime import datetime, timedelta, timezone

import pytest

from mirakl_pipelines.ledger import InvalidLedgerInput, OrderLink, UnknownOrderLink

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MKP = "decathlon_fr"


def observe(ledger, order_id, *, state="SHIPPING", eligible=True, skip_reason=None, now=T0, updated=None,
            deadline=None, commercial_id="C-1", marketplace=MKP):
    return ledger.observe_order(
        marketplace,
        order_id,
        commercial_id=commercial_id,
        mirakl_state=state,
        created_at=T0 - timedelta(hours=1),
        updated_at=updated or now,
        acceptance_deadline=deadline,
        eligible=eligible,
        skip_reason=skip_reason,
        now=now,
    )


def test_first_observation_creates_a_pending_link(ledger):
    link = observe(ledger, "O-1", deadline=T0 + timedelta(days=3))
    assert isinstance(link, OrderLink)
    assert (link.marketplace, link.mirakl_order_id, link.commercial_id) == (MKP, "O-1", "C-1")
    assert link.import_state == "pending"
    assert link.acceptance_state == "not_applicable"
    assert link.eligible is True and link.skip_reason is None
    assert link.first_seen_at == link.eligible_since == link.updated_at == T0
    assert link.mirakl_created_at == T0 - timedelta(hours=1)
    assert link.acceptance_deadline == T0 + timedelta(days=3)
    assert link.shopify_order_id is None and link.imported_at is None and link.accepted_at is None


def test_ineligible_order_is_skipped_with_its_reason(ledger):
    link = observe(ledger, "O-2", state="WAITING_DEBIT_PAYMENT", eligible=False, skip_reason="not paid yet")
    assert (link.import_state, link.skip_reason, link.eligible_since) == ("skipped", "not paid yet", None)


def test_eligible_since_is_set_the_first_time_the_order_becomes_eligible_and_kept(ledger):
    observe(ledger, "O-3", eligible=False, skip_reason="not paid yet")
    later = T0 + timedelta(minutes=15)
    link = observe(ledger, "O-3", eligible=True, now=later)
    assert (link.import_state, link.eligible_since, link.first_seen_at, link.skip_reason) == ("pending", later, T0, None)
    again = observe(ledger, "O-3", eligible=True, now=later + timedelta(minutes=15))
    assert again.eligible_since == later
    assert again.updated_at == later + timedelta(minutes=15)


def test_reobserving_keeps_import_and_acceptance_outcomes(ledger):
    observe(ledger, "O-4", state="WAITING_ACCEPTANCE", deadline=T0 + timedelta(days=3))
    ledger.record_acceptance(MKP, "O-4", state="accepted", now=T0 + timedelta(minutes=1))
    ledger.record_import(
        MKP, "O-4", shopify_order_id="gid://shopify/Order/11", shopify_order_name="#1011", shopify_legacy_id="11",
        now=T0 + timedelta(minutes=2),
    )
    # Mirakl later shows the order shipped and, say, no longer eligible (e.g. refunded): outcomes stay.
    link = observe(ledger, "O-4", state="SHIPPED", eligible=False, skip_reason="state SHIPPED", now=T0 + timedelta(hours=1))
    assert link.mirakl_state == "SHIPPED"
    assert (link.import_state, link.acceptance_state) == ("imported", "accepted")
    assert link.shopify_order_id == "gid://shopify/Order/11"
    assert link.imported_at == T0 + timedelta(minutes=2)
    assert link.accepted_at == T0 + timedelta(minutes=1)


def test_an_older_snapshot_does_not_roll_the_order_back(ledger):
    observe(ledger, "O-5", state="SHIPPING", now=T0, updated=T0)
    stale = observe(ledger, "O-5", state="WAITING_ACCEPTANCE", now=T0 + timedelta(minutes=5), updated=T0 - timedelta(hours=1))
    assert stale.mirakl_state == "SHIPPING"
    assert stale.mirakl_updated_at == T0


def test_a_failed_import_that_becomes_ineligible_is_skipped_and_back_to_pending_when_eligible(ledger):
    observe(ledger, "O-6")
    ledger.record_import_failure(MKP, "O-6", now=T0)
    assert ledger.get_order_links(MKP, ["O-6"])["O-6"].import_state == "failed"
    assert observe(ledger, "O-6", now=T0 + timedelta(minutes=1)).import_state == "failed"
    assert observe(ledger, "O-6", eligible=False, skip_reason="canceled", now=T0 + timedelta(minutes=2)).import_state == "skipped"
    assert observe(ledger, "O-6", now=T0 + timedelta(minutes=3)).import_state == "pending"


def test_acceptance_state_pending_for_waiting_acceptance_orders(ledger):
    assert observe(ledger, "O-7", state="STAGING").acceptance_state == "not_applicable"
    assert observe(ledger, "O-7", state="WAITING_ACCEPTANCE", now=T0 + timedelta(minutes=1)).acceptance_state == "pending"


def test_get_order_links_returns_only_known_ids_of_that_marketplace(ledger):
    observe(ledger, "O-8")
    observe(ledger, "O-9")
    observe(ledger, "O-8", marketplace="carrefour_fr")
    links = ledger.get_order_links(MKP, ["O-8", "O-9", "O-404", "O-8"])
    assert sorted(links) == ["O-8", "O-9"]
    assert all(link.marketplace == MKP for link in links.values())
    assert ledger.get_order_links(MKP, []) == {}


def test_get_order_links_handles_more_ids_than_one_in_list(ledger):
    for i in range(3):
        observe(ledger, f"O-{i}")
    ids = [f"X-{i}" for i in range(1200)] + ["O-0", "O-2"]
    assert sorted(ledger.get_order_links(MKP, iter(ids))) == ["O-0", "O-2"]


def test_record_import_sets_shopify_ids_and_keeps_first_import_time(ledger):
    observe(ledger, "O-10")
    ledger.record_import(MKP, "O-10", shopify_order_id="gid://shopify/Order/1", shopify_order_name="#1001",
                         shopify_legacy_id=1, now=T0 + timedelta(minutes=1))
    ledger.record_import(MKP, "O-10", shopify_order_id="gid://shopify/Order/1", shopify_order_name="#1001",
                         shopify_legacy_id="1", now=T0 + timedelta(minutes=9))
    link = ledger.get_order_links(MKP, ["O-10"])["O-10"]
    assert (link.import_state, link.shopify_order_name, link.shopify_legacy_id) == ("imported", "#1001", "1")
    assert link.imported_at == T0 + timedelta(minutes=1)
    assert link.updated_at == T0 + timedelta(minutes=9)


def test_an_import_failure_after_success_keeps_the_order_imported(ledger):
    observe(ledger, "O-11")
    ledger.record_import(MKP, "O-11", shopify_order_id="gid://shopify/Order/2", shopify_order_name=None,
                         shopify_legacy_id=None, now=T0)
    ledger.record_import_failure(MKP, "O-11", now=T0 + timedelta(minutes=1))
    assert ledger.get_order_links(MKP, ["O-11"])["O-11"].import_state == "imported"


@pytest.mark.parametrize("call", ["import", "failure", "acceptance"])
def test_outcomes_for_unknown_orders_name_the_order(ledger, call):
    with pytest.raises(UnknownOrderLink, match=r"'O-404' of marketplace 'decathlon_fr'"):
        if call == "import":
            ledger.record_import(MKP, "O-404", shopify_order_id="gid://x", shopify_order_name=None,
                                 shopify_legacy_id=None, now=T0)
        elif call == "failure":
            ledger.record_import_failure(MKP, "O-404", now=T0)
        else:
            ledger.record_acceptance(MKP, "O-404", state="accepted", now=T0)


def test_record_acceptance_rejects_unknown_states(ledger):
    observe(ledger, "O-12", state="WAITING_ACCEPTANCE")
    with pytest.raises(InvalidLedgerInput, match=r"O-12.*'approved' is not one of"):
        ledger.record_acceptance(MKP, "O-12", state="approved", now=T0)


def test_record_acceptance_stamps_accepted_at_only_when_accepted(ledger):
    observe(ledger, "O-13", state="WAITING_ACCEPTANCE")
    ledger.record_acceptance(MKP, "O-13", state="failed", now=T0 + timedelta(minutes=1))
    assert ledger.get_order_links(MKP, ["O-13"])["O-13"].accepted_at is None
    ledger.record_acceptance(MKP, "O-13", state="partial", now=T0 + timedelta(minutes=2))
    link = ledger.get_order_links(MKP, ["O-13"])["O-13"]
    assert (link.acceptance_state, link.accepted_at) == ("partial", T0 + timedelta(minutes=2))


def test_pending_imports_are_eligible_not_imported_and_old_enough(ledger):
    observe(ledger, "old-pending", now=T0)
    observe(ledger, "old-failed", now=T0 + timedelta(minutes=1))
    ledger.record_import_failure(MKP, "old-failed", now=T0 + timedelta(minutes=2))
    observe(ledger, "old-imported", now=T0)
    ledger.record_import(MKP, "old-imported", shopify_order_id="gid://shopify/Order/3", shopify_order_name=None,
                         shopify_legacy_id=None, now=T0)
    observe(ledger, "old-skipped", eligible=False, skip_reason="unpaid", now=T0)
    observe(ledger, "recent", now=T0 + timedelta(minutes=40))
    observe(ledger, "other-marketplace", now=T0, marketplace="carrefour_fr")
    due = ledger.pending_imports(MKP, eligible_before=T0 + timedelta(minutes=30))
    assert [link.mirakl_order_id for link in due] == ["old-pending", "old-failed"]
    # strictly before: an order that became eligible exactly at the cut-off is not yet due
    assert [l.mirakl_order_id for l in ledger.pending_imports(MKP, eligible_before=T0)] == []


def test_awaiting_acceptance_lists_waiting_orders_not_yet_accepted_nearest_deadline_first(ledger):
    observe(ledger, "late", state="WAITING_ACCEPTANCE", deadline=T0 + timedelta(hours=50))
    observe(ledger, "soon", state="WAITING_ACCEPTANCE", deadline=T0 + timedelta(hours=2))
    observe(ledger, "no-deadline", state="WAITING_ACCEPTANCE")
    observe(ledger, "left", state="WAITING_ACCEPTANCE", deadline=T0 + timedelta(hours=10))
    ledger.record_acceptance(MKP, "left", state="left", now=T0)
    observe(ledger, "failed", state="WAITING_ACCEPTANCE", deadline=T0 + timedelta(hours=20))
    ledger.record_acceptance(MKP, "failed", state="failed", now=T0)
    observe(ledger, "accepted", state="WAITING_ACCEPTANCE", deadline=T0 + timedelta(hours=1))
    ledger.record_acceptance(MKP, "accepted", state="accepted", now=T0)
    observe(ledger, "refused", state="WAITING_ACCEPTANCE", deadline=T0 + timedelta(hours=1))
    ledger.record_acceptance(MKP, "refused", state="refused", now=T0)
    observe(ledger, "shipping", state="SHIPPING")
    observe(ledger, "elsewhere", state="WAITING_ACCEPTANCE", marketplace="carrefour_fr")
    assert [l.mirakl_order_id for l in ledger.awaiting_acceptance(MKP)] == ["soon", "left", "failed", "late", "no-deadline"]


def test_count_links_by_import_state(ledger):
    assert ledger.count_links() == {"pending": 0, "imported": 0, "failed": 0, "skipped": 0}
    observe(ledger, "a")
    observe(ledger, "b")
    observe(ledger, "c", eligible=False, skip_reason="unpaid")
    observe(ledger, "d")
    ledger.record_import_failure(MKP, "d", now=T0)
    observe(ledger, "e", marketplace="carrefour_fr")
    ledger.record_import("carrefour_fr", "e", shopify_order_id="gid://shopify/Order/4", shopify_order_name=None,
                         shopify_legacy_id=None, now=T0)
    assert ledger.count_links(MKP) == {"pending": 2, "imported": 0, "failed": 1, "skipped": 1}
    assert ledger.count_links() == {"pending": 2, "imported": 1, "failed": 1, "skipped": 1}


def test_bad_input_is_refused_naming_the_order(ledger):
    with pytest.raises(InvalidLedgerInput, match=r"order 'O-1' of marketplace 'decathlon_fr': updated_at .* is naive"):
        observe(ledger, "O-1", now=datetime(2026, 3, 2, 9, 0))
    with pytest.raises(InvalidLedgerInput, match=r"mirakl_order_id must be a non-empty string"):
        observe(ledger, "")
    with pytest.raises(InvalidLedgerInput, match=r"O-2.*eligible order has no skip_reason"):
        observe(ledger, "O-2", eligible=True, skip_reason="why?")
    with pytest.raises(InvalidLedgerInput, match=r"O-3.*shopify_order_id must be a non-empty string"):
        observe(ledger, "O-3")
        ledger.record_import(MKP, "O-3", shopify_order_id="", shopify_order_name=None, shopify_legacy_id=None, now=T0)
