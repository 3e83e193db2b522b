"""Mirakl offers and stock, the client side: what Mirakl believes (OF21, or OF52 → OF53 → OF54 for large
catalogues) and the stock imports that change it (STO01 → STO02 → STO03; NOTES §3.9, §3.10).

Built on MiraklClient's transport (its retries, typed errors and call budget), so every call here keeps
the documented call frequencies: STO01 once a minute, STO02 every 15 s, STO03 once a minute, OF52 once a
minute (differential; the spec allows a *full* export once a day only, which a caller reading every 15
minutes must keep in mind), OF53 every 10 s.

- Reading is tolerant: extra fields are ignored, an offer without a usable `shop_sku` or `offer_id` is left
  out and recorded in ``client.rejected`` (reset by each read), quantities are ints, `active` defaults to true.
- STO01 is not idempotent (Mirakl documents no de-duplication of stock files): a 429 is waited for and
  retried (nothing was applied), but a failure after the file may have arrived (5xx, timeout, dropped
  connection, an unreadable 201) raises MiraklOutcomeUnknown and is never resent automatically.
- OF54 files are downloaded with the API key only from the marketplace's own origin; a URL elsewhere is
  refused (MiraklResponseError) rather than handed the key.
- ``timeout_seconds`` are wall-clock seconds (not scaled by ``rate_limit_scale``).
"""

import csv
import io
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Optional
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.mirakl.errors import (
    CallBudgetExceeded, MiraklError, MiraklOutcomeUnknown, MiraklResponseError,
)
from mirakl_pipelines.mirakl.models import MiraklModel
from mirakl_pipelines.sync.stock_levels import MiraklOffers, OfferStock, offers_frame

log = logging.getLogger(__name__)

OF21_PAGE_SIZE = 100  # the de-facto cap of offset pagination (NOTES §2.4)
EXPORT_THRESHOLD = 2000  # above this many offers, one asynchronous export beats paging OF21
FINISHED_IMPORT_STATES = frozenset({"COMPLETE", "FAILED"})
EXPORT_FIELDS = ("offer_id", "shop_sku", "quantity", "active")  # all the stock flow reads (smaller files)


class StockImportStatus(MiraklModel):
    """STO02's answer; `status` kept as text (WAITING, RUNNING, COMPLETE, FAILED, or whatever Mirakl adds)."""

    import_id: str
    status: str
    has_error_report: bool = False
    lines_in_success: Optional[int] = None
    lines_in_error: Optional[int] = None
    date_created: Optional[datetime] = None
    shop_id: Optional[int] = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_IMPORT_STATES


class StockImportStillRunning(MiraklError):
    """The import was not COMPLETE or FAILED when the caller stopped waiting; ``last`` is the last STO02 answer
    (None when no poll could be made in time). The import may still complete later: poll it again next run."""

    def __init__(self, import_id: str, waited: float, last: Optional[StockImportStatus]):
        self.import_id = import_id
        self.waited = waited
        self.last = last
        state = last.status if last is not None else "not polled yet"
        super().__init__("STO02", None, f"stock import {import_id} still {state} after {waited:.1f} s")


class OfferExportFailed(MiraklError):
    """OF53 said FAILED, or the export was not COMPLETED within the caller's timeout."""


# ---- reading offers -----------------------------------------------------------------------------------


def read_offers(client: MiraklClient, *, export_threshold: int = EXPORT_THRESHOLD,
                export_timeout_seconds: float = 600.0, items_per_chunk: Optional[int] = None) -> MiraklOffers:
    """Every offer of the shop as one frame (OFFER_COLUMNS): OF21 pages of 100 when the shop has at most
    `export_threshold` offers, else one asynchronous export (OF52, OF53 polled at its interval, OF54 files)."""
    if export_threshold < 0:
        raise ValueError(f"export_threshold must be >= 0, got {export_threshold}")
    client.rejected = []
    read_at = datetime.now(timezone.utc)
    first = _of21_page(client, 0)
    total = first.get("total_count")
    if isinstance(total, int) and total > export_threshold:
        log.info("Mirakl %s: %d offers, more than %d: reading them through the OF52 export",
                 client.marketplace, total, export_threshold)
        read_at = datetime.now(timezone.utc)
        rows = _export_rows(client, export_timeout_seconds, items_per_chunk)
        return MiraklOffers(offers=offers_frame(_offers(client, rows)), read_at=read_at, source="OF52")
    return MiraklOffers(offers=offers_frame(_offers(client, _of21_rows(client, first))), read_at=read_at, source="OF21")


