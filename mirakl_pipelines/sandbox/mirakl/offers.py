"""The sandbox's offers and stock: OF21, the asynchronous export OF52 → OF53 → OF54, and the stock imports
STO01 → STO02 → STO03 (NOTES §3.9, §3.10).

What the spec says is reproduced as written; where it is silent the sandbox decides, and says so:
- Offers are seeded per marketplace (`OfferBook.seed`, `POST /_sandbox/offers`); `offer_id` is derived from
  the SKU as the order lines' `offer_id` is (orders.py), so an order line and its offer agree.
- An offer with quantity 0 is inactive with the reason ZERO_QUANTITY (one of the spec's inactivity reasons);
  an offer seeded `active: false` is inactive with PRODUCT_DISABLED whatever its quantity.
- Orders (state.py) take their units from the offers when placed; refused or cancelled units (before shipment)
  are given back. A line never takes more than the offer has (the quantity never goes negative).
- OF21: offset pagination (`max` default 10, clamped to 100), filters `sku`, `offer_state_codes`, `product_id`,
  sort `totalPrice` (default), `price`, `productTitle`, then by offer_id.
- OF52: the content is taken when OF52 is called (the export reflects offers at that moment); the export is
  PENDING for `offer_export_delay`, then COMPLETED with one absolute URL per chunk (`items_per_chunk`, default
  10,000; the spec's minimum of 10,000 is "lowered on TEST and DEV environments", so any value ≥ 1 is taken here).
  `export_type` defaults to text/csv as the spec says; application/json files are a JSON array of offers.
  Full mode returns active offers only unless `include_inactive_offers`; differential mode (`last_request_date`)
  returns every offer updated since, and refuses `include_inactive_offers` (spec). The file URLs (OF54) are
  served under `/api/offers/export/async/file/{tracking_id}?file=offers/<n>.<ext>`, the spec example's form.
  Only the "differential" call frequency (once per minute) is enforced, not "full: once per day".
- STO01 (multipart `file`): a CSV `"offer-sku";"quantity";"warehouse-code";"update-delete"` (semicolons, UTF-8,
  a BOM tolerated; only `offer-sku` and `quantity` are required columns). The import is WAITING for
  `stock_import_waiting`, RUNNING for `stock_import_running`, then COMPLETE (quantities applied) or FAILED.
  A line without warehouse-code sets the global quantity (and clears any warehouse breakdown); a line with one
  sets that warehouse's quantity, the offer's quantity being the sum of its warehouses. `update-delete` empty or
  "update" sets; "delete" removes the warehouse's quantity, or sets a global quantity to 0 (a stock import
  cannot delete the offer itself; the spec does not say what "delete" does in a stock file: this is our reading).
- Line errors are reported and the other lines applied: unknown offer-sku, a missing, non-integer or negative
  quantity, a wrong column count, an unknown update-delete value, a (sku, warehouse) already given earlier in
  the file (the first one is applied), global and warehouse lines mixed for one SKU. Empty lines are ignored.
  A file that cannot be read as a whole (not UTF-8, empty, no `offer-sku`/`quantity` header, unknown or
  repeated header columns) makes the import FAILED with a one-line report naming line 1.
- Line numbers (STO03): the file's record number with the header as line 1 (a quoted newline inside a field
  does not start a new line). The real numbering is unverified.
- STO03 is `text/csv`: a quoted header `"error-line";"error-message"` then the line's own four columns, so the
  first column is the line number and the second the reason (spec), and the rest is ready to be fixed and
  re-imported. Without a report (not finished, or no error) it answers 404.
- Knobs (MarketplaceSettings / POST /_sandbox/settings): `stock_import_stuck` (a RUNNING import never completes
  while set), `stock_import_fail` (imports completing while set FAIL whole), `stock_import_skip_skus` and
  `stock_import_skip_share` (0..1, chosen by a hash of the SKU, so the same SKUs every time): the lines of those
  SKUs are silently dropped, neither applied nor reported, and counted in `lines_in_success` as Mirakl would
  report them, the "told to drop part of an import" case a stock-delta check must catch; `offer_export_fail`,
  and the delays `stock_import_waiting`, `stock_import_running`, `offer_export_delay` (seconds over HTTP).
"""

