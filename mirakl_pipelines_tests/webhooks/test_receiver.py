"""The webhook receiver over real loopback HTTP: signatures, headers, dedup, size limit, topics, health, logs."""

import json
import logging
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest

from mirakl_pipelines.webhooks import DEFAULT_TOPICS, create_webhook_app, sign
from mirakl_pipelines_tests.webhooks.deliveries import (
    OLD_SECRET,
    SECRET,
    SHOP,
    encode,
    fulfilment_payload,
    headers,
    running_receiver,
)


def test_a_signed_delivery_is_stored_with_its_headers_and_exact_payload(receiver):
    body = encode(fulfilment_payload()).replace(b'"89.99"', b'89.990')  # a JSON number with its digits
    sent = headers(body, webhook_id="wh-1")
    response = receiver.post(body, sent)
    assert (response.status_code, response.json()) == (200, {"status": "stored"})
    [entry] = receiver.ledger.inbox_after(0)
    assert (entry.webhook_id, entry.topic, entry.shop_domain, entry.api_version) == (
        "wh-1", "fulfillments/create", SHOP, "2026-07")
    assert entry.event_id == sent["X-Shopify-Event-Id"]
    assert entry.triggered_at == datetime(2026, 3, 2, 9, 0, 1, 123456, tzinfo=timezone.utc)
    assert (entry.resource_id, entry.shopify_order_id) == ("5001", "820982911946154508")
    assert entry.payload["line_items"][0]["price"] == Decimal("89.990")
    assert str(entry.payload["line_items"][0]["price"]) == "89.990"
    assert entry.payload["tracking_number"] == "6A12345678901"


def test_bad_missing_tampered_and_empty_signatures_get_401_with_no_detail(receiver):
    body = encode(fulfilment_payload())
    cases = {
        "wrong secret": (body, headers(body, secret="not-the-secret")),
        "missing": (body, headers(body, secret=None)),
        "empty header": (body, headers(body, **{"X-Shopify-Hmac-Sha256": ""})),
        "tampered body": (body.replace(b"6A12345678901", b"6A12345678902"), headers(body)),
        "empty body": (b"", headers(b"")),
    }
    for case, (sent_body, sent_headers) in cases.items():
        response = receiver.post(sent_body, sent_headers)
        assert (response.status_code, response.content) == (401, b""), case
    assert receiver.ledger.latest_inbox_id() == 0


def test_during_a_rotation_old_and_new_secrets_are_accepted(tmp_path):
    with running_receiver(tmp_path, secrets=(SECRET, OLD_SECRET)) as running:
        body = encode(fulfilment_payload())
        assert running.post(body, headers(body, secret=OLD_SECRET)).status_code == 200
        assert running.post(body, headers(body, secret=SECRET)).status_code == 200
        assert running.post(body, headers(body, secret="shpss_even_older")).status_code == 401
        assert len(running.ledger.inbox_after(0)) == 2


def test_the_receiver_refuses_to_start_without_a_secret(tmp_path):
    url = f"sqlite:///{tmp_path / 'l.sqlite'}"
    for secrets in ([], [""]):
        with pytest.raises(ValueError, match="no webhook secret"):
            create_webhook_app(url, secrets)
    with pytest.raises(TypeError):
        create_webhook_app(url, SECRET)


def test_header_names_are_case_insensitive(receiver):
    body = encode(fulfilment_payload())
    for n, style in enumerate((str.lower, str.upper)):
        sent = headers(body, webhook_id=f"wh-case-{n}")
        lines = "".join(f"{style(name)}: {value}\r\n" for name, value in sent.items())
        request = (f"POST /webhooks/shopify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
                   f"Connection: close\r\n{lines}\r\n").encode() + body
        assert receiver.raw(request).startswith(b"HTTP/1.1 200"), style
    assert [e.webhook_id for e in receiver.ledger.inbox_after(0)] == ["wh-case-0", "wh-case-1"]


def test_a_redelivery_is_answered_200_and_stored_once(receiver):
    body = encode(fulfilment_payload())
    first = receiver.post(body, headers(body, webhook_id="wh-dup"))
    again = receiver.post(body, headers(body, webhook_id="wh-dup"))
    assert (first.status_code, first.json()["status"]) == (200, "stored")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert len(receiver.ledger.inbox_after(0)) == 1


@pytest.mark.parametrize("missing", ["X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-API-Version",
                                     "X-Shopify-Webhook-Id"])
def test_a_missing_required_header_is_400(receiver, missing):
    body = encode(fulfilment_payload())
    sent = {k: v for k, v in headers(body).items() if k != missing}
    response = receiver.post(body, sent)
    assert response.status_code == 400 and missing in response.text
    assert receiver.ledger.latest_inbox_id() == 0


def test_optional_headers_may_be_absent_or_unreadable(receiver):
    body = encode(fulfilment_payload())
    sent = {k: v for k, v in headers(body, webhook_id="wh-opt").items() if k != "X-Shopify-Event-Id"}
    sent["X-Shopify-Triggered-At"] = "yesterday"
    assert receiver.post(body, sent).status_code == 200
    [entry] = receiver.ledger.inbox_after(0)
    assert (entry.event_id, entry.triggered_at) == (None, None)


def test_a_topic_not_accepted_is_answered_200_and_not_stored(receiver, caplog):
    body = encode({"id": 1, "title": "Tent"})
    with caplog.at_level(logging.INFO, logger="mirakl_pipelines.webhooks"):
        response = receiver.post(body, headers(body, topic="products/update"))
    assert (response.status_code, response.json()) == (200, {"status": "ignored"})
    assert receiver.ledger.latest_inbox_id() == 0
    assert any('"outcome": "ignored"' in r.getMessage() and "products/update" in r.getMessage() for r in caplog.records)


