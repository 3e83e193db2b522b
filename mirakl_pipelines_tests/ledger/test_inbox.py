"""The webhook inbox on both backends: stored once per webhook id, read by cursor and as a work queue."""

import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from mirakl_pipelines.ledger import InvalidLedgerInput, Ledger, LedgerError
from mirakl_pipelines.ledger.inbox import (
    MAX_PAYLOAD_DEPTH,
    QUARANTINE_KIND,
    QUARANTINE_MARKETPLACE,
    UnstorablePayload,
    payload_ids,
    payload_to_json,
)

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


def _deep(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def test_payload_json_refuses_what_cannot_be_stored_as_parsed_saying_where():
    assert payload_to_json(_deep(MAX_PAYLOAD_DEPTH)).count("{") == MAX_PAYLOAD_DEPTH
    where = rf'\$(\["k"\]){{8}}…\({MAX_PAYLOAD_DEPTH - 8} more levels\)$'
    with pytest.raises(ValueError, match=rf"nesting deeper than {MAX_PAYLOAD_DEPTH} levels at {where}"):
        payload_to_json(_deep(MAX_PAYLOAD_DEPTH + 1))
    with pytest.raises(ValueError, match=r'NUL character .* at \$\["lines"\]\[1\]\["sku"\]$'):
        payload_to_json({"lines": [{}, {"sku": "A\x00"}]})
    with pytest.raises(ValueError, match=r'lone surrogate .* at \$\["a\\udc00"\]$'):
        payload_to_json({"a\udc00": 1})
    assert payload_to_json({"emoji": "\U0001F600", "tab": "\t"}) == '{"emoji":"\\ud83d\\ude00","tab":"\\t"}'


def test_store_refuses_an_unstorable_payload_with_the_reason_and_stores_nothing(ledger):
    cases = {
        "wh-nul": ({"id": 1, "tracking_number": "6A\x00"}, "NUL character"),
        "wh-sur": ({"id": 1, "order_id": "\ud800"}, "lone surrogate"),
        "wh-deep": ({"id": 1, "x": _deep(MAX_PAYLOAD_DEPTH)}, "nesting deeper than"),
        "wh-wide": ({"id": int("9" * 129), "order_id": 1}, "resource id is 129 characters long"),
        "wh-list": (["not", "an", "object"], "must be a JSON object"),
    }
    for webhook_id, (payload, why) in cases.items():
        with pytest.raises(UnstorablePayload, match=f"webhook '{webhook_id}'") as raised:
            store(ledger, webhook_id, payload=payload)
        assert why in raised.value.reason and webhook_id not in raised.value.reason
    assert ledger.latest_inbox_id() == 0
    assert store(ledger, "wh-edge", payload={"id": int("9" * 128), "x": _deep(MAX_PAYLOAD_DEPTH - 1)}) is True


def quarantine(ledger, webhook_id, raw, *, reason="body is not valid JSON (Expecting value)", now=T0):
    return ledger.quarantine_webhook(webhook_id=webhook_id, topic="fulfillments/create", shop_domain=SHOP,
                                     api_version="2026-07", event_id=None, triggered_at=T0, raw_body=raw,
                                     reason=reason, now=now)


def test_a_quarantined_delivery_is_kept_verbatim_hidden_from_readers_and_raised_once(ledger):
    raw = b'{"id": "\\u0000", "bytes": "\x00\xff\xed\xa0\x80"}'
    store(ledger, "wh-1", payload={"id": 1, "order_id": 2})
    assert quarantine(ledger, "wh-2", raw, now=T0 + timedelta(seconds=1)) is True
    store(ledger, "wh-3", payload={"id": 3, "order_id": 4})
    # The readers (fulfilment sensor: inbox_after; push: unprocessed) never meet it, whatever their cursor or limit.
    assert [e.webhook_id for e in ledger.inbox_after(0)] == ["wh-1", "wh-3"]
    first = ledger.inbox_after(0, limit=1)[0]
    assert [e.webhook_id for e in ledger.inbox_after(first.id, limit=1)] == ["wh-3"]
    assert [e.webhook_id for e in ledger.unprocessed(topics=["fulfillments/create"])] == ["wh-1", "wh-3"]
    [kept] = ledger.quarantined_webhooks()
    assert (kept.webhook_id, kept.raw_body, kept.reason) == ("wh-2", raw, "body is not valid JSON (Expecting value)")
    assert (kept.triggered_at, kept.received_at) == (T0, T0 + timedelta(seconds=1))
    assert ledger.quarantined_webhooks(after=kept.id) == []
    [exception] = ledger.open_exceptions(QUARANTINE_MARKETPLACE, [QUARANTINE_KIND])
    assert exception.record_id == "wh-2" and f"inbox #{kept.id}" in exception.reason
    assert "body is not valid JSON" in exception.reason and SHOP in exception.reason
    assert exception.details["bytes"] == len(raw) and exception.details["inbox_id"] == kept.id
    # Redeliveries of the same webhook id, poisoned or not, are duplicates: nothing more is stored or raised.
    assert quarantine(ledger, "wh-2", raw) is False
    assert store(ledger, "wh-2", payload={"id": 9}) is False
    assert quarantine(ledger, "wh-1", raw) is False
    assert len(ledger.quarantined_webhooks()) == 1
    assert [e.occurrences for e in ledger.open_exceptions(QUARANTINE_MARKETPLACE)] == [1]


def test_bad_input_is_refused_naming_the_webhook(ledger):
    with pytest.raises(InvalidLedgerInput, match="webhook 'wh-x'.*topic"):
        store(ledger, "wh-x", topic="")
    with pytest.raises(InvalidLedgerInput, match="webhook 'wh-y'.*naive"):
        store(ledger, "wh-y", triggered=datetime(2026, 3, 2, 9, 0))
    with pytest.raises(InvalidLedgerInput, match="webhook 'wh-z'.*JSON object"):
        store(ledger, "wh-z", payload=["not", "an", "object"])
    with pytest.raises(InvalidLedgerInput, match="webhook 'wh-n'.*JSON"):
        store(ledger, "wh-n", payload={"amount": float("nan")})
    with pytest.raises(InvalidLedgerInput, match="webhook 'wh-q'.*raw_body must be bytes"):
        quarantine(ledger, "wh-q", "text")
    with pytest.raises(InvalidLedgerInput, match="webhook 'wh-r'.*reason"):
        quarantine(ledger, "wh-r", b"x", reason="")
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