import csv
import io
import itertools
import threading
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

from mirakl_pipelines.sandbox.mirakl.orders import money, q2
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MiraklApiError, _bad, _bool, _date, _id_list, _int
from mirakl_pipelines.sandbox.mirakl.wire import iso, to_json

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
DEFAULT_ITEMS_PER_CHUNK = 10_000
NEW_STATE = "11"  # Mirakl's default offer state code: new
STOCK_COLUMNS = ("offer-sku", "quantity", "warehouse-code", "update-delete")
REPORT_COLUMNS = ("error-line", "error-message", *STOCK_COLUMNS)
EXPORT_TYPES = ("text/csv", "application/json")
SORTS = ("totalPrice", "price", "productTitle")
# The CSV export's columns (a subset of the spec's OF54 text/csv columns), in the spec example's order.
CSV_EXPORT_FIELDS = (
    "offer-id", "product-sku", "min-shipping-price", "min-shipping-zone", "min-shipping-type", "price", "total-price",
    "quantity", "description", "state-code", "shop-id", "shop-name", "logistic-class", "active", "channels", "deleted",
    "origin-price", "currency-iso-code", "leadtime-to-ship", "shop-sku", "date-created", "last-updated",
)
# Knobs that may change while the server runs (POST /_sandbox/settings), with their kind.
RUNTIME_KNOBS: dict[str, str] = {
    "stock_import_stuck": "bool",
    "stock_import_fail": "bool",
    "offer_export_fail": "bool",
    "stock_import_skip_skus": "skus",
    "stock_import_skip_share": "share",
    "stock_import_waiting": "seconds",
    "stock_import_running": "seconds",
    "offer_export_delay": "seconds",
}


def offer_id_of(sku: str) -> int:
    """The offer id of a SKU, the same orders.build_order writes on order lines."""
    return zlib.crc32(sku.encode()) + 100000


def parse_knob(name: str, value: Any) -> Any:
    """A runtime knob's value from JSON, checked; ValueError naming the knob otherwise."""
    kind = RUNTIME_KNOBS[name]
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"setting {name} must be true or false (got {value!r})")
        return value
    if kind == "skus":
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            raise ValueError(f"setting {name} must be a list of SKUs (got {value!r})")
        return list(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) or value < 0:
        raise ValueError(f"setting {name} must be a number >= 0 (got {value!r})")
    if kind == "share":
        if value > 1:
            raise ValueError(f"setting {name} must be between 0 and 1 (got {value!r})")
        return float(value)
    return timedelta(seconds=float(value))


def knob_value(value: Any) -> Any:
    """A knob as /_sandbox/settings shows it (delays in seconds)."""
    return value.total_seconds() if isinstance(value, timedelta) else value


def catalogue_offers(catalogue: Mapping, *, unknown_quantity: int = 5) -> list[dict]:
    """Seed entries for every SKU a marketplace lists: the catalogue's `products` variants (price, title, and as
    quantity their `stock`, summed over locations when it is a mapping, negatives counting 0) and its
    `unknown_skus` (SKUs Shopify does not know, listed with `unknown_quantity` units). `shop_only_products` and
    variants without SKU are not listed on marketplaces."""
    entries = [
        {"sku": v["sku"], "price": str(v.get("price", "10.00")), "quantity": _catalogue_units(v.get("stock", 0)),
         "title": f"{p['title']} {v['title']}".replace(" Default Title", "")}
        for p in catalogue.get("products", []) for v in p.get("variants", []) if v.get("sku")
    ]
    entries += [{"sku": sku, "price": "10.00", "quantity": unknown_quantity, "title": f"Unlisted item {sku}"}
                for sku in catalogue.get("unknown_skus", [])]
    return entries


def _catalogue_units(stock: Any) -> int:
    values = stock.values() if isinstance(stock, Mapping) else [stock]
    return sum(max(0, int(v)) for v in values)


@dataclass
class _Export:
    tracking_id: str
    created: datetime
    media_type: str
    chunks: list[bytes]
    failed: bool


