"""The sandbox's shipment book: Mirakl's multiple-shipments API (ST01, ST11, ST23, ST24; NOTES §3.15).

A shipment is one parcel of one order: some units of some of its lines, with its own tracking.
What the spec says is reproduced as written (≤1000 shipments per call, 201/200 bodies listing
successes and per-shipment errors, the shipment statuses, seek pagination of ST11). Where it is
silent the sandbox decides, and says so:
- Units left to ship on a line: ordered − cancelled (its `cancelations[].quantity`) − units already
  in the order's live (not CANCELED) shipments. Lines REFUSED or CANCELED have none.
- A shipment is validated whole: one bad line or tracking rejects that shipment (an entry in
  `shipment_errors`), never its neighbours. Shipments of one call are taken in order, each booking
  its units, so two parcels of one call cannot ship the same unit.
- A line goes SHIPPED (with `shipped_date`) when all its live units are in SHIPPED shipments; the order
  goes SHIPPED when no line is left SHIPPING. A partly shipped line stays SHIPPING.
- The order's tracking fields (shipping_carrier_code, shipping_company, shipping_tracking…) show the
  tracking most recently given to one of its shipments (ST01 or ST23), with OR23's carrier rules.
- The order's `last_updated_date` moves when something OR11 shows changes (states, tracking), not
  when a shipment without tracking is created (OR11 does not show shipments).
- OR24 still ships the whole order (open shipments ship with it); an operator's cancellation of the
  order cancels its open shipments. `reject_shipments` (the operator's block OR24 plays) refuses
  ST24 and ST01 `shipped: true` per shipment too.
- Tracking `validity_status`: MISSING_TRACKING without a tracking number, UNVERIFIED for a registered
  carrier (Mirakl has not heard from the carrier yet), UNCOVERED for an unregistered one.
- `status_customer_debit` is NO_DEBIT: the customer is debited per order (state.py), not per shipment.
- With the feature off, every ST call answers 400 (classic body). Real Mirakl's answer to a shop
  calling ST01 without the feature is not documented; this wording is ours.
"""

import base64
import binascii
import copy
import re
import threading
import uuid
from datetime import date, datetime
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode

from mirakl_pipelines.sandbox.mirakl.orders import refresh_flags
from mirakl_pipelines.sandbox.mirakl.state import (
    ORDER_IDS_LIMIT, MarketplaceSettings, MiraklApiError, _bad, _cancelled_units, _date, _int, resolve_tracking,
)
from mirakl_pipelines.sandbox.mirakl.wire import iso

SHIPMENT_STATUSES = (
    "SHIPPING", "READY_FOR_PICK_UP", "SHIPMENT_PREPARED", "SHIPPED", "TO_COLLECT", "RECEIVED", "CANCELED", "CLOSED",
)
DEBIT_STATUSES = (
    "NO_DEBIT", "NOT_STARTED", "WAITING_TAX_CONFIRMATION", "WAITING_OPERATOR_SYSTEM_CONTACT",
    "WAITING_DEBIT_CONFIRMATION", "DEBIT_OK", "CANCELED",
)
MAX_SHIPMENTS_PER_CALL = 1000  # ST01, ST23, ST24: "Limited to 1000 shipments at a time"
DEFAULT_LIMIT = 10  # seek pagination: "Limit from 10 (default) to 100 (max)" (NOTES §2.4)
MAX_LIMIT = 100  # larger values are clamped, as OR11's `max` is in this sandbox
SORT_FIELD = "dateCreated"  # ST11's only sort field, "asc by default"
FEATURE_OFF = (
    "The multiple shipments feature is not enabled for your shop on this marketplace: "
    "ship whole orders with OR23 and OR24"
)
_INVOICE_REFERENCE = re.compile(r"[0-9a-zA-Z_-]{0,255}")  # ST01's pattern and maxLength
_UUID_NAMESPACE = uuid.UUID("6f1c3b8e-2a49-4c1e-9a57-5d0b7c6e4f10")
# Shipment tracking (ST names) -> the order's tracking fields (OR11 names).
_ORDER_FIELDS = {
    "carrier_code": "shipping_carrier_code",
    "carrier_standard_code": "shipping_carrier_standard_code",
    "carrier_name": "shipping_company",
    "tracking_number": "shipping_tracking",
    "tracking_url": "shipping_tracking_url",
}
_TRACKING_FIELDS = tuple(_ORDER_FIELDS)


