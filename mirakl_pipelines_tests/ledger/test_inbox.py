"""The webhook inbox on both backends: stored once per webhook id, read by cursor and as a work queue."""

import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from mirakl_pipelines.ledger import InvalidLedgerInput, Ledger, LedgerError
from mirakl_pipelines.ledger.inbox import payload_ids, payload_to_json

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
SHOP = "brand.myshopify.com"
FULFILMENT = {
    "id": 123456,
    "order_id": 820982911946154508,
    "status": "success",
    "tracking_company": "Colissimo",
    "tracking_number": "6A123",
    "line_items": [{"id": 487817672276298554, "quantity": 1, "price": "89.99", "grams": 100}],
    "total": Decimal("89.990"),
    "weight": Decimal("1E+2"),
    "name": "Zoë #1001.1",
}


def store(ledger, webhook_id, *, topic="fulfillments/create", payload=None, now=T0, event_id="ev-1", triggered=T0):
    return ledger.store_webhook(
        webhook_id=webhook_id,
        topic=topic,
        shop_domain=SHOP,
        api_version="2026-07",
        event_id=event_id,
        triggered_at=triggered,
        payload=FULFILMENT if payload is None else payload,
        now=now,
    )


def test_a_delivery_is_stored_with_its_ids_and_exact_payload(ledger):
    assert ledger.latest_inbox_id() == 0
    assert store(ledger, "wh-1", now=T0 + timedelta(seconds=2)) is True
    [entry] = ledger.inbox_after(0)
    assert entry.id == ledger.latest_inbox_id() > 0
    assert (entry.webhook_id, entry.topic, entry.shop_domain, entry.api_version, entry.event_id) == (
        "wh-1", "fulfillments/create", SHOP, "2026-07", "ev-1")
    assert (entry.triggered_at, entry.received_at) == (T0, T0 + timedelta(seconds=2))
    assert (entry.resource_id, entry.shopify_order_id) == ("123456", "820982911946154508")
    assert entry.processed_at is None and entry.outcome is None
    # Numbers come back as they were sent: big ints exact, decimals as Decimal with their digits.
    assert entry.payload == FULFILMENT
    assert str(entry.payload["total"]) == "89.990"
    assert entry.payload["line_items"][0]["id"] == 487817672276298554


def test_a_duplicate_webhook_id_is_stored_once_and_reported(ledger):
    assert store(ledger, "wh-dup") is True
    assert store(ledger, "wh-dup", payload={"id": 1, "order_id": 2}, now=T0 + timedelta(hours=1)) is False
    entries = ledger.inbox_after(0)
    assert len(entries) == 1 and entries[0].payload == FULFILMENT and entries[0].received_at == T0


def test_the_cursor_reads_new_entries_in_order_with_topic_filter_and_limit(ledger):
    topics = ["fulfillments/create", "orders/create", "fulfillments/update", "refunds/create", "fulfillments/create"]
    for n, topic in enumerate(topics):
        store(ledger, f"wh-{n}", topic=topic, payload={"id": n, "order_id": 100 + n})
    everything = ledger.inbox_after(0)
    assert [e.webhook_id for e in everything] == [f"wh-{n}" for n in range(5)]
    assert [e.id for e in everything] == sorted(e.id for e in everything)
    cursor = everything[1].id
    assert [e.webhook_id for e in ledger.inbox_after(cursor)] == ["wh-2", "wh-3", "wh-4"]
    fulfilments = ledger.inbox_after(0, topics=["fulfillments/create", "fulfillments/update"])
    assert [e.webhook_id for e in fulfilments] == ["wh-0", "wh-2", "wh-4"]
    assert [e.webhook_id for e in ledger.inbox_after(0, limit=2)] == ["wh-0", "wh-1"]
    assert ledger.inbox_after(ledger.latest_inbox_id()) == []
    assert ledger.latest_inbox_id() == everything[-1].id


def test_unprocessed_entries_form_a_work_queue_until_marked(ledger):
    for n in range(4):
        store(ledger, f"wh-{n}", topic="fulfillments/update" if n % 2 else "fulfillments/create", payload={"id": n})
    queue = ledger.unprocessed(topics=["fulfillments/create", "fulfillments/update"])
    assert [e.webhook_id for e in queue] == ["wh-0", "wh-1", "wh-2", "wh-3"]
    assert [e.webhook_id for e in ledger.unprocessed(topics=["fulfillments/update"], limit=1)] == ["wh-1"]
    later = T0 + timedelta(minutes=1)
    assert ledger.mark_processed([queue[0].id, queue[2].id], outcome="pushed", now=later) == 2
    assert [e.webhook_id for e in ledger.unprocessed(topics=None)] == ["wh-1", "wh-3"]
    done = {e.webhook_id: e for e in ledger.inbox_after(0)}
    assert (done["wh-0"].processed_at, done["wh-0"].outcome) == (later, "pushed")
    assert ledger.mark_processed([], outcome="pushed", now=later) == 0