def _of21_page(client: MiraklClient, offset: int) -> dict:
    client._await_budget("OF21")
    data = client._send_json("OF21", "GET", "/api/offers", params={"max": OF21_PAGE_SIZE, "offset": offset})
    if not isinstance(data, dict) or not isinstance(data.get("offers"), list):
        raise MiraklResponseError("OF21", 200, "response has no 'offers' list", body=str(data)[:2000])
    return data


def _of21_rows(client: MiraklClient, first: dict) -> Iterable[tuple[Any, str]]:
    """Every page's offers; total_count drives the loop (a server may clamp `max`), an empty page ends it."""
    page, offset = first, 0
    while True:
        for index, raw in enumerate(page["offers"], start=offset):
            yield raw, f"OF21 offer #{index}"
        offset += len(page["offers"])
        total = page.get("total_count")
        if not page["offers"] or (offset >= total if isinstance(total, int) else len(page["offers"]) < OF21_PAGE_SIZE):
            return
        page = _of21_page(client, offset)


@dataclass
class OfferChanges:
    """A differential export: the offers updated since `since` (active or not) and the SKUs of those deleted."""

    updated: MiraklOffers
    deleted: list[str]
    since: datetime


def export_offer_changes(client: MiraklClient, since: datetime, *, export_timeout_seconds: float = 600.0,
                         items_per_chunk: Optional[int] = None) -> OfferChanges:
    """OF52 in differential mode (`last_request_date`): the spec allows it once a minute, where a full export is
    allowed once a day; a large catalogue is read in full once a day and kept up to date with these."""
    if since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    client.rejected = []
    read_at = datetime.now(timezone.utc)
    rows = list(_export_rows(client, export_timeout_seconds, items_per_chunk, since=since))
    deleted = sorted({raw["shop_sku"] for raw, _ in rows
                      if isinstance(raw, dict) and _true(raw.get("deleted")) and isinstance(raw.get("shop_sku"), str)})
    kept = [(raw, where) for raw, where in rows if not (isinstance(raw, dict) and _true(raw.get("deleted")))]
    return OfferChanges(MiraklOffers(offers=offers_frame(_offers(client, kept)), read_at=read_at, source="OF52"),
                        deleted, since)


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _export_rows(client: MiraklClient, timeout_seconds: float, items_per_chunk: Optional[int],
                 since: Optional[datetime] = None) -> Iterable[tuple[Any, str]]:
    # Full mode leaves inactive offers out unless asked; differential mode returns them (and refuses the flag).
    body: dict[str, Any] = {"export_type": "application/json", "include_fields": list(EXPORT_FIELDS)}
    if since is None:
        body["include_inactive_offers"] = True
    else:
        body["last_request_date"] = since.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        body["include_fields"].append("deleted")
    if items_per_chunk is not None:
        body["items_per_chunk"] = items_per_chunk
    client._await_budget("OF52")
    started = client._send_json("OF52", "POST", "/api/offers/export/async", json=body)
    tracking_id = started.get("tracking_id") if isinstance(started, dict) else None
    if not isinstance(tracking_id, str) or not tracking_id:
        raise MiraklResponseError("OF52", 200, "response has no 'tracking_id'", body=str(started)[:2000])
    urls = _await_export(client, tracking_id, timeout_seconds)
    rows = []
    for number, url in enumerate(urls):
        for index, raw in enumerate(_download(client, url)):
            rows.append((raw, f"OF54 file {number} offer #{index}"))
    return rows


