"""Hypothesis strategies of OR11 orders, generated from Mirakl's spec, and an independent consistency checker.

Written from the spec only (`OR11_Response_200_Orders` of `mirakl_spec.prepared_spec()` and the
descriptions of its fields), never from the project's mapping code or the sandbox, so that a test
feeding these orders to the importer checks it against Mirakl's definitions, not against itself.

How an order is made:
1. Shape: the order component of the prepared spec with its `$ref`s inlined (`narrowed_schema()`), narrowed
   to realistic values (EUR; amounts with 2 decimals; quantities 1-10; ISO alpha-3 countries pycountry
   knows; states from the enums, deprecated values left out; RFC 3339 timestamps; 1-4 lines; short lists),
   heavy optional subtrees the importer does not read dropped (purchase_information, eco_contributions,
   measurement, additional fields, refunds, order_refunds) and no undocumented properties. Every object
   whose properties are plain values (addresses, taxes, fees, promotion configurations, breakdown parts…)
   and every leaf is drawn by `hypothesis_jsonschema.from_schema`; the order and its lines, which nest
   lists of those, are composed here from the same schema, property by property (see `_schema_strategy`):
   from_schema on the whole order costs ~0.3 s an example (measured: 30 s for 100), composing it 0.06 s.
   For the composed containers, which optional fields are present, absent or null is drawn from the
   schema (present 4 times in 5, nullable values null 1 time in 5).
2. Consistency: a fixer applies the spec's definitions to the drawn shape, keeping its variety:
   - line `price` ("without shipping price") = `price_unit` x `quantity` - the line's promotions'
     `deduced_amount`, where a line price that does not divide by its quantity keeps `price` exact and
     rounds `price_unit`: in every case `price_unit = q2((price as ordered + deduced) / quantity)`;
   - promotions of every type: AMOUNT_OFF (also one basket amount apportioned over several lines, same id,
     `apportioned: true`), PERCENTAGE_OFF, FREE_ITEMS (the `offered_quantity` free units are part of
     `quantity`), REDUCED_UNIT_PRICE; each type's own configuration field set, the others null;
   - line `total_price` = price + shipping_price + fees ("price with shipping price and fees"); the
     order's price, shipping_price, total_price ("price with shipping price and fees") and
     total_commission are the sums over its lines; the order's promotions summary and discount_campaigns
     aggregate the lines';
   - taxes at realistic rates, contained in the price (TAX_INCLUDED) or added to it (TAX_EXCLUDED), with
     amount breakdowns whose parts add up (some not payable to the shop: taxes the marketplace collects);
   - cancellations (`cancelations[]`) on accepted lines, their units and amounts never above the line's,
     in either reading (`keep`: the line's amounts stay as ordered, like the spec's example;
     `reduce`: the line's price, shipping, taxes, fees and commission are net of its cancellations);
   - states coherent between order and lines, dates in order (created <= accepted <= debited, shipped <=
     received), the debit coherent with `payment_workflow` and `customer_directly_pays_seller`,
     `payment_duration` only on PAY_ON_DUE_DATE, flags (`can_shop_ship`, `can_cancel`, `can_refund`)
     never contradicting the state;
   - customers in several countries with their states/provinces as marketplaces send them and phones in
     national formats, B2B organisations, relay points (`shipping_pudo_id`).
   The result is what OR11 returns after `json.loads(..., parse_float=Decimal)`: dicts, lists, str, int,
   bool, None and Decimal money; timestamps are strings.

`consistency_errors(order)` checks those definitions independently of how the order was made (it
reads any OR11 order: generated, or served by the sandbox). `broken_or11_orders()` yields
`(label, order)`: a consistent order with one known defect (see DEFECTS); broken orders still validate
against the schema, so only a consistency check finds them.
"""

import copy
import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any, Callable, Iterable

import pycountry
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from mirakl_pipelines_tests.mirakl_spec import prepared_spec

ORDER_COMPONENT = "OR11_Response_200_Orders"
CANCELATION_COMPONENT = "OR11_Response_200_Orders_OrderLines_Cancelations"
READINGS = ("keep", "reduce")
TAX_MODES = ("TAX_INCLUDED", "TAX_EXCLUDED")
WORKFLOWS = ("PAY_ON_ACCEPTANCE", "PAY_ON_DELIVERY", "PAY_ON_DUE_DATE", "PAY_ON_SHIPMENT", "NO_CUSTOMER_PAYMENT_CONFIRMATION")
PROMOTION_TYPES = ("AMOUNT_OFF", "PERCENTAGE_OFF", "FREE_ITEMS", "REDUCED_UNIT_PRICE")
DEPRECATED = {"WAITING_REFUND", "WAITING_REFUND_PAYMENT", "ALL"}

# label -> the defect a broken order carries (each also schema-valid).
DEFECTS = {
    "total_price_off": "the order's total_price is not the sum of its lines' total_price",
    "order_price_not_sum": "the order's price is not the sum of its lines' price",
    "line_total_off": "a line's total_price is not its price + shipping_price + fees",
    "line_price_off": "a line's price is not price_unit x quantity - its promotions",
    "missing_sku": "a line has an empty offer_sku",
    "zero_quantity": "a line has quantity 0",
    "negative_price": "a line has a negative price",
    "cancelation_exceeds_line": "a line's cancellations take more than the line's amount",
    "duplicate_line_id": "two lines share one order_line_id",
    "debit_incoherent": "the customer debit contradicts the payment workflow",
    "state_incoherent": "a line's state contradicts the order's",
}

CENT = Decimal("0.01")
_MONEY = "\x00money:"  # marks drawn amounts until they are turned into Decimal

