"""httpx client for the Mirakl seller (shop) API: orders (OR11/OR21/OR23/OR24), documents (OR74), carriers (SH21),
and shipments (ST01/ST11/ST23/ST24) where the marketplace has the multiple-shipments feature.

What it guarantees to its callers (the order and fulfilment assets, the benchmarks):
- the documented call frequency is never exceeded: each listing or write books a slot in a
  CallBudget first, waits for it up to ``max_wait``, else raises CallBudgetExceeded unsent;
- transient failures (5xx, timeouts, dropped connections, 429) are retried with bounded,
  jittered exponential backoff, 429 after its Retry-After; other 4xx fail at once, typed;
  a write that is not idempotent (ST01) is only retried when it surely never arrived (429,
  connection refused), else it raises MiraklOutcomeUnknown for the caller to look before resending;
- money is read as Decimal from the JSON text, never through float;
- a malformed order does not lose its page: it is left out of the result and recorded in
  ``client.rejected`` (reset by each ``list_orders`` or ``iter_order_pages``) for the caller's exception queue.

``rate_limit_scale`` compresses the API's time axis as the sandbox does: call intervals,
Retry-After and backoff are all multiplied by it, so tests run the real pacing in milliseconds.
"""

import collections
import contextlib
import json
import logging
import random
import re
import threading
import time
from datetime import datetime, timezone
from xml.sax.saxutils import escape as xml_escape
from decimal import Decimal
from importlib import metadata
from typing import Any, Callable, Generator, Iterator, Mapping, Optional, Sequence

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from mirakl_pipelines.mirakl.budget import CallBudget, InMemoryBudget, min_interval
from mirakl_pipelines.mirakl.errors import (
    CallBudgetExceeded,
    MiraklDocumentRejected,
    MiraklInvalidState,
    MiraklOutcomeUnknown,
    MiraklRateLimited,
    MiraklResponseError,
    MiraklRetryLater,
    MiraklServerError,
    parse_error,
)
from mirakl_pipelines.mirakl.models import SHIPPED_STATES, MiraklOrder
from mirakl_pipelines.mirakl.shipments import (
    MAX_SHIPMENTS_PER_CALL,
    NewShipment,
    Shipment,
    ShipmentError,
    ShipmentItemError,
    ShipmentOutcome,
    ShipmentResults,
    ShipmentTracking,
    ShipmentUpdateResults,
)

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100  # the de-facto cap of offset pagination (NOTES §2.4)
MAX_IDS_PER_CALL = 100  # "The limit of 100 is exceeded for the parameter" (NOTES §2.3)
# Re-reads of an OR11 listing whose total_count moved while it was paged (offset paging is unstable, NOTES §2.4).
MAX_REREADS = 2
# Slots are booked a little further apart than documented: Mirakl measures the interval between
# arrivals, the budget between reservations, and request latency would otherwise land a call early.
# An absolute second (in API time), not a percentage: a schedule ticking at exactly the documented
# interval then drifts by one second per tick, not by three.
BUDGET_MARGIN_SECONDS = 1.0
# Failures raised before a request left: resending cannot duplicate anything.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# How ST24 (and OR24-like messages) name a shipment's current status.
_SHIPMENT_STATUS = re.compile(r"but it is '([A-Z_]+)'|Current status is\s*:?\s*'?([A-Z_]+)")


def _package_version() -> str:
    try:
        return metadata.version("mirakl_pipelines")
    except metadata.PackageNotFoundError:
        return "0+unknown"


USER_AGENT = f"mirakl-pipelines/{_package_version()}"


class Carrier(BaseModel):
    """A carrier of the marketplace (SH21); codes differ per marketplace."""

    model_config = ConfigDict(extra="allow")

    code: str
    label: str
    standard_code: Optional[str] = None
    tracking_url: Optional[str] = None  # template with {trackingId}


# OR74 (NOTES §3.7): the file types Mirakl takes, and its per-order document limit.
DOCUMENT_EXTENSIONS = frozenset(
    {"csv", "doc", "xls", "xlsx", "ppt", "pdf", "odt", "ods", "odp", "txt", "rtf", "png", "jpg", "gif", "zpl", "mov", "mp4"}
)
DOCUMENT_CONTENT_TYPES = {"pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "gif": "image/gif",
                          "csv": "text/csv", "txt": "text/plain", "xml": "application/xml"}