def test_every_default_topic_is_stored(receiver):
    for n, topic in enumerate(DEFAULT_TOPICS):
        body = encode({"id": n, "order_id": 99})
        assert receiver.post(body, headers(body, topic=topic)).json()["status"] == "stored", topic
    assert [e.topic for e in receiver.ledger.inbox_after(0)] == list(DEFAULT_TOPICS)


@pytest.mark.parametrize("body, why", [
    (b"{not json", "not valid JSON"), (b'["an", "array"]', "an array, not a JSON object"),
    (b'{"amount": NaN}', "NaN is not valid JSON"), (b"\xff\xfe{}", "not valid JSON"),
    (b"[" * 100_000, "not valid JSON"), (b"1" * 5000, "not valid JSON"),
])
def test_a_signed_body_that_is_not_a_json_object_is_quarantined_and_answered_200(receiver, body, why):
    # A 4xx would make Shopify retry for hours and then drop the subscription: the body is kept for a person instead.
    response = receiver.post(body, headers(body, webhook_id="wh-poison"))
    assert (response.status_code, response.json()) == (200, {"status": "quarantined"})
    assert receiver.ledger.inbox_after(0) == []
    [kept] = receiver.ledger.quarantined_webhooks()
    assert (kept.webhook_id, kept.raw_body) == ("wh-poison", body) and why in kept.reason


def _padded(size: int) -> bytes:
    skeleton = encode({"id": 1, "order_id": 2, "pad": ""})
    body = encode({"id": 1, "order_id": 2, "pad": "x" * (size - len(skeleton))})
    assert len(body) == size
    return body


def test_size_limit_accepts_the_limit_and_refuses_one_byte_more(tmp_path):
    with running_receiver(tmp_path, max_body_bytes=2048) as running:
        at_limit, over = _padded(2048), _padded(2049)
        assert running.post(at_limit, headers(at_limit)).status_code == 200
        response = running.post(over, headers(over))
        assert (response.status_code, response.content) == (413, b"")
        assert running.ledger.latest_inbox_id() == 1


def test_a_declared_oversized_body_is_refused_before_it_is_sent(tmp_path):
    with running_receiver(tmp_path, max_body_bytes=2048) as running:
        # 50 MB announced, nothing sent: the answer must come from the header alone.
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers(b"x").items())
        request = f"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n{lines}\r\n".encode()
        assert running.raw(request).startswith(b"HTTP/1.1 413")


def test_an_oversized_chunked_body_is_refused_while_streaming(tmp_path):
    with running_receiver(tmp_path, max_body_bytes=2048) as running:
        # No Content-Length; 3 KB of chunks and never the final chunk: only counting can answer.
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers(b"x").items())
        chunks = b"".join(b"400\r\n" + b"a" * 1024 + b"\r\n" for _ in range(3))
        request = f"POST /webhooks/shopify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{lines}\r\n".encode()
        assert running.raw(request + chunks).startswith(b"HTTP/1.1 413")
        assert running.ledger.latest_inbox_id() == 0


def test_health_reports_the_last_inbox_id(receiver):
    assert httpx.get(receiver.server.url + "/health").json() == {"status": "ok", "inbox_last_id": 0}
    for n in range(3):
        body = encode({"id": n, "order_id": 1})
        receiver.post(body, headers(body))
    health = httpx.get(receiver.server.url + "/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok", "inbox_last_id": receiver.ledger.latest_inbox_id()})
    assert health.json()["inbox_last_id"] > 0


def test_other_methods_and_paths_are_refused(receiver):
    assert httpx.get(receiver.url).status_code == 405
    body = encode({"id": 1})
    assert httpx.post(receiver.server.url + "/webhooks/other", content=body, headers=headers(body)).status_code == 404


def test_one_structured_log_line_per_delivery_without_secrets_or_payload(receiver, caplog):
    body = encode(fulfilment_payload())
    good = headers(body, webhook_id="wh-log-1")
    with caplog.at_level(logging.INFO, logger="mirakl_pipelines.webhooks"):
        receiver.post(body, good)
        receiver.post(body, good)
        receiver.post(body, headers(body, webhook_id="wh-log-2", secret="wrong-secret"))
    lines = [r.getMessage() for r in caplog.records if r.name == "mirakl_pipelines.webhooks"]
    assert len(lines) == 3
    logged = [json.loads(line) for line in lines]
    assert [(e["status"], e["outcome"], e["duplicate"]) for e in logged] == [
        (200, "stored", False), (200, "duplicate", True), (401, "rejected", False)]
    for entry in logged:
        assert entry["topic"] == "fulfillments/create" and entry["shop"] == SHOP
        assert entry["webhook_id"].startswith("wh-log-") and entry["ms"] >= 0
    everything = "\n".join(lines)
    for secret_or_payload in (SECRET, good["X-Shopify-Hmac-Sha256"], sign(body, "wrong-secret"), "6A12345678901", "TENT-2P"):
        assert secret_or_payload not in everything


def test_a_ledger_failure_is_a_503_so_shopify_delivers_again(receiver):
    body = encode(fulfilment_payload())
    with receiver.ledger.engine.begin() as conn:  # the table vanishes under the receiver
        conn.exec_driver_sql("ALTER TABLE webhook_inbox RENAME TO webhook_inbox_gone")
    for sent in (body, b"[" * 1000):  # a delivery to quarantine cannot be kept either
        response = receiver.post(sent, headers(sent))
        assert (response.status_code, response.headers.get("Retry-After")) == (503, "30")
    assert httpx.get(receiver.server.url + "/health").status_code == 503
