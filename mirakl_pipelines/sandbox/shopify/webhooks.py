"""Webhook deliveries of the sandbox store, signed and sent like Shopify's (NOTES §4.2–4.4).

A `WebhookDispatcher` holds the subscriptions (url, secret, topics) and a queue of deliveries that
background threads POST to the subscribers: compact REST-shaped JSON, `X-Shopify-*` headers, the
body signed with base64(HMAC-SHA256(secret, raw body)). Delivery is at-least-once: a non-2xx answer
or a connection error is retried on Shopify's schedule (8 retries over 4 hours, exponential) scaled
by `DeliverySettings.time_scale`, always with the original body and webhook id.

Faults on demand (`WebhookFaults`, also over `POST /_sandbox/webhooks`): duplicates (same webhook
id), reordering (each delivery held until the next one has gone), late redeliveries, and drops
(never delivered: what a sweep must catch).
"""

import base64
import collections
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, ClassVar

import httpx

from mirakl_pipelines.sandbox.faults import SeededKnobs

log = logging.getLogger(__name__)

# Shopify: "retried a total of 8 times over 4 hours using an exponential backoff schedule" (changelog 2024-09-10).
# Delays double each time and add up to 4 h: 56 s, 113 s, … 2 h.
RETRY_WINDOW_SECONDS = 4 * 3600
SHOPIFY_RETRY_DELAYS = tuple(RETRY_WINDOW_SECONDS * 2**k / (2**8 - 1) for k in range(8))
USER_AGENT = "Shopify-Captain-Hook"