def test_payload_ids_per_topic():
    assert payload_ids("fulfillments/update", {"id": 5, "order_id": 9}) == ("5", "9")
    assert payload_ids("refunds/create", {"id": 7, "order_id": 9}) == ("7", "9")
    assert payload_ids("orders/updated", {"id": 9, "name": "#1001"}) == ("9", "9")
    assert payload_ids("orders/edited", {"order_edit": {"id": 3, "order_id": 9}}) == ("3", "9")
    assert payload_ids("inventory_levels/update", {"inventory_item_id": 27, "location_id": 1}) == ("27", None)
    assert payload_ids("fulfillments/create", {"id": None, "order_id": {"nested": 1}}) == (None, None)


def test_payload_json_keeps_numbers_and_refuses_non_json():
    assert payload_to_json({"a": Decimal("0.10"), "b": [1, "x", None, True], "c": "é"}) == (
        '{"a":0.10,"b":[1,"x",null,true],"c":"\\u00e9"}')
    with pytest.raises(ValueError):
        payload_to_json({"a": Decimal("NaN")})


def test_bad_input_is_refused_naming_the_webhook(ledger):
    with pytest.raises(InvalidLedgerInput, match="webhook 'wh-x'.*topic"):
        store(ledger, "wh-x", topic="")
    with pytest.raises(InvalidLedgerInput, match="webhook 'wh-y'.*naive"):
        store(ledger, "wh-y", triggered=datetime(2026, 3, 2, 9, 0))
    with pytest.raises(InvalidLedgerInput, match="webhook 'wh-z'.*JSON object"):
        store(ledger, "wh-z", payload=["not", "an", "object"])
    with pytest.raises(InvalidLedgerInput, match="webhook 'wh-n'.*JSON"):
        store(ledger, "wh-n", payload={"amount": float("nan")})
    with pytest.raises(InvalidLedgerInput, match="cursor"):
        ledger.inbox_after(-1)
    with pytest.raises(InvalidLedgerInput, match="limit"):
        ledger.unprocessed(topics=None, limit=0)
    assert ledger.latest_inbox_id() == 0


def _link(ledger, order_id, *, gid, legacy, marketplace="decathlon_fr"):
    ledger.observe_order(marketplace, order_id, commercial_id=None, mirakl_state="SHIPPING", created_at=T0,
                         updated_at=T0, acceptance_deadline=None, eligible=True, skip_reason=None, now=T0)
    ledger.record_import(marketplace, order_id, shopify_order_id=gid, shopify_order_name=None,
                         shopify_legacy_id=legacy, now=T0)


def test_order_link_by_shopify_id_accepts_a_gid_or_a_legacy_id(ledger):
    _link(ledger, "M-1", gid="gid://shopify/Order/820982911946154508", legacy="820982911946154508")
    _link(ledger, "M-2", gid="gid://shopify/Order/42", legacy=None)  # legacy id not recorded
    _link(ledger, "M-3", gid="77", legacy=None, marketplace="leroymerlin_fr")  # stored as a bare id
    for key in ("820982911946154508", 820982911946154508, "gid://shopify/Order/820982911946154508"):
        assert ledger.order_link_by_shopify_id(key).mirakl_order_id == "M-1"
    assert ledger.order_link_by_shopify_id("42").mirakl_order_id == "M-2"
    assert ledger.order_link_by_shopify_id("gid://shopify/Order/77").mirakl_order_id == "M-3"
    assert ledger.order_link_by_shopify_id("999") is None
    with pytest.raises(InvalidLedgerInput):
        ledger.order_link_by_shopify_id("")


def test_a_shopify_order_linked_twice_is_reported_not_guessed(ledger):
    _link(ledger, "M-1", gid="gid://shopify/Order/5", legacy="5")
    _link(ledger, "M-9", gid="gid://shopify/Order/5", legacy="5", marketplace="leroymerlin_fr")
    with pytest.raises(LedgerError, match="several Mirakl orders"):
        ledger.order_link_by_shopify_id("5")


def test_concurrent_writers_and_a_cursor_reader_see_every_entry_exactly_once(ledger_url):
    """Ids must become visible in order, or a reader moving its cursor would skip one for good."""
    writers, per_writer = 4, 60
    with Ledger.connect(ledger_url):
        pass
    seen: list[int] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def write(name):
        try:
            with Ledger.connect(ledger_url) as own:
                for n in range(per_writer):
                    store(own, f"{name}-{n}", payload={"id": n, "order_id": 1})
                    store(own, f"{name}-{n}", payload={"id": n, "order_id": 1})  # redelivery
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    def read():
        with Ledger.connect(ledger_url) as own:
            cursor = 0
            while True:
                finished = done.is_set()
                batch = own.inbox_after(cursor, limit=50)
                seen.extend(e.id for e in batch)
                if batch:
                    cursor = batch[-1].id
                elif finished:
                    return
                else:
                    time.sleep(0.002)  # a poller, not a spinner hogging the GIL

    threads = [threading.Thread(target=write, args=(f"w{k}",)) for k in range(writers)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    reader.join(120)
    assert errors == []
    with Ledger.connect(ledger_url) as check:
        stored = [e.id for e in check.inbox_after(0, limit=10_000)]
    assert len(stored) == writers * per_writer
    assert sorted(seen) == stored and len(set(seen)) == len(seen)
