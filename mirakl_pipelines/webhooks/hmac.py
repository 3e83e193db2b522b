"""Shopify webhook signatures: base64 HMAC-SHA256 of the raw body with the app's secret.

During a secret rotation Shopify signs with the old secret for up to an hour, so every configured
secret is tried. Every secret is checked (no early exit) and compared in constant time.
"""

import base64
import hashlib
import hmac
from typing import Sequence


def sign(raw_body: bytes, secret: str) -> str:
    """The X-Shopify-Hmac-Sha256 value Shopify sends for ``raw_body`` (the sandbox signs with this)."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).digest()).decode("ascii")


def verify(raw_body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """Whether ``header`` signs ``raw_body`` with one of ``secrets``.

    An empty body or a missing header is refused, as Shopify's own validator does (a delivery
    always has a body), and so is an empty secret: it would let anyone sign.
    """
    if not raw_body or not header:
        return False
    given = header.strip().encode("latin-1", errors="replace")
    matched = False
    for secret in secrets:
        if secret:
            matched |= hmac.compare_digest(sign(raw_body, secret).encode("ascii"), given)
    return matched