ORDER_LINE_STATES_BY_ORDER = {
    "STAGING": ({"STAGING"}, set()),
    "WAITING_ACCEPTANCE": ({"WAITING_ACCEPTANCE"}, set()),
    "REFUSED": ({"REFUSED"}, set()),
    "WAITING_DEBIT": ({"WAITING_DEBIT"}, {"REFUSED", "CANCELED"}),
    "WAITING_DEBIT_PAYMENT": ({"WAITING_DEBIT_PAYMENT"}, {"REFUSED", "CANCELED"}),
    "SHIPPING": ({"SHIPPING"}, {"SHIPPED", "REFUSED", "CANCELED"}),  # SHIPPED: a line whose parcel left already
    "SHIPPED": ({"SHIPPED"}, {"INCIDENT_OPEN", "REFUSED", "CANCELED"}),
    "TO_COLLECT": ({"TO_COLLECT"}, {"REFUSED", "CANCELED"}),
    "RECEIVED": ({"RECEIVED"}, {"INCIDENT_OPEN", "REFUSED", "CANCELED"}),
    "CLOSED": ({"CLOSED"}, {"REFUSED", "CANCELED"}),
    "CANCELED": ({"CANCELED"}, {"REFUSED"}),
}
ACCEPTED = {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING", "SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
SHIPPED_ORDER = {"SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"}
SHIPPED_LINE = {"SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED", "INCIDENT_OPEN"}
RECEIVED_ANY = {"RECEIVED", "CLOSED"}
DEAD = {"REFUSED", "CANCELED"}

# ---- realistic values ------------------------------------------------------------------------------

# (alpha-3, [(street, zip, city, state as marketplaces send it)], phone formats with # for digits)
PLACES = {
    "FRA": ([("12 rue de la République", "69002", "Lyon", None), ("8 quai des Chartrons", "33000", "Bordeaux", None),
             ("3 chemin des Vignes", "97200", "Fort-de-France", "Martinique")],
            ["06 ## ## ## ##", "+33 6 ## ## ## ##", "01########"]),
    "ITA": ([("Via Roma 10", "10121", "Torino", "TO"), ("Via del Corso 120", "00186", "Roma", "Lazio"),
             ("Corso Buenos Aires 5", "20124", "Milano", "MI")],
            ["+39 06 #### ####", "333 ### ####", "02 ########"]),
    "JPN": ([("1-2-3 Shibuya", "150-0002", "Shibuya-ku", "東京都"), ("4-5 Umeda, Kita-ku", "530-0001", "Osaka", "Osaka")],
            ["03-####-####", "+81 90-####-####"]),
    "CAN": ([("1200 rue Sainte-Catherine O", "H3B 1K9", "Montréal", "Québec"), ("45 King St W", "M5H 1J8", "Toronto", "ON"),
             ("300 Grande Allée E", "G1R 2H5", "Québec", "QC")],
            ["(514) 555-01##", "+1 416 555 01##"]),
    "USA": ([("113 MacDougal Street", "10012", "New York", "NY"), ("500 Market St", "94105", "San Francisco", "California")],
            ["(212) 555-01##", "+1-415-555-01##"]),
    "ESP": ([("Calle de Alcalá 45", "28014", "Madrid", "Madrid"), ("Carrer de Mallorca 401", "08013", "Barcelona", "Barcelona")],
            ["912 ## ## ##", "+34 6## ### ###"]),
    "DEU": ([("Königstraße 21", "70173", "Stuttgart", None), ("Friedrichstraße 43", "10117", "Berlin", "Berlin"),
             ("Marienplatz 8", "80331", "München", "Bayern")],
            ["030 #######", "+49 89 ########", "0151 ########"]),
    "GBR": ([("221B Baker Street", "NW1 6XE", "London", None), ("10 Deansgate", "M3 1AZ", "Manchester", "Greater Manchester")],
            ["+44 (0)20 7946 0###", "07700 900###", "020 7946 0###"]),
    "BEL": ([("Rue Neuve 3", "1000", "Bruxelles", None), ("Meir 50", "2000", "Antwerpen", "Antwerpen")],
            ["0470 ## ## ##", "+32 2 ### ## ##"]),
    "CHE": ([("Bahnhofstrasse 12", "8001", "Zürich", "ZH")], ["044 ### ## ##", "+41 79 ### ## ##"]),
    "POL": ([("ul. Marszałkowska 10", "00-590", "Warszawa", "mazowieckie")], ["+48 22 ### ## ##"]),
}
FIRST_NAMES = ["Zoë", "Jürgen", "Łukasz", "Søren", "José", "Amélie", "Marco", "Anna", "Hanako", "Chloé", "Thomas", "Aoife"]
LAST_NAMES = ["Lefèvre", "Müller", "Żółkiewski", "Ærø", "Núñez", "Rossi", "Nowak", "山田", "O'Brien", "Dubois", "Smith"]
WORDS = ["trail", "chaussure", "Größe", "été", "bleu", "42", "XL", "lampe", "frontale", "Zürich", "日本", "pack", "lot",
         "de", "3", "noir", "vélo", "casque", "ß", "ñandú", "d'hiver", "Ø", "mochila", "rouge"]
COMPANIES = ["Club Alpin de Grenoble", "Trail Évasion SARL", "Bergsport GmbH", "Deportes Núñez S.L.", "Limark Company Inc."]
FEE_CODES = ["CARD_FEE", "SERVICE_FEE", "GIFT_WRAP", "EU_DRS", "fee1"]
TAX_RATES = [Decimal(r) for r in ("20", "10", "5.5", "2.1", "19", "7", "21", "22", "4", "6", "9.975", "5", "8.875", "0")]
LOCALES = ["fr_FR", "de_DE", "it_IT", "es_ES", "en_GB", "en_US", "fr_CA", "ja_JP", "nl_BE"]
_KNOWN_ALPHA3 = {c.alpha_3 for c in pycountry.countries}


def q2(amount: Decimal | int) -> Decimal:
    """To the cent; JSON money may arrive as an int ("price": 165 in the spec's example)."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def _words(low: int = 1, high: int = 4) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(WORDS), min_size=low, max_size=high).map(" ".join)


def _code(prefix: str = "") -> st.SearchStrategy[str]:
    return st.integers(0, 10**6).map(lambda n: f"{prefix}{n:06d}")


def _money_text(low: str = "0", high: str = "500") -> st.SearchStrategy[str]:
    return st.integers(int(Decimal(low) * 100), int(Decimal(high) * 100)).map(lambda c: f"{_MONEY}{Decimal(c) / 100}")


_T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def iso(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


CUSTOM_FORMATS = {
    "x-money": _money_text(),
    "x-datetime": st.integers(0, 2 * 365 * 86400 * 1000).map(lambda ms: iso(_T0 + timedelta(milliseconds=ms))),
    "x-text": _words(),
    "x-name": st.sampled_from(FIRST_NAMES + LAST_NAMES),
    "x-code": st.sampled_from(["STD", "EXP", "FR", "INT1", "DEFAULT", "LARGE", "JPEG", "19", "34", "C-1"]),
    "x-id": _code("ID-"),
    "x-sku": _code("SKU-"),
    "x-phone": st.just("06 12 34 56 78"),
    "x-url": st.sampled_from(["/media/product/image/1", "https://track.example/1"]),
    "x-email": st.just("notification+abc.def@notification.mirakl.net"),
    "x-locale": st.sampled_from(LOCALES),
}

_STRING_FORMATS = {
    "order_id": "x-id", "commercial_id": "x-id", "order_line_id": "x-id", "customer_id": "x-id", "organization_id": "x-id",
    "id": "x-id", "offer_sku": "x-sku", "product_sku": "x-sku", "product_shop_sku": "x-sku",
    "firstname": "x-name", "lastname": "x-name", "phone": "x-phone", "phone_secondary": "x-phone",
    "media_url": "x-url", "shipping_tracking_url": "x-url", "customer_notification_email": "x-email", "locale": "x-locale",
}
_CODE_NAMES = {"code", "mime_type", "type", "identifier", "promo_code", "transaction_number", "shipping_tracking",
               "quote_id", "reason_code", "offer_state_code", "payment_type", "paymentType", "civility",
               "order_state_reason_code", "order_line_state_reason_code", "shipping_pudo_id", "category_code",
               "shipping_carrier_code", "shipping_carrier_standard_code", "shipping_type_code", "shipping_type_standard_code",
               "shipping_zone_code", "epr_category_code", "order_reference_for_customer", "order_reference_for_seller"}
_INTEGERS = {
    "quantity": (1, 10), "offer_id": (1, 10**9), "leadtime_to_ship": (0, 30), "payment_duration": (1, 90),
    "days": (0, 90), "order_line_index": (1, 4), "offered_quantity": (1, 9), "free_items_quantity": (1, 9),
    "total_count": (0, 1000),
}
# (max items, min items) per array property name.
_ARRAYS = {
    "order_lines": (4, 1), "promotions": (2, 0), "fees": (2, 0), "taxes": (2, 0), "shipping_taxes": (2, 0),
    "cancelations": (2, 0), "commission_taxes": (1, 0), "product_medias": (2, 0), "discount_campaigns": (2, 0),
    "applied_promotions": (0, 0), "order_taxes": (2, 0), "document_details": (2, 0), "parts": (2, 1),
    "order_line_additional_fields": (0, 0), "refunds": (0, 0),
}
_DROPPED = {"purchase_information", "eco_contributions", "measurement", "order_additional_fields", "order_refunds",
            "purchase_tax"}


# ---- the narrowed schema ---------------------------------------------------------------------------


def narrowed_schema(component: str = ORDER_COMPONENT, currency: str = "EUR") -> dict:
    """The component of the prepared spec, `$ref`s inlined, narrowed for realistic generation (module docstring)."""
    return _narrowed(component, currency)


@lru_cache(maxsize=8)
def _narrowed(component: str, currency: str) -> dict:
    schemas = prepared_spec()["components"]["schemas"]
    return _narrow(_inline(schemas[component], schemas), (), currency)


def _inline(schema: Any, schemas: dict) -> Any:
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(schemas[schema["$ref"].rsplit("/", 1)[-1]], schemas)
        return {key: _inline(value, schemas) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, schemas) for item in schema]
    return schema


def _narrow(schema: dict, path: tuple[str, ...], currency: str) -> dict:
    schema = {k: v for k, v in schema.items() if k not in ("description", "example", "examples", "deprecated", "discriminator")}
    if "anyOf" in schema:  # a nullable object (mirakl_spec.prepare): {"anyOf": [{object}, {"type": "null"}]}
        schema["anyOf"] = [_narrow(option, path, currency) for option in schema["anyOf"]]
        return schema
    types = schema.get("type")
    kinds = set(types) if isinstance(types, list) else {types}
    name = path[-1] if path else ""
    if "object" in kinds and "properties" in schema:
        required = set(schema.get("required", []))
        properties = {}
        for prop, sub in schema["properties"].items():
            if prop in _DROPPED and prop not in required:
                continue
            properties[prop] = _narrow(sub, path + (prop,), currency)
        schema["properties"] = properties
        schema["required"] = sorted(required & set(properties))
        schema["additionalProperties"] = False
        schema.pop("oneOf", None)
    if "array" in kinds:
        high, low = _ARRAYS.get(name, (2, 0))
        if "cancelations" in path[:-1] and name in {"taxes", "shipping_taxes", "fees", "commission_taxes"}:
            high = 0  # rebuilt from the line by the fixer: only their presence is drawn
        if name == "product_medias" or name == "discount_campaigns":
            high = 1
        schema["maxItems"], schema["minItems"] = high, low
        if "uniqueItems" in schema:
            schema.pop("uniqueItems")
        schema["items"] = _narrow(schema.get("items", {}), path + ("[]",), currency) if high else {}
    if "number" in kinds:
        schema["type"] = [t if t != "number" else "string" for t in types] if isinstance(types, list) else "string"
        schema["format"] = "x-money"
        schema.pop("minimum", None)
        schema.pop("maxItems", None)
    if "integer" in kinds:
        low, high = _INTEGERS.get(name, (0, 100))
        schema["minimum"], schema["maximum"] = low, high
    if "string" in kinds:
        if "enum" in schema:
            values = [v for v in schema["enum"] if v not in DEPRECATED]
            if name == "country_iso_code":
                values = [v for v in values if v is None or v in _KNOWN_ALPHA3]
            if name == "currency_iso_code":
                values = [currency] + ([None] if None in values else [])
            schema["enum"] = values
        elif schema.get("format") == "date-time":
            schema["format"] = "x-datetime"
        elif name == "country_iso_code":  # organization / shipping_from addresses: no enum in the spec
            schema["enum"] = sorted(PLACES) + ([None] if isinstance(types, list) and "null" in types else [])
        else:
            schema["format"] = _STRING_FORMATS.get(name) or ("x-code" if name in _CODE_NAMES else "x-text")
        schema.pop("maxLength", None)
    return schema


@lru_cache(maxsize=8)
def _raw_strategy(component: str, currency: str) -> st.SearchStrategy:
    return _schema_strategy(narrowed_schema(component, currency))


def _schema_strategy(schema: dict) -> st.SearchStrategy:
    """A strategy for a narrowed schema: flat objects and leaves by `from_schema`, nesting containers composed
    here from the same schema (required properties always, optional ones present 4 times in 5, a nullable
    value null 1 time in 5). hypothesis is pinned to 6.170.9: from 6.170.10 hypothesis-jsonschema 0.23.1
    cannot generate objects at all (`many.more()` was removed: AttributeError).
    """
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        value = st.one_of([_schema_strategy(o) for o in options])
        return _maybe_null(value) if len(options) < len(schema["anyOf"]) else value
    types = schema.get("type")
    if isinstance(types, list):
        concrete = [t for t in types if t != "null"]
        value = st.one_of([_schema_strategy({**schema, "type": t}) for t in concrete])
        return _maybe_null(value) if len(concrete) < len(types) else value
    if types == "null":
        return st.none()
    if types == "object":
        return _object_strategy(schema)
    if types == "array":
        return st.lists(_schema_strategy(schema["items"]) if schema.get("maxItems", 1) else st.nothing(),
                        min_size=schema.get("minItems", 0), max_size=schema.get("maxItems"))
    if "enum" in schema:  # in the spec's order (hypothesis-jsonschema would sort them)
        values = [v for v in schema["enum"] if v is not None]
        return _maybe_null(st.sampled_from(values)) if None in schema["enum"] else st.sampled_from(values)
    return _leaf(schema)


def _nests(schema: dict) -> bool:
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    return "anyOf" in schema or "object" in types or "array" in types


# Hypothesis leans towards the first choice (its "simplest"): present and non-null come first.
_PRESENT = st.sampled_from([True, True, True, True, False])


def _maybe_null(value: st.SearchStrategy) -> st.SearchStrategy:
    return _PRESENT.flatmap(lambda present: value if present else st.none())


def _object_strategy(schema: dict) -> st.SearchStrategy[dict]:
    if not any(_nests(sub) for sub in schema.get("properties", {}).values()):
        return from_schema(schema, custom_formats=CUSTOM_FORMATS)
    properties = {name: _schema_strategy(sub) for name, sub in schema.get("properties", {}).items()}
    required = set(schema.get("required", []))

    @st.composite
    def build(draw) -> dict:
        out = {}
        for name, value in properties.items():
            if name in required or draw(_PRESENT):
                out[name] = draw(value)
        return out

    return build()


_LEAVES: dict[str, st.SearchStrategy] = {}


def _leaf(schema: dict) -> st.SearchStrategy:
    key = repr(sorted(schema.items()))
    if key not in _LEAVES:
        _LEAVES[key] = from_schema(schema, custom_formats=CUSTOM_FORMATS)
    return _LEAVES[key]


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_MONEY):
        return Decimal(value[len(_MONEY):])
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# ---- the public strategies -------------------------------------------------------------------------


def or11_orders(
    *,
    reading: str | None = None,
    tax_modes: Iterable[str] = TAX_MODES,
    states: Iterable[str] | None = None,
    workflows: Iterable[str | None] | None = None,
    currency: str = "EUR",
    extra_fields: bool = True,
) -> st.SearchStrategy[dict]:
    """Consistent OR11 orders (see the module docstring).

    reading: "keep" or "reduce" for the cancellations of every order, None for both (per order).
    tax_modes, states, workflows: restrict `order_tax_mode`, `order_state`, `payment_workflow` (None in
    `workflows` stands for an order without the field). extra_fields: sometimes add a property the spec
    does not list, as Mirakl does ("Some APIs may return more data than indicated").
    """
    options = _Options(reading, tuple(tax_modes), tuple(states) if states else None,
                       tuple(workflows) if workflows is not None else None, currency, extra_fields)
    # Deferred: the spec is read when the first order is drawn, inside the test, so a test module collects (and
    # its tests skip, saying why) where ../shared/ is absent.
    return st.deferred(lambda: _orders(options))


def broken_or11_orders(defects: Iterable[str] | None = None, **kwargs) -> st.SearchStrategy[tuple[str, dict]]:
    """`(label, order)`: a consistent order (or11_orders(**kwargs)) given the one defect DEFECTS[label]."""
    labels = tuple(defects or DEFECTS)
    unknown = sorted(set(labels) - set(DEFECTS))
    if unknown:
        raise ValueError(f"unknown defect(s) {unknown}; known: {sorted(DEFECTS)}")
    orders = or11_orders(**kwargs)

    @st.composite
    def broken(draw) -> tuple[str, dict]:
        label = draw(st.sampled_from(labels))
        return label, _break(label, draw(orders), draw)

    return broken()


def or11_responses(max_orders: int = 3, **kwargs) -> st.SearchStrategy[dict]:
    """OR11 response bodies: `{"orders": [...], "total_count": n}` with distinct order ids."""
    def response(orders: list[dict]) -> dict:
        for index, order in enumerate(orders):
            _rename_order(order, f"{order['order_id']}-{index}")
        return {"orders": orders, "total_count": len(orders)}
    return st.lists(or11_orders(**kwargs), min_size=0, max_size=max_orders).map(response)


class _Options:
    def __init__(self, reading, tax_modes, states, workflows, currency, extra_fields):
        if reading not in (None, *READINGS):
            raise ValueError(f"reading must be one of {READINGS} or None (got {reading!r})")
        self.reading, self.tax_modes, self.states = reading, tax_modes, states
        self.workflows, self.currency, self.extra_fields = workflows, currency, extra_fields

    def __hash__(self):
        return hash((self.reading, self.tax_modes, self.states, self.workflows, self.currency, self.extra_fields))

    def __eq__(self, other):
        return isinstance(other, _Options) and hash(self) == hash(other)


@lru_cache(maxsize=32)
def _orders(options: _Options) -> st.SearchStrategy[dict]:
    raw = _raw_strategy(ORDER_COMPONENT, options.currency)

    @st.composite
    def order(draw) -> dict:
        return _fix(_decode(draw(raw)), draw, options)

    return order()


# ---- the fixer -------------------------------------------------------------------------------------


def _fix(order: dict, draw: Callable, options: _Options) -> dict:
    reading = options.reading or draw(st.sampled_from(READINGS))
    tax_mode = draw(st.sampled_from(options.tax_modes))
    order["order_tax_mode"] = tax_mode
    order["currency_iso_code"] = options.currency
    if options.states:
        order["order_state"] = draw(st.sampled_from(options.states))
    if options.workflows is not None:
        workflow = draw(st.sampled_from(options.workflows))
        if workflow is None:
            order.pop("payment_workflow", None)
        else:
            order["payment_workflow"] = workflow
    state = order["order_state"]
    order_id = order["order_id"]
    lines = order["order_lines"]

    # ---- timeline --------------------------------------------------------------------------------
    created = parse_time(order["created_date"])
    minutes = lambda low, high: timedelta(minutes=draw(st.integers(low, high)))  # noqa: E731
    accepted_at = created + minutes(1, 3 * 24 * 60)
    shipped_at = accepted_at + minutes(30, 3 * 24 * 60)
    received_at = shipped_at + minutes(24 * 60, 7 * 24 * 60)
    closed_at = received_at + minutes(60, 30 * 24 * 60)

    # ---- line states -------------------------------------------------------------------------------
    main, others = ORDER_LINE_STATES_BY_ORDER[state]
    line_states = [draw(st.sampled_from(sorted(main | others))) if others and index else next(iter(main))
                   for index in range(len(lines))]
    draw(st.randoms()).shuffle(line_states)  # the live line is not always the first
    if state == "SHIPPING" and "SHIPPING" not in line_states:
        line_states[0] = "SHIPPING"

    # ---- the debit ---------------------------------------------------------------------------------
    workflow = order.get("payment_workflow")
    if order.get("customer_directly_pays_seller") is not None:  # rare: a customer paying the seller outside Mirakl
        order["customer_directly_pays_seller"] = draw(st.sampled_from([False] * 4 + [True]))
    direct = order.get("customer_directly_pays_seller") is True
    debited_at = _debit_moment(workflow, direct, state, accepted_at, shipped_at, received_at, draw)
    if workflow == "PAY_ON_DUE_DATE":
        order["payment_duration"] = draw(st.integers(1, 90))
        if debited_at is not None:
            debited_at = accepted_at + timedelta(days=order["payment_duration"])
    elif "payment_duration" in order:
        order["payment_duration"] = None

    # ---- lines -----------------------------------------------------------------------------------
    basket = _basket_promotion(order_id, lines, draw)
    for index, (line, line_state) in enumerate(zip(lines, line_states), start=1):
        line["order_line_id"] = f"{order_id}-{index}"
        line["order_line_index"] = index
        line["order_line_state"] = line_state
        _fix_line_money(line, tax_mode, draw, basket.get(index))
        _fix_line_cancelations(line, line_state, state, tax_mode, reading, draw, order_id, index)
        _fix_line_dates(line, line_state, created, accepted_at, shipped_at, received_at, debited_at)
        line["can_refund"] = line_state in SHIPPED_LINE - {"INCIDENT_OPEN"} and debited_at is not None and draw(st.booleans())
        if line_state == "CANCELED" and not line["cancelations"] and "order_line_state_reason_code" in line:
            line["order_line_state_reason_code"] = draw(st.sampled_from(["34", "PAYMENT_REFUSED", None]))
    _settle_basket(lines)
    _sum_order(order)
    _fix_order_taxes(order)
    _fix_discount_campaigns(order)

    # ---- order dates, debit and flags ---------------------------------------------------------------
    if state in ACCEPTED or (state in {"CANCELED", "REFUSED"} and draw(st.booleans())):
        decided = None if draw(st.integers(0, 4)) == 0 else accepted_at  # null when auto-accepted/refused
        order["acceptance_decision_date"] = iso(decided) if decided else None
    elif "acceptance_decision_date" in order:
        order["acceptance_decision_date"] = None
    for field in ("customer_debited_date", "transaction_date"):
        if debited_at is not None or field in order:
            order[field] = iso(debited_at) if debited_at else None
    if debited_at is not None or "transaction_number" in order:
        order["transaction_number"] = f"TR-{order_id[-8:]}" if debited_at else None
    moments = [created] + [parse_time(line["last_updated_date"]) for line in lines]
    last = max(moments + ([closed_at] if state == "CLOSED" else []))
    order["last_updated_date"] = iso(last + minutes(0, 60))
    if order.get("shipping_deadline") is not None:
        order["shipping_deadline"] = iso(created + timedelta(days=draw(st.integers(1, 10))))
    if order.get("delivery_date"):
        earliest = created + timedelta(days=draw(st.integers(1, 10)))
        order["delivery_date"] = {"earliest": iso(earliest), "latest": iso(earliest + timedelta(days=draw(st.integers(0, 7))))}
    order["can_shop_ship"] = state == "SHIPPING" and draw(st.booleans())
    order["can_cancel"] = state in {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING"} and debited_at is None and draw(st.booleans())
    order["has_incident"] = "INCIDENT_OPEN" in line_states
    order["fully_refunded"] = False

    # ---- who and where -----------------------------------------------------------------------------
    _fix_customer(order, state, draw)
    if order.get("shipping_pudo_id") is not None:
        order["shipping_pudo_id"] = draw(st.sampled_from(["MR-004512", "020187", "RELAIS-69002-14", "PUDO-1234"]))
    if options.extra_fields and draw(st.integers(0, 9)) == 0:
        order[draw(st.sampled_from(["shop_id", "x_operator_field"]))] = draw(st.sampled_from([2001, "extra"]))
    return order


def _debit_moment(workflow, direct, state, accepted_at, shipped_at, received_at, draw) -> datetime | None:
    """When Mirakl confirmed the customer's debit, or None: coherent with the workflow and the state."""
    if direct or workflow == "NO_CUSTOMER_PAYMENT_CONFIRMATION":
        return None
    debit = accepted_at + timedelta(seconds=draw(st.integers(1, 3600)))
    if workflow in (None, "PAY_ON_ACCEPTANCE"):
        if state in {"SHIPPING"} | SHIPPED_ORDER:
            return debit
        return debit if state == "CANCELED" and draw(st.booleans()) else None
    if workflow == "PAY_ON_SHIPMENT":
        return shipped_at + timedelta(seconds=draw(st.integers(1, 3600))) if state in SHIPPED_ORDER and draw(st.booleans()) else None
    if workflow == "PAY_ON_DELIVERY":
        return received_at + timedelta(seconds=draw(st.integers(1, 3600))) if state in RECEIVED_ANY and draw(st.booleans()) else None
    if workflow == "PAY_ON_DUE_DATE":
        return debit if state in ACCEPTED and draw(st.booleans()) else None
    return None


def _basket_promotion(order_id: str, lines: list[dict], draw) -> dict[int, dict]:
    """Sometimes one AMOUNT_OFF over the whole basket, apportioned over the lines (same id on each line)."""
    if len(lines) < 2 or draw(st.integers(0, 5)) != 0:
        return {}
    return {index: {"id": f"{order_id}-BASKET", "share_of": len(lines)} for index in range(1, len(lines) + 1)}


def _settle_basket(lines: list[dict]) -> None:
    """A basket AMOUNT_OFF's configured amount is what all its lines' shares add up to; apportioned when shared."""
    entries = [p for line in lines for p in line.get("promotions") or [] if p["id"].endswith("-BASKET")]
    total = sum((p["deduced_amount"] for p in entries), Decimal(0))
    for entry in entries:
        entry["configuration"]["amount_off"] = total
        entry["apportioned"] = len(entries) > 1


def _fix_line_money(line: dict, tax_mode: str, draw, basket: dict | None) -> None:
    quantity = line["quantity"]
    # price_unit x quantity, or a volume price that does not divide by the quantity (price_unit rounded)
    if quantity > 1 and draw(st.integers(0, 4)) == 0:
        gross = Decimal(draw(st.integers(100, 50000))) / 100
        unit = q2(gross / quantity)
    else:
        unit = Decimal(draw(st.integers(50, 30000))) / 100
        gross = unit * quantity
    line["price_unit"] = unit
    if "origin_unit_price" in line:
        line["origin_unit_price"] = draw(st.sampled_from([None, unit, q2(unit * Decimal("1.2"))]))
    promotions = []
    for number, promotion in enumerate(line.get("promotions") or [], start=1):
        fixed = _fix_promotion(promotion, unit, quantity, gross, draw)
        fixed["id"] = f"{line['order_line_id']}-P{number}"
        fixed["apportioned"] = False
        promotions.append(fixed)
    if basket:
        share = q2(gross * Decimal(draw(st.integers(1, 20))) / 100)
        entry = {"apportioned": True, "configuration": {
            "amount_off": share, "free_items_quantity": None, "internal_description": "basket",
            "percentage_off": None, "reduced_unit_price": None, "type": "AMOUNT_OFF"},
            "deduced_amount": share, "id": basket["id"], "offered_quantity": None, "promo_code": "BASKET10"}
        promotions.append(entry)
    while sum(p["deduced_amount"] for p in promotions) > gross:
        promotions.pop(0)
    if "promotions" in line or promotions:
        line["promotions"] = promotions
    deduced = sum((p["deduced_amount"] for p in promotions), Decimal(0))
    price = gross - deduced
    line["price"] = price

    # shipping (from the deprecated unit / additional-unit prices when present)
    if line.get("shipping_price_unit") is not None:
        first = Decimal(draw(st.integers(0, 1500))) / 100
        extra = Decimal(draw(st.integers(0, 500))) / 100
        line["shipping_price_unit"] = first
        if "shipping_price_additional_unit" in line:
            line["shipping_price_additional_unit"] = extra
        shipping = first + extra * (quantity - 1)
    else:
        shipping = Decimal(draw(st.integers(0, 2000))) / 100
    line["shipping_price"] = shipping
    _breakdown(line, "price_amount_breakdown", price, draw)
    _breakdown(line, "shipping_price_amount_breakdown", shipping, draw)

    rates = draw(st.lists(st.sampled_from(TAX_RATES), min_size=1, max_size=2, unique=True))
    for field, amount, unit_amount in (("taxes", price, unit), ("shipping_taxes", shipping, None)):
        if line.get(field) is not None:  # absent or null stays so: the schema allows both
            line[field] = _taxes(line[field], rates, amount, unit_amount, tax_mode, draw)

    fees = []
    for fee, code in zip(line.get("fees") or [], FEE_CODES[draw(st.integers(0, len(FEE_CODES) - 1)):] + FEE_CODES):
        fees.append({"amount": Decimal(draw(st.integers(1, 500))) / 100, "code": code})
    line["fees"] = fees

    base = price + shipping + (Decimal(0) if tax_mode == "TAX_INCLUDED" else _sum(line.get("taxes")) + _sum(line.get("shipping_taxes")))
    fee = q2(base * Decimal(draw(st.integers(5, 20))) / 100)
    line["commission_fee"] = fee
    commission_taxes = line.get("commission_taxes") or []
    if commission_taxes:
        rate = draw(st.sampled_from([Decimal("20"), Decimal("0"), Decimal("19")]))
        commission_taxes = line["commission_taxes"] = [
            {"amount": q2(fee * rate / 100), "code": "TVAFR" if rate else "TAXZERO", "rate": rate}]
    vat = commission_taxes[0]["amount"] if commission_taxes else Decimal(0)
    line["commission_vat"] = vat
    line["commission_rate_vat"] = commission_taxes[0]["rate"] if commission_taxes else Decimal(0)
    line["total_commission"] = fee + vat
    line["total_price"] = price + shipping + _sum(fees)
    if line.get("discount_campaign") is not None:
        line["discount_campaign"] = {"identifier": draw(st.sampled_from(["SOLDES-ETE", "BLACK-FRIDAY"]))}


def _fix_promotion(promotion: dict, unit: Decimal, quantity: int, gross: Decimal, draw) -> dict:
    kind = promotion["configuration"]["type"]
    if kind == "FREE_ITEMS" and quantity < 2:
        kind = "PERCENTAGE_OFF"
    config = {"amount_off": None, "free_items_quantity": None, "percentage_off": None, "reduced_unit_price": None,
              "internal_description": promotion["configuration"].get("internal_description") or "promo", "type": kind}
    offered = None
    if kind == "AMOUNT_OFF":
        deduced = q2(gross * Decimal(draw(st.integers(1, 40))) / 100)
        config["amount_off"] = deduced
    elif kind == "PERCENTAGE_OFF":
        pct = draw(st.sampled_from([Decimal(p) for p in ("5", "10", "15", "20", "25", "30", "50", "12.5")]))
        config["percentage_off"] = pct
        deduced = q2(gross * pct / 100)
    elif kind == "FREE_ITEMS":
        offered = draw(st.integers(1, quantity - 1))
        config["free_items_quantity"] = offered
        deduced = q2(gross * offered / quantity)
    else:
        reduced = q2(unit * Decimal(draw(st.integers(50, 95))) / 100)
        config["reduced_unit_price"] = reduced
        deduced = max(gross - reduced * quantity, Decimal("0.00"))
    fixed = {**promotion, "configuration": config, "deduced_amount": deduced, "offered_quantity": offered}
    if "promo_code" in promotion and promotion["promo_code"] is not None:
        fixed["promo_code"] = draw(st.sampled_from(["ETE25", "WELCOME10", "3POUR2"]))
    return fixed


TAX_CODES = {"20": "TVA20", "10": "TVA10", "5.5": "TVA5.5", "2.1": "TVA2.1", "19": "MwSt19", "7": "MwSt7", "21": "IVA21",
             "22": "IVA22", "4": "IVA4", "6": "BTW6", "9.975": "QST", "5": "GST", "8.875": "NY-SALES", "0": "EXEMPT"}


def _taxes(raw: list[dict], rates: list[Decimal], amount: Decimal, unit: Decimal | None, tax_mode: str, draw) -> list[dict]:
    if not raw or not rates:
        return []
    rates = rates[: len(raw)]
    total_rate = sum(rates, Decimal(0)) / 100
    if tax_mode == "TAX_EXCLUDED":
        amounts = [q2(amount * r / 100) for r in rates]
    elif total_rate == 0:
        amounts = [Decimal("0.00")] * len(rates)
    else:
        total = q2(amount - amount / (1 + total_rate))
        amounts = [q2(total * (r / 100) / total_rate) for r in rates[:-1]]
        amounts.append(total - sum(amounts, Decimal(0)))
    result = []
    for tax, rate, value in zip(raw, rates, amounts):
        entry = {**tax, "amount": value, "code": TAX_CODES[f"{rate.normalize():f}"]}
        if "rate" in tax:
            entry["rate"] = rate
        if "origin_unit_amount" in tax:
            entry["origin_unit_amount"] = None if unit is None else (
                q2(unit * rate / 100) if tax_mode == "TAX_EXCLUDED" else q2(unit - unit / (1 + rate / 100)))
        if "tax_calculation_rule" in tax:
            entry["tax_calculation_rule"] = draw(st.sampled_from(["PROPORTIONAL_TO_AMOUNT", "NONE"]))
        _breakdown(entry, "amount_breakdown", value, draw, marketplace_tax=True)
        result.append(entry)
    return result


def _breakdown(holder: dict, field: str, amount: Decimal, draw, marketplace_tax: bool = False) -> None:
    """Parts that add up to `amount` (each >= 0); a tax's parts may be collected by the marketplace."""
    breakdown = holder.get(field)
    if not breakdown:
        return
    parts = breakdown["parts"]
    first = q2(amount * Decimal(draw(st.integers(0, 100))) / 100) if len(parts) > 1 else amount
    amounts = [first, amount - first][: len(parts)]
    for part, value in zip(parts, amounts):
        part["amount"] = value
        if marketplace_tax and "payable_to_shop" in part:
            part["payable_to_shop"] = draw(st.booleans())


def _fix_line_cancelations(line, line_state, order_state, tax_mode, reading, draw, order_id, index) -> None:
    """Cancellations on accepted lines: their units and amounts never above the line's."""
    raw = line["cancelations"]
    quantity = line["quantity"]
    cancellable = order_state in ACCEPTED | {"CANCELED"} and line_state != "REFUSED"
    if line_state == "CANCELED" and order_state != "CANCELED" and not raw:  # cancelled unit by unit: say so
        raw = [draw(_raw_strategy(CANCELATION_COMPONENT, "EUR").map(_decode))]
    if not cancellable or not raw or (line_state != "CANCELED" and quantity < 2):
        line["cancelations"] = []
        return
    if line_state == "CANCELED":
        total_units = quantity
    else:
        total_units = draw(st.integers(1, quantity - 1))
    raw = raw[:total_units]
    cuts = sorted(draw(st.lists(st.integers(1, total_units - 1), min_size=len(raw) - 1, max_size=len(raw) - 1,
                                unique=True))) if len(raw) > 1 else []
    bounds = [0, *cuts, total_units]
    ordered = {  # the line as ordered, whose amounts the cancellations share pro rata (in cents, cumulatively)
        "price": line["price"], "shipping": line["shipping_price"], "commission": line["commission_fee"],
        "taxes": {t["code"]: t["amount"] for t in line.get("taxes") or []},
        "shipping_taxes": {t["code"]: t["amount"] for t in line.get("shipping_taxes") or []},
        "fees": {f["code"]: f["amount"] for f in line["fees"]},
        "commission_taxes": {t["code"]: t["amount"] for t in line.get("commission_taxes") or []},
    }
    share = lambda amount, before, after: q2(amount * after / quantity) - q2(amount * before / quantity)  # noqa: E731
    result = []
    for number, (entry, before, after) in enumerate(zip(raw, bounds, bounds[1:]), start=1):
        commission_taxes = [{"amount": share(v, before, after), "code": c} for c, v in ordered["commission_taxes"].items()]
        commission = share(ordered["commission"], before, after)
        cancelation = {
            **entry,
            "amount": share(ordered["price"], before, after),
            "commission_amount": commission,
            "commission_taxes": commission_taxes,
            "commission_total_amount": commission + _sum(commission_taxes),
            "id": f"{order_id}-{index}-C{number}",
            "quantity": after - before,
            "reason_code": draw(st.sampled_from(["34", "42", "OUT_OF_STOCK"])),
            "shipping_amount": share(ordered["shipping"], before, after),
        }
        for field in ("taxes", "shipping_taxes"):
            if field in entry or ordered[field]:
                cancelation[field] = [
                    {"amount": share(v, before, after), "code": c} for c, v in ordered[field].items()]
        if "fees" in entry or ordered["fees"]:
            cancelation["fees"] = [{"amount": share(v, before, after), "code": c} for c, v in ordered["fees"].items()]
        for field, amount in (("amount_breakdown", cancelation["amount"]), ("shipping_amount_breakdown", cancelation["shipping_amount"])):
            _breakdown(cancelation, field, amount, draw)
        result.append(cancelation)
    line["cancelations"] = result
    if reading == "reduce":
        _reduce_line(line, result)


def _reduce_line(line: dict, cancelations: list[dict]) -> None:
    """The reducing reading: the line's amounts net of its cancellations."""
    line["price"] -= _sum(cancelations)
    line["shipping_price"] -= sum((c["shipping_amount"] for c in cancelations), Decimal(0))
    line["commission_fee"] -= sum((c["commission_amount"] for c in cancelations), Decimal(0))
    for field in ("taxes", "shipping_taxes", "fees", "commission_taxes"):
        for item in line.get(field) or []:
            item["amount"] -= sum((x["amount"] for c in cancelations for x in c.get(field) or [] if x["code"] == item["code"]), Decimal(0))
            parts = (item.get("amount_breakdown") or {}).get("parts")
            if parts:
                parts[-1]["amount"] = item["amount"] - sum((p["amount"] for p in parts[:-1]), Decimal(0))
                if parts[-1]["amount"] < 0:
                    parts[0]["amount"], parts[-1]["amount"] = item["amount"], Decimal("0.00")
                    for part in parts[1:-1]:
                        part["amount"] = Decimal("0.00")
    for field, amount in (("price_amount_breakdown", line["price"]), ("shipping_price_amount_breakdown", line["shipping_price"])):
        parts = (line.get(field) or {}).get("parts")
        if parts:
            parts[0]["amount"] = amount
            for part in parts[1:]:
                part["amount"] = Decimal("0.00")
    commission_taxes = line.get("commission_taxes") or []
    line["commission_vat"] = commission_taxes[0]["amount"] if commission_taxes else Decimal(0)
    line["total_commission"] = line["commission_fee"] + line["commission_vat"]
    line["total_price"] = line["price"] + line["shipping_price"] + _sum(line["fees"])


def _fix_line_dates(line, line_state, created, accepted_at, shipped_at, received_at, debited_at) -> None:
    line["created_date"] = iso(created)
    last = created
    if line.get("debited_date") is not None or debited_at is not None:
        live = line_state not in DEAD or line["cancelations"]
        line["debited_date"] = iso(debited_at) if debited_at is not None and live else None
    shipped = line_state in SHIPPED_LINE
    if "shipped_date" in line or shipped:
        line["shipped_date"] = iso(shipped_at) if shipped else None
    received = line_state in RECEIVED_ANY
    if "received_date" in line or received:
        line["received_date"] = iso(received_at) if received else None
    for moment in (accepted_at if line_state not in {"STAGING", "WAITING_ACCEPTANCE"} else None,
                   debited_at, shipped_at if shipped else None, received_at if received else None):
        if moment is not None:
            last = max(last, moment)
    for cancelation in line["cancelations"]:
        cancelation["created_date"] = iso(accepted_at + timedelta(minutes=5))
        last = max(last, accepted_at + timedelta(minutes=5))
    line["last_updated_date"] = iso(last)


def _sum_order(order: dict) -> None:
    lines = order["order_lines"]
    order["price"] = sum((line["price"] for line in lines), Decimal("0.00"))
    order["shipping_price"] = sum((line["shipping_price"] for line in lines), Decimal("0.00"))
    order["total_price"] = sum((line["total_price"] for line in lines), Decimal("0.00"))
    order["total_commission"] = sum((line["total_commission"] for line in lines), Decimal("0.00"))
    if order.get("promotions") is not None or any(line.get("promotions") for line in lines):
        order["promotions"] = promotions_summary(lines)


def promotions_summary(lines: list[dict]) -> dict:
    """The order-level summary the spec describes: applied promotions (per id, amounts summed over lines)."""
    applied: dict[str, dict] = {}
    for line in lines:
        for promotion in line.get("promotions") or []:
            entry = applied.setdefault(promotion["id"], {**copy.deepcopy(promotion), "deduced_amount": Decimal(0),
                                                         "offered_quantity": None})
            entry["deduced_amount"] += promotion["deduced_amount"]
            if promotion.get("offered_quantity") is not None:
                entry["offered_quantity"] = (entry["offered_quantity"] or 0) + promotion["offered_quantity"]
    return {"applied_promotions": list(applied.values()),
            "total_deduced_amount": sum((p["deduced_amount"] for p in applied.values()), Decimal("0.00"))}


def _fix_order_taxes(order: dict) -> None:
    if not order.get("order_taxes"):
        return
    totals: dict[tuple, Decimal] = {}
    for line in order["order_lines"]:
        for tax in (line.get("taxes") or []) + (line.get("shipping_taxes") or []):
            key = (tax["code"], tax.get("rate"))
            totals[key] = totals.get(key, Decimal(0)) + tax["amount"]
    order["order_taxes"] = [{"code": code, "rate": rate, "total_amount": amount} for (code, rate), amount in totals.items()]


def _fix_discount_campaigns(order: dict) -> None:
    found = []
    for line in order["order_lines"]:
        campaign = (line.get("discount_campaign") or {}).get("identifier")
        if campaign and campaign not in found:
            found.append(campaign)
    if "discount_campaigns" in order or found:
        order["discount_campaigns"] = [{"identifier": c} for c in found] if found or order.get("discount_campaigns") is not None else None


def _fix_customer(order: dict, state: str, draw) -> None:
    customer = order["customer"]
    customer["firstname"] = draw(st.sampled_from(FIRST_NAMES))
    customer["lastname"] = draw(st.sampled_from(LAST_NAMES))
    country = draw(st.sampled_from(sorted(PLACES)))
    for field in ("shipping_address", "billing_address"):
        address = customer.get(field)
        if address is None and state in ACCEPTED:  # "Null before shipping (or acceptance)": present once accepted
            address = customer[field] = {"city": "", "country": "", "country_iso_code": "", "lastname": "", "street_1": ""}
        if address is not None:
            _fix_address(address, country if field == "shipping_address" or draw(st.booleans()) else "FRA", draw)
            address["lastname"] = customer["lastname"]
            if "firstname" in address:
                address["firstname"] = customer["firstname"]
    organization = customer.get("organization")
    if organization is not None:
        organization["name"] = draw(st.sampled_from(COMPANIES))
        organization["organization_id"] = f"ORG-{draw(st.integers(1, 99999)):05d}"
        if organization.get("address") is None and state in ACCEPTED:
            organization["address"] = {"city": "", "country_iso_code": "", "street_1": "", "zip_code": ""}
        if organization.get("address") is not None:
            _fix_address(organization["address"], country, draw)


def _fix_address(address: dict, alpha3: str, draw) -> None:
    places, phones = PLACES[alpha3]
    street, zip_code, city, region = draw(st.sampled_from(places))
    address.update(street_1=street, city=city, country_iso_code=alpha3, zip_code=zip_code)
    if "country" in address:
        address["country"] = pycountry.countries.get(alpha_3=alpha3).name
    if "state" in address:
        address["state"] = region
    for field in ("phone", "phone_secondary"):
        if address.get(field) is not None:
            pattern = draw(st.sampled_from(phones))
            address[field] = re.sub("#", lambda _: str(draw(st.integers(0, 9))), pattern)


def _rename_order(order: dict, order_id: str) -> None:
    old = order["order_id"]
    order["order_id"] = order_id
    for line in order["order_lines"]:
        line["order_line_id"] = order_id + line["order_line_id"][len(old):]


def _sum(items) -> Decimal:
    return sum((item["amount"] for item in items or []), Decimal(0))


# ---- broken orders ---------------------------------------------------------------------------------


def _break(label: str, order: dict, draw) -> dict:
    order = copy.deepcopy(order)
    lines = order["order_lines"]
    line = lines[draw(st.integers(0, len(lines) - 1))]
    off = Decimal(draw(st.integers(1, 1000))) / 100 * draw(st.sampled_from([1, -1]))
    if label == "total_price_off":
        order["total_price"] += off
    elif label == "order_price_not_sum":
        order["price"] += off
    elif label == "line_total_off":
        line["total_price"] += off
    elif label == "line_price_off":
        delta = Decimal(line["quantity"]) / 100 + abs(off)  # beyond what rounding price_unit could explain
        line["price"] += delta
        line["total_price"] += delta
        order["price"] += delta
        order["total_price"] += delta
    elif label == "missing_sku":
        line["offer_sku"] = ""
    elif label == "zero_quantity":
        line["quantity"] = 0
    elif label == "negative_price":
        delta = line["price"] + abs(off)
        for holder, field in ((line, "price"), (line, "total_price"), (order, "price"), (order, "total_price")):
            holder[field] -= delta
    elif label == "cancelation_exceeds_line":
        line["cancelations"] = (line.get("cancelations") or []) + [{
            "amount": line["price"] + line["price_unit"] + abs(off), "commission_amount": Decimal("0.00"),
            "commission_taxes": [], "commission_total_amount": Decimal("0.00"), "created_date": line["created_date"],
            "id": f"{line['order_line_id']}-CX", "quantity": line["quantity"] + 1, "reason_code": "34",
            "shipping_amount": Decimal("0.00"),
        }]
    elif label == "duplicate_line_id":
        if len(lines) == 1:
            lines.append(copy.deepcopy(lines[0]))
            lines[1]["order_line_index"] = 2
            _sum_order(order)
        lines[-1]["order_line_id"] = lines[0]["order_line_id"]
    elif label == "debit_incoherent":
        order["payment_workflow"] = "NO_CUSTOMER_PAYMENT_CONFIRMATION"
        order["customer_debited_date"] = order["created_date"]
        order.pop("payment_duration", None)
    elif label == "state_incoherent":
        order["order_state"] = "SHIPPING"
        line["order_line_state"] = "WAITING_ACCEPTANCE"
        order["can_shop_ship"] = False
        order["can_cancel"] = False
    return order


# ---- the independent checker -----------------------------------------------------------------------


def consistency_errors(order: dict, *, reading: str | None = None, promotion_configuration: bool = True) -> list[str]:
    """What in `order` contradicts the spec's definitions, as "label: detail" (labels of DEFECTS where one fits).

    reading: how to read cancellations ("keep": the line's amounts stay as ordered; "reduce": they are net
    of cancellations); None accepts either (the reading with fewer errors wins).
    promotion_configuration: also check deduced amounts against each promotion's configuration (only
    meaningful in the order's native tax mode: configurations are not re-expressed in the other one).
    """
    if reading is None:
        found = [_errors(order, r, promotion_configuration) for r in READINGS]
        return min(found, key=len)
    return _errors(order, reading, promotion_configuration)


def _errors(order: dict, reading: str, check_configuration: bool) -> list[str]:
    errors: list[str] = []
    add = errors.append
    lines = order.get("order_lines") or []
    oid = order.get("order_id")
    if not lines:
        add(f"no_lines: order {oid} has no order line")
    ids = [line.get("order_line_id") for line in lines]
    if len(set(ids)) != len(ids):
        add(f"duplicate_line_id: order {oid} lines {ids}")
    state = order.get("order_state")
    tax_mode = order.get("order_tax_mode")
    for line in lines:
        where = f"line {line.get('order_line_id')}"
        if not (line.get("offer_sku") or "").strip():
            add(f"missing_sku: {where} has no offer_sku")
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or quantity < 1:
            add(f"zero_quantity: {where} quantity {quantity!r}")
            continue
        missing = [f for f in ("price", "price_unit", "shipping_price", "total_price", "commission_fee", "total_commission")
                   if line.get(f) is None]
        if missing:
            add(f"missing_field: {where} has no {', '.join(missing)}")
            continue
        for field in ("price", "price_unit", "shipping_price", "total_price", "commission_fee", "total_commission"):
            if line[field] != q2(line[field]):
                add(f"not_cents: {where} {field} {line[field]}")
        price, unit = line["price"], line["price_unit"]
        if price < 0:
            add(f"negative_price: {where} price {price}")
        cancelations = line.get("cancelations") or []
        cancelled_amount = _sum_field(cancelations, "amount")
        ordered_price = price + cancelled_amount if reading == "reduce" else price
        promotions = line.get("promotions") or []
        deduced = sum((p.get("deduced_amount") or Decimal(0) for p in promotions), Decimal(0))
        if q2((ordered_price + deduced) / quantity) != unit:
            add(f"line_price_off: {where} price {price} (+ cancelled {cancelled_amount if reading == 'reduce' else 0}) "
                f"+ deduced {deduced} is not price_unit {unit} x {quantity}")
        fees = _sum_field(line.get("fees"), "amount")
        if line.get("total_price") != price + line["shipping_price"] + fees:
            add(f"line_total_off: {where} total_price {line.get('total_price')} != {price} + {line['shipping_price']} + fees {fees}")
        commission_taxes = _sum_field(line.get("commission_taxes"), "amount")
        if line.get("commission_taxes") is not None and line["total_commission"] != line["commission_fee"] + commission_taxes:
            add(f"commission_off: {where} total_commission {line['total_commission']} != fee + taxes")
        if line.get("commission_vat") is not None and line["total_commission"] != line["commission_fee"] + line["commission_vat"]:
            add(f"commission_off: {where} total_commission {line['total_commission']} != fee + vat")
        errors.extend(_promotion_errors(line, where, ordered_price + deduced, check_configuration))
        errors.extend(_tax_errors(line, where, tax_mode))
        errors.extend(_cancelation_errors(line, where, reading))
        errors.extend(_line_state_errors(line, where, state))
    complete = all(line.get(f) is not None for line in lines for f in ("price", "shipping_price", "total_price", "total_commission"))
    if lines and complete and all(isinstance(line.get("quantity"), int) for line in lines):
        for field, line_field, label in (("price", "price", "order_price_not_sum"), ("shipping_price", "shipping_price", "order_shipping_not_sum"),
                                         ("total_price", "total_price", "total_price_off"),
                                         ("total_commission", "total_commission", "commission_not_sum")):
            total = sum((line[line_field] for line in lines), Decimal(0))
            if order.get(field) != total:
                add(f"{label}: order {field} {order.get(field)} != sum of lines {total}")
        if order.get("total_price") != order.get("price", 0) + order.get("shipping_price", 0) + sum(
                (_sum_field(line.get("fees"), "amount") for line in lines), Decimal(0)):
            add(f"total_price_off: order total_price {order.get('total_price')} != price + shipping + fees")
        summary = order.get("promotions")
        if summary is not None:
            expected = promotions_summary(lines)
            got = {p["id"]: p["deduced_amount"] for p in summary.get("applied_promotions") or []}
            want = {p["id"]: p["deduced_amount"] for p in expected["applied_promotions"]}
            if got != want or summary.get("total_deduced_amount") != expected["total_deduced_amount"]:
                add(f"promotions_summary_off: order promotions {got} / {summary.get('total_deduced_amount')} != lines {want}")
    errors.extend(_order_state_errors(order))
    return errors


def _sum_field(items, field: str) -> Decimal:
    return sum((item.get(field) or Decimal(0) for item in items or []), Decimal(0))


def _promotion_errors(line: dict, where: str, gross: Decimal, check_configuration: bool) -> list[str]:
    errors = []
    quantity, unit = line["quantity"], line["price_unit"]
    for promotion in line.get("promotions") or []:
        deduced = promotion.get("deduced_amount")
        config = promotion.get("configuration") or {}
        kind = config.get("type")
        what = f"{where} promotion {promotion.get('id')} ({kind})"
        if deduced is None or deduced < 0:
            errors.append(f"promotion_off: {what} deduced_amount {deduced}")
            continue
        offered = promotion.get("offered_quantity")
        if kind == "FREE_ITEMS":
            if not isinstance(offered, int) or not 1 <= offered < quantity + 1:
                errors.append(f"promotion_off: {what} offered_quantity {offered!r} for quantity {quantity}")
            elif abs(deduced - unit * offered) > Decimal("0.005") * offered + CENT:
                errors.append(f"promotion_off: {what} deduces {deduced}, not {offered} free unit(s) at {unit}")
        elif offered is not None:
            errors.append(f"promotion_off: {what} offered_quantity {offered} outside FREE_ITEMS")
        if not check_configuration:
            continue
        own = {"AMOUNT_OFF": "amount_off", "PERCENTAGE_OFF": "percentage_off", "FREE_ITEMS": "free_items_quantity",
               "REDUCED_UNIT_PRICE": "reduced_unit_price"}.get(kind)
        for field in ("amount_off", "percentage_off", "free_items_quantity", "reduced_unit_price"):
            if field != own and config.get(field) is not None:
                errors.append(f"promotion_off: {what} sets {field}, which is for another type")
        if kind == "AMOUNT_OFF" and not promotion.get("apportioned") and deduced != config.get("amount_off"):
            errors.append(f"promotion_off: {what} deduces {deduced}, not its amount_off {config.get('amount_off')}")
        if kind == "AMOUNT_OFF" and promotion.get("apportioned") and deduced > (config.get("amount_off") or 0):
            errors.append(f"promotion_off: {what} deduces {deduced}, more than its amount_off {config.get('amount_off')}")
        if kind == "PERCENTAGE_OFF" and deduced > q2(gross * (config.get("percentage_off") or 0) / 100):
            errors.append(f"promotion_off: {what} deduces {deduced}, more than {config.get('percentage_off')}% of {gross}")
        if kind == "REDUCED_UNIT_PRICE" and config.get("reduced_unit_price") is not None:
            expected = gross - config["reduced_unit_price"] * quantity
            if abs(deduced - expected) > Decimal("0.005") * quantity + CENT and deduced != 0:
                errors.append(f"promotion_off: {what} deduces {deduced}, not {gross} - {config['reduced_unit_price']} x {quantity}")
    return errors


def _tax_errors(line: dict, where: str, tax_mode: str) -> list[str]:
    errors = []
    for field, amount in (("taxes", line["price"]), ("shipping_taxes", line["shipping_price"])):
        taxes = line.get(field) or []
        for tax in taxes:
            if tax.get("amount") is None or tax["amount"] < 0:
                errors.append(f"tax_implausible: {where} {field} {tax.get('code')} amount {tax.get('amount')}")
            parts = (tax.get("amount_breakdown") or {}).get("parts")
            if parts is not None and sum((p["amount"] for p in parts), Decimal(0)) != tax.get("amount"):
                errors.append(f"breakdown_not_sum: {where} {field} {tax.get('code')} parts do not add up to {tax.get('amount')}")
        rates = [t.get("rate") for t in taxes]
        if not taxes or any(r is None for r in rates):
            continue
        rate = sum(rates, Decimal(0)) / 100
        total = sum((t["amount"] for t in taxes), Decimal(0))
        expected = amount * rate if tax_mode == "TAX_EXCLUDED" else amount - amount / (1 + rate)
        if abs(total - expected) > CENT * (len(taxes) + 1):
            errors.append(f"tax_implausible: {where} {field} add up to {total}, expected about {q2(expected)} "
                          f"at {rate * 100}% in {tax_mode}")
    for field, amount in (("price_amount_breakdown", line["price"]), ("shipping_price_amount_breakdown", line["shipping_price"])):
        parts = (line.get(field) or {}).get("parts")
        if parts is not None and sum((p["amount"] for p in parts), Decimal(0)) != amount:
            errors.append(f"breakdown_not_sum: {where} {field} parts do not add up to {amount}")
    return errors


def _cancelation_errors(line: dict, where: str, reading: str) -> list[str]:
    cancelations = line.get("cancelations") or []
    if not cancelations:
        return []
    errors = []
    units = sum((c.get("quantity") or 0 for c in cancelations), 0)
    if units > line["quantity"]:
        errors.append(f"cancelation_exceeds_line: {where} cancels {units} of {line['quantity']} units")
    reduce = reading == "reduce"
    for field, cancel_field in (("price", "amount"), ("shipping_price", "shipping_amount"), ("commission_fee", "commission_amount")):
        cancelled = _sum_field(cancelations, cancel_field)
        ordered = line[field] + cancelled if reduce else line[field]
        if cancelled > ordered or (reduce and line[field] < 0):
            errors.append(f"cancelation_exceeds_line: {where} cancellations take {cancelled} of its {field} {ordered}")
    for field in ("taxes", "shipping_taxes", "fees"):
        have = {item["code"]: item["amount"] for item in line.get(field) or []}
        for code in {x["code"] for c in cancelations for x in c.get(field) or []}:
            cancelled = sum((x["amount"] for c in cancelations for x in c.get(field) or [] if x["code"] == code), Decimal(0))
            ordered = have.get(code, Decimal(0)) + (cancelled if reduce else 0)
            if cancelled > ordered:
                errors.append(f"cancelation_exceeds_line: {where} cancellations take {cancelled} of its {field} {code} {ordered}")
    for c in cancelations:
        if c.get("commission_total_amount") != c.get("commission_amount") + _sum_field(c.get("commission_taxes"), "amount"):
            errors.append(f"cancelation_off: {where} cancellation {c.get('id')} commission_total_amount is not amount + taxes")
    if units == line["quantity"] and line.get("order_line_state") not in DEAD:
        errors.append(f"state_incoherent: {where} has all its units cancelled but is {line.get('order_line_state')}")
    return errors


def _line_state_errors(line: dict, where: str, order_state: str) -> list[str]:
    allowed = ORDER_LINE_STATES_BY_ORDER.get(order_state)
    if allowed is None:
        return []
    main, others = allowed
    errors = []
    if line.get("order_line_state") not in main | others:
        errors.append(f"state_incoherent: {where} is {line.get('order_line_state')} in a {order_state} order")
    shipped = line.get("order_line_state") in SHIPPED_LINE
    if shipped and not line.get("shipped_date"):
        errors.append(f"dates_incoherent: {where} is {line.get('order_line_state')} without shipped_date")
    if not shipped and line.get("order_line_state") not in DEAD and line.get("shipped_date"):
        errors.append(f"dates_incoherent: {where} is {line.get('order_line_state')} with a shipped_date")
    if line.get("can_refund") and line.get("order_line_state") in DEAD | {"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"}:
        errors.append(f"flags_incoherent: {where} can_refund while {line.get('order_line_state')}")
    return errors


def _order_state_errors(order: dict) -> list[str]:
    errors = []
    state = order.get("order_state")
    lines = order.get("order_lines") or []
    line_states = [line.get("order_line_state") for line in lines]
    main = ORDER_LINE_STATES_BY_ORDER.get(state, (set(), set()))[0]
    if state in ORDER_LINE_STATES_BY_ORDER and not any(s in main for s in line_states):
        errors.append(f"state_incoherent: no line of the {state} order is {'/'.join(sorted(main))}")
    workflow = order.get("payment_workflow")
    debited = order.get("customer_debited_date")
    never = order.get("customer_directly_pays_seller") is True or workflow == "NO_CUSTOMER_PAYMENT_CONFIRMATION"
    if never and debited:
        errors.append(f"debit_incoherent: {workflow} order (directly pays seller: {order.get('customer_directly_pays_seller')}) debited")
    if workflow in (None, "PAY_ON_ACCEPTANCE") and not never:
        if state in {"SHIPPING"} | SHIPPED_ORDER and not debited:
            errors.append(f"debit_incoherent: PAY_ON_ACCEPTANCE order {state} without customer_debited_date")
        if state in {"STAGING", "WAITING_ACCEPTANCE", "WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "REFUSED"} and debited:
            errors.append(f"debit_incoherent: PAY_ON_ACCEPTANCE order {state} already debited")
    if workflow == "PAY_ON_SHIPMENT" and debited and state not in SHIPPED_ORDER | {"CANCELED"}:
        errors.append(f"debit_incoherent: PAY_ON_SHIPMENT order debited while {state}")
    if workflow == "PAY_ON_DELIVERY" and debited and state not in RECEIVED_ANY | {"CANCELED"}:
        errors.append(f"debit_incoherent: PAY_ON_DELIVERY order debited while {state}")
    if (order.get("payment_duration") is not None) != (workflow == "PAY_ON_DUE_DATE"):
        errors.append(f"debit_incoherent: payment_duration {order.get('payment_duration')!r} on a {workflow} order")
    created = _moment(order.get("created_date"))
    accepted = _moment(order.get("acceptance_decision_date"))
    debit = _moment(debited)
    if accepted and created and accepted < created:
        errors.append("dates_incoherent: accepted before created")
    if debit and (accepted or created) and debit < (accepted or created):
        errors.append("dates_incoherent: debited before acceptance")
    if accepted and state in {"STAGING", "WAITING_ACCEPTANCE"}:
        errors.append(f"dates_incoherent: acceptance_decision_date on a {state} order")
    for line in lines:
        shipped, received = _moment(line.get("shipped_date")), _moment(line.get("received_date"))
        if shipped and received and received < shipped:
            errors.append(f"dates_incoherent: line {line.get('order_line_id')} received before shipped")
    if order.get("can_shop_ship") and state != "SHIPPING":
        errors.append(f"flags_incoherent: can_shop_ship on a {state} order")
    if order.get("can_cancel") and (state not in {"WAITING_DEBIT", "WAITING_DEBIT_PAYMENT", "SHIPPING"} or debited):
        errors.append(f"flags_incoherent: can_cancel on a {state} order (debited: {bool(debited)})")
    return errors


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return parse_time(value)
