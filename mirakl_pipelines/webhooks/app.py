"""The Shopify webhook receiver (ASGI): verify, deduplicate, store in the ledger inbox, answer 200.

Storing is the only work done for a delivery (Shopify gives up after about 5 s and retries);
the flows read the inbox later. The insert runs in a worker thread, bounded so that a burst
queues on the limiter instead of opening a connection per request, and the event loop is never
blocked. Each delivery is logged as one JSON line, without secrets, signatures or payloads.
"""

import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import partial
from typing import Callable, Iterable, Sequence

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.webhooks.hmac import verify
from mirakl_pipelines.webhooks.topics import DEFAULT_TOPICS

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
MAX_HEADER_CHARS = 255  # the inbox columns' width
LEDGER_WRITERS = 8  # concurrent inserts; more only queue on the database lock


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
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


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
                 clock: Callable[[], datetime]):
        self.ledger = ledger
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
            if not value or len(value) > MAX_HEADER_CHARS:
                problem = "missing" if not value else f"longer than {MAX_HEADER_CHARS} characters"
                delivery.log(400, "rejected", reason=f"header {name} {problem}", level=logging.WARNING)
                return Response(f"header {name} {problem}", status_code=400)
            values[field] = value
        if values["topic"] not in self.topics:
            delivery.log(200, "ignored", reason="topic not accepted")
            return JSONResponse({"status": "ignored"})

        try:
            payload = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            delivery.log(400, "rejected", reason="body is not valid JSON", level=logging.WARNING)
            return Response("body is not valid JSON", status_code=400)
        if not isinstance(payload, dict):
            delivery.log(400, "rejected", reason="body is not a JSON object", level=logging.WARNING)
            return Response("body is not a JSON object", status_code=400)

        event_id = (headers.get(EVENT_ID_HEADER) or "").strip()[:MAX_HEADER_CHARS] or None
        triggered_header = headers.get(TRIGGERED_AT_HEADER)
        triggered_at = _parse_triggered_at(triggered_header)
        store = partial(self.ledger.store_webhook, **values, event_id=event_id, triggered_at=triggered_at,
                        payload=payload, now=self.clock())
        try:
            stored = await anyio.to_thread.run_sync(store, limiter=self.writers)
        except Exception as exc:  # the ledger is unavailable: 5xx makes Shopify deliver again later
            delivery.log(500, "error", reason=f"ledger write failed: {type(exc).__name__}", level=logging.ERROR)
            return Response(status_code=500)
        outcome = "stored" if stored else "duplicate"
        reason = "unreadable X-Shopify-Triggered-At" if triggered_header and triggered_at is None else None
        delivery.log(200, outcome, reason=reason)
        return JSONResponse({"status": outcome})

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
) -> Starlette:
    """The receiver for ``POST /webhooks/shopify`` and ``GET /health``, storing into the ledger at ``ledger_url``.

    ``secrets``: the app's webhook secret(s); during a rotation pass the new and the old one.
    The app holds one ledger (one engine) as ``app.state.ledger``, closed on lifespan shutdown.
    """
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of strings, not one string")
    secrets = [s for s in secrets if s]
    if not secrets:
        raise ValueError("no webhook secret configured: the receiver refuses to run without one")
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be an int >= 1, got {max_body_bytes!r}")
    ledger = Ledger.connect(ledger_url)
    receiver = _Receiver(ledger, secrets, max_body_bytes, topics, clock)

    @asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            ledger.close()

    app = Starlette(
        routes=[
            Route(WEBHOOK_PATH, receiver.deliver, methods=["POST"]),
            Route(HEALTH_PATH, receiver.health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.ledger = ledger
    return app