class ShipmentBook:
    """The shipments of one marketplace; shares the order store and the lock of its MarketplaceSim."""

    def __init__(self, settings: MarketplaceSettings, orders: dict[str, dict], lock: threading.RLock,
                 now: Callable[[], datetime]):
        self.settings = settings
        self._orders = orders
        self._lock = lock
        self._now = now
        self._shipments: dict[str, dict] = {}  # id -> shipment, private keys (`_seq`…) included
        self._seq = 0  # creation order, the tie-break of ST11's sort
        self._tracking_seq = 0  # which shipment was given tracking last (it shows on the order)

    # ---- API operations ------------------------------------------------------------------------

    def create(self, body: Any) -> dict:
        """ST01: the 201 body, `shipment_success` (the shipments as created) and `shipment_errors`."""
        shipments = self._items(body, "ST01")
        success, errors = [], []
        with self._lock:
            now = self._now()
            for item in shipments:
                order_id = item.get("order_id") if isinstance(item, dict) else None
                try:
                    order, shipment = self._new_shipment(item, now)
                except MiraklApiError as e:
                    errors.append({"message": e.message, "order_id": order_id if isinstance(order_id, str) else None})
                    continue
                self._shipments[shipment["id"]] = shipment
                self._settle(order, now)
                success.append(_public(shipment))
        return {"shipment_errors": errors, "shipment_success": success}

    def update_tracking(self, body: Any) -> dict:
        """ST23: new tracking for shipments by id; 200 with `shipment_success[{id}]` and `shipment_errors[{id, message}]`."""

        def apply(shipment: dict, item: dict, now: datetime) -> None:
            if shipment["status"] not in {"SHIPPING", "SHIPPED"}:
                raise _item_error(f"The shipment status must be 'SHIPPING' or 'SHIPPED' but it is '{shipment['status']}'.")
            if not isinstance(item.get("tracking"), dict):
                raise _item_error(f"tracking is required for shipment '{shipment['id']}'.")
            tracking = self._tracking(item["tracking"], shipment["order_id"])
            if tracking is None:
                raise _item_error(f"tracking of shipment '{shipment['id']}' has no field set.")
            self._set_tracking(shipment, tracking, now)

        return self._each_shipment(body, "ST23", apply)

    def ship(self, body: Any) -> dict:
        """ST24: SHIPPING -> SHIPPED for shipments by id; their orders follow when fully shipped."""

        def apply(shipment: dict, item: dict, now: datetime) -> None:
            if shipment["status"] != "SHIPPING":
                raise _item_error(f"The shipment status must be 'SHIPPING' but it is '{shipment['status']}'.")
            self._check_not_blocked(shipment["id"])
            shipment.update(status="SHIPPED", shipped_date=now, last_updated_date=now)

        return self._each_shipment(body, "ST24", apply)

    def _each_shipment(self, body: Any, operation: str, apply) -> dict:
        """ST23/ST24: `apply(shipment, item, now)` to each shipment named by id, then settle its order; a refusal
        (MiraklApiError) is that shipment's error, the others go on."""
        items = self._items(body, operation)
        success, errors = [], []
        with self._lock:
            now = self._now()
            for item in items:
                shipment_id = item.get("id") if isinstance(item, dict) else None
                try:
                    shipment = self._known(shipment_id)
                    apply(shipment, item, now)
                except MiraklApiError as e:
                    errors.append({"id": shipment_id if isinstance(shipment_id, str) else None, "message": e.message})
                    continue
                self._settle(self._orders[shipment["order_id"]], now)
                success.append({"id": shipment_id})
        return {"shipment_errors": errors, "shipment_success": success}

    def list_shipments(self, params: Mapping[str, str]) -> dict:
        """ST11: seek pagination (NOTES §2.4), `next_page_token`/`previous_page_token` absent at either end."""
        self._require_feature()
        query = _SeekQuery.parse(params)
        beyond = (lambda a, b: a < b) if query.descending else (lambda a, b: a > b)  # `a` comes after `b`
        with self._lock:
            ordered = sorted((s for s in self._shipments.values() if query.matches(s)),
                             key=_sort_key, reverse=query.descending)
            if query.after is not None:
                page = [s for s in ordered if beyond(_sort_key(s), query.after)][: query.limit]
            elif query.before is not None:
                page = [s for s in ordered if beyond(query.before, _sort_key(s))][-query.limit:]
            else:
                page = ordered[: query.limit]
            result: dict[str, Any] = {"data": [_public(s) for s in page]}
        if page and beyond(_sort_key(ordered[-1]), _sort_key(page[-1])):
            result["next_page_token"] = query.token("after", _sort_key(page[-1]))
        if page and beyond(_sort_key(page[0]), _sort_key(ordered[0])):
            result["previous_page_token"] = query.token("before", _sort_key(page[0]))
        return result

    # ---- hooks of the order state machine ------------------------------------------------------

    def order_shipped(self, order_id: str, at: datetime) -> None:
        """OR24 shipped the whole order: its open shipments are shipped with it."""
        with self._lock:
            for shipment in self._of_order(order_id):
                if shipment["status"] == "SHIPPING":
                    shipment.update(status="SHIPPED", shipped_date=at, last_updated_date=at)

    def order_canceled(self, order_id: str, at: datetime) -> None:
        """The order was canceled: its open shipments will never leave."""
        with self._lock:
            for shipment in self._of_order(order_id):
                if shipment["status"] == "SHIPPING":
                    shipment.update(status="CANCELED", last_updated_date=at)

    def settle(self, order_id: str) -> None:
        """Re-derive an order's line and order states from its shipments (e.g. after a line cancellation
        leaves only units already shipped)."""
        with self._lock:
            if order_id in self._orders:
                self._settle(self._orders[order_id], self._now())

    def of_order(self, order_id: str) -> list[dict]:
        """Internal view: one order's shipments, in creation order."""
        with self._lock:
            return [_public(s) for s in self._of_order(order_id)]

    def booked_units(self, order_id: str) -> dict[str, int]:
        """Units of each line of the order in its live (not CANCELED) shipments: they can no longer be cancelled."""
        units: dict[str, int] = {}
        with self._lock:
            for shipment in self._of_order(order_id):
                if shipment["status"] != "CANCELED":
                    for entry in shipment["shipment_lines"]:
                        units[entry["order_line_id"]] = units.get(entry["order_line_id"], 0) + entry["quantity"]
        return units

    # ---- validation ----------------------------------------------------------------------------

    def _require_feature(self) -> None:
        if not self.settings.multiple_shipments:
            raise MiraklApiError(400, "MULTIPLE_SHIPMENTS_DISABLED", FEATURE_OFF)

    def _items(self, body: Any, operation: str) -> list:
        self._require_feature()
        if not isinstance(body, dict) or not isinstance(body.get("shipments"), list) or not body["shipments"]:
            raise MiraklApiError(400, "VALIDATION_ERROR", f'{operation}: the body must be {{"shipments": [...]}} with at least one shipment')
        if len(body["shipments"]) > MAX_SHIPMENTS_PER_CALL:
            raise MiraklApiError(
                400, "VALIDATION_ERROR",
                f"{operation} is limited to {MAX_SHIPMENTS_PER_CALL} shipments at a time ({len(body['shipments'])} given)",
            )
        return body["shipments"]

    def _check_not_blocked(self, which: str) -> None:
        # reject_shipments (an operator blocking the shop, as OR24 plays it) refuses shipping a parcel too.
        if self.settings.reject_shipments:
            raise _item_error(f"Shipment {which} cannot be shipped: shipment validation is suspended for your shop by the operator.")

    def _known(self, shipment_id: Any) -> dict:
        if not isinstance(shipment_id, str) or not shipment_id:
            raise _item_error("The shipment id is required.")
        if shipment_id not in self._shipments:
            raise _item_error(f"No shipment with id '{shipment_id}'.")  # the spec's example message
        return self._shipments[shipment_id]

    def _new_shipment(self, item: Any, now: datetime) -> tuple[dict, dict]:
        """Validate one ST01 shipment whole; (its order, the new shipment) or MiraklApiError naming the problem."""
        if not isinstance(item, dict):
            raise _item_error("Each shipment must be a JSON object.")
        order_id = item.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise _item_error("The order_id of the shipment is required.")
        order = self._orders.get(order_id)
        if order is None:
            raise _item_error(f"No order with id '{order_id}'.")
        if order["order_state"] != "SHIPPING":
            raise _item_error(f"The order status must be 'SHIPPING' but it is '{order['order_state']}'.")  # spec example
        lines = self._shipment_lines(order, item.get("shipment_lines"))
        shipped = item.get("shipped")
        if shipped is not None and not isinstance(shipped, bool):
            raise _item_error("Error with field shipped. Please check the field datatype.")
        if shipped:
            self._check_not_blocked(f"of order {order_id}")
        invoice_reference = item.get("invoice_reference")
        if invoice_reference is not None and not (
            isinstance(invoice_reference, str) and _INVOICE_REFERENCE.fullmatch(invoice_reference)
        ):
            raise _item_error("invoice_reference must be at most 255 letters, digits, '_' or '-'.")
        tracking_in = item.get("tracking")
        if tracking_in is not None and not isinstance(tracking_in, dict):
            raise _item_error("Error with field tracking. Please check the field datatype.")
        tracking = self._tracking(tracking_in, order_id) if tracking_in else None
        additional_information = _additional_information(item.get("shipment_additional_information"))
        shipping_from = _shipping_from(item.get("shipping_from"))
        self._seq += 1
        shipment = {
            "created_date": now,
            "id": str(uuid.uuid5(_UUID_NAMESPACE, f"{self.settings.code}:{self._seq}")),
            "invoice_reference": invoice_reference,
            "last_updated_date": now,
            "order_id": order_id,
            "payment_details": None,
            "shipment_additional_information": additional_information,
            "shipment_lines": lines,
            "shipped_date": now if shipped else None,
            "shipping_from": shipping_from,
            "status": "SHIPPED" if shipped else "SHIPPING",
            "status_customer_debit": "NO_DEBIT",
            "tracking": _missing_tracking(),
            "_seq": self._seq,
        }
        if tracking is not None:
            self._set_tracking(shipment, tracking, now)
        return order, shipment

    def _shipment_lines(self, order: dict, lines: Any) -> list[dict]:
        if not isinstance(lines, list) or not lines:
            raise _item_error("The shipment must have at least one shipment line.")
        by_id = {line["order_line_id"]: line for line in order["order_lines"]}
        result, wanted = [], {}
        for index, entry in enumerate(lines):
            if not isinstance(entry, dict):
                raise _item_error(f"shipment_lines[{index}] must be a JSON object.")
            line = self._order_line(order, by_id, entry)
            quantity = entry.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                raise _item_error(f"Shipment quantity is invalid. shipment_lines[{index}]: {quantity!r} is not a whole number >= 1.")
            package = entry.get("package_reference")
            if package is not None and not isinstance(package, str):
                raise _item_error("Error with field package_reference. Please check the field datatype.")
            wanted[line["order_line_id"]] = wanted.get(line["order_line_id"], 0) + quantity
            result.append({"offer_sku": line["offer_sku"], "order_line_id": line["order_line_id"],
                           "package_reference": package, "quantity": quantity})
        for line_id, quantity in wanted.items():
            left = self._left_to_ship(order, by_id[line_id])
            if quantity > left:
                raise _item_error(
                    f"Shipment quantity is invalid. Order line '{line_id}': {quantity} to ship, {left} left to ship."
                )
        return result

    @staticmethod
    def _order_line(order: dict, by_id: dict[str, dict], entry: dict) -> dict:
        """The order line an entry names: by order_line_id, or by the deprecated offer_sku when it is unambiguous."""
        line_id, sku = entry.get("order_line_id"), entry.get("offer_sku")
        if line_id is not None:
            if not isinstance(line_id, str) or line_id not in by_id:
                raise _item_error(f"The order line '{line_id}' does not belong to order '{order['order_id']}'.")
            return by_id[line_id]
        matches = [line for line in order["order_lines"] if sku is not None and line["offer_sku"] == sku]
        if len(matches) != 1:
            what = "is not" if not matches else "is on several lines, give order_line_id instead,"
            raise _item_error(f"The offer sku '{sku}' {what} in order '{order['order_id']}'.")
        return matches[0]

    def _left_to_ship(self, order: dict, line: dict) -> int:
        if line["order_line_state"] != "SHIPPING":
            return 0
        return _live_units(line) - self.booked_units(order["order_id"]).get(line["order_line_id"], 0)

    def _tracking(self, raw: dict, order_id: str) -> dict | None:
        """ST tracking fields checked with OR23's carrier rules; None when no field is set."""
        fields = {}
        for name in ("carrier_code", "carrier_name", "carrier_standard_code", "tracking_number", "tracking_url"):
            value = raw.get(name)
            if value is not None and not isinstance(value, str):
                raise _item_error(f"Error with field tracking.{name}. Please check the field datatype.")
            fields[name] = value or None  # connectors send "" for unknown values
        if not any(fields.values()):
            return None
        or23 = {**fields, "carrier_url": fields["tracking_url"]}
        order_fields = resolve_tracking(self.settings, or23, f"order {order_id}")
        tracking = {name: order_fields[_ORDER_FIELDS[name]] for name in _TRACKING_FIELDS}
        registered = any(c["code"] == tracking["carrier_code"] for c in self.settings.carriers)
        validity = "UNVERIFIED" if registered else "UNCOVERED"
        return {**_missing_tracking(), **tracking,
                "validity_status": validity if tracking["tracking_number"] else "MISSING_TRACKING"}

    # ---- transitions ---------------------------------------------------------------------------

    def _set_tracking(self, shipment: dict, tracking: dict, now: datetime) -> None:
        self._tracking_seq += 1
        shipment.update(tracking=tracking, last_updated_date=now, _tracking_seq=self._tracking_seq)

    def _settle(self, order: dict, now: datetime) -> None:
        """Lines whose live units are all in SHIPPED shipments go SHIPPED, then the order when none is left
        SHIPPING; the order shows the latest shipment tracking. Stamps what changed."""
        shipments = self._of_order(order["order_id"])
        changed = False
        tracked = [s for s in shipments if s.get("_tracking_seq")]
        if tracked:
            latest = max(tracked, key=lambda s: s["_tracking_seq"])["tracking"]
            update = {_ORDER_FIELDS[name]: latest[name] for name in _TRACKING_FIELDS}
            changed = any(order.get(key) != value for key, value in update.items())
            order.update(update)
        shipped: dict[str, int] = {}
        for shipment in shipments:
            if shipment["status"] == "SHIPPED":
                for entry in shipment["shipment_lines"]:
                    shipped[entry["order_line_id"]] = shipped.get(entry["order_line_id"], 0) + entry["quantity"]
        for line in order["order_lines"]:
            units = _live_units(line)
            if line["order_line_state"] == "SHIPPING" and units > 0 and shipped.get(line["order_line_id"], 0) >= units:
                line.update(order_line_state="SHIPPED", shipped_date=now, last_updated_date=now)
                changed = True
        states = {line["order_line_state"] for line in order["order_lines"]}
        if order["order_state"] == "SHIPPING" and "SHIPPING" not in states and "SHIPPED" in states:
            order.update(order_state="SHIPPED", shipped_date=now)
            changed = True
        if changed:
            order["last_updated_date"] = now
            refresh_flags(order)

    def _of_order(self, order_id: str) -> list[dict]:
        return sorted((s for s in self._shipments.values() if s["order_id"] == order_id), key=lambda s: s["_seq"])


