"""Poison deliveries against the running receiver, on SQLite and PostgreSQL: never a 5xx while the ledger is up.

A signed delivery is stored as parsed or, when it cannot be, quarantined verbatim with an exception naming its
webhook id; either way it is answered 200, is in the inbox exactly once and holds up no other delivery. A 503
(with Retry-After) comes only from a ledger that cannot be written.
"""

import json
import uuid
from decimal import Decimal

import anyio
import httpx
import psycopg2
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mirakl_pipelines.ledger.inbox import MAX_PAYLOAD_DEPTH, QUARANTINE_KIND, QUARANTINE_MARKETPLACE
from mirakl_pipelines.ledger.tables import webhook_inbox
from mirakl_pipelines.webhooks import create_webhook_app, sign
from mirakl_pipelines.webhooks.app import WEBHOOK_PATH
from mirakl_pipelines_tests.webhooks.deliveries import SECRET, encode, fulfilment_payload, headers, running_receiver

ID_WIDTH = 128  # webhook_inbox.resource_id / shopify_order_id
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example])


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(request, tmp_path_factory):
    """One receiver per backend for the whole module (hypothesis runs many examples against it)."""
    directory = tmp_path_factory.mktemp("poison")
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_server").create_database()
    with running_receiver(directory, ledger_url=url) as running:
        yield running


def rows_of(receiver, webhook_id: str) -> list:
    with receiver.ledger.engine.connect() as conn:
        return conn.execute(sa.select(webhook_inbox).where(webhook_inbox.c.webhook_id == webhook_id)).mappings().all()


def open_exceptions_of(receiver, webhook_id: str) -> list:
    return [e for e in receiver.ledger.open_exceptions(QUARANTINE_MARKETPLACE, [QUARANTINE_KIND])
            if e.record_id == webhook_id]


# --- the oracle: what "cannot be stored as parsed" means, restated from the rule, not from the code --------------

class _NotJson(ValueError):
    pass


def _refuse_constant(name):
    raise _NotJson(name)


def _storable_text(text: str) -> bool:
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def expected_problem(body: bytes, topic: str = "fulfillments/create") -> str | None:
    """None when the body must be stored as parsed, else a word for why it must be quarantined."""
    try:
        value = json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return "not valid JSON"
    if not isinstance(value, dict):
        return "not a JSON object"
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            if level > MAX_PAYLOAD_DEPTH:
                return "nested"
            children = node.values() if isinstance(node, dict) else node
            if isinstance(node, dict) and not all(_storable_text(k) for k in node):
                return "text"
            stack += [(child, level + 1) for child in children]
        elif isinstance(node, str) and not _storable_text(node):
            return "text"
    assert topic.startswith("fulfillments/")
    for key in ("id", "order_id"):
        given_id = value.get(key)
        if isinstance(given_id, (int, str)) and not isinstance(given_id, bool) and len(str(given_id)) > ID_WIDTH:
            return "id"
    return None


# --- bodies -------------------------------------------------------------------------------------------------------

class Literal(str):
    """JSON text written as is (numbers wider than any column, exponents beyond any float)."""


def to_json(value, ascii_only: bool) -> str:
    if isinstance(value, Literal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{to_json(k, ascii_only)}:{to_json(v, ascii_only)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v, ascii_only) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=ascii_only)


SPECIALS = ["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]  # NUL and lone surrogates (a pair would be valid)
clean_texts = st.text(st.characters(exclude_characters="\x00"), max_size=12)  # no surrogates: hypothesis's default
poison_texts = st.builds(lambda a, bad, b: a + bad + b, clean_texts, st.sampled_from(SPECIALS), clean_texts)
wild_texts = st.text(st.one_of(st.characters(), st.sampled_from(SPECIALS)), max_size=12)


def numbers(digits: st.SearchStrategy[int]) -> st.SearchStrategy:
    return st.one_of(
        st.integers(),
        st.integers(min_value=-(10**200), max_value=10**200),
        st.decimals(allow_nan=False, allow_infinity=False),
        st.builds(lambda d, e: Literal(f"{d}e{e}"), st.integers(1, 10**30), st.integers(-10**9, 10**9)),
        digits.map(lambda n: Literal("9" * n)),  # Python reads at most 4,300 digits into an int
    )


def values(texts: st.SearchStrategy[str], digits: st.SearchStrategy[int]) -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), numbers(digits), texts)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
                        max_leaves=12)