@dataclass
class _Import:
    import_id: str
    created: datetime
    lines: list[tuple[int, list[str]]]  # (line number, fields) of the data records
    header: list[str]
    file_error: str | None = None
    status: str = "WAITING"
    lines_in_success: int | None = None
    lines_in_error: int | None = None
    report: list[tuple[int, str, list[str]]] = field(default_factory=list)


class OfferBook:
    """The offers and stock imports of one marketplace; shares the lock and the clock of its MarketplaceSim."""

    def __init__(self, settings: MarketplaceSettings, lock: threading.RLock, now: Callable[[], datetime]):
        self.settings = settings
        self._lock = lock
        self._now = now
        self._offers: dict[str, dict] = {}  # sku -> offer (internal form)
        self._held: dict[tuple[str, str], tuple[str, int]] = {}  # (order id, line id) -> (sku, units taken)
        self._exports: dict[str, _Export] = {}
        self._imports: dict[str, _Import] = {}
        self._import_ids = itertools.count(1)
        self.counts = {"stock_imports": 0, "stock_lines_applied": 0, "stock_lines_in_error": 0,
                       "stock_lines_skipped": 0, "offer_exports": 0}

    @property
    def shop_id(self) -> int:
        # STO02 requires a shop_id; a marketplace configured without one gets a stable one from its code.
        return self.settings.shop_id if self.settings.shop_id is not None else 1000 + zlib.crc32(self.settings.code.encode()) % 9000

    # ---- operator / test side -------------------------------------------------------------------------

    def seed(self, entries: Iterable[Mapping]) -> list[dict]:
        """Add offers, or update the given fields of existing ones (by SKU). Each entry: `sku` (required), `price`
        (Decimal or text, default 10.00), `quantity` (int ≥ 0, default 0), `title`, `active`, `state_code`,
        `product_sku`, `currency`, `warehouses` ({code: quantity}). ValueError naming the entry otherwise."""
        checked = [self._checked_entry(entry, index) for index, entry in enumerate(entries)]
        with self._lock:
            now = self._now()
            for entry in checked:
                offer = self._offers.get(entry["sku"])
                if offer is None:
                    offer = self._offers[entry["sku"]] = _new_offer(entry["sku"], now)
                warehouses = entry.pop("warehouses", None)
                offer.update(entry)
                if "quantity" in entry and warehouses is None:
                    offer["warehouses"] = {}  # a quantity alone is global, as in a stock file
                if warehouses is not None:
                    offer["warehouses"] = dict(warehouses)
                    offer["quantity"] = sum(warehouses.values())
                offer["last_updated"] = now
            return [self._internal_view(self._offers[e["sku"]]) for e in checked]

    def offers(self) -> list[dict]:
        """Every offer, internal view (sorted by SKU)."""
        self.tick()
        with self._lock:
            return [self._internal_view(o) for _, o in sorted(self._offers.items())]

    def quantities(self) -> dict[str, int]:
        self.tick()
        with self._lock:
            return {sku: o["quantity"] for sku, o in self._offers.items()}

    def hold(self, order_id: str, line_id: str, sku: str, units: int) -> None:
        """An order line now holds `units` of its offer (placed: its quantity; refused/cancelled: fewer). Units are
        taken from the offer, never below 0, and what was taken is given back when the line holds less."""
        with self._lock:
            key = (order_id, line_id)
            _, taken = self._held.get(key, (sku, 0))
            offer = self._offers.get(sku)
            if offer is None or units == taken:
                return
            if units < taken:
                _give(offer, taken - units)
                taken = units
            else:
                got = min(units - taken, offer["quantity"])
                _take(offer, got)
                taken += got
            offer["last_updated"] = self._now()
            self._held[key] = (sku, taken)

    def stats(self) -> dict:
        with self._lock:
            return {**self.counts, "offers": len(self._offers),
                    "imports_by_status": _count(i.status for i in self._imports.values())}

    # ---- time -----------------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> None:
        """Move the imports whose time has come (in the order they were sent, so a later file wins)."""
        with self._lock:
            now = now or self._now()
            for stock_import in self._imports.values():
                self._advance(stock_import, now)

    def _advance(self, stock_import: _Import, now: datetime) -> None:
        settings = self.settings
        if stock_import.status == "WAITING" and now >= stock_import.created + settings.stock_import_waiting:
            stock_import.status = "RUNNING"
        done_at = stock_import.created + settings.stock_import_waiting + settings.stock_import_running
        if stock_import.status == "RUNNING" and now >= done_at and not settings.stock_import_stuck:
            if settings.stock_import_fail and stock_import.file_error is None:
                stock_import.file_error = "The import failed: an internal error occurred while processing the file"
            self._finish(stock_import, now)

    # ---- OF21 -----------------------------------------------------------------------------------------

    def list_offers(self, params: Mapping[str, str]) -> dict:
        size = min(_int(params, "max", DEFAULT_PAGE_SIZE, minimum=1), MAX_PAGE_SIZE)
        offset = _int(params, "offset", 0, minimum=0)
        paginate = _bool(params, "paginate")
        sort = params.get("sort") or "totalPrice"
        if sort not in SORTS:
            raise _bad(f"Invalid value {sort} for the parameter : sort ({', '.join(SORTS)})")
        direction = (params.get("order") or "asc").lower()
        if direction not in {"asc", "desc"}:
            raise _bad(f"Invalid value {params.get('order')} for the parameter : order (asc or desc)")
        skus = _id_list(params, "sku")
        states = _id_list(params, "offer_state_codes")
        products = _id_list(params, "product_id")
        self.tick()
        with self._lock:
            selected = [o for o in self._offers.values()
                        if (skus is None or o["sku"] in skus) and (states is None or o["state_code"] in states)
                        and (products is None or o["product_sku"] in products)]
            key = {"totalPrice": lambda o: (_total(o), o["offer_id"]), "price": lambda o: (o["price"], _total(o), o["offer_id"]),
                   "productTitle": lambda o: (o["title"], _total(o), o["offer_id"])}[sort]
            selected.sort(key=key, reverse=direction == "desc")
            page = selected[offset:] if paginate is False else selected[offset:offset + size]
            return {"offers": [self._of21_view(o) for o in page], "total_count": len(selected)}

    # ---- OF52 / OF53 / OF54 ---------------------------------------------------------------------------

    def start_export(self, body: Any) -> dict:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise MiraklApiError(400, "VALIDATION_ERROR", "OF52: the body must be a JSON object")
        media_type = body.get("export_type") or "text/csv"
        if media_type not in EXPORT_TYPES:
            raise _bad(f"Invalid value {media_type} for the field : export_type ({' or '.join(EXPORT_TYPES)})")
        per_chunk = body.get("items_per_chunk", DEFAULT_ITEMS_PER_CHUNK)
        if isinstance(per_chunk, bool) or not isinstance(per_chunk, int) or not 1 <= per_chunk <= 1_000_000:
            raise _bad(f"Invalid value {per_chunk!r} for the field : items_per_chunk (1 to 1000000 on this sandbox)")
        last_request = body.get("last_request_date")
        if last_request is not None and not isinstance(last_request, str):
            raise _bad(f"Invalid value {last_request!r} for the field : last_request_date (a date-time)")
        since = _date({"last_request_date": last_request or ""}, "last_request_date")
        include_inactive = body.get("include_inactive_offers", False)
        if not isinstance(include_inactive, bool):
            raise _bad("Invalid value for the field : include_inactive_offers (true or false)")
        if since is not None and include_inactive:
            raise _bad("include_inactive_offers cannot be used in differential mode (with last_request_date)")
        fields = body.get("include_fields")
        if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
            raise _bad("Invalid value for the field : include_fields (a list of field names)")
        self.tick()
        with self._lock:
            now = self._now()
            offers = sorted(self._offers.values(), key=lambda o: o["offer_id"])
            if since is not None:
                offers = [o for o in offers if o["last_updated"] >= since]
            elif not include_inactive:
                offers = [o for o in offers if _active(o)]
            write = _json_chunk if media_type == "application/json" else _csv_chunk
            shop_id = self.shop_id
            items = [self._export_item(o, media_type, shop_id) for o in offers]
            if fields:
                items = [{k: v for k, v in item.items() if k in fields} for item in items]
            chunks = [write(items[i:i + per_chunk]) for i in range(0, len(items), per_chunk)] or [write([])]
            tracking_id = str(uuid.uuid4())
            self._exports[tracking_id] = _Export(tracking_id, now, media_type, chunks, self.settings.offer_export_fail)
            self.counts["offer_exports"] += 1
        return {"tracking_id": tracking_id}

    def export_status(self, tracking_id: str, base_url: str) -> dict:
        with self._lock:
            export = self._export(tracking_id)
            now = self._now()
            done_at = export.created + self.settings.offer_export_delay
            if now < done_at:
                return {"status": "PENDING", "last_updated": export.created}
            if export.failed:
                return {"status": "FAILED", "last_updated": done_at, "error": {"code": "1", "detail": "Internal error"}}
            extension = "json" if export.media_type == "application/json" else "csv"
            urls = [f"{base_url.rstrip('/')}/api/offers/export/async/file/{tracking_id}?file=offers/{n}.{extension}"
                    for n in range(len(export.chunks))]
            return {"status": "COMPLETED", "last_updated": done_at, "urls": urls}

    def export_file(self, tracking_id: str, file: str | None) -> tuple[bytes, str]:
        with self._lock:
            export = self._export(tracking_id)
            if export.failed or self._now() < export.created + self.settings.offer_export_delay:
                raise MiraklApiError(404, "NOT_FOUND", f"The export {tracking_id} has no file (yet)")
            try:
                number = int((file or "").rsplit("/", 1)[-1].split(".", 1)[0])
                return export.chunks[number], export.media_type
            except (ValueError, IndexError):
                raise MiraklApiError(404, "NOT_FOUND", f"No file {file!r} in export {tracking_id}") from None

    # ---- STO01 / STO02 / STO03 ------------------------------------------------------------------------

    def start_import(self, content: bytes) -> dict:
        header, lines, error = _read_stock_file(content)
        with self._lock:
            import_id = f"{self.settings.code.upper()}-STO-{next(self._import_ids):06d}"
            self._imports[import_id] = _Import(import_id, self._now(), lines, header, error)
            self.counts["stock_imports"] += 1
        self.tick()
        return {"import_id": import_id}

    def import_status(self, import_id: str) -> dict:
        self.tick()
        with self._lock:
            stock_import = self._import(import_id)
            status = {"import_id": import_id, "shop_id": self.shop_id, "date_created": stock_import.created,
                      "status": stock_import.status, "has_error_report": bool(stock_import.report)}
            if stock_import.lines_in_success is not None:
                status.update(lines_in_success=stock_import.lines_in_success, lines_in_error=stock_import.lines_in_error)
            return status

    def error_report(self, import_id: str) -> bytes:
        self.tick()
        with self._lock:
            stock_import = self._import(import_id)
            if not stock_import.report:
                raise MiraklApiError(404, "NOT_FOUND", f"No error report for stock import {import_id} "
                                                       f"(status {stock_import.status})")
            out = io.StringIO()
            writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerow(REPORT_COLUMNS)
            for line, reason, values in stock_import.report:
                writer.writerow([str(line), reason, *(values + [""] * 4)[:4]])
            return out.getvalue().encode("utf-8")

    # ---- internals ------------------------------------------------------------------------------------

    def _finish(self, stock_import: _Import, now: datetime) -> None:
        if stock_import.file_error is not None:
            stock_import.status = "FAILED"
            stock_import.report = [(1, stock_import.file_error, [])]
            stock_import.lines_in_success, stock_import.lines_in_error = 0, len(stock_import.lines)
            return
        success, seen, kinds = 0, set(), {}
        column = {name: stock_import.header.index(name) for name in STOCK_COLUMNS if name in stock_import.header}
        for number, values in stock_import.lines:
            reason, line = self._check_line(values, column, seen, kinds)
            if reason is not None:
                stock_import.report.append((number, reason, _as_stock_columns(values, column)))
                continue
            success += 1
            if self._skipped(line["sku"]):
                self.counts["stock_lines_skipped"] += 1
                continue
            _apply(self._offers[line["sku"]], line["warehouse"], line["quantity"], line["delete"])
            self._offers[line["sku"]]["last_updated"] = now
            self.counts["stock_lines_applied"] += 1
        self.counts["stock_lines_in_error"] += len(stock_import.report)
        stock_import.status = "COMPLETE"
        stock_import.lines_in_success, stock_import.lines_in_error = success, len(stock_import.report)

    def _check_line(self, values: list[str], column: dict[str, int], seen: set, kinds: dict) -> tuple[str | None, dict]:
        if len(values) != len(column):
            return f"Wrong number of columns: expected {len(column)}, got {len(values)}", {}
        sku = values[column["offer-sku"]].strip()
        raw_quantity = values[column["quantity"]].strip()
        warehouse = values[column["warehouse-code"]].strip() if "warehouse-code" in column else ""
        mode = values[column["update-delete"]].strip().lower() if "update-delete" in column else ""
        if not sku:
            return "The offer-sku is required", {}
        if mode not in {"", "update", "delete"}:
            return f"Invalid update-delete value '{mode}' (expected empty, update or delete)", {}
        quantity = 0
        if mode != "delete":
            if not raw_quantity:
                return "The quantity is required", {}
            if not raw_quantity.lstrip("+-").isdigit() or not raw_quantity.isascii():
                return f"The quantity '{raw_quantity}' is not a whole number", {}
            quantity = int(raw_quantity)
            if quantity < 0:
                return f"The quantity {quantity} is negative", {}
        if sku not in self._offers:
            return f"The offer with sku '{sku}' does not exist in your shop", {}
        if (sku, warehouse) in seen:
            where = f" for warehouse '{warehouse}'" if warehouse else ""
            return f"The offer-sku '{sku}'{where} appears more than once in the file", {}
        kind = "warehouse" if warehouse else "global"
        if kinds.setdefault(sku, kind) != kind:
            return f"The offer-sku '{sku}' mixes a global quantity and warehouse quantities in one file", {}
        seen.add((sku, warehouse))
        return None, {"sku": sku, "quantity": quantity, "warehouse": warehouse, "delete": mode == "delete"}

    def _skipped(self, sku: str) -> bool:
        share = self.settings.stock_import_skip_share
        return sku in self.settings.stock_import_skip_skus or (share > 0 and zlib.crc32(sku.encode()) % 10_000 < share * 10_000)

    def _import(self, import_id: str) -> _Import:
        if import_id not in self._imports:
            raise MiraklApiError(404, "NOT_FOUND", f"Stock import {import_id} not found")
        return self._imports[import_id]

    def _export(self, tracking_id: str) -> _Export:
        if tracking_id not in self._exports:
            raise MiraklApiError(404, "NOT_FOUND", f"Offer export {tracking_id} not found")
        return self._exports[tracking_id]

    def _checked_entry(self, entry: Any, index: int) -> dict:
        if not isinstance(entry, Mapping):
            raise ValueError(f"offer #{index}: expected an object with at least a sku (got {entry!r})")
        sku = entry.get("sku")
        where = f"offer #{index} ({sku!r})"
        if not isinstance(sku, str) or not sku.strip():
            raise ValueError(f"offer #{index}: sku must be a non-empty string (got {sku!r})")
        unknown = set(entry) - {"sku", "price", "quantity", "title", "active", "state_code", "product_sku", "currency",
                                "warehouses"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        checked: dict[str, Any] = {"sku": sku}
        if "price" in entry or sku not in self._offers:
            checked["price"] = q2(money(entry.get("price", "10.00"), f"{where}: price"))
        if "quantity" in entry or sku not in self._offers:
            checked["quantity"] = _units(entry.get("quantity", 0), f"{where}: quantity")
        for name, kind in (("title", str), ("state_code", str), ("product_sku", str), ("currency", str), ("active", bool)):
            if name in entry:
                if not isinstance(entry[name], kind):
                    raise ValueError(f"{where}: {name} must be a {kind.__name__} (got {entry[name]!r})")
                checked[name] = entry[name]
        if "warehouses" in entry:
            warehouses = entry["warehouses"]
            if not isinstance(warehouses, Mapping):
                raise ValueError(f"{where}: warehouses must map warehouse codes to quantities")
            checked["warehouses"] = {str(code): _units(q, f"{where}: warehouses[{code}]") for code, q in warehouses.items()}
        return checked

    def _internal_view(self, offer: dict) -> dict:
        # A shallow copy is enough: every value but the warehouses is immutable (100,000 offers seed in a second).
        return {**offer, "warehouses": dict(offer["warehouses"]), "offer_active": _active(offer)}

    def _of21_view(self, offer: dict) -> dict:
        active = _active(offer)
        price = offer["price"]
        view = {
            "active": active,
            "all_prices": [{"channel_code": None, "price": price, "unit_origin_price": price, "unit_discount_price": None,
                            "discount_start_date": None, "discount_end_date": None,
                            "volume_prices": [{"price": price, "quantity_threshold": 1, "unit_discount_price": price,
                                               "unit_origin_price": price}]}],
            "allow_quote_requests": False,
            "category_code": "sport-outdoor",
            "category_label": "Sport et plein air",
            "channels": [],
            "currency_iso_code": offer["currency"],
            "description": offer["title"],
            "fulfillment": {"center": {"code": "DEFAULT"}},
            "inactivity_reasons": [] if active else [_inactivity_reason(offer)],
            "leadtime_to_ship": 2,
            "logistic_class": {"code": "M", "label": "Medium"},
            # Required and not nullable in the spec: the values a seller who set nothing sees (ours).
            "max_order_quantity": 999,
            "min_order_quantity": 1,
            "min_quantity_alert": 0,
            "min_shipping_price": Decimal("4.99"),
            "min_shipping_price_additional": Decimal("0.00"),
            "min_shipping_type": "STD",
            "min_shipping_zone": "FR",
            "offer_id": offer["offer_id"],
            "package_quantity": 1,
            "price": price,
            "product_references": [{"reference": offer["sku"], "reference_type": "SHOP_SKU"}],
            "product_sku": offer["product_sku"],
            "product_title": offer["title"],
            "quantity": offer["quantity"],
            "shipping_deadline": self._now() + timedelta(days=2),
            "shop_sku": offer["sku"],
            "state_code": offer["state_code"],
            "total_price": _total(offer),
        }
        if offer["warehouses"]:
            view["warehouses"] = [{"code": code, "quantity": q} for code, q in sorted(offer["warehouses"].items())]
        return view

    def _export_item(self, offer: dict, media_type: str, shop_id: int) -> dict:
        """One offer of an OF54 file: the JSON file structure's fields, or the CSV's columns."""
        if media_type == "text/csv":
            return {
                "offer-id": offer["offer_id"], "product-sku": offer["product_sku"], "min-shipping-price": "4.99",
                "min-shipping-zone": "FR", "min-shipping-type": "STD", "price": offer["price"], "total-price": _total(offer),
                "quantity": offer["quantity"], "description": offer["title"], "state-code": offer["state_code"],
                "shop-id": shop_id, "shop-name": self.settings.code, "logistic-class": "M",
                "active": str(_active(offer)).lower(), "channels": "", "deleted": "false", "origin-price": offer["price"],
                "currency-iso-code": offer["currency"], "leadtime-to-ship": 2, "shop-sku": offer["sku"],
                "date-created": iso(offer["date_created"]), "last-updated": iso(offer["last_updated"]),
            }
        item = {
            "active": _active(offer), "allow_quote_requests": False, "channels": [], "currency_iso_code": offer["currency"],
            "date_created": offer["date_created"], "deleted": False, "description": offer["title"],
            "fulfillment": {"center": {"code": "DEFAULT"}}, "is_professional": False, "last_updated": offer["last_updated"],
            "leadtime_to_ship": 2, "logistic_class": {"code": "M"}, "min_shipping_price": Decimal("4.99"),
            "min_shipping_price_additional": Decimal("0.00"), "min_shipping_type": "STD", "min_shipping_zone": "FR",
            "offer_id": offer["offer_id"], "premium": False,
            "prices": [{"origin_price": offer["price"],
                        "volume_prices": [{"quantity_threshold": 1, "unit_origin_price": offer["price"]}]}],
            "product_sku": offer["product_sku"], "quantity": offer["quantity"], "shop_id": shop_id,
            "shop_name": self.settings.code, "shop_sku": offer["sku"], "state_code": offer["state_code"],
        }
        if offer["warehouses"]:
            item["warehouses"] = [{"code": code, "quantity": q} for code, q in sorted(offer["warehouses"].items())]
        return item


def _new_offer(sku: str, now: datetime) -> dict:
    return {"sku": sku, "offer_id": offer_id_of(sku), "product_sku": f"MP-{zlib.crc32(sku.encode('utf-8')):010d}",
            "title": sku, "price": Decimal("10.00"), "quantity": 0, "warehouses": {}, "active": True,
            "state_code": NEW_STATE, "currency": "EUR", "date_created": now, "last_updated": now}


def _active(offer: dict) -> bool:
    return offer["active"] and offer["quantity"] > 0


def _inactivity_reason(offer: dict) -> str:
    return "PRODUCT_DISABLED" if not offer["active"] else "ZERO_QUANTITY"


def _total(offer: dict) -> Decimal:
    return offer["price"] + Decimal("4.99")


def _take(offer: dict, units: int) -> None:
    offer["quantity"] -= units
    for code in sorted(offer["warehouses"]):  # warehouses in code order give their units first
        got = min(units, offer["warehouses"][code])
        offer["warehouses"][code] -= got
        units -= got


def _give(offer: dict, units: int) -> None:
    offer["quantity"] += units
    if offer["warehouses"]:
        first = sorted(offer["warehouses"])[0]
        offer["warehouses"][first] += units


def _apply(offer: dict, warehouse: str, quantity: int, delete: bool) -> None:
    if not warehouse:
        offer["warehouses"] = {}
        offer["quantity"] = 0 if delete else quantity
        return
    if delete:
        offer["warehouses"].pop(warehouse, None)
    else:
        offer["warehouses"][warehouse] = quantity
    offer["quantity"] = sum(offer["warehouses"].values())


def _read_stock_file(content: bytes) -> tuple[list[str], list[tuple[int, list[str]]], str | None]:
    """(header, numbered data records, whole-file error or None) of an STO01 file."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return [], [], f"The file is not UTF-8 encoded text ({e.reason} at byte {e.start})"
    if not text.strip():
        return [], [], "The file is empty"
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=";", strict=True))
    except csv.Error as e:
        return [], [], f"The file is not a readable semicolon-separated CSV file ({e})"
    header = [name.strip().lower() for name in records[0]]
    numbered = [(n, values) for n, values in enumerate(records[1:], start=2) if values]  # empty lines are no records
    unknown = [name for name in header if name not in STOCK_COLUMNS]
    if unknown or len(set(header)) != len(header) or not {"offer-sku", "quantity"} <= set(header):
        return header, numbered, (
            f"Invalid header {';'.join(records[0])!r}: expected the columns "
            f"\"offer-sku\";\"quantity\";\"warehouse-code\";\"update-delete\" separated by semicolons")
    return header, numbered, None


def _as_stock_columns(values: list[str], column: dict[str, int]) -> list[str]:
    """A line's values in STOCK_COLUMNS order (for the report), as far as the line has them."""
    return [values[column[name]] if name in column and column[name] < len(values) else "" for name in STOCK_COLUMNS]


def _json_chunk(items: list[dict]) -> bytes:
    return to_json(items)


def _csv_chunk(items: list[dict]) -> bytes:
    out = io.StringIO()
    columns = list(items[0]) if items else list(CSV_EXPORT_FIELDS)
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(columns)
    for item in items:
        writer.writerow(["" if item.get(c) is None else str(item.get(c)) for c in columns])
    return out.getvalue().encode("utf-8")


def _units(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number >= 0 (got {value!r})")
    return value


def _count(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts
