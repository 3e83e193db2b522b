"""Fault injection for the sandbox servers: latency, 5xx, 429 bursts, dropped connections and lost answers.

An ASGI middleware wraps each simulator. The knobs live in a `Faults` object that tests change
directly and the demo changes over HTTP (`GET/POST /_sandbox/faults`). Faults apply to API
routes only, never to the `/_sandbox/...` control routes.
"""

import asyncio
import json
import random
import threading
from dataclasses import dataclass, field, fields
from typing import ClassVar


@dataclass
class SeededKnobs:
    """Knobs set by name (tests directly, the demo over HTTP) and a generator seeded by the subclass's `seed` field."""

    _label: ClassVar[str] = "fault"  # names the knobs in error messages
    # Keyword-only, so the subclass's knobs keep their places in the constructor and in as_dict().
    _rng: random.Random = field(default_factory=random.Random, repr=False, kw_only=True)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def update(self, **knobs: object) -> dict:
        allowed = set(self.as_dict())
        unknown = set(knobs) - allowed
        if unknown:
            raise ValueError(f"unknown {self._label} knob(s) {sorted(unknown)}; known: {sorted(allowed)}")
        with self._lock:
            for name, value in knobs.items():
                kind = type(getattr(self, name))
                if kind is bool and not isinstance(value, bool):  # bool("false") would be True
                    raise ValueError(f"{self._label} {name}: expected true or false, got {value!r}")
                setattr(self, name, kind(value))
            if "seed" in knobs:
                self._rng.seed(self.seed)
        return self.as_dict()

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


@dataclass
class Faults(SeededKnobs):
    latency_ms: float = 0.0  # added to every API response
    error_5xx_rate: float = 0.0  # share of API requests answered 503
    burst_429: int = 0  # the next N API requests are answered 429 + Retry-After
    retry_after_seconds: int = 1
    drop_rate: float = 0.0  # share of API requests whose connection is closed with no response
    # The next N writes (PUT/POST) are applied, then their answer is lost: replaced by `lost_answer_status`
    # (a proxy's 502/504 with an HTML page) or, with 0, by a dropped connection. What a client sees when
    # Mirakl did the work but the answer never arrived; its retry then meets the new state.
    lose_writes: int = 0
    lost_answer_status: int = 502
    path_filter: str = ""  # when set, faults hit only the API paths containing it (e.g. "/accept", "/ship")
    seed: int = 0

    def reset(self) -> None:
        self.update(latency_ms=0.0, error_5xx_rate=0.0, burst_429=0, drop_rate=0.0, lose_writes=0, path_filter="")

    def lose_this_write(self, method: str) -> bool:
        """Whether this request's answer is to be lost once it is applied (counts one of `lose_writes`)."""
        if method not in ("PUT", "POST"):
            return False
        with self._lock:
            if self.lose_writes <= 0:
                return False
            self.lose_writes -= 1
            return True

    def draw(self) -> str | None:
        """Decide the fate of one API request: None (serve it), '429', '5xx' or 'drop'."""
        with self._lock:
            if self.burst_429 > 0:
                self.burst_429 -= 1
                return "429"
            roll = self._rng.random()
            if roll < self.drop_rate:
                return "drop"
            if roll < self.drop_rate + self.error_5xx_rate:
                return "5xx"
        return None


class _DropConnection(Exception):
    """Raised inside the ASGI app so uvicorn closes the socket without writing a response."""


class FaultMiddleware:
    def __init__(
        self,
        app,
        faults: Faults,
        error_body: bytes = b'{"status": 503, "message": "Service Unavailable"}',
        throttle_body: bytes = b'{"status": 429, "message": "Too Many Requests"}',
    ):
        self.app = app
        self.faults = faults
        self.error_body = error_body  # each simulator answers in its own API's error shape
        self.throttle_body = throttle_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path.startswith("/_sandbox/faults"):
            return await self._control(scope, receive, send)
        if path.startswith("/_sandbox") or (self.faults.path_filter and self.faults.path_filter not in path):
            return await self.app(scope, receive, send)
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        fate = self.faults.draw()
        if fate == "drop":
            # Start a response and die mid-way: uvicorn then closes the socket, as a dropped link would.
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
            raise _DropConnection(f"sandbox fault: dropped connection on {path}")
        if fate == "429":
            return await _respond(
                send, 429, self.throttle_body, [(b"retry-after", str(self.faults.retry_after_seconds).encode())]
            )
        if fate == "5xx":
            return await _respond(send, 503, self.error_body)
        if self.faults.lose_this_write(scope.get("method", "")):
            return await self._lose_answer(scope, receive, send, path)
        return await self.app(scope, receive, send)

    async def _lose_answer(self, scope, receive, send, path: str) -> None:
        """Let the app apply the request, swallow its answer, and send a gateway error (or nothing) instead."""
        async def swallow(message) -> None:
            return None

        await self.app(scope, receive, swallow)
        status = self.faults.lost_answer_status
        if not status:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
            raise _DropConnection(f"sandbox fault: answer lost after applying {path}")
        body = f"<html><body><h1>{status} Gateway error</h1><p>The upstream server did not answer in time.</p></body></html>"
        await send({
            "type": "http.response.start", "status": status,
            "headers": [(b"content-type", b"text/html"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body.encode()})

    async def _control(self, scope, receive, send):
        if scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            try:
                self.faults.update(**json.loads(body or b"{}"))
            except (ValueError, TypeError) as e:
                return await _respond(send, 400, json.dumps({"status": 400, "message": str(e)}).encode())
        return await _respond(send, 200, json.dumps(self.faults.as_dict()).encode())


async def _respond(send, status: int, body: bytes, headers: list | None = None) -> None:
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        + (headers or []),
    })
    await send({"type": "http.response.body", "body": body})
