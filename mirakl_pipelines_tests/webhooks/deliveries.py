"""Signed Shopify-like deliveries and a receiver served on loopback, for the webhook tests."""

import json
import socket
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

import httpx

from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sandbox.server import RunningServer, serve_in_thread
from mirakl_pipelines.webhooks import create_webhook_app, sign
from mirakl_pipelines.webhooks.app import WEBHOOK_PATH

SECRET = "shpss_current_0123456789abcdef"
OLD_SECRET = "shpss_previous_fedcba9876543210"
SHOP = "brand-demo.myshopify.com"


def fulfilment_payload(fulfillment_id: int = 5001, order_id: int = 820982911946154508) -> dict:
    """A fulfillments/create body in Shopify's REST shape (trimmed)."""
    return {
        "id": fulfillment_id,
        "order_id": order_id,
        "status": "success",
        "created_at": "2026-03-02T10:00:00+01:00",
        "updated_at": "2026-03-02T10:00:00+01:00",
        "tracking_company": "Colissimo",
        "tracking_number": "6A12345678901",
        "tracking_url": "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901",
        "line_items": [{"id": 487817672276298554, "quantity": 1, "sku": "TENT-2P", "price": "89.99",
                        "properties": [{"name": "_mirakl_order_line_id", "value": "M-1-1"}]}],
        "name": "#1001.1",
        "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
    }


def headers(body: bytes, *, topic: str = "fulfillments/create", webhook_id: str | None = None,
            secret: str | None = SECRET, **extra: str) -> dict[str, str]:
    """The headers Shopify sends with ``body``; ``secret=None`` leaves the signature out."""
    sent = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-03-02T09:00:01.123456Z",
    }
    if secret is not None:
        sent["X-Shopify-Hmac-Sha256"] = sign(body, secret)
    sent.update(extra)
    return sent


def encode(payload) -> bytes:
    return json.dumps(payload).encode()


@dataclass
class Receiver:
    server: RunningServer
    ledger: Ledger  # a separate connection, to check what the receiver stored

    @property
    def url(self) -> str:
        return self.server.url + WEBHOOK_PATH

    def post(self, body: bytes, hdrs: dict[str, str]) -> httpx.Response:
        return httpx.post(self.url, content=body, headers=hdrs, timeout=10)

    def raw(self, request: bytes, *, read_timeout: float = 5.0) -> bytes:
        """Send raw bytes over a socket and return what the server answers (for exact header casing and bodies)."""
        parts = urlsplit(self.server.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=read_timeout) as sock:
            sock.sendall(request)
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            return received


@contextmanager
def running_receiver(tmp_path, secrets=(SECRET,), *, ledger_url: str | None = None, **options) -> Iterator[Receiver]:
    """The receiver (create_webhook_app's `options`) on loopback, stopped at the end.

    Its ledger is ``ledger_url``, by default a fresh SQLite file under ``tmp_path``.
    """
    ledger_url = ledger_url or f"sqlite:///{tmp_path / 'ledger' / 'ledger.sqlite'}"
    app = create_webhook_app(ledger_url, list(secrets), **options)
    server = serve_in_thread(app, name="webhooks")
    checker = Ledger.connect(ledger_url)
    try:
        yield Receiver(server=server, ledger=checker)
    finally:
        server.stop()
        app.state.ledger.close()
        checker.close()