def _await_export(client: MiraklClient, tracking_id: str, timeout_seconds: float) -> list[str]:
    path = f"/api/offers/export/async/status/{quote(tracking_id, safe='')}"
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with client.waiting_at_most(min(client.max_wait, max(0.0, deadline - time.monotonic()))):
                client._await_budget("OF53")
        except CallBudgetExceeded:
            raise OfferExportFailed("OF53", None, f"offer export {tracking_id} not COMPLETED within {timeout_seconds:.1f} s") from None
        data = client._send_json("OF53", "GET", path)
        status = data.get("status") if isinstance(data, dict) else None
        if status == "COMPLETED":
            urls = data.get("urls")
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise MiraklResponseError("OF53", 200, "a COMPLETED export has no 'urls' list", body=str(data)[:2000])
            return urls
        if status == "FAILED":
            error = data.get("error") or {}
            raise OfferExportFailed("OF53", 200, f"offer export {tracking_id} FAILED: {error.get('detail') or error}",
                                    code=str(error.get("code")) if error.get("code") is not None else None)
        if time.monotonic() >= deadline:
            raise OfferExportFailed("OF53", None, f"offer export {tracking_id} still {status} after {timeout_seconds:.1f} s")


def _download(client: MiraklClient, url: str) -> list:
    """One OF54 file: a JSON array of offers, or a semicolon CSV (dicts keyed by its header)."""
    target, base = httpx.URL(url), httpx.URL(client.base_url)
    if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
        raise MiraklResponseError("OF54", None, f"export file URL {url!r} is not on the marketplace {client.base_url!r}; "
                                                "refusing to send the API key elsewhere")
    # httpx replaces a URL's query by `params`: pass the file's query as params, with shop_id added by _send.
    response = client._send("OF54", "GET", str(target.copy_with(query=None)), params=dict(target.params))
    if "csv" in response.headers.get("content-type", "") or target.params.get("file", "").endswith(".csv"):
        text = response.content.decode("utf-8-sig")
        return [_csv_offer(row) for row in csv.DictReader(io.StringIO(text, newline=""), delimiter=";")]
    try:
        data = json.loads(response.text, parse_float=Decimal)
    except ValueError as error:
        raise MiraklResponseError("OF54", response.status_code, f"export file is not JSON: {error}", body=response.text[:2000]) from error
    if not isinstance(data, list):
        raise MiraklResponseError("OF54", response.status_code, "export file is not a JSON array of offers", body=response.text[:2000])
    return data


def _csv_offer(row: dict) -> dict:
    """An OF54 CSV row in the JSON field names the reader uses."""
    active = (row.get("active") or "").strip().lower()
    return {"offer_id": row.get("offer-id"), "shop_sku": row.get("shop-sku"), "quantity": row.get("quantity"),
            "active": None if not active else active == "true", "deleted": row.get("deleted")}


def _offers(client: MiraklClient, rows: Iterable[tuple[Any, str]]) -> list[OfferStock]:
    found: dict[str, OfferStock] = {}
    for raw, where in rows:
        offer, reason = _offer(raw)
        if offer is None:
            log.warning("Mirakl %s: %s rejected: %s", client.marketplace, where, reason)
            client.rejected.append((where, reason))
            continue
        if offer.offer_id in found:  # offset paging can show an offer twice while offers change
            continue
        found[offer.offer_id] = offer
    by_sku: dict[str, OfferStock] = {}
    for offer in found.values():
        if offer.offer_sku in by_sku:
            reason = f"shop_sku {offer.offer_sku!r} also on offer {by_sku[offer.offer_sku].offer_id}; kept the first"
            client.rejected.append((f"offer {offer.offer_id}", reason))
            continue
        by_sku[offer.offer_sku] = offer
    return list(by_sku.values())


