"""The Shopify webhook receiver (ASGI): verify, deduplicate, store in the ledger inbox, answer 200.

Storing is the only work done for a delivery (Shopify gives up after about 5 s and retries);
the flows read the inbox later. The insert runs in a worker thread, bounded so that a burst
queues on the limiter instead of opening a connection per request, and the event loop is never
blocked. Each delivery is logged as one JSON line, without secrets, signatures or payloads.

Shopify retries any non-2xx answer for hours and then removes the subscription, so the body of a
signed delivery never earns one: what cannot be stored as parsed is quarantined (kept verbatim,
raised in the exception queue) and answered 200. Only a ledger that cannot be written gets a 503.
"""

import json
import logging
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import partial
from typing import Callable, Iterable, Sequence

import anyio
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.ledger.inbox import HEADER_WIDTHS, UnstorablePayload
from mirakl_pipelines.webhooks.hmac import verify
from mirakl_pipelines.webhooks.launcher import PushLauncher
from mirakl_pipelines.webhooks.topics import DEFAULT_TOPICS, FULFILMENT_TOPICS

log = logging.getLogger("mirakl_pipelines.webhooks")

WEBHOOK_PATH = "/webhooks/shopify"
HEALTH_PATH = "/health"
HMAC_HEADER = "X-Shopify-Hmac-Sha256"
# Shopify's own validator requires these four (plus the signature); the others are optional.
REQUIRED_HEADERS = {
    "topic": "X-Shopify-Topic",
    "shop_domain": "X-Shopify-Shop-Domain",
    "api_version": "X-Shopify-API-Version",
    "webhook_id": "X-Shopify-Webhook-Id",
}
EVENT_ID_HEADER = "X-Shopify-Event-Id"
TRIGGERED_AT_HEADER = "X-Shopify-Triggered-At"
MAX_HEADER_CHARS = 255  # the widest inbox column; each header is held to its own column (HEADER_WIDTHS)
LEDGER_WRITERS = 8  # concurrent inserts; more only queue on the database lock
RETRY_AFTER_SECONDS = 30  # with a 503 when the ledger cannot be written
# Control characters (tab aside) cannot be sent by a conforming HTTP client, and PostgreSQL text cannot hold NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class _RejectedConstant(ValueError):
    pass