class _SeekQuery:
    """ST11's query, or the query a page token carries ("all other parameters are ignored when this token is present")."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = [(k, v) for k, v in pairs if k not in {"after", "before", "page_token", "shop_id"}]
        values: dict[str, list[str]] = {}
        for key, value in pairs:
            values.setdefault(key, []).append(value)
        single = {key: items[-1] for key, items in values.items()}
        self.limit = min(_int(single, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
        sort = single.get("sort") or f"{SORT_FIELD},ASC"
        field_name, _, direction = sort.partition(",")
        if field_name != SORT_FIELD or direction.upper() not in {"", "ASC", "DESC"}:
            raise _bad(f"Invalid value {sort} for the parameter : sort (ST11 sorts by {SORT_FIELD},ASC or {SORT_FIELD},DESC)")
        self.descending = direction.upper() == "DESC"
        self.order_ids = _listed(values, "order_id")
        if self.order_ids is not None and len(self.order_ids) > ORDER_IDS_LIMIT:
            raise _bad(f"The limit of {ORDER_IDS_LIMIT} is exceeded for the parameter : order_id")
        self.states = _listed(values, "shipment_state_code", SHIPMENT_STATUSES)
        self.debit_states = _listed(values, "shipment_customer_debit_state_code", DEBIT_STATUSES)
        self.updated_from = _date(single, "last_updated_from")
        self.updated_to = _date(single, "last_updated_to")
        self.after = _cursor(values.get("after"))
        self.before = _cursor(values.get("before"))

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> "_SeekQuery":
        items = params.multi_items() if hasattr(params, "multi_items") else list(params.items())
        token = next((value for key, value in items if key == "page_token"), None)
        if token is None:
            return cls(items)
        try:
            pairs = parse_qsl(base64.b64decode(token, validate=True).decode("utf-8"), strict_parsing=True)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pairs = None
        if not pairs or not any(key in {"after", "before"} for key, _ in pairs):
            raise _bad("Invalid value for the parameter : page_token (use the token of a previous ST11 response)")
        return cls(pairs)

    def token(self, direction: str, key: tuple[str, int]) -> str:
        """An opaque token like Mirakl's (base64 of `limit=…&after=<date>&after=<n>&sort=…`), carrying the filters."""
        pairs = [(k, v) for k, v in self.pairs if k not in {"limit", "sort"}]
        pairs = [("limit", str(self.limit)), (direction, key[0]), (direction, str(key[1])),
                 ("sort", f"{SORT_FIELD},{'DESC' if self.descending else 'ASC'}"), *pairs]
        return base64.b64encode(urlencode(pairs, safe=":,").encode()).decode()

    def matches(self, shipment: dict) -> bool:
        return (
            (self.order_ids is None or shipment["order_id"] in self.order_ids)
            and (self.states is None or shipment["status"] in self.states)
            and (self.debit_states is None or shipment["status_customer_debit"] in self.debit_states)
            and (self.updated_from is None or shipment["last_updated_date"] >= self.updated_from)
            and (self.updated_to is None or shipment["last_updated_date"] <= self.updated_to)
        )


