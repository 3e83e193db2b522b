"""The marketplace configuration file: which Shopify store, which Mirakl marketplaces, and how each flow behaves.

One YAML file (``data/marketplaces.yaml`` by default, or ``$MIRAKL_PIPELINES_CONFIG``) validated
with pydantic. Secrets are never in the file: it names the environment variables that hold them.
An invalid file fails at load with the file, the field and what was expected.
"""

import os
import re
import string
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal, Optional
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "data" / "marketplaces.yaml"
CONFIG_ENV_VAR = "MIRAKL_PIPELINES_CONFIG"
# Sandbox runs only: shrink Mirakl's documented call intervals (the sandbox is told the same scale).
RATE_LIMIT_SCALE_ENV = "MIRAKL_PIPELINES_RATE_LIMIT_SCALE"


class ConfigError(ValueError):
    """The configuration file is missing or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShopifyStoreConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    shop_url: str = Field(description="https://<shop>.myshopify.com, or the sandbox's http://127.0.0.1:<port>")
    api_version: str = "2026-07"
    access_token_env: str = "SHOPIFY_ACCESS_TOKEN"
    webhook_secret_env: str = "SHOPIFY_WEBHOOK_SECRET"
    admin_url: Optional[str] = Field(
        default=None, description="Base of the admin links put in metadata, e.g. https://admin.shopify.com/store/<handle>"
    )
    currency: str = "EUR"

    @property
    def admin_base(self) -> str:
        return (self.admin_url or f"{self.shop_url.rstrip('/')}/admin").rstrip("/")

    def admin_order_url(self, legacy_id: str | int) -> str:
        return f"{self.admin_base}/orders/{legacy_id}"


class AcceptanceConfig(_Strict):
    mode: Literal["auto", "after_import", "manual"] = "auto"
    window_hours: float = Field(default=72, gt=0, description="the marketplace's acceptance window")
    refuse_unservable: bool = Field(
        default=False, description="refuse lines that cannot be served instead of leaving the order to an operator"
    )
    retries: int = Field(default=3, ge=0, le=10)


class OrderImportConfig(_Strict):
    states: list[str] = Field(default_factory=lambda: ["SHIPPING"], min_length=1)
    paid_only: bool = True
    require_shipping_address: bool = True
    tax_mode: Literal["TAX_INCLUDED", "TAX_EXCLUDED"] = "TAX_INCLUDED"
    source_name: str = "mirakl"
    tags: list[str] = Field(default_factory=lambda: ["mirakl"])
    inventory_behaviour: Literal["BYPASS", "DECREMENT_IGNORING_POLICY", "DECREMENT_OBEYING_POLICY"] = (
        "DECREMENT_IGNORING_POLICY"
    )
    gateway: str = "mirakl"
    send_receipt: bool = False
    commission_metafield_namespace: str = "mirakl"
    import_deadline_minutes: int = Field(default=30, ge=1, description="an eligible order not in Shopify after this is an error")
    cancellation_amounts: Literal["auto", "as_ordered", "net_of_cancellations"] = Field(
        default="auto",
        description="whether a line's amounts stay as ordered once units are cancelled (the spec's example) or are "
                    "net of its cancellations; auto tells it from each line's price and refuses a line nothing tells",
    )

    @field_validator("states")
    @classmethod
    def _known_states(cls, states: list[str]) -> list[str]:
        known = {
            "STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED",
            "TO_COLLECT", "RECEIVED", "CLOSED", "REFUSED", "CANCELED",
        }
        unknown = [s for s in states if s not in known]
        if unknown:
            raise ValueError(f"unknown Mirakl order state(s) {unknown}; expected some of {sorted(known)}")
        return states


class ScheduleConfig(_Strict):
    cron: str = "*/15 * * * *"
    overlap_minutes: int = Field(
        default=2, ge=0, le=60,
        description="a refresh fetches from the previous refresh's window end minus this overlap (clocks, Mirakl's latency)",
    )
    lookback_minutes: int = Field(
        default=120, ge=0, le=24 * 60,
        description="how far a day's first refresh reaches into the previous day when that day has no watermark",
    )
    closeout_cron: str = "30 2 * * *"

    @field_validator("cron", "closeout_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return _valid_cron_expression(value)


def _valid_cron_expression(value: str) -> str:
    from dagster._utils.schedules import is_valid_cron_string

    if not is_valid_cron_string(value):
        raise ValueError(f"{value!r} is not a valid cron expression (five fields, e.g. '*/15 * * * *')")
    return value


INVOICE_PLACEHOLDERS = ("order_name", "mirakl_order_id", "shopify_order_id")


class InvoiceConfig(_Strict):
    """Optional OR74 upload of the customer invoice once the order ships."""

    enabled: bool = False
    type_code: str = Field(default="CUSTOMER_INVOICE", pattern=r"^[A-Z][A-Z0-9_]*$", description="a DO01 document type code")
    source: Optional[str] = Field(
        default=None,
        validate_default=True,
        description="file path or http(s) URL template using {order_name}, {mirakl_order_id}, {shopify_order_id}",
    )

    missing_after_hours: int = Field(
        default=24, ge=1, description="an invoice still missing this long after the order shipped is an exception"
    )
    authorization_env: Optional[str] = Field(
        default=None, pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="environment variable holding the Authorization header sent to a URL source (e.g. 'Bearer …')",
    )

    @field_validator("source")
    @classmethod
    def _valid_source(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        if value is None or not value.strip():
            if info.data.get("enabled"):
                raise ValueError(
                    "required when invoice.enabled is true: a file path or URL template such as "
                    "'invoices/{order_name}.pdf' or 'https://erp.example.com/invoices/{shopify_order_id}.pdf'"
                )
            return None
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as e:
            raise ValueError(f"{value!r} is not a valid template ({e}); use {{name}} placeholders") from None
        unknown = sorted({name for name in names if name not in INVOICE_PLACEHOLDERS})
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {unknown} in {value!r}; known: {', '.join('{' + n + '}' for n in INVOICE_PLACEHOLDERS)}"
            )
        return value

    @property
    def is_url(self) -> bool:
        return bool(self.source) and self.source.lower().startswith(("http://", "https://"))

    def render(self, *, order_name: str, mirakl_order_id: str, shopify_order_id: str) -> str:
        """The invoice's location for one order. Values are URL-quoted in a URL, and kept to one path segment in a path."""
        if not self.source:
            raise ValueError("invoice.source is not set: nothing to render")
        values = {"order_name": order_name, "mirakl_order_id": mirakl_order_id, "shopify_order_id": shopify_order_id}
        if self.is_url:
            values = {name: quote(str(v), safe="") for name, v in values.items()}
        else:  # a Shopify order name such as "#1001/B" must not climb out of the invoice folder
            values = {name: re.sub(r"[\\/]|\.\.", "_", str(v)) for name, v in values.items()}
        return self.source.format(**values)