def _order_documents_xml(documents: Sequence[tuple[str, str]]) -> str:
    """The `order_documents` part as the official PHP SDK sends it (the form proven to work, sdk-php-shop#52)."""
    items = "".join(
        f"<order_document><file_name>{xml_escape(name)}</file_name><type_code>{xml_escape(code)}</type_code></order_document>"
        for name, code in documents
    )
    return f'<?xml version="1.0"?>\n<body><order_documents>{items}</order_documents></body>\n'


def _format_datetime(value: datetime) -> str:
    """ISO-8601 UTC with milliseconds, as Mirakl writes it (a naive datetime is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _one_per_order_batches(shipments: Sequence[NewShipment], size: int) -> Iterator[list[tuple[int, NewShipment]]]:
    """Calls of at most `size` (index, shipment) pairs and one shipment per order, an order's parcels in the given order."""
    pending = list(enumerate(shipments))
    while pending:
        batch: list[tuple[int, NewShipment]] = []
        orders: set[str] = set()
        later: list[tuple[int, NewShipment]] = []
        for index, shipment in pending:
            if shipment.order_id in orders or len(batch) >= size:
                later.append((index, shipment))
            else:
                orders.add(shipment.order_id)
                batch.append((index, shipment))
        yield batch
        pending = later


class MiraklClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        shop_id: Optional[int] = None,
        persona: str = "default",
        budget: Optional[CallBudget] = None,
        rate_limit_scale: float = 1.0,
        max_wait: float = 120.0,
        timeout: float = 30.0,
        max_retries: int = 5,
        transport: Optional[httpx.BaseTransport] = None,
        marketplace: str = "",
        backoff_base: Optional[float] = None,
        backoff_max: Optional[float] = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not api_key:
            raise ValueError(f"Mirakl API key for {marketplace or base_url} is empty")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        min_interval("OR11", persona, rate_limit_scale)  # validates persona and scale now, not at first call
        self.base_url = base_url.rstrip("/")
        self.shop_id = shop_id
        self.persona = persona
        self.budget: CallBudget = budget if budget is not None else InMemoryBudget()
        self.rate_limit_scale = rate_limit_scale
        self.max_wait = max_wait
        self.max_retries = max_retries
        self.marketplace = marketplace
        # Backoff: base·2^n seconds with full jitter, capped; both follow the time scale by default.
        self.backoff_base = backoff_base if backoff_base is not None else 0.5 * rate_limit_scale
        self.backoff_max = backoff_max if backoff_max is not None else 30.0 * rate_limit_scale
        self._sleep = sleep
        self._random = random.Random()
        self.calls: collections.Counter = collections.Counter()
        self._calls_lock = threading.Lock()
        self.rejected: list[tuple[str | int, str]] = []
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": api_key, "Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    def __repr__(self) -> str:  # never shows the key
        return f"MiraklClient({self.base_url!r}, marketplace={self.marketplace!r}, shop_id={self.shop_id})"

    # ---- orders -------------------------------------------------------------------------------------

    def list_orders(
        self,
        *,
        updated_from: Optional[datetime] = None,
        updated_to: Optional[datetime] = None,
        states: Optional[Sequence[str]] = None,
        order_ids: Optional[Sequence[str]] = None,
        tax_mode: Optional[str] = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> list[MiraklOrder]:
        """OR11: every order matching the filters, all pages, de-duplicated by order_id (latest update wins).

        A thin wrapper of `iter_order_pages` for callers that want the whole result at once.
        """
        latest: dict[str, MiraklOrder] = {}
        for page in self.iter_order_pages(updated_from=updated_from, updated_to=updated_to, states=states,
                                          order_ids=order_ids, tax_mode=tax_mode, page_size=page_size):
            for order in page:
                latest[order.order_id] = order  # a page yields an order again only when it is newer
        return list(latest.values())

    def iter_order_pages(
        self,
        *,
        updated_from: Optional[datetime] = None,
        updated_to: Optional[datetime] = None,
        states: Optional[Sequence[str]] = None,
        order_ids: Optional[Sequence[str]] = None,
        tax_mode: Optional[str] = None,
        page_size: int = MAX_PAGE_SIZE,
        max_rereads: int = MAX_REREADS,
    ) -> Iterator[list[MiraklOrder]]:
        """OR11 a page at a time: each page parsed and yielded, so a caller can write it and let it go.

        An order is yielded once per version: a later page or re-read yields it again only when newer. The pages
        of a listing are one call against the budget; each batch of 100 `order_ids` is its own listing (a new
        query from offset 0), so it books its own slot. Offset paging is not stable: an order that enters or
        leaves the filter while pages are read shifts the later ones, so when `total_count` moved between pages
        the listing is read again from offset 0 (a new listing, which books its slot within ``max_wait``), at
        most `max_rereads` times. Orders that fail validation are left out and recorded in ``self.rejected``.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        if isinstance(order_ids, str):
            raise ValueError(f"OR11 order_ids must be a sequence of ids, not the string {order_ids!r}")
        if max_rereads < 0:
            raise ValueError(f"max_rereads must be >= 0, got {max_rereads}")
        self.rejected = []
        if order_ids is not None and not order_ids:
            return
        params: dict[str, Any] = {"sort": "dateCreated", "order": "asc"}
        if updated_from is not None:
            params["start_update_date"] = _format_datetime(updated_from)
        if updated_to is not None:
            params["end_update_date"] = _format_datetime(updated_to)
        if states:
            params["order_state_codes"] = ",".join(states)
        if tax_mode:
            params["order_tax_mode"] = tax_mode

        yielded: dict[str, Optional[datetime]] = {}  # order id -> version yielded (ids only, not the orders)
        id_batches = _batches(list(dict.fromkeys(order_ids)), MAX_IDS_PER_CALL) if order_ids else [None]
        for batch in id_batches:
            batch_params = dict(params, order_ids=",".join(batch)) if batch else params
            self._await_budget("OR11")
            for reread in range(max_rereads + 1):
                moved = yield from self._orders_pages(batch_params, page_size, yielded)
                if not moved:
                    break
                if reread == max_rereads:
                    log.warning("Mirakl OR11 %s: total_count still moved after %d re-reads; the next window's overlap "
                                "fetches what this listing may have missed", self.marketplace, max_rereads)
                    break
                try:
                    self._await_budget("OR11")
                except CallBudgetExceeded as e:
                    log.warning("Mirakl OR11 %s: total_count moved while paging, but the slot to read again is %.1f s "
                                "away; the next window's overlap fetches what this listing may have missed",
                                self.marketplace, e.wait)
                    break
                log.info("Mirakl OR11 %s: total_count moved while paging: reading the listing again (%d/%d)",
                         self.marketplace, reread + 1, max_rereads)

    def accept_order(self, order_id: str, decisions: Mapping[str, bool]) -> None:
        """OR21: accept (True) or refuse (False) every line of the order in one call.

        An order already decided raises MiraklInvalidState (ORDER_INVALID_STATE).
        """
        if not decisions:
            raise ValueError(f"OR21 for order {order_id}: no line decisions given (Mirakl requires every line)")
        body = {"order_lines": [{"accepted": bool(accepted), "id": line_id} for line_id, accepted in decisions.items()]}
        self._await_budget("OR21")
        self._send("OR21", "PUT", f"/api/orders/{_path_id(order_id)}/accept", json=body)

    def update_tracking(
        self,
        order_id: str,
        *,
        carrier_code: Optional[str] = None,
        carrier_name: Optional[str] = None,
        carrier_url: Optional[str] = None,
        tracking_number: Optional[str] = None,
    ) -> None:
        """OR23: a registered carrier goes by `carrier_code`, an unregistered one by `carrier_name` (+ url)."""
        if not carrier_code and not carrier_name:
            raise ValueError(f"OR23 for order {order_id}: give carrier_code (registered) or carrier_name (unregistered)")
        fields = {
            "carrier_code": carrier_code,
            "carrier_name": carrier_name,
            "carrier_url": carrier_url,
            "tracking_number": tracking_number,
        }
        body = {name: value for name, value in fields.items() if value is not None}
        self._await_budget("OR23")
        self._send("OR23", "PUT", f"/api/orders/{_path_id(order_id)}/tracking", json=body)

    def ship_order(self, order_id: str) -> bool:
        """OR24: confirm the shipment. True when shipped now, False when Mirakl says it already was.

        "Already shipped" right after an attempt of this call that got no answer (a 5xx or a dropped connection
        once Mirakl had applied it) is this call's own effect: True. A wrong state that names no shipped status
        raises MiraklInvalidState for the caller to read the order back.
        The empty body goes out with Content-Length: 0 (servers answer 411 to a body-less PUT).
        """
        self._await_budget("OR24")
        try:
            self._send(
                "OR24", "PUT", f"/api/orders/{_path_id(order_id)}/ship", content=b"", headers={"Content-Length": "0"}
            )
        except MiraklInvalidState as error:
            if error.current_status in SHIPPED_STATES:  # "Current status is SHIPPED": a previous OR24 worked
                if error.after_unanswered_attempt:
                    log.warning("Mirakl OR24 %s: the answer was lost but the order is %s: shipped by this call",
                                order_id, error.current_status)
                    return True
                log.info("Mirakl OR24 %s: already shipped (current status %s)", order_id, error.current_status)
                return False
            raise
        return True

    def upload_invoice(
        self, order_id: str, *, file_name: str, content: bytes, type_code: str = "CUSTOMER_INVOICE"
    ) -> None:
        """OR74: attach one document (by default the customer invoice) to the order.

        Multipart: the file under `files`, its metadata under `order_documents` in the SDK's XML form.
        Mirakl answers 200 even when it refuses a document; this raises MiraklDocumentRejected then,
        naming each error (``already_uploaded`` tells a harmless repeat apart).
        """
        where = f"OR74 for order {order_id}"
        if not file_name or "/" in file_name or "\\" in file_name or not file_name.isascii() or not file_name.isprintable():
            raise ValueError(f"{where}: file name {file_name!r} must be a bare US-ASCII name (Mirakl refuses others)")
        extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
        if extension not in DOCUMENT_EXTENSIONS:
            raise ValueError(
                f"{where}: file {file_name!r} has a type Mirakl does not take; allowed: {', '.join(sorted(DOCUMENT_EXTENSIONS))}"
            )
        if not isinstance(content, (bytes, bytearray)) or not content:
            raise ValueError(f"{where}: file {file_name!r} is empty or not bytes")
        if not type_code:
            raise ValueError(f"{where}: type_code is empty (a DO01 document type such as CUSTOMER_INVOICE)")
        path = f"/api/orders/{_path_id(order_id)}/documents"
        content_type = DOCUMENT_CONTENT_TYPES.get(extension, "application/octet-stream")
        self._await_budget("OR74")
        data = self._send_json(
            "OR74", "POST", path,
            data={"order_documents": _order_documents_xml([(file_name, type_code)])},
            files=[("files", (file_name, bytes(content), content_type))],
        )
        if not isinstance(data, dict) or not isinstance(data.get("order_documents"), list):
            raise MiraklResponseError("OR74", 200, "response has no 'order_documents' list", body=str(data)[:2000])
        failed = data["order_documents"]
        count = data.get("errors_count")
        if not failed and not count:
            return
        errors = [
            dict(error, file_name=(item.get("input") or {}).get("file_name"))
            for item in failed if isinstance(item, dict)
            for error in item.get("errors") or [] if isinstance(error, dict)
        ]
        detail = "; ".join(
            f"{e.get('file_name') or file_name}: {e.get('field') or 'document'}: {e.get('message') or e.get('code')} ({e.get('code')})"
            for e in errors
        ) or f"errors_count={count} without details"
        raise MiraklDocumentRejected(
            "OR74", 200, f"order {order_id}: document(s) refused: {detail}",
            code=next((e.get("code") for e in errors if e.get("code")), None), body=str(data)[:2000], errors=errors,
        )

    # ---- shipments (multiple-shipments feature) -----------------------------------------------------

    def create_shipments(self, shipments: Sequence[NewShipment]) -> ShipmentResults:
        """ST01: create one Mirakl shipment per parcel; one outcome per requested shipment, in order.

        Mirakl answers 201 even when it refuses shipments: refusals come back as data
        (``outcome.error``, Mirakl's message), created shipments with their ids (``outcome.shipment``).
        Calls carry at most 1000 shipments and at most one shipment per order, because ST01's errors
        name only the order: that keeps every answer attributable (ST01 has no call-frequency limit).

        ST01 is not idempotent: sending a shipment twice creates two. So it is never resent once it
        may have arrived: a timeout, dropped connection, 5xx or unreadable answer raises
        MiraklOutcomeUnknown (and stops before the next call). To stay exactly-once, a caller:
        1. gives each parcel a stable ``package_reference`` (e.g. the Shopify fulfilment id);
        2. records the parcel as "sending" in its ledger before this call, and the shipment id after;
        3. when the call raised, or the process died in between (a "sending" record without an id),
           calls ``find_shipment(order_id, package_reference)`` (ST11) and records what it finds,
           sending again only when nothing is found. An outcome with neither shipment nor error
           (``answered`` False) is treated the same way.
        """
        outcomes: dict[int, ShipmentOutcome] = {}
        for batch in _one_per_order_batches(list(shipments), MAX_SHIPMENTS_PER_CALL):
            self._await_budget("ST01")
            response = self._send(
                "ST01", "POST", "/api/shipments", json={"shipments": [s.to_payload() for _, s in batch]}, idempotent=False
            )
            try:
                data = json.loads(response.text)
                created = [Shipment.model_validate(item) for item in data["shipment_success"] or []]
                refused = [ShipmentError.model_validate(item) for item in data["shipment_errors"] or []]
            except (ValueError, TypeError, KeyError, ValidationError) as error:
                raise MiraklOutcomeUnknown(
                    "ST01", response.status_code, f"unreadable answer ({error}); the shipments may have been created",
                    body=response.text[:2000],
                ) from error
            by_order = {s.order_id: s for s in created}
            errors = {e.order_id: e.message or "refused without a message" for e in refused if e.order_id}
            for index, request in batch:
                outcomes[index] = ShipmentOutcome(request, by_order.get(request.order_id), errors.get(request.order_id))
        return ShipmentResults([outcomes[index] for index in sorted(outcomes)])

    def update_shipment_tracking(self, updates: Mapping[str, ShipmentTracking]) -> ShipmentUpdateResults:
        """ST23: set the tracking of shipments by id (shipment id -> tracking). Idempotent, so retried.

        Per-shipment refusals (unknown id, carrier rules) come back as data in ``errors``.
        """
        items = [{"id": shipment_id, "tracking": tracking.to_payload()} for shipment_id, tracking in updates.items()]
        empty = [item["id"] for item in items if not item["tracking"]]
        if empty:
            raise ValueError(f"ST23: no tracking field set for shipment(s) {empty}")
        results = ShipmentUpdateResults()
        for start in range(0, len(items), MAX_SHIPMENTS_PER_CALL):
            self._await_budget("ST23")
            data = self._send_json("ST23", "POST", "/api/shipments/tracking",
                                   json={"shipments": items[start:start + MAX_SHIPMENTS_PER_CALL]})
            self._read_update_results("ST23", data, results)
        return results

    def ship_shipments(self, shipment_ids: Sequence[str]) -> ShipmentUpdateResults:
        """ST24: validate shipments as shipped. A shipment Mirakl reports as already shipped (a repeat of a call
        whose answer was lost) lands in ``already_shipped``, not in ``errors``, so retries are safe."""
        if isinstance(shipment_ids, str):
            raise ValueError(f"ST24 takes a sequence of shipment ids, not the string {shipment_ids!r}")
        ids = list(dict.fromkeys(shipment_ids))
        results = ShipmentUpdateResults()
        for batch in _batches(ids, MAX_SHIPMENTS_PER_CALL):
            self._await_budget("ST24")
            data = self._send_json("ST24", "PUT", "/api/shipments/ship", json={"shipments": [{"id": i} for i in batch]})
            self._read_update_results("ST24", data, results)
        return results

    def list_shipments(
        self,
        *,
        order_ids: Optional[Sequence[str]] = None,
        states: Optional[Sequence[str]] = None,
        updated_from: Optional[datetime] = None,
        updated_to: Optional[datetime] = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> list[Shipment]:
        """ST11: every shipment matching the filters, oldest first, following `next_page_token` to the last page.

        Later pages send only the token (Mirakl ignores other parameters then); each batch of 100
        `order_ids` is its own listing.
        """
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
        if isinstance(order_ids, str):
            raise ValueError(f"ST11 order_ids must be a sequence of ids, not the string {order_ids!r}")
        if order_ids is not None and not order_ids:
            return []
        params: dict[str, Any] = {"limit": page_size, "sort": "dateCreated,ASC"}
        if states:
            params["shipment_state_code"] = list(states)  # repeated keys, the spec's form
        if updated_from is not None:
            params["last_updated_from"] = _format_datetime(updated_from)
        if updated_to is not None:
            params["last_updated_to"] = _format_datetime(updated_to)
        found: dict[str, Shipment] = {}
        id_batches = _batches(list(dict.fromkeys(order_ids)), MAX_IDS_PER_CALL) if order_ids else [None]
        for batch in id_batches:
            page_params = dict(params, order_id=batch) if batch else params
            while True:
                self._await_budget("ST11")
                data = self._send_json("ST11", "GET", "/api/shipments", params=page_params)
                if not isinstance(data, dict) or not isinstance(data.get("data"), list):
                    raise MiraklResponseError("ST11", 200, "response has no 'data' list", body=str(data)[:2000])
                try:
                    found.update((s.id, s) for s in (Shipment.model_validate(item) for item in data["data"]))
                except ValidationError as error:
                    raise MiraklResponseError("ST11", 200, f"malformed shipment in response: {error}") from error
                token = data.get("next_page_token")
                if not token or not data["data"]:
                    break
                page_params = {"page_token": token}
        return list(found.values())

    def find_shipment(self, order_id: str, package_reference: str) -> Optional[Shipment]:
        """The live (not canceled) shipment of `order_id` carrying `package_reference`, if Mirakl has one (ST11).

        What a caller asks after ST01 raised MiraklOutcomeUnknown, or after a crash between ST01 and
        its ledger write: found, the shipment exists and must not be created again.
        """
        if not package_reference:
            raise ValueError(f"find_shipment for order {order_id}: package_reference is empty")
        matches = [
            s for s in self.list_shipments(order_ids=[order_id])
            if package_reference in s.package_references and s.status != "CANCELED"
        ]
        return matches[-1] if matches else None

    def _read_update_results(self, operation: str, data: Any, results: ShipmentUpdateResults) -> None:
        """Fold an ST23/ST24 answer ({shipment_success[{id}], shipment_errors[{id, message}]}) into `results`."""
        if not isinstance(data, dict):
            raise MiraklResponseError(operation, 200, "response is not an object", body=str(data)[:2000])
        try:
            results.succeeded.extend(str(item["id"]) for item in data.get("shipment_success") or [])
            errors = [ShipmentItemError.model_validate(item) for item in data.get("shipment_errors") or []]
        except (TypeError, KeyError, ValidationError) as error:
            raise MiraklResponseError(operation, 200, f"malformed answer: {error}", body=str(data)[:2000]) from error
        for error in errors:
            match = _SHIPMENT_STATUS.search(error.message or "")
            status = match and (match.group(1) or match.group(2))
            if operation == "ST24" and error.id and status in SHIPPED_STATES:
                log.info("Mirakl ST24 %s: already shipped (status %s)", error.id, status)
                results.already_shipped.append(error.id)
            else:
                results.errors.append(error)

    # ---- reference data -----------------------------------------------------------------------------

    def list_carriers(self) -> list[Carrier]:
        """SH21: the marketplace's carriers (documented at most once a day: cache the result)."""
        self._await_budget("SH21")
        data = self._send_json("SH21", "GET", "/api/shipping/carriers")
        carriers = data.get("carriers") if isinstance(data, dict) else None
        if not isinstance(carriers, list):
            raise MiraklResponseError("SH21", 200, "response has no 'carriers' list", body=str(data)[:2000])
        try:
            return [Carrier.model_validate(item) for item in carriers]
        except ValidationError as error:
            raise MiraklResponseError("SH21", 200, f"malformed carrier in response: {error}") from error

    # ---- lifecycle ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def waiting_at_most(self, seconds: float) -> Iterator["MiraklClient"]:
        """Within the block a call whose budget slot is more than `seconds` away raises CallBudgetExceeded, unsent
        (for optional calls, such as a check's read-back, that must not hold a run for a minute)."""
        saved, self.max_wait = self.max_wait, seconds
        try:
            yield self
        finally:
            self.max_wait = saved

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "MiraklClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ----------------------------------------------------------------------------------

    def call_slot(self, operation: str) -> tuple[str, float]:
        """(budget key, minimum seconds between calls) of `operation` for this client; the interval is 0 when the
        operation has no documented limit."""
        interval = min_interval(operation, self.persona, self.rate_limit_scale)
        if interval > 0:
            interval += BUDGET_MARGIN_SECONDS * self.rate_limit_scale
        return f"{self.marketplace}:{operation}", interval

    def _await_budget(self, operation: str) -> None:
        key, interval = self.call_slot(operation)
        if interval <= 0:
            return
        wait = self.budget.reserve(key, interval, max_wait=self.max_wait)
        if wait > self.max_wait:
            raise CallBudgetExceeded(operation, wait, self.max_wait, key)
        if wait > 0:
            log.debug("Mirakl %s: waiting %.3f s for the call budget %s", operation, wait, key)
            self._sleep(wait)
        # About to call: the slot is spent from here on (only budgets that can give a slot back have `spend`).
        spend = getattr(self.budget, "spend", None)
        if spend is not None:
            spend(key)

    def _orders_pages(self, params: dict[str, Any], page_size: int,
                      yielded: dict[str, Optional[datetime]]) -> Generator[list[MiraklOrder], None, bool]:
        """One pass over a listing's pages, yielding each page's orders not yielded yet (or newer than yielded);
        returns whether `total_count` moved between pages (orders entered or left the filter meanwhile)."""
        offset, totals = 0, set()
        while True:
            data = self._send_json("OR11", "GET", "/api/orders", params=dict(params, max=page_size, offset=offset))
            if not isinstance(data, dict) or not isinstance(data.get("orders"), list):
                raise MiraklResponseError("OR11", 200, "response has no 'orders' list", body=str(data)[:2000])
            page = data["orders"]
            fresh = []
            for index, raw in enumerate(page, start=offset):
                order = self._validate_order(raw, index)
                if order is None or (order.order_id in yielded
                                     and _older_or_same(order.last_updated_date, yielded[order.order_id])):
                    continue
                yielded[order.order_id] = order.last_updated_date
                fresh.append(order)
            if fresh:
                yield fresh
            offset += len(page)
            total = data.get("total_count")
            if isinstance(total, int):
                totals.add(total)
            # total_count drives the loop (a server may clamp `max`, so a short page is not the end);
            # an empty page ends it anyway, as orders can vanish while paging.
            finished = offset >= total if isinstance(total, int) else len(page) < page_size
            if finished or not page:
                return len(totals) > 1

    def _validate_order(self, raw: Any, index: int) -> Optional[MiraklOrder]:
        ref: str | int = (raw.get("order_id") or index) if isinstance(raw, dict) else index
        try:
            return MiraklOrder.model_validate(raw)
        except ValidationError as error:
            reason = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'order'}: {e['msg']}" for e in error.errors()
            )
            log.warning("Mirakl OR11: order %s rejected: %s", ref, reason)
            self.rejected.append((ref, reason))
            return None

    def _send_json(self, operation: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(operation, method, path, **kwargs)
        try:
            return json.loads(response.text, parse_float=Decimal)
        except ValueError as error:
            raise MiraklResponseError(
                operation, response.status_code, f"response is not JSON: {error}", body=response.text[:2000]
            ) from error

    def _send(self, operation: str, method: str, path: str, *, idempotent: bool = True, **kwargs: Any) -> httpx.Response:
        """One request with bounded retries; returns the 2xx response or raises a typed MiraklError.

        `idempotent=False` (ST01): a failure after the request may have arrived raises MiraklOutcomeUnknown,
        never retried; only 429s and connections that never opened are retried.
        """
        if self.shop_id is not None:
            kwargs["params"] = dict(kwargs.get("params") or {}, shop_id=self.shop_id)
        unanswered = False  # an earlier attempt reached Mirakl and got no usable answer: it may have applied

        def attempt() -> httpx.Response:
            nonlocal unanswered
            with self._calls_lock:
                self.calls[operation] += 1
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                reason = f"{type(error).__name__}: {error}"
                if not idempotent and not isinstance(error, _NOT_SENT):
                    raise MiraklOutcomeUnknown(operation, None, f"{reason}; the request may have been applied") from error
                failure = MiraklServerError(operation, None, reason)
                failure.after_unanswered_attempt = unanswered
                unanswered = unanswered or not isinstance(error, _NOT_SENT)
                raise failure from error
            if response.is_success:
                return response
            error = parse_error(operation, response)
            if not idempotent and isinstance(error, MiraklServerError):
                raise MiraklOutcomeUnknown(
                    operation, error.status, f"{error.message}; the request may have been applied",
                    code=error.code, body=error.body,
                ) from error
            if isinstance(error, MiraklRateLimited) and self._retry_after_wait(error) > self.max_wait:
                error = self._retry_later(error)
            error.after_unanswered_attempt = unanswered
            unanswered = unanswered or isinstance(error, MiraklServerError)
            raise error

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            retry=retry_if_exception(self._should_retry),
            wait=self._wait_before_retry,
            sleep=self._sleep,
            before_sleep=lambda state: log.warning(
                "Mirakl %s attempt %d failed (%s); retrying", operation, state.attempt_number, state.outcome.exception()
            ),
            reraise=True,
        )
        return retrying(attempt)

    def _should_retry(self, error: BaseException) -> bool:
        """5xx/transport failures and 429s are transient; other 4xx and budget refusals are final.

        A 429 whose Retry-After is longer than the caller accepts (max_wait) is final too.
        """
        if isinstance(error, MiraklRateLimited):
            return self._retry_after_wait(error) <= self.max_wait
        return isinstance(error, MiraklServerError)

    def _retry_after_wait(self, error: MiraklRateLimited) -> float:
        if error.retry_after is None:
            return 0.0
        return error.retry_after * self.rate_limit_scale

    def _retry_later(self, error: MiraklRateLimited) -> MiraklRetryLater:
        """The 429 whose Retry-After outlasts max_wait, saying how long Mirakl asked to wait (API seconds)."""
        scale = self.rate_limit_scale or 1.0
        return MiraklRetryLater(
            error.operation, retry_after=error.retry_after or 0.0, wait=self._retry_after_wait(error),
            max_wait=self.max_wait, key=f"{self.marketplace or self.base_url}:{error.operation}",
            api_max_wait=self.max_wait / scale, body=error.body,
        )

    def _wait_before_retry(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, MiraklRateLimited) and error.retry_after is not None:
            return self._retry_after_wait(error)
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (state.attempt_number - 1))
        return self._random.uniform(ceiling / 2, ceiling)


def _older_or_same(candidate: Optional[datetime], kept: Optional[datetime]) -> bool:
    """Whether a version adds nothing to the one already yielded (an undated copy never replaces a dated one)."""
    if candidate is None:
        return True
    return kept is not None and candidate <= kept


def _path_id(order_id: str) -> str:
    if not order_id or "/" in order_id:
        raise ValueError(f"invalid Mirakl order id {order_id!r}")
    return order_id