def _item_error(message: str) -> MiraklApiError:
    """A per-shipment error: it goes into `shipment_errors`, the call itself succeeds."""
    return MiraklApiError(400, "SHIPMENT_INVALID", message)


def _live_units(line: dict) -> int:
    """Units of a line that may still ship or have shipped: ordered minus cancelled; none on a refused or canceled line."""
    if line["order_line_state"] in {"REFUSED", "CANCELED"}:
        return 0
    return line["quantity"] - _cancelled_units(line)


def _sort_key(shipment: dict) -> tuple[str, int]:
    return iso(shipment["created_date"]), shipment["_seq"]


def _cursor(values: list[str] | None) -> tuple[str, int] | None:
    if not values:
        return None
    if len(values) != 2 or not values[1].isdigit():
        raise _bad("Invalid value for the parameter : page_token (use the token of a previous ST11 response)")
    return values[0], int(values[1])


def _listed(values: dict[str, list[str]], name: str, allowed: tuple[str, ...] | None = None) -> set[str] | None:
    """A list filter given as repeated keys (the spec's form) or comma-separated (accepted too, NOTES §2.3)."""
    if name not in values:
        return None
    items = {part.strip() for value in values[name] for part in value.split(",") if part.strip()}
    unknown = sorted(items - set(allowed)) if allowed else []
    if unknown:
        raise _bad(f"Invalid value {', '.join(unknown)} for the parameter : {name}")
    return items or None