class FulfilmentsConfig(_Strict):
    partial_shipments: bool = Field(
        default=False,
        description="send each parcel's tracking (OR23) as it ships; OR24, which ships every line, still waits for all",
    )
    multiple_shipments: bool = Field(
        default=False,
        description="the marketplace has Mirakl's multiple-shipments feature: one shipment per parcel (ST01) with its "
                    "lines, quantities and tracking; the order ships with its last parcel",
    )
    accepts_unregistered_carriers: bool = Field(
        default=False, description="send carrier_name + carrier_url for a carrier missing from the map, instead of an exception"
    )
    unacknowledged_after_minutes: int = Field(
        default=60, ge=1, description="a fulfilment whose Mirakl order is not SHIPPED after this is an error"
    )
    invoice: InvoiceConfig = Field(default_factory=InvoiceConfig)
    sweep_cron: str = "*/30 * * * *"
    carriers_file: str = Field(default="data/carriers.yaml", min_length=1)

    @field_validator("sweep_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return _valid_cron_expression(value)


class StockConfig(_Strict):
    """How Shopify inventory becomes this marketplace's offer stock (STO01), and when the stock-delta check complains."""

    enabled: bool = True
    locations: list[str] = Field(
        default_factory=list,
        description="Shopify locations whose `available` counts, each a name, a gid://shopify/Location/… id or the "
                    "number in the admin URL; empty = every active location",
    )
    mode: Literal["sum", "single"] = Field(
        default="sum", description="sum the counted locations, or publish the one location listed in `locations`"
    )
    buffer_units: int = Field(default=0, ge=0, description="units held back from every SKU's servable quantity")
    buffer_percent: Decimal = Field(
        default=Decimal(0), ge=0, le=100, decimal_places=4,
        description="percent held back after buffer_units; the published quantity is rounded down",
    )
    cap: Optional[int] = Field(default=None, ge=0, description="never publish more than this per offer")
    zero_below: int = Field(default=0, ge=0, description="a computed quantity below this is published as 0")
    sku_map_file: Optional[str] = Field(
        default=None, min_length=1,
        description="CSV of offer-sku exceptions (marketplace,offer_sku,shopify_sku), relative to the project like "
                    "carriers_file; without it offer-sku = Shopify SKU",
    )
    cron: str = Field(default="*/15 * * * *", description="pushes of the SKUs that changed since the last push")
    full_cron: str = Field(default="0 3 * * *", description="pushes of every SKU (the slower full file)")
    debounce_seconds: int = Field(
        default=10, ge=0, le=900,
        description="a push waits until the first of a burst of inventory_levels/update webhooks is this old, so the "
                    "burst yields one push (STO01's once-a-minute limit coalesces more)"
    )
    tolerance: int = Field(
        default=0, ge=0, description="units a SKU may differ by, beyond in-flight orders, before stock_delta counts it"
    )
    max_differing_skus: int = Field(
        default=10, ge=0, description="stock_delta is an ERROR when more SKUs than this differ beyond tolerance"
    )
    shopify_bulk_threshold: int = Field(
        default=5000, ge=1, description="read Shopify inventory with a bulk operation above this many variants"
    )
    mirakl_export_threshold: int = Field(
        default=2000, ge=1, description="read Mirakl offers with the asynchronous export (OF52) above this many offers"
    )
    import_timeout_seconds: int = Field(
        default=600, ge=1, description="a stock import (STO02) not COMPLETE or FAILED after this is an error"
    )

    @field_validator("locations")
    @classmethod
    def _named_locations(cls, locations: list[str]) -> list[str]:
        blank = [i for i, entry in enumerate(locations) if not entry.strip()]
        if blank:
            raise ValueError(f"location entries {blank} are empty; write a location name, gid or numeric id")
        return [entry.strip() for entry in locations]

    @field_validator("mode")
    @classmethod
    def _single_names_one(cls, mode: str, info: ValidationInfo) -> str:
        locations = info.data.get("locations")
        if mode == "single" and locations is not None and len(locations) != 1:
            raise ValueError(
                f"mode 'single' publishes one location's stock: list exactly one in stock.locations (got {len(locations)})"
            )
        return mode

    @field_validator("zero_below")
    @classmethod
    def _cap_above_threshold(cls, zero_below: int, info: ValidationInfo) -> int:
        cap = info.data.get("cap")
        # cap 0 deliberately publishes 0 everywhere (a paused marketplace); 0 < cap < zero_below does so by accident.
        if cap and cap < zero_below:
            raise ValueError(f"zero_below {zero_below} is above cap {cap}: every SKU would be published as 0")
        return zero_below

    @field_validator("cron", "full_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        return _valid_cron_expression(value)


class MarketplaceConfig(_Strict):
    code: str = Field(pattern=r"^[a-z0-9_]+$", description="short id used in partitions and paths, e.g. decathlon_fr")
    name: str
    base_url: str = Field(pattern=r"^https?://")
    api_key_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    shop_id: Optional[int] = None
    shopify_store: Optional[str] = None
    currency: str = "EUR"
    call_frequency: Literal["default", "external_partner"] = "default"
    orders: OrderImportConfig = Field(default_factory=OrderImportConfig)
    acceptance: AcceptanceConfig = Field(default_factory=AcceptanceConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    fulfilments: FulfilmentsConfig = Field(default_factory=FulfilmentsConfig)
    stock: StockConfig = Field(default_factory=StockConfig)

    @model_validator(mode="after")
    def _acceptance_fits_import(self) -> "MarketplaceConfig":
        if self.acceptance.mode == "after_import" and (
            "WAITING_ACCEPTANCE" not in self.orders.states or self.orders.paid_only
        ):
            raise ValueError(
                "acceptance.mode 'after_import' imports orders before they are accepted: "
                "add WAITING_ACCEPTANCE to orders.states and set orders.paid_only: false"
            )
        return self


class AlertsConfig(_Strict):
    webhook_url_env: Optional[str] = Field(default=None, description="env var holding e.g. a Slack incoming-webhook URL")


class WebhooksConfig(_Strict):
    dagster_graphql_url: Optional[str] = Field(
        default=None, pattern=r"^https?://",
        description="the Dagster webserver's GraphQL endpoint (e.g. http://127.0.0.1:3000/graphql): the receiver asks it "
                    "to start a fulfilment's push run as soon as the delivery is stored; absent, the fulfilment_inbox "
                    "sensor alone starts it (0-5 s later, on its next tick)")


class Settings(_Strict):
    partitions_start_date: str = Field(default="2026-01-01", pattern=r"^\d{4}-\d{2}-\d{2}$")
    ledger_url_env: str = "MIRAKL_PIPELINES_LEDGER_URL"
    ledger_default_url: str = "sqlite:///data/ledger.sqlite"
    warehouse_path: str = "data/warehouse"
    schedules_running: bool = True
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    shopify_stores: list[ShopifyStoreConfig] = Field(min_length=1)
    marketplaces: list[MarketplaceConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        problems = []
        seen: set[str] = set()
        stores = {s.name for s in self.shopify_stores}
        for i, m in enumerate(self.marketplaces):
            if m.code in seen:
                problems.append((("marketplaces", i, "code"), m.code, f"marketplace code {m.code!r} is used twice; codes must be unique"))
            seen.add(m.code)
            if m.shopify_store is not None and m.shopify_store not in stores:
                problems.append((("marketplaces", i, "shopify_store"), m.shopify_store,
                                 f"no shopify_stores entry is named {m.shopify_store!r}; known: {sorted(stores)}"))
        if problems:
            # Located errors, so the message names the field like any other validation error.
            raise ValidationError.from_exception_data("Settings", [
                InitErrorDetails(type=PydanticCustomError("consistency", text), loc=loc, input=value)
                for loc, value, text in problems
            ])
        return self

    def marketplace(self, code: str) -> MarketplaceConfig:
        for m in self.marketplaces:
            if m.code == code:
                return m
        raise KeyError(f"no marketplace {code!r} in the configuration; known: {[m.code for m in self.marketplaces]}")

    def store_for(self, marketplace: MarketplaceConfig) -> ShopifyStoreConfig:
        name = marketplace.shopify_store or self.shopify_stores[0].name
        return next(s for s in self.shopify_stores if s.name == name)

    def ledger_url(self) -> str:
        """From its environment variable when set (it may hold a password), else the default (a path relative to the project)."""
        url = os.environ.get(self.ledger_url_env) or self.ledger_default_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            url = prefix + str(self.resolve_path(url[len(prefix):]))
        return url

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else PROJECT_ROOT / p


def _describe(error: ValidationError, path: Path) -> str:
    lines = [f"invalid configuration file {path}:"]
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        # An unknown key, or a wrong value where an environment variable's name belongs, may be a secret pasted
        # into the file: never echo those.
        secret_slot = bool(e["loc"]) and str(e["loc"][-1]).endswith("_env")
        echo = not isinstance(got, (dict, list)) and e["type"] != "extra_forbidden" and not secret_slot
        got_text = f" (got {got!r})" if echo else " (value not shown: it may be a secret)" if secret_slot else ""
        lines.append(f"  - {where}: {e['msg']}{got_text}")
    return "\n".join(lines)


def parse_settings(data: object, source: Path) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from None


def read_yaml_file(path: Path, what: str, error: type[Exception] = ConfigError) -> object:
    """The parsed YAML of `path`; `error` naming the file (`what` says which one) when unreadable or not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise error(f"{what} {path} is not valid YAML: {e}") from None


def load_settings(path: str | Path | None = None) -> Settings:
    path = Path(path or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)
    return parse_settings(read_yaml_file(path, "configuration file"), path)


@lru_cache(maxsize=4)
def cached_settings(path: str | None = None) -> Settings:
    return load_settings(path)


__all__ = [
    "AcceptanceConfig", "ConfigError", "FulfilmentsConfig", "InvoiceConfig", "MarketplaceConfig", "OrderImportConfig", "ScheduleConfig",
    "Settings", "ShopifyStoreConfig", "StockConfig", "cached_settings", "load_settings", "parse_settings",
]