clean_values = values(clean_texts, st.integers(1, 40))
wild_values = values(wild_texts, st.integers(1, 40) | st.integers(4290, 4310))
clean_ids = st.integers(0, 2**63) | st.text(st.characters(max_codepoint=0x7F, exclude_characters="\x00"),
                                            min_size=1, max_size=ID_WIDTH)
wide_ids = st.integers(10**120, 10**140) | st.text(st.characters(max_codepoint=0x7F, exclude_characters="\x00"),
                                                   min_size=100, max_size=140)


@st.composite
def nested(draw) -> Literal:
    depth = draw(st.sampled_from(range(MAX_PAYLOAD_DEPTH - 3, MAX_PAYLOAD_DEPTH + 3)) | st.integers(1, 200)
                 | st.integers(1000, 5000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"k":', "}")]))
    inner = "[]" if opener == "[" else "1"
    return Literal(opener * depth + inner + closer * depth)


@st.composite
def fulfilment_like(draw) -> bytes:
    """A fulfilment-shaped body with at most one kind of poison in it."""
    body = {"id": draw(clean_ids), "order_id": draw(clean_ids), "status": "success"}
    body.update(draw(st.dictionaries(clean_texts, clean_values, max_size=4)))
    poison = draw(st.sampled_from([None, "nested", "text", "key", "id", "digits"]))
    if poison == "nested":
        body["line_items"] = draw(nested())
    elif poison == "text":
        body["tracking_number"] = draw(poison_texts)
    elif poison == "key":
        body["note_attributes"] = {draw(poison_texts): 1}
    elif poison == "id":
        body[draw(st.sampled_from(["id", "order_id"]))] = draw(wide_ids)
    elif poison == "digits":
        body["total"] = Literal("9" * draw(st.integers(4290, 4310)))
    text = to_json(body, ascii_only=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")  # raw UTF-8 of a surrogate: json.loads reads it back as one


bodies = st.one_of(
    fulfilment_like(),
    fulfilment_like(),
    wild_values.map(lambda v: to_json(v, True).encode()),  # a JSON body that is not always an object
    nested().map(lambda v: v.encode()),
    st.binary(min_size=1, max_size=300),
)


def test_the_oracle_says_what_the_examples_mean():
    assert expected_problem(encode(fulfilment_payload())) is None
    assert expected_problem(b'{"a":"\\ud800"}') == "text"
    assert expected_problem(b'{"a":"\\ud800\\udc00"}') is None  # a pair is one astral character
    assert expected_problem(b'{"a":"\\u0000"}') == "text"
    assert expected_problem(b'{"a":' * MAX_PAYLOAD_DEPTH + b"1" + b"}" * MAX_PAYLOAD_DEPTH) is None
    assert expected_problem(b'{"a":' * (MAX_PAYLOAD_DEPTH + 1) + b"1" + b"}" * (MAX_PAYLOAD_DEPTH + 1)) == "nested"
    assert expected_problem(b'{"id": ' + b"1" * 129 + b"}") == "id"
    assert expected_problem(b"[1]") == "not a JSON object"


@PROPERTY
@given(body=bodies)
def test_every_signed_body_is_stored_or_quarantined_once_and_never_blocks_the_next(live, body):
    webhook_id = f"poison-{uuid.uuid4()}"
    response = live.post(body, headers(body, webhook_id=webhook_id))
    problem = expected_problem(body)
    event(problem or "stored as parsed")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "quarantined" if problem else "stored"}, problem

    [row] = rows_of(live, webhook_id)  # exactly once
    if problem is None:
        assert row["quarantine_reason"] is None and row["raw_body"] is None
        assert json.loads(row["payload"], parse_float=Decimal) == json.loads(body, parse_float=Decimal)
        assert row["processed_at"] is None  # waiting for its flow
    else:
        assert row["raw_body"] == body  # verbatim
        assert row["quarantine_reason"] and row["outcome"] == "quarantined" and row["processed_at"] is not None
        [exception] = open_exceptions_of(live, webhook_id)
        assert f"inbox #{row['id']}" in exception.reason and row["quarantine_reason"] in exception.reason
        assert exception.details["bytes"] == len(body)
        assert all(e.webhook_id != webhook_id for e in live.ledger.inbox_after(row["id"] - 1, limit=5))

    good = encode(fulfilment_payload())
    follower = live.post(good, headers(good, webhook_id=f"good-{uuid.uuid4()}"))
    assert (follower.status_code, follower.json()) == (200, {"status": "stored"})


@pytest.mark.parametrize("body, why", [
    (b'{"id": 1, "order_id": 2, "tracking_number": "6A\\ud800"}',
     'lone surrogate (\\ud800-\\udfff) in a string at $["tracking_number"]'),
    (b'{"id": 1, "order_id": 2, "tracking_number": "\xed\xa0\x80"}', "lone surrogate"),  # raw UTF-8 surrogate
    (b'{"id": 1, "order_id": 2, "note": {"a\\u0000b": 1}}',
     'NUL character (\\u0000) in a string at $["note"]["a\\u0000b"]'),
    (b'{"id": 1, "order_id": 2, "x": ' + b"[" * 200 + b"]" * 200 + b"}",
     'nesting deeper than 64 levels at $["x"][0][0][0][0][0][0][0]…(56 more levels)'),
    (b'{"id": 1, "order_id": 2, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deep to parse"),
    (b'{"id": ' + b"9" * 129 + b', "order_id": 2}', "resource id is 129 characters long"),
    (b'{"id": 1, "order_id": "' + b"7" * 200 + b'"}', "order id is 200 characters long"),
    (b'{"id": 1, "amount": ' + b"9" * 4301 + b"}", "Exceeds the limit (4300 digits)"),
    (b"[]", "an array, not a JSON object"),
    (b"null", "null, not a JSON object"),
])
def test_each_kind_of_poison_is_quarantined_with_its_reason_and_redelivered_once(live, body, why):
    webhook_id = f"kind-{uuid.uuid4()}"
    for expected in ("quarantined", "duplicate"):  # Shopify's redelivery of the same webhook id
        response = live.post(body, headers(body, webhook_id=webhook_id))
        assert (response.status_code, response.json()) == (200, {"status": expected})
    [row] = rows_of(live, webhook_id)
    assert row["raw_body"] == body and why in row["quarantine_reason"]
    [exception] = open_exceptions_of(live, webhook_id)
    assert exception.occurrences == 1 and why in exception.reason and "fulfillments/create" in exception.reason
    assert exception.details["sha256"] and exception.details["shop_domain"] == "brand-demo.myshopify.com"
    kept = live.ledger.quarantined_webhooks(limit=10_000)
    assert any(q.webhook_id == webhook_id and q.raw_body == body for q in kept)


def test_what_can_be_stored_as_parsed_is_stored_as_parsed(live):
    limit = b'{"a":' * (MAX_PAYLOAD_DEPTH - 1) + b"1" + b"}" * (MAX_PAYLOAD_DEPTH - 1)
    cases = [
        b'{"id": 1, "order_id": 2, "x": ' + limit + b"}",  # 64 levels with the body itself
        b'{"id": 1, "order_id": 2, "pair": "\\ud83d\\ude00", "raw": "\xf0\x9f\x98\x80"}',
        b'{"id": ' + b"9" * 128 + b', "order_id": 2, "big": ' + b"9" * 4300 + b', "tiny": 1e-999999999}',
        b'{"id": 1, "order_id": 2, "tab": "a\\tb", "latin": "\\u00ff"}',
    ]
    for body in cases:
        webhook_id = f"fine-{uuid.uuid4()}"
        assert live.post(body, headers(body, webhook_id=webhook_id)).json() == {"status": "stored"}
        [row] = rows_of(live, webhook_id)
        assert json.loads(row["payload"], parse_float=Decimal) == json.loads(body, parse_float=Decimal)


# --- headers ------------------------------------------------------------------------------------------------------

REQUIRED = ("X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-API-Version", "X-Shopify-Webhook-Id")
header_bytes = st.one_of(
    st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b),  # any byte a proxy could pass on
    st.text(st.characters(max_codepoint=0xFF), max_size=40).map(lambda t: t.encode("latin-1")),
    st.integers(0, 400).map(lambda n: b"w" * n),  # around every column's width
    st.just(b""),
)


class InProcess:
    """The receiver app called in process (ASGI): no HTTP parser in front, so any header byte reaches it."""

    def __init__(self, app):
        self.app = app

    def post(self, path: str, *, content: bytes, headers: dict) -> httpx.Response:
        async def send():
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hooks") as client:
                return await client.post(path, content=content, headers=headers)

        return anyio.run(send)


@pytest.fixture(scope="module")
def in_process(live):
    """Another receiver on the same ledger, called in process."""
    app = create_webhook_app(live.ledger.engine.url.render_as_string(hide_password=False), [SECRET])
    try:
        yield InProcess(app)
    finally:
        app.state.ledger.close()


@PROPERTY
@given(fuzzed=st.dictionaries(st.sampled_from(REQUIRED + ("X-Shopify-Event-Id", "X-Shopify-Triggered-At")),
                              header_bytes, max_size=4),
       keep_topic=st.booleans())
def test_odd_empty_and_overlong_headers_never_get_a_5xx(live, in_process, fuzzed, keep_topic):
    body = encode(fulfilment_payload())
    sent = {name: value.encode() for name, value in headers(body, webhook_id=f"hdr-{uuid.uuid4()}").items()}
    if keep_topic:
        fuzzed.pop("X-Shopify-Topic", None)
    sent.update(fuzzed)
    response = in_process.post(WEBHOOK_PATH, content=body, headers=sent)
    assert response.status_code in (200, 400), (response.status_code, response.text)
    if response.status_code == 400:
        event(response.text.split(" ", 2)[2])
        assert any(name in response.text for name in REQUIRED)
        return
    status = response.json()["status"]
    event(status)
    assert status in ("stored", "duplicate", "ignored")
    if status == "stored":
        webhook_id = sent["X-Shopify-Webhook-Id"].decode("latin-1").strip()
        [row] = rows_of(live, webhook_id)
        assert row["shop_domain"] == sent["X-Shopify-Shop-Domain"].decode("latin-1").strip()


def test_a_control_character_in_a_required_header_is_400_and_in_an_optional_one_is_dropped(live, in_process):
    body = encode(fulfilment_payload())
    bad = {**headers(body), "X-Shopify-Shop-Domain": "brand\x00.myshopify.com"}
    response = in_process.post(WEBHOOK_PATH, content=body, headers=bad)
    assert (response.status_code, response.text) == (400, "header X-Shopify-Shop-Domain holds control characters")
    webhook_id = f"ev-{uuid.uuid4()}"
    odd = {**headers(body, webhook_id=webhook_id), "X-Shopify-Event-Id": "ev\x00",
           "X-Shopify-Triggered-At": "0001-01-01T00:00:00+05:00"}  # no UTC value
    assert in_process.post(WEBHOOK_PATH, content=body, headers=odd).json() == {"status": "stored"}
    [row] = rows_of(live, webhook_id)
    assert (row["event_id"], row["triggered_at"]) == (None, None)


def test_an_api_version_wider_than_its_column_is_400_on_every_backend(live):
    body = encode(fulfilment_payload())
    response = live.post(body, headers(body, **{"X-Shopify-API-Version": "2026-07" + "x" * 40}))
    assert (response.status_code, response.text) == (400, "header X-Shopify-API-Version longer than 32 characters")


# --- the ledger down ----------------------------------------------------------------------------------------------

@pytest.mark.postgres
def test_a_postgres_ledger_refusing_connections_is_a_503_and_the_receiver_recovers(tmp_path, postgres_server):
    url = postgres_server.create_database()
    database = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(host=postgres_server.host, port=postgres_server.port, user="postgres", dbname="postgres")
    admin.autocommit = True
    good, poison = encode(fulfilment_payload()), b'{"id": "\\u0000"}'
    try:
        with running_receiver(tmp_path, ledger_url=url) as running, admin.cursor() as sql:
            assert running.post(good, headers(good)).status_code == 200
            sql.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            sql.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
            for body, webhook_id in ((good, "down-good"), (poison, "down-poison")):
                response = running.post(body, headers(body, webhook_id=webhook_id))
                assert (response.status_code, response.headers["Retry-After"]) == (503, "30")
            assert httpx.get(running.server.url + "/health").status_code == 503
            sql.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            # Shopify delivers again: both land, once each.
            assert running.post(good, headers(good, webhook_id="down-good")).json() == {"status": "stored"}
            assert running.post(poison, headers(poison, webhook_id="down-poison")).json() == {"status": "quarantined"}
            assert [e.webhook_id for e in running.ledger.inbox_after(0)][1:] == ["down-good"]
            assert [q.webhook_id for q in running.ledger.quarantined_webhooks()] == ["down-poison"]
    finally:
        admin.close()


def test_a_signature_over_the_raw_bytes_is_still_required_for_poison(live):
    body = b'{"id": "\\ud800"}'
    sent = headers(body, secret=None)
    sent["X-Shopify-Hmac-Sha256"] = sign(body + b" ", SECRET)
    assert live.post(body, sent).status_code == 401