def _missing_tracking() -> dict:
    return {"carrier_code": None, "carrier_name": None, "carrier_standard_code": None, "tracking_number": None,
            "tracking_url": None, "last_known_location": None, "milestones": [], "validity_status": "MISSING_TRACKING"}


def _shipping_from(raw: Any) -> dict | None:
    if raw is None:
        return None
    warehouse = raw.get("warehouse") if isinstance(raw, dict) else None
    code = warehouse.get("code") if isinstance(warehouse, dict) else None
    if not isinstance(raw, dict) or (warehouse is not None and not isinstance(warehouse, dict)) or (
        code is not None and not isinstance(code, str)
    ):
        raise _item_error("Error with field shipping_from. Please check the field datatype.")
    return {"address": None, "warehouse": {"code": code} if code else None}


def _additional_information(raw: Any) -> list[dict]:
    """ST01's STRING/DATE additional fields, echoed back; a DATE value must be a date (2024-01-01)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _item_error("Error with field shipment_additional_information. Please check the field datatype.")
    result = []
    for index, entry in enumerate(raw):
        where = f"shipment_additional_information[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("code"), str) or not entry["code"]:
            raise _item_error(f"{where} needs a code.")
        if entry.get("type") not in {"STRING", "DATE"} or not isinstance(entry.get("value"), str):
            raise _item_error(f"{where}: type must be STRING or DATE, with a string value.")
        if entry["type"] == "DATE":
            try:
                date.fromisoformat(entry["value"])
            except ValueError:
                raise _item_error(f"{where}: {entry['value']!r} is not a date (e.g. 2024-01-01).") from None
        result.append({"code": entry["code"], "type": entry["type"], "value": entry["value"]})
    return result


def _public(shipment: dict) -> dict:
    return copy.deepcopy({key: value for key, value in shipment.items() if not key.startswith("_")})
