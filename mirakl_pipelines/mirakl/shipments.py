"""Pydantic models of Mirakl's multiple-shipments payloads (ST01, ST11, ST23, ST24; NOTES §3.15).

A shipment is one parcel of one order: units of some of its lines, with its own tracking. Read
models are lenient like models.py (extra fields allowed, statuses as plain strings); the request
model checks what Mirakl would refuse anyway (no line, quantity below 1) before anything is sent.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mirakl_pipelines.mirakl.models import MiraklModel

MAX_SHIPMENTS_PER_CALL = 1000  # ST01, ST23, ST24: "Limited to 1000 shipments at a time"
_TRACKING_REQUEST_FIELDS = ("carrier_code", "carrier_name", "carrier_standard_code", "tracking_number", "tracking_url")


class ShipmentTracking(MiraklModel):
    """A parcel's carrier and tracking: a registered carrier by `carrier_code` (Mirakl computes the URL),
    an unregistered one by `carrier_name` and optionally `tracking_url`."""

    carrier_code: Optional[str] = None
    carrier_name: Optional[str] = None
    carrier_standard_code: Optional[str] = None
    tracking_number: Optional[str] = None
    tracking_url: Optional[str] = None
    validity_status: Optional[str] = None  # read only: MISSING_TRACKING | UNVERIFIED | UNCOVERED | INVALID | VERIFIED

    @classmethod
    def from_order_tracking(cls, payload: Mapping[str, str]) -> "ShipmentTracking":
        """From OR23's keyword arguments (sync.shipments.tracking_payload): OR23's `carrier_url` is ST's `tracking_url`."""
        fields = dict(payload)
        if "carrier_url" in fields:
            fields["tracking_url"] = fields.pop("carrier_url")
        return cls(**fields)

    def to_payload(self) -> dict[str, str]:
        return {name: value for name in _TRACKING_REQUEST_FIELDS if (value := getattr(self, name))}


class ShipmentLine(MiraklModel):
    order_line_id: Optional[str] = None
    quantity: int
    package_reference: Optional[str] = None
    offer_sku: Optional[str] = None  # deprecated by Mirakl in requests ("Use order_line_id instead"); read only here


class NewShipment(BaseModel):
    """One parcel to create with ST01.

    `package_reference` is the caller's stable key for the parcel (e.g. the Shopify fulfilment id):
    it is written on every line and comes back in ST11, which is how `MiraklClient.find_shipment`
    recognises a shipment created by a call whose answer was lost.
    """

    model_config = ConfigDict(frozen=True)

    order_id: str = Field(min_length=1)
    lines: Mapping[str, int] = Field(min_length=1)  # order_line_id -> quantity (>= 1)
    tracking: Optional[ShipmentTracking] = None
    shipped: bool = False  # True: shipped as it is created (no ST24 needed)
    package_reference: Optional[str] = None
    invoice_reference: Optional[str] = Field(default=None, max_length=255, pattern=r"^[0-9a-zA-Z_-]*$")
    warehouse_code: Optional[str] = None

    @field_validator("lines")
    @classmethod
    def _whole_units(cls, lines: Mapping[str, int]) -> Mapping[str, int]:
        wrong = {line_id: quantity for line_id, quantity in lines.items() if not line_id or quantity < 1}
        if wrong:
            raise ValueError(f"quantities must be >= 1 per order line id, got {wrong}")
        return lines

    def to_payload(self) -> dict:
        lines = []
        for line_id, quantity in self.lines.items():
            line = {"order_line_id": line_id, "quantity": quantity}
            if self.package_reference:
                line["package_reference"] = self.package_reference
            lines.append(line)
        payload: dict = {"order_id": self.order_id, "shipment_lines": lines, "shipped": self.shipped}
        if self.tracking is not None and self.tracking.to_payload():
            payload["tracking"] = self.tracking.to_payload()
        if self.invoice_reference:
            payload["invoice_reference"] = self.invoice_reference
        if self.warehouse_code:
            payload["shipping_from"] = {"warehouse": {"code": self.warehouse_code}}
        return payload


class Shipment(MiraklModel):
    """A shipment as ST01 and ST11 return it."""

    id: str
    order_id: str
    status: Optional[str] = None  # SHIPPING | SHIPPED | CANCELED | … (kept as text: Mirakl adds values)
    created_date: Optional[datetime] = None
    last_updated_date: Optional[datetime] = None
    shipped_date: Optional[datetime] = None
    shipment_lines: list[ShipmentLine] = Field(default_factory=list)
    tracking: Optional[ShipmentTracking] = None
    invoice_reference: Optional[str] = None
    status_customer_debit: Optional[str] = None

    @property
    def package_references(self) -> set[str]:
        return {line.package_reference for line in self.shipment_lines if line.package_reference}

    @property
    def quantities(self) -> dict[str, int]:
        """order_line_id -> units in this shipment."""
        result: dict[str, int] = {}
        for line in self.shipment_lines:
            if line.order_line_id:
                result[line.order_line_id] = result.get(line.order_line_id, 0) + line.quantity
        return result


class ShipmentError(MiraklModel):
    """ST01's per-shipment error: Mirakl names the order, not the shipment."""

    message: Optional[str] = None
    order_id: Optional[str] = None


class ShipmentItemError(MiraklModel):
    """ST23/ST24's per-shipment error."""

    id: Optional[str] = None
    message: Optional[str] = None


@dataclass(frozen=True)
class ShipmentOutcome:
    """What became of one requested shipment: created (`shipment`), refused (`error`), or neither when
    Mirakl's answer did not mention its order (then look it up before sending it again)."""

    request: NewShipment
    shipment: Optional[Shipment] = None
    error: Optional[str] = None

    @property
    def answered(self) -> bool:
        return self.shipment is not None or self.error is not None


@dataclass
class ShipmentResults:
    """ST01's answers, one outcome per requested shipment, in the order they were given."""

    outcomes: list[ShipmentOutcome] = field(default_factory=list)

    @property
    def created(self) -> list[Shipment]:
        return [o.shipment for o in self.outcomes if o.shipment is not None]

    @property
    def failed(self) -> list[ShipmentOutcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def unanswered(self) -> list[ShipmentOutcome]:
        return [o for o in self.outcomes if not o.answered]


@dataclass
class ShipmentUpdateResults:
    """ST23/ST24's answers: shipment ids updated, ids refused (with Mirakl's message), and for ST24 the ids
    Mirakl says are already shipped (a repeat of a call that went through: not an error)."""

    succeeded: list[str] = field(default_factory=list)
    errors: list[ShipmentItemError] = field(default_factory=list)
    already_shipped: list[str] = field(default_factory=list)