def _reject_constant(name: str):
    # Python's json accepts NaN/Infinity; JSON does not, and the inbox could not store them.
    raise _RejectedConstant(f"{name} is not valid JSON")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _parse_triggered_at(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        # In UTC now: 0001-01-01T00:00+01:00 has no UTC value and would fail in the ledger.
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def _parse_body(body: bytes) -> tuple[dict | None, str | None]:
    """(the body as a JSON object, None), or (None, why it is not one) — the reason never quotes the body."""
    try:
        payload = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        return None, "body is not valid JSON (nested too deep to parse)"
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits, NaN/Infinity
        return None, f"body is not valid JSON ({_printable(str(exc))})"
    if not isinstance(payload, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(payload), "a number")
        return None, f"body is {kind}, not a JSON object"
    return payload, None


def _printable(text: str, limit: int = 200) -> str:
    # ASCII with escapes: safe in a log line, a PostgreSQL text column and a terminal.
    return ascii(text[:limit])[1:-1]


@dataclass
class _Delivery:
    """What is logged about one request: never the signature, the secret or the body."""

    started: float
    topic: str | None = None
    shop: str | None = None
    webhook_id: str | None = None

    def log(self, status: int, outcome: str, *, reason: str | None = None, level: int = logging.INFO) -> None:
        fields = {
            "event": "shopify_webhook",
            "status": status,
            "outcome": outcome,
            "topic": self.topic,
            "shop": self.shop,
            "webhook_id": self.webhook_id,
            "duplicate": outcome == "duplicate",
            "ms": round((time.perf_counter() - self.started) * 1000, 2),
        }
        if reason:
            fields["reason"] = reason
        log.log(level, json.dumps(fields), extra={"webhook": fields})


class _Receiver:
    def __init__(self, ledger: Ledger, secrets: Sequence[str], max_body_bytes: int, topics: Iterable[str],
                 clock: Callable[[], datetime], launcher: PushLauncher | None = None):
        self.ledger = ledger
        self.launcher = launcher
        self.secrets = tuple(secrets)
        self.max_body_bytes = max_body_bytes
        self.topics = frozenset(topics)
        self.clock = clock
        self.writers = anyio.CapacityLimiter(LEDGER_WRITERS)

    async def deliver(self, request: Request) -> Response:
        delivery = _Delivery(started=time.perf_counter())
        headers = request.headers  # case-insensitive
        delivery.topic = headers.get(REQUIRED_HEADERS["topic"], "")[:MAX_HEADER_CHARS] or None
        delivery.shop = headers.get(REQUIRED_HEADERS["shop_domain"], "")[:MAX_HEADER_CHARS] or None
        delivery.webhook_id = headers.get(REQUIRED_HEADERS["webhook_id"], "")[:MAX_HEADER_CHARS] or None

        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                delivery.log(400, "rejected", reason="invalid Content-Length", level=logging.WARNING)
                return Response("invalid Content-Length", status_code=400)
            if int(declared) > self.max_body_bytes:
                return self._too_large(delivery)
        try:
            body = await self._read_body(request)
        except ClientDisconnect:
            delivery.log(400, "rejected", reason="client disconnected", level=logging.WARNING)
            return Response(status_code=400)
        if body is None:
            return self._too_large(delivery)

        if not verify(body, headers.get(HMAC_HEADER), self.secrets):
            delivery.log(401, "rejected", reason="bad or missing signature", level=logging.WARNING)
            return Response(status_code=401)  # no detail for an unauthenticated caller

        values = {}
        for field, name in REQUIRED_HEADERS.items():
            value = (headers.get(name) or "").strip()
            width = HEADER_WIDTHS[field]
            problem = ("missing" if not value else f"longer than {width} characters" if len(value) > width
                       else "holds control characters" if _CONTROL.search(value) else None)
            if problem:
                delivery.log(400, "rejected", reason=f"header {name} {problem}", level=logging.WARNING)
                return Response(f"header {name} {problem}", status_code=400)
            values[field] = value
        if values["topic"] not in self.topics:
            delivery.log(200, "ignored", reason="topic not accepted")
            return JSONResponse({"status": "ignored"})

        payload, problem = _parse_body(body)
        event_id = (headers.get(EVENT_ID_HEADER) or "").strip()[:HEADER_WIDTHS["event_id"]] or None
        if event_id is not None and _CONTROL.search(event_id):
            event_id = None  # optional: unreadable is as good as absent
        triggered_header = headers.get(TRIGGERED_AT_HEADER)
        triggered_at = _parse_triggered_at(triggered_header)
        received_at = self.clock()
        store = partial(self._store, values, event_id=event_id, triggered_at=triggered_at, body=body,
                        payload=payload, problem=problem, now=received_at)
        try:
            outcome, problem = await anyio.to_thread.run_sync(store, limiter=self.writers)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            # The ledger cannot be written (down, locked past the timeout, schema gone): Shopify delivers again later.
            delivery.log(503, "error", reason=f"ledger unavailable: {type(exc).__name__}", level=logging.ERROR)
            return Response(status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        except Exception as exc:  # a bug, not the delivery's fault: say so, Shopify retries
            log.exception("webhook %s: unexpected error", delivery.webhook_id)
            delivery.log(500, "error", reason=f"unexpected {type(exc).__name__}", level=logging.ERROR)
            return Response(status_code=500)
        if outcome == "stored" and self.launcher is not None and values["topic"] in FULFILMENT_TOPICS:
            try:  # the push run is started in the background; the answer never depends on it
                self.launcher.delivered(str(payload.get("order_id")), received_at)
            except Exception:
                log.exception("webhook %s: the push launch could not be scheduled", delivery.webhook_id)
        reason = problem
        if reason is None and triggered_header and triggered_at is None:
            reason = "unreadable X-Shopify-Triggered-At"
        delivery.log(200, outcome, reason=reason, level=logging.WARNING if outcome == "quarantined" else logging.INFO)
        return JSONResponse({"status": outcome})

    def _store(self, values: dict, *, event_id: str | None, triggered_at: datetime | None, body: bytes,
               payload: dict | None, problem: str | None, now: datetime) -> tuple[str, str | None]:
        """Store the parsed payload, or quarantine the raw body when it cannot be: (outcome, why quarantined)."""
        if problem is None:
            try:
                stored = self.ledger.store_webhook(**values, event_id=event_id, triggered_at=triggered_at,
                                                   payload=payload, now=now)
                return ("stored" if stored else "duplicate"), None
            except UnstorablePayload as exc:
                problem = exc.reason
        quarantined = self.ledger.quarantine_webhook(**values, event_id=event_id, triggered_at=triggered_at,
                                                     raw_body=body, reason=problem, now=now)
        return ("quarantined" if quarantined else "duplicate"), problem

    async def health(self, request: Request) -> Response:
        try:
            last_id = await anyio.to_thread.run_sync(self.ledger.latest_inbox_id)
        except Exception as exc:
            log.error(json.dumps({"event": "health", "status": 503, "reason": type(exc).__name__}))
            return JSONResponse({"status": "error"}, status_code=503)
        return JSONResponse({"status": "ok", "inbox_last_id": last_id})

    async def _read_body(self, request: Request) -> bytes | None:
        """The body, or None as soon as it grows past the limit (the rest is never read)."""
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, delivery: _Delivery) -> Response:
        delivery.log(413, "rejected", reason=f"body over {self.max_body_bytes} bytes", level=logging.WARNING)
        # The unread rest of the body makes the connection unusable: tell the client it is closed.
        return Response(status_code=413, headers={"Connection": "close"})


def create_webhook_app(
    ledger_url: str,
    secrets: Sequence[str],
    *,
    max_body_bytes: int = 1_000_000,
    topics: Iterable[str] = DEFAULT_TOPICS,
    clock: Callable[[], datetime] = _utc_now,
    dagster_graphql_url: str | None = None,
) -> Starlette:
    """The receiver for ``POST /webhooks/shopify`` and ``GET /health``, storing into the ledger at ``ledger_url``.

    ``secrets``: the app's webhook secret(s); during a rotation pass the new and the old one.
    The app holds one ledger (one engine) as ``app.state.ledger``, closed on lifespan shutdown.
    ``dagster_graphql_url``: the Dagster webserver's GraphQL endpoint; each stored fulfilment delivery then starts its
    marketplace's push run at once (``app.state.launcher``); without it the `fulfilment_inbox` sensor does.
    """
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of strings, not one string")
    secrets = [s for s in secrets if s]
    if not secrets:
        raise ValueError("no webhook secret configured: the receiver refuses to run without one")
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be an int >= 1, got {max_body_bytes!r}")
    ledger = Ledger.connect(ledger_url)
    launcher = (PushLauncher(dagster_graphql_url, partial(_marketplace_of, ledger), clock=clock)
                if dagster_graphql_url else None)
    receiver = _Receiver(ledger, secrets, max_body_bytes, topics, clock, launcher)

    @asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            if launcher is not None:
                await launcher.aclose()
            ledger.close()

    app = Starlette(
        routes=[
            Route(WEBHOOK_PATH, receiver.deliver, methods=["POST"]),
            Route(HEALTH_PATH, receiver.health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.ledger = ledger
    app.state.launcher = launcher
    return app


def _marketplace_of(ledger: Ledger, shopify_order_id: str) -> str | None:
    link = ledger.order_link_by_shopify_id(shopify_order_id)
    return link.marketplace if link is not None else None
