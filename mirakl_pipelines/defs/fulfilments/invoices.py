"""The customer invoice a marketplace gets with OR74: read from the configured file path or URL template.

The invoice usually comes from an ERP or an invoicing app that writes it some time after the order
ships, so a missing file (or a 404) means "not yet": the upload waits and the next run tries again.
Any other failure names the order, the location and the reason.
"""

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import httpx

from mirakl_pipelines.config import InvoiceConfig
from mirakl_pipelines.mirakl.client import DOCUMENT_EXTENSIONS

FETCH_TIMEOUT_SECONDS = 15.0
MAX_INVOICE_BYTES = 10 * 1024 * 1024  # a one-order invoice is kilobytes; more means a wrong file


class InvoiceNotReady(Exception):
    """The invoice does not exist yet (no file, HTTP 404): wait and try again on the next run."""


class InvoiceUnavailable(Exception):
    """The invoice location answered with something that is not an invoice."""


@dataclass(frozen=True)
class InvoiceDocument:
    file_name: str  # the name Mirakl shows; one per order, so a repeated upload is recognised as a duplicate
    content: bytes
    location: str


def invoice_location(config: InvoiceConfig, base_dir: Path, *, order_name: str, mirakl_order_id: str,
                     shopify_order_id: str) -> str:
    location = config.render(order_name=order_name, mirakl_order_id=mirakl_order_id, shopify_order_id=shopify_order_id)
    return location if config.is_url else str(base_dir / location)


def fetch_invoice(config: InvoiceConfig, base_dir: Path, *, order_name: str, mirakl_order_id: str,
                  shopify_order_id: str, headers: dict[str, str] | None = None,
                  http: httpx.Client | None = None) -> InvoiceDocument:
    """The invoice of one order, or InvoiceNotReady / InvoiceUnavailable naming the order and the location.

    `headers` go with a URL source (an Authorization); no message ever shows them."""
    location = invoice_location(config, base_dir, order_name=order_name, mirakl_order_id=mirakl_order_id,
                                shopify_order_id=shopify_order_id)
    where = f"invoice of order {mirakl_order_id} at {location}"
    content = _fetch_url(location, where, headers or {}, http) if config.is_url else _read_file(Path(location), where)
    if not content:
        raise InvoiceUnavailable(f"{where} is empty")
    if len(content) > MAX_INVOICE_BYTES:
        raise InvoiceUnavailable(f"{where} is {len(content):,} bytes, over the {MAX_INVOICE_BYTES:,} bytes an invoice may take")
    path = urlsplit(location).path if config.is_url else location
    extension = PurePosixPath(path).suffix.lstrip(".").lower()
    if extension not in DOCUMENT_EXTENSIONS:
        extension = "pdf"
    if extension == "pdf" and not content.startswith(b"%PDF-"):
        raise InvoiceUnavailable(f"{where} is not a PDF (it does not start with %PDF-)")
    safe_id = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in mirakl_order_id)
    return InvoiceDocument(f"invoice-{safe_id}.{extension}", content, location)


def _read_file(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvoiceNotReady(f"{where}: no such file yet") from None
    except OSError as e:
        raise InvoiceUnavailable(f"{where} cannot be read: {e.strerror or e}") from None


def _fetch_url(url: str, where: str, headers: dict[str, str], http: httpx.Client | None) -> bytes:
    client = http or httpx.Client(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True)
    try:
        response = client.get(url, headers=headers)
    except httpx.HTTPError as e:
        raise InvoiceNotReady(f"{where}: {type(e).__name__}: {e}") from None  # a network blip: try again later
    finally:
        if http is None:
            client.close()
    if response.status_code == 404:
        raise InvoiceNotReady(f"{where}: HTTP 404, not generated yet")
    if response.status_code >= 500:
        raise InvoiceNotReady(f"{where}: HTTP {response.status_code}, the server failed; trying again later")
    if response.status_code in (401, 403):
        raise InvoiceUnavailable(f"{where}: HTTP {response.status_code}, refused: check invoice.authorization_env")
    if response.status_code != 200:
        raise InvoiceUnavailable(f"{where}: HTTP {response.status_code}")
    return response.content
