"""When a Mirakl order ships, and what OR23 carries, from the Shopify fulfilments of its lines.

Every Shopify line item the importer creates carries the Mirakl order line id as a property
(``LINE_ID_PROPERTY``), so fulfilled quantities are summed per Mirakl line over every fulfilment
of the order (cancelled fulfilments do not count).

Without Mirakl's multiple-shipments feature, OR24 ships the WHOLE order (every line) and OR23 holds a
single tracking per order. Hence:
- the order ships (OR23 + OR24) once every live unit is fulfilled, never before: an OR24 after the first
  parcel would mark lines shipped that have not left the warehouse;
- with ``partial_shipments`` true, the customer gets tracking early: each parcel's tracking is sent with
  OR23 as it ships ("track"), OR24 still waiting for the rest;
- Mirakl gets the latest fulfilment's tracking (by creation time, then id): that is the parcel still
  travelling, and the earlier numbers stay in Shopify. ``tracking_differs`` tells whether Mirakl already
  shows a tracking: after an OR23 whose outcome was lost, the push reads the order back instead of resending.
With the feature (``fulfilments.multiple_shipments``), each parcel is its own Mirakl shipment (ST01) with its
lines, quantities and tracking, and the order ships with its last parcel: ``parcel_lines`` says what a
parcel ships.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from mirakl_pipelines.mirakl.models import SHIPPED_STATES, MiraklOrder
from mirakl_pipelines.sync.carriers import CarrierChoice
from mirakl_pipelines.sync.order_lines import live_order_lines, live_quantity
from mirakl_pipelines.shopify.models import Fulfilment, mirakl_line_id, parse_shopify_time, quantities_by_mirakl_line

ACTIONS = ("ship", "track", "wait", "done", "skip")
# Mirakl takes OR23/OR24 only in SHIPPING (NOTES §3.4); SHIPPED_STATES come after a successful OR24.
BEFORE_SHIPPING_STATES = frozenset({"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"})
DEAD_ORDER_STATES = frozenset({"REFUSED", "CANCELED"})


@dataclass(frozen=True)
class LineProgress:
    order_line_id: str
    sku: Optional[str]
    required: int  # live units: ordered minus cancelled (order_lines.live_quantity)
    fulfilled: int

    @property
    def complete(self) -> bool:
        return self.fulfilled >= self.required


@dataclass(frozen=True)
class ShipmentDecision:
    """``ship``: send OR23 then OR24; ``track``: send the latest parcel's tracking (OR23) only, OR24 waiting for
    the rest (reason says what); ``wait``: not yet (reason); ``done``: Mirakl already shipped it; ``skip``: the
    order will never ship in Mirakl (refused, canceled), reason says why."""

    action: str
    order_id: str
    reason: Optional[str] = None
    lines: tuple[LineProgress, ...] = ()
    partial: bool = False  # some live units are not fulfilled yet (a "track" decision)
    unmatched_line_ids: tuple[str, ...] = field(default=())  # fulfilled line ids this order does not have

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown shipment action {self.action!r}; expected one of {ACTIONS}")


def fulfilment_from_webhook(payload: Mapping[str, Any]) -> Fulfilment:
    """A `fulfillments/create|update` delivery (REST shape, shopify/NOTES.md §4.5) as a Fulfilment."""
    lines = quantities_by_mirakl_line((item.get("properties"), item.get("quantity")) for item in payload.get("line_items") or [])
    order_id = payload.get("order_id")
    numbers = tuple(n for n in payload.get("tracking_numbers") or () if n) or tuple(
        n for n in (payload.get("tracking_number"),) if n)
    urls = tuple(u for u in payload.get("tracking_urls") or () if u) or tuple(u for u in (payload.get("tracking_url"),) if u)
    return Fulfilment(
        fulfilment_id=payload.get("admin_graphql_api_id") or f"gid://shopify/Fulfillment/{payload['id']}",
        created_at=parse_shopify_time(payload.get("created_at")),
        lines=lines,
        tracking_company=payload.get("tracking_company"),
        tracking_number=payload.get("tracking_number") or next(iter(numbers), None),
        tracking_url=payload.get("tracking_url") or next(iter(urls), None),
        tracking_numbers=numbers,
        tracking_urls=urls,
        status=str(payload.get("status") or "success").upper(),
        order_id=f"gid://shopify/Order/{order_id}" if order_id is not None else None,
        name=payload.get("name"),
        updated_at=parse_shopify_time(payload.get("updated_at")),
    )


def fulfilled_quantities(fulfilments: Iterable[Fulfilment]) -> dict[str, int]:
    """Quantity fulfilled per Mirakl order line id, summed over the fulfilments that count."""
    totals: dict[str, int] = {}
    for fulfilment in fulfilments:
        if not fulfilment.counts:
            continue
        for line_id, quantity in fulfilment.lines.items():
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
                raise ValueError(
                    f"fulfilment {fulfilment.fulfilment_id}: quantity for Mirakl line {line_id} must be a whole "
                    f"number >= 0 (got {quantity!r})"
                )
            totals[line_id] = totals.get(line_id, 0) + quantity
    return totals


def latest_tracking(fulfilments: Iterable[Fulfilment]) -> Optional[Fulfilment]:
    """The fulfilment whose tracking Mirakl gets: the latest one that counts and has a tracking number or company."""
    candidates = [f for f in fulfilments if f.counts and (f.tracking_number or f.tracking_company)]
    return max(candidates, key=lambda f: (f.created_at, f.fulfilment_id), default=None)


def decide_shipment(order: MiraklOrder, fulfilled: Mapping[str, int], *, partial_shipments: bool) -> ShipmentDecision:
    """Whether `order` ships now, given the quantities fulfilled in Shopify per Mirakl line id."""
    lines = tuple(
        LineProgress(line.order_line_id, line.sku, live_quantity(line), fulfilled.get(line.order_line_id, 0))
        for line in live_order_lines(order)
    )
    known = {line.order_line_id for line in order.order_lines}
    unmatched = tuple(sorted(line_id for line_id, qty in fulfilled.items() if qty and line_id not in known))
    decision = _Builder(order.order_id, lines, unmatched)
    settled = state_decision(order)
    if settled is not None:
        return decision(settled.action, settled.reason)

    if all(line.complete for line in lines):
        return decision("ship")
    started = [line for line in lines if line.fulfilled > 0]
    missing = "; ".join(_progress(line) for line in lines if not line.complete)
    if partial_shipments and started:
        return decision("track", f"order {order.order_id}: tracking sent for the parcels so far; OR24 ships every "
                                 f"line, so it waits for the rest: {missing}", partial=True)
    if not started:
        return decision("wait", f"order {order.order_id}: nothing fulfilled in Shopify yet ({missing})")
    return decision(
        "wait",
        f"order {order.order_id}: partly fulfilled and this marketplace ships only complete orders "
        f"(fulfilments.partial_shipments is false); still to fulfil: {missing}",
    )


def state_decision(order: MiraklOrder) -> Optional[ShipmentDecision]:
    """What the order's Mirakl state alone decides, whatever was fulfilled: ``done`` (shipped already), ``skip``
    (refused, canceled, nothing left to ship) or ``wait`` (not in SHIPPING yet); None when it may ship."""
    oid, state = order.order_id, order.order_state
    if state in SHIPPED_STATES:
        return ShipmentDecision("done", oid, f"order {oid} is already {state} in Mirakl")
    if state in DEAD_ORDER_STATES:
        return ShipmentDecision("skip", oid, f"order {oid} is {state} in Mirakl: it will never ship there")
    if state != "SHIPPING":
        why = "Mirakl accepts tracking and shipment only in SHIPPING"
        if state in BEFORE_SHIPPING_STATES:
            why += " (the customer's debit or the acceptance is still pending)"
        return ShipmentDecision("wait", oid, f"order {oid} is {state or 'in an unknown state'}: {why}")
    if not live_order_lines(order):
        return ShipmentDecision("skip", oid, f"order {oid} has no line left to ship (all refused or canceled)")
    return None


def parcel_lines(order: MiraklOrder, parcel: Mapping[str, int], shipped: Mapping[str, int]) -> dict[str, int]:
    """The units a parcel ships as a Mirakl shipment: its Mirakl lines' quantities, limited to the live lines and
    to the units not already in earlier shipments (`shipped`: line id -> units), so cancelled units never ship."""
    left = {line.order_line_id: live_quantity(line) - shipped.get(line.order_line_id, 0) for line in live_order_lines(order)}
    return {line_id: min(units, left[line_id]) for line_id, units in parcel.items()
            if units > 0 and left.get(line_id, 0) > 0}


def tracking_payload(choice: CarrierChoice, tracking_number: Optional[str]) -> dict[str, str]:
    """The keyword arguments of MiraklClient.update_tracking (OR23) for `choice` and `tracking_number`.

    A registered carrier goes by code only (Mirakl computes its URL); an unregistered one by name and URL.
    """
    number = (tracking_number or "").strip() or None
    if choice.kind == "unknown":
        raise ValueError(f"cannot send tracking for an unknown carrier: {choice.reason}")
    if choice.kind == "registered":
        if choice.needs_tracking_number and number is None:
            raise ValueError(
                f"carrier {choice.carrier_code} of marketplace {choice.marketplace} needs a tracking number "
                f"(its tracking URL is built from it), and the fulfilment has none"
            )
        payload = {"carrier_code": choice.carrier_code}
    else:
        payload = {"carrier_name": choice.carrier_name}
        if choice.carrier_url:
            payload["carrier_url"] = choice.carrier_url
    if number is not None:
        payload["tracking_number"] = number
    return payload


def tracking_differs(order: MiraklOrder, payload: Mapping[str, str]) -> bool:
    """Whether OR23 with `payload` would change what Mirakl shows (False after an OR23 that already went through)."""
    if payload.get("tracking_number") != order.shipping_tracking:
        return True
    if "carrier_code" in payload:
        return payload["carrier_code"] != order.shipping_carrier_code
    return payload.get("carrier_name") != order.shipping_company


def _progress(line: LineProgress) -> str:
    sku = f" ({line.sku})" if line.sku else ""
    return f"line {line.order_line_id}{sku} {line.fulfilled} of {line.required} fulfilled"


class _Builder:
    def __init__(self, order_id: str, lines: tuple[LineProgress, ...], unmatched: tuple[str, ...]):
        self.order_id, self.lines, self.unmatched = order_id, lines, unmatched

    def __call__(self, action: str, reason: Optional[str] = None, partial: bool = False) -> ShipmentDecision:
        if self.unmatched:
            note = f"fulfilled line id(s) not in Mirakl order {self.order_id}: {', '.join(self.unmatched)}"
            reason = f"{reason}; {note}" if reason else note
        return ShipmentDecision(action, self.order_id, reason, self.lines, partial, self.unmatched)


__all__ = [
    "Fulfilment", "LineProgress", "fulfilment_from_webhook", "ShipmentDecision", "decide_shipment", "fulfilled_quantities", "latest_tracking",
    "mirakl_line_id", "parcel_lines", "state_decision", "tracking_differs", "tracking_payload",
]