def sign(body: bytes, secret: str) -> str:
    """The X-Shopify-Hmac-Sha256 value for a raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def triggered_at_now() -> str:
    """Shopify's X-Shopify-Triggered-At format, e.g. 2025-07-10T16:15:47.000000Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def delivery_body(payload: dict) -> bytes:
    """A delivery's raw body: compact UTF-8 JSON, as Shopify sends it."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def delivery_headers(topic: str, body: bytes, secret: str, *, shop_domain: str, api_version: str, webhook_id: str,
                     event_id: str, triggered_at: str, name: str | None = None) -> dict[str, str]:
    """The headers of one delivery, signature included; X-Shopify-Name only for a named subscription."""
    headers = {
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(body, secret),
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": api_version,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": triggered_at,
        "X-Shopify-Event-Id": event_id,
    }
    if name:
        headers["X-Shopify-Name"] = name
    return headers


@dataclass
class WebhookFaults(SeededKnobs):
    _label: ClassVar[str] = "webhook fault"
    duplicate_rate: float = 0.0  # share of deliveries sent twice (same webhook id, same body)
    reorder: bool = False  # hold each delivery until the next one is sent, so pairs arrive swapped
    late_redelivery_seconds: float = 0.0  # > 0: every delivered webhook is delivered again this much later
    drop: bool = False  # never deliver anything published while set
    drop_rate: float = 0.0  # share of deliveries never delivered
    seed: int = 0

    def reset(self) -> None:
        self.update(duplicate_rate=0.0, reorder=False, late_redelivery_seconds=0.0, drop=False, drop_rate=0.0)

    def roll(self) -> float:
        with self._lock:
            return self._rng.random()


@dataclass
class DeliverySettings:
    retry_delays: tuple[float, ...] = SHOPIFY_RETRY_DELAYS
    time_scale: float = 0.001  # the 4 h retry schedule compressed to 14.4 s; 1.0 for real time
    timeout_seconds: float = 5.0  # Shopify gives up on a delivery after 5 s
    concurrency: int = 2  # delivery threads; ordering across them is not guaranteed, as with Shopify
    reorder_hold_seconds: float = 1.0  # a held delivery goes alone if no other comes within this time
    reorder_gap_seconds: float = 0.02  # the held delivery leaves this long after the one that overtook it
    log_size: int = 10_000


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    secret: str = field(repr=False)
    topics: frozenset
    name: str | None = None

    def public(self) -> dict:
        """Without the secret (for GET /_sandbox/webhooks)."""
        return {"id": self.id, "url": self.url, "topics": sorted(self.topics), "name": self.name}


@dataclass
class Delivery:
    webhook_id: str
    event_id: str
    topic: str
    subscription: Subscription
    body: bytes
    triggered_at: str
    kind: str = "original"  # original | duplicate | late
    attempt: int = 0  # retries so far

    def copy(self, kind: str) -> "Delivery":
        return Delivery(self.webhook_id, self.event_id, self.topic, self.subscription, self.body, self.triggered_at, kind)


class WebhookDispatcher:
    """Subscriptions, a delivery queue and the threads that send it (started on the first delivery)."""

    def __init__(self, shop_domain: Callable[[], str], api_version: Callable[[], str],
                 settings: DeliverySettings | None = None, faults: WebhookFaults | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._shop_domain = shop_domain
        self._api_version = api_version
        self.settings = settings or DeliverySettings()
        self.faults = faults or WebhookFaults()
        self.clock = clock
        self._subscriptions: dict[str, Subscription] = {}
        self._queue: list[tuple[float, int, Delivery]] = []
        self._sequence = itertools.count()
        self._held: tuple[Delivery, float] | None = None
        self._in_flight = 0
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._http: httpx.Client | None = None
        self._counts: collections.Counter = collections.Counter()
        self._by_topic: collections.Counter = collections.Counter()
        self.log: collections.deque = collections.deque(maxlen=self.settings.log_size)

    # --- subscriptions ---------------------------------------------------------------------------
    def subscribe(self, url: str, secret: str, topics: list[str], name: str | None = None) -> Subscription:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook subscription {url!r}: the address must be an http(s) URL")
        if not secret:
            raise ValueError(f"webhook subscription {url!r}: a secret is required to sign deliveries")
        bad = [t for t in topics if not isinstance(t, str) or "/" not in t]
        if not topics or bad:
            raise ValueError(f"webhook subscription {url!r}: topics must be like 'fulfillments/create', got {topics!r}")
        subscription = Subscription(str(uuid.uuid4()), url, secret, frozenset(topics), name)
        with self._cond:
            self._subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, subscription_id: str) -> None:
        with self._cond:
            if self._subscriptions.pop(subscription_id, None) is None:
                raise KeyError(f"no webhook subscription {subscription_id}")

    def subscriptions(self) -> list[dict]:
        with self._cond:
            return [s.public() for s in self._subscriptions.values()]

    def wants(self, topic: str) -> bool:
        """Cheap check before building a payload: does anyone subscribe to `topic`?"""
        return any(topic in s.topics for s in list(self._subscriptions.values()))

    # --- publishing ------------------------------------------------------------------------------
    def publish(self, topic: str, payload: dict, event_id: str | None = None) -> list[str]:
        """Queue one delivery per subscriber of `topic`; the webhook ids."""
        subscribers = [s for s in list(self._subscriptions.values()) if topic in s.topics]
        if not subscribers:
            return []
        body = delivery_body(payload)
        event_id = event_id or str(uuid.uuid4())
        triggered_at = triggered_at_now()
        ids = []
        with self._cond:
            for subscription in subscribers:
                delivery = Delivery(str(uuid.uuid4()), event_id, topic, subscription, body, triggered_at)
                ids.append(delivery.webhook_id)
                self._counts["published"] += 1
                self._by_topic[topic] += 1
                self._enqueue_new(delivery)
            self._ensure_started()
            self._cond.notify_all()
        return ids

    def _enqueue_new(self, delivery: Delivery) -> None:
        faults, now = self.faults, self.clock()
        if faults.drop or (faults.drop_rate and faults.roll() < faults.drop_rate):
            self._counts["dropped"] += 1
            self._record(delivery, status=None, error="dropped by the sandbox (webhook fault)")
            return
        if faults.duplicate_rate and faults.roll() < faults.duplicate_rate:
            self._counts["duplicates"] += 1
            self._push(now + self.settings.reorder_gap_seconds, delivery.copy("duplicate"))
        if faults.reorder:
            if self._held is None:
                self._held = (delivery, now + self.settings.reorder_hold_seconds)
                return
            held, _ = self._held
            self._held = None
            self._counts["reordered"] += 1
            self._push(now, delivery)
            self._push(now + self.settings.reorder_gap_seconds, held)
            return
        self._push(now, delivery)

    def _push(self, due: float, delivery: Delivery) -> None:
        heapq.heappush(self._queue, (due, next(self._sequence), delivery))

    # --- delivery threads ------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._threads or self._stopping:
            return
        self._http = httpx.Client(timeout=self.settings.timeout_seconds, follow_redirects=False)
        for n in range(max(1, self.settings.concurrency)):
            thread = threading.Thread(target=self._work, name=f"shopify-webhooks-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _next_delivery(self) -> Delivery | None:
        with self._cond:
            while not self._stopping:
                now = self.clock()
                if self._held is not None and self._held[1] <= now:
                    self._push(now, self._held[0])  # nothing came to overtake it
                    self._held = None
                if self._queue and self._queue[0][0] <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._queue)[2]
                wake = [t for t in (self._queue[0][0] if self._queue else None,
                                    self._held[1] if self._held else None) if t is not None]
                self._cond.wait(timeout=max(0.0, min(wake) - now) if wake else None)
            return None

    def _work(self) -> None:
        while (delivery := self._next_delivery()) is not None:
            status, error = self._send(delivery)
            with self._cond:
                self._in_flight -= 1
                self._settle(delivery, status, error)
                self._cond.notify_all()

    def _send(self, delivery: Delivery) -> tuple[int | None, str | None]:
        subscription = delivery.subscription
        headers = delivery_headers(
            delivery.topic, delivery.body, subscription.secret, shop_domain=self._shop_domain(),
            api_version=self._api_version(), webhook_id=delivery.webhook_id, event_id=delivery.event_id,
            triggered_at=delivery.triggered_at, name=subscription.name)
        try:
            response = self._http.post(subscription.url, content=delivery.body, headers=headers)
            return response.status_code, None
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}"
        except Exception as e:  # a delivery thread must survive anything a subscriber does
            log.exception("webhook delivery %s to %s failed unexpectedly", delivery.webhook_id, subscription.url)
            return None, f"{type(e).__name__}: {e}"

    def _settle(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        self._counts["attempts"] += 1
        self._record(delivery, status, error)
        if status is not None and 200 <= status < 300:
            self._counts["delivered"] += 1
            late = self.faults.late_redelivery_seconds
            if late > 0 and delivery.kind == "original":
                self._counts["late_redeliveries"] += 1
                self._push(self.clock() + late, delivery.copy("late"))
            return
        self._counts["failed_attempts"] += 1
        delays = self.settings.retry_delays
        if delivery.attempt < len(delays):
            self._counts["retries"] += 1
            delay = delays[delivery.attempt] * self.settings.time_scale
            delivery.attempt += 1
            self._push(self.clock() + delay, delivery)
        else:
            self._counts["given_up"] += 1
            log.warning("webhook %s (%s) to %s given up after %d retries", delivery.webhook_id, delivery.topic,
                        delivery.subscription.url, len(delays))

    def _record(self, delivery: Delivery, status: int | None, error: str | None) -> None:
        self.log.append({"webhook_id": delivery.webhook_id, "event_id": delivery.event_id, "topic": delivery.topic,
                         "url": delivery.subscription.url, "kind": delivery.kind, "attempt": delivery.attempt,
                         "status": status, "error": error, "at": self.clock()})

    # --- observing and stopping ------------------------------------------------------------------
    def stats(self) -> dict:
        with self._cond:
            counts = {key: self._counts[key] for key in (
                "published", "delivered", "attempts", "failed_attempts", "retries", "given_up",
                "duplicates", "reordered", "late_redeliveries", "dropped")}
            return {**counts, "pending": len(self._queue) + (1 if self._held else 0), "in_flight": self._in_flight,
                    "by_topic": dict(self._by_topic), "subscriptions": len(self._subscriptions)}

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is queued, held or in flight (True), or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._held or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(timeout=min(remaining, 0.05))
            return True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the delivery threads (queued deliveries are abandoned); safe to call twice."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        if self._http is not None:
            self._http.close()