def _offer(raw: Any) -> tuple[Optional[OfferStock], str]:
    if not isinstance(raw, dict):
        return None, f"not an object: {raw!r}"[:200]
    sku, offer_id = raw.get("shop_sku"), raw.get("offer_id")
    if not isinstance(sku, str) or not sku:
        return None, f"no shop_sku (offer_id {offer_id!r})"
    if isinstance(offer_id, bool) or not isinstance(offer_id, (int, str)) or str(offer_id) == "":
        return None, f"offer {sku!r}: no offer_id"
    quantity = raw.get("quantity")
    if quantity is not None and type(quantity) is not int:  # JSON gives ints; CSV and odd servers give text
        text = str(quantity).strip()
        try:
            quantity = int(text) if text else None
        except ValueError:
            return None, f"offer {sku!r}: quantity {raw.get('quantity')!r} is not a whole number"
    active = raw.get("active")
    return OfferStock(offer_sku=sku, offer_id=str(offer_id), quantity=quantity,
                      active=True if active is None else bool(active)), ""


# ---- stock imports ------------------------------------------------------------------------------------


def send_stock_file(client: MiraklClient, content: bytes, filename: str = "stock.csv") -> str:
    """STO01: upload a stock CSV; returns Mirakl's import_id (a string). Never resent after an ambiguous failure
    (MiraklOutcomeUnknown); a 429 is waited for within ``client.max_wait``, else MiraklRetryLater."""
    if not isinstance(content, (bytes, bytearray)) or not content:
        raise ValueError(f"STO01 for {client.marketplace or client.base_url}: the stock file is empty")
    client._await_budget("STO01")
    try:
        data = client._send_json("STO01", "POST", "/api/offers/stock/imports",
                                 files={"file": (filename, bytes(content), "text/csv")}, idempotent=False)
    except MiraklResponseError as error:  # a 2xx we cannot read: the file was taken, its import id is unknown
        raise MiraklOutcomeUnknown("STO01", error.status, f"{error.message}; the stock file was accepted "
                                   "but its import_id is unknown", body=error.body) from error
    import_id = data.get("import_id") if isinstance(data, dict) else None
    if isinstance(import_id, bool) or not isinstance(import_id, (str, int)) or str(import_id) == "":
        raise MiraklOutcomeUnknown("STO01", 201, "the answer has no import_id; the stock file was accepted but "
                                   "cannot be followed", body=str(data)[:2000])
    return str(import_id)


def stock_import_status(client: MiraklClient, import_id: str) -> StockImportStatus:
    """STO02 (at most every 15 s: the call waits for its budget slot)."""
    client._await_budget("STO02")
    data = client._send_json("STO02", "GET", f"/api/offers/stock/imports/{_path_id(import_id)}/status")
    try:
        return StockImportStatus.model_validate(data)
    except ValidationError as error:
        raise MiraklResponseError("STO02", 200, f"malformed import status: {error}", body=str(data)[:2000]) from error


def wait_for_stock_import(client: MiraklClient, import_id: str, *, timeout_seconds: float,
                          clock: Callable[[], float] = time.monotonic) -> StockImportStatus:
    """Poll STO02 (never faster than its interval) until COMPLETE or FAILED; StockImportStillRunning, carrying
    the last status, when `timeout_seconds` pass first (a poll whose slot lies beyond the deadline is not made)."""
    if timeout_seconds < 0:
        raise ValueError(f"timeout_seconds must be >= 0, got {timeout_seconds}")
    started = clock()
    last: Optional[StockImportStatus] = None
    while True:
        remaining = timeout_seconds - (clock() - started)
        if last is not None and remaining <= 0:
            raise StockImportStillRunning(import_id, clock() - started, last)
        try:
            with client.waiting_at_most(min(client.max_wait, max(0.0, remaining))):
                last = stock_import_status(client, import_id)
        except CallBudgetExceeded:
            raise StockImportStillRunning(import_id, clock() - started, last) from None
        if last.finished:
            return last


def stock_import_error_report(client: MiraklClient, import_id: str) -> bytes:
    """STO03: the error report as Mirakl sends it (CSV bytes: line number, reason, …). MiraklNotFound when the
    import has none. Parse it with sync.stock_file."""
    client._await_budget("STO03")
    response = client._send("STO03", "GET", f"/api/offers/stock/imports/{_path_id(import_id)}/error_report")
    return response.content


def _path_id(import_id: str) -> str:
    if not isinstance(import_id, str) or not import_id:
        raise ValueError(f"invalid Mirakl stock import id {import_id!r}")
    return quote(import_id, safe="")
