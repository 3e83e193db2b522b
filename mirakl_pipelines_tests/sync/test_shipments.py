"""When a Mirakl order ships, from its Shopify fulfilments; the OR23 payload; the per-marketplace fulfilment config."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from mirakl_pipelines.config import DEFAULT_CONFIG_PATH, ConfigError, FulfilmentsConfig, InvoiceConfig, load_settings
from mirakl_pipelines.mirakl.budget import InMemoryBudget
from mirakl_pipelines.mirakl.client import Carrier, MiraklClient
from mirakl_pipelines.mirakl.models import Cancelation, MiraklOrder
from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.carriers import default_carriers
from mirakl_pipelines.sandbox.mirakl.orders import build_order
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.server import serve_in_thread
from mirakl_pipelines.sync.carriers import CarrierChoice, CarrierMap
from mirakl_pipelines.sync.order_mapping import LINE_ID_PROPERTY
from mirakl_pipelines.sync.shipments import (
    Fulfilment,
    decide_shipment,
    fulfilled_quantities,
    latest_tracking,
    parcel_lines,
    mirakl_line_id,
    tracking_differs,
    tracking_payload,
)

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
SH21 = [Carrier.model_validate(c) for c in default_carriers()]
CARRIERS = CarrierMap.load(Path(__file__).resolve().parents[2] / "data" / "carriers.yaml")


def order(state: str = "SHIPPING", lines: list[tuple] | None = None, **fields) -> MiraklOrder:
    """An order whose lines are (suffix, quantity, line state[, cancelled quantity])."""
    lines = lines or [("1", 2, state), ("2", 1, state)]
    return MiraklOrder.model_validate({
        "order_id": "M-100-A",
        "order_state": state,
        "order_lines": [
            {
                "order_line_id": f"M-100-A-{suffix}", "quantity": quantity, "order_line_state": line_state,
                "offer_sku": f"SKU-{suffix}",
                "cancelations": [{"quantity": rest[0]}] if rest else [],
            }
            for suffix, quantity, line_state, *rest in lines
        ],
        **fields,
    })


def fulfilment(fid: str, minutes: int, lines: dict[str, int], number: str | None = None, company: str | None = "Colissimo",
               status: str = "SUCCESS") -> Fulfilment:
    return Fulfilment(fid, T0 + timedelta(minutes=minutes), lines, company, number, None, status)


# ---- reading Shopify line items ----------------------------------------------------------------------


def test_line_id_is_read_from_rest_properties_and_graphql_attributes():
    rest = [{"name": "colour", "value": "red"}, {"name": LINE_ID_PROPERTY, "value": "M-100-A-1"}]
    graphql = [{"key": LINE_ID_PROPERTY, "value": " M-100-A-2 "}]
    assert mirakl_line_id(rest) == "M-100-A-1"
    assert mirakl_line_id(graphql) == "M-100-A-2"
    assert mirakl_line_id([{"name": "colour", "value": "red"}]) is None
    assert mirakl_line_id([{"name": LINE_ID_PROPERTY, "value": ""}]) is None
    assert mirakl_line_id(None) is None


def test_quantities_are_summed_over_fulfilments_and_cancelled_ones_do_not_count():
    fulfilments = [
        fulfilment("F1", 0, {"M-100-A-1": 1}),
        fulfilment("F2", 5, {"M-100-A-1": 1, "M-100-A-2": 1}),
        fulfilment("F3", 9, {"M-100-A-2": 4}, status="cancelled"),  # REST spelling
        fulfilment("F4", 9, {"M-100-A-2": 4}, status="FAILURE"),
    ]
    assert fulfilled_quantities(fulfilments) == {"M-100-A-1": 2, "M-100-A-2": 1}


def test_a_negative_quantity_is_refused_naming_the_fulfilment():
    with pytest.raises(ValueError, match="fulfilment F9: quantity for Mirakl line M-100-A-1"):
        fulfilled_quantities([fulfilment("F9", 0, {"M-100-A-1": -1})])


# ---- ship or wait ----------------------------------------------------------------------------------


@pytest.mark.parametrize("partial", [False, True])
def test_a_fully_fulfilled_order_ships_under_both_policies(partial):
    decision = decide_shipment(order(), {"M-100-A-1": 2, "M-100-A-2": 1}, partial_shipments=partial)
    assert decision.action == "ship" and not decision.partial and decision.reason is None
    assert all(line.complete for line in decision.lines)


def test_partly_fulfilled_waits_when_partial_shipments_are_not_allowed():
    decision = decide_shipment(order(), {"M-100-A-1": 1}, partial_shipments=False)
    assert decision.action == "wait"
    assert "partial_shipments is false" in decision.reason
    assert "line M-100-A-1 (SKU-1) 1 of 2 fulfilled" in decision.reason
    assert "line M-100-A-2 (SKU-2) 0 of 1 fulfilled" in decision.reason


def test_partly_fulfilled_sends_tracking_only_when_partial_shipments_are_allowed():
    """OR24 ships every line: after the first parcel it would mark unfulfilled lines shipped (issue 8, point 7)."""
    decision = decide_shipment(order(), {"M-100-A-2": 1}, partial_shipments=True)
    assert decision.action == "track" and decision.partial
    assert "OR24 ships every line" in decision.reason and "line M-100-A-1 (SKU-1) 0 of 2 fulfilled" in decision.reason


def test_a_parcel_ships_its_live_units_not_yet_in_shipments():
    cancelled = order()
    cancelled.order_lines[0].cancelations.append(Cancelation(id="c", quantity=1, amount=1))
    assert parcel_lines(cancelled, {"M-100-A-1": 2, "M-100-A-2": 1}, {}) == {"M-100-A-1": 1, "M-100-A-2": 1}
    assert parcel_lines(order(), {"M-100-A-1": 2}, {"M-100-A-1": 1}) == {"M-100-A-1": 1}
    assert parcel_lines(order(), {"M-100-A-1": 1, "GHOST": 3}, {"M-100-A-1": 2}) == {}


@pytest.mark.parametrize("partial", [False, True])
def test_nothing_fulfilled_waits(partial):
    decision = decide_shipment(order(), {}, partial_shipments=partial)
    assert decision.action == "wait" and "nothing fulfilled" in decision.reason


def test_refused_and_canceled_lines_do_not_count():
    mixed = order(lines=[("1", 2, "SHIPPING"), ("2", 1, "REFUSED"), ("3", 5, "CANCELED")])
    decision = decide_shipment(mixed, {"M-100-A-1": 2}, partial_shipments=False)
    assert decision.action == "ship"
    assert [line.order_line_id for line in decision.lines] == ["M-100-A-1"]


def test_partly_cancelled_quantity_is_not_waited_for():
    reduced = order(lines=[("1", 3, "SHIPPING", 1), ("2", 1, "SHIPPING", 1)])
    decision = decide_shipment(reduced, {"M-100-A-1": 2}, partial_shipments=False)
    assert decision.action == "ship"
    assert [(line.required, line.fulfilled) for line in decision.lines] == [(2, 2)]


@pytest.mark.parametrize("state", ["SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED"])
def test_an_order_mirakl_already_shipped_is_done(state):
    decision = decide_shipment(order(state), {"M-100-A-1": 2, "M-100-A-2": 1}, partial_shipments=False)
    assert decision.action == "done" and state in decision.reason


@pytest.mark.parametrize("state", ["CANCELED", "REFUSED"])
def test_a_dead_order_is_skipped_with_its_state(state):
    decision = decide_shipment(order(state), {"M-100-A-1": 2}, partial_shipments=True)
    assert decision.action == "skip" and state in decision.reason and "never ship" in decision.reason


@pytest.mark.parametrize("state", ["WAITING_DEBIT", "WAITING_ACCEPTANCE", None])
def test_an_order_not_yet_in_shipping_waits(state):
    decision = decide_shipment(order(state), {"M-100-A-1": 2, "M-100-A-2": 1}, partial_shipments=True)
    assert decision.action == "wait" and "only in SHIPPING" in decision.reason


def test_fulfilled_lines_of_another_order_are_reported():
    decision = decide_shipment(order(), {"M-100-A-1": 2, "M-100-A-2": 1, "M-999-A-1": 1}, partial_shipments=False)
    assert decision.action == "ship"
    assert decision.unmatched_line_ids == ("M-999-A-1",)
    assert "M-999-A-1" in decision.reason


# ---- which tracking, which payload -----------------------------------------------------------------


def test_latest_fulfilment_gives_the_tracking():
    fulfilments = [
        fulfilment("F1", 0, {"M-100-A-1": 1}, "6A0001"),
        fulfilment("F3", 10, {"M-100-A-2": 1}, "6A0003", status="CANCELLED"),
        fulfilment("F2", 5, {"M-100-A-1": 1}, "6A0002"),
        fulfilment("F4", 20, {"M-100-A-1": 0}, None, company=None),  # no tracking at all
    ]
    assert latest_tracking(fulfilments).tracking_number == "6A0002"
    assert latest_tracking([fulfilment("A", 0, {}, "1"), fulfilment("B", 0, {}, "2")]).tracking_number == "2"  # tie: by id
    assert latest_tracking([]) is None


def test_registered_payload_sends_the_code_and_number_only():
    choice = CARRIERS.resolve("Colissimo", "https://x.example", "decathlon_fr", SH21, accepts_unregistered=True)
    assert tracking_payload(choice, " 6A123 ") == {"carrier_code": "COLISSIMO_FR", "tracking_number": "6A123"}


def test_registered_carrier_with_a_tracking_page_needs_a_number():
    choice = CARRIERS.resolve("UPS", None, "decathlon_fr", SH21, accepts_unregistered=False)
    with pytest.raises(ValueError, match="carrier UPS of marketplace decathlon_fr needs a tracking number"):
        tracking_payload(choice, None)
    seller = CARRIERS.resolve("Own delivery", None, "leroymerlin_fr", SH21, accepts_unregistered=False)
    assert tracking_payload(seller, None) == {"carrier_code": "LIVRAISON_VENDEUR"}


def test_unregistered_payload_sends_name_and_url():
    choice = CARRIERS.resolve("Colis Privé", "https://colisprive.fr/t/CP1", "decathlon_fr", SH21, accepts_unregistered=True)
    assert tracking_payload(choice, "CP1") == {
        "carrier_name": "Colis Privé", "carrier_url": "https://colisprive.fr/t/CP1", "tracking_number": "CP1",
    }


def test_unknown_carrier_has_no_payload():
    choice = CarrierChoice("unknown", "decathlon_fr", "Geodis", reason="carrier 'Geodis' is not mapped")
    with pytest.raises(ValueError, match="unknown carrier: carrier 'Geodis' is not mapped"):
        tracking_payload(choice, "G1")


def test_tracking_differs_compares_with_what_mirakl_shows():
    sent = order(shipping_carrier_code="COLISSIMO_FR", shipping_company="Colissimo", shipping_tracking="6A1")
    assert not tracking_differs(sent, {"carrier_code": "COLISSIMO_FR", "tracking_number": "6A1"})
    assert tracking_differs(sent, {"carrier_code": "COLISSIMO_FR", "tracking_number": "6A2"})
    assert tracking_differs(sent, {"carrier_code": "UPS", "tracking_number": "6A1"})
    assert tracking_differs(order(), {"carrier_name": "Colis Privé", "tracking_number": "CP1"})
    unregistered = order(shipping_company="Colis Privé", shipping_tracking="CP1")
    assert not tracking_differs(unregistered, {"carrier_name": "Colis Privé", "tracking_number": "CP1"})


# ---- the payload over the wire ---------------------------------------------------------------------


@pytest.fixture
def marketplace():
    sim = MarketplaceSim(MarketplaceSettings(api_key="k", rate_limit_scale=0.001, accepts_unregistered_carriers=False))
    server = serve_in_thread(create_mirakl_app(sim))
    client = MiraklClient(server.url, "k", rate_limit_scale=0.001, timeout=5, marketplace="decathlon_fr",
                          budget=InMemoryBudget())
    yield sim, client
    client.close()
    server.stop()


def _add_shipping_order(sim, order_id: str) -> MiraklOrder:
    sim.add_order(build_order(order_id=order_id, state="SHIPPING", created=datetime.now(UTC),
                              lines=[{"sku": "ALP-TRAIL-42", "quantity": 2, "unit_price": Decimal("89.90")}]))
    return MiraklOrder.model_validate(sim.get_order(order_id))


def test_decision_and_payload_ship_the_order_in_the_sandbox(marketplace):
    sim, client = marketplace
    mirakl_order = _add_shipping_order(sim, "W-1-A")
    fulfilments = [fulfilment("F1", 0, {"W-1-A-1": 1}, "6A0001"), fulfilment("F2", 5, {"W-1-A-1": 1}, "6A0002", "colissimo")]
    decision = decide_shipment(mirakl_order, fulfilled_quantities(fulfilments), partial_shipments=False)
    assert decision.action == "ship"
    latest = latest_tracking(fulfilments)
    choice = CARRIERS.resolve(latest.tracking_company, latest.tracking_url, "decathlon_fr", client.list_carriers(), False)
    payload = tracking_payload(choice, latest.tracking_number)
    client.update_tracking("W-1-A", **payload)
    assert client.ship_order("W-1-A") is True
    shipped = MiraklOrder.model_validate(sim.get_order("W-1-A"))
    assert shipped.order_state == "SHIPPED"
    assert (shipped.shipping_carrier_code, shipped.shipping_tracking) == ("COLISSIMO_FR", "6A0002")
    assert shipped.shipping_tracking_url == choice.tracking_url_for("6A0002")
    assert not tracking_differs(shipped, payload)  # a resumed push would skip OR23
    assert decide_shipment(shipped, fulfilled_quantities(fulfilments), partial_shipments=False).action == "done"


def test_unregistered_payload_is_what_an_accepting_marketplace_takes(marketplace):
    sim, client = marketplace
    sim.apply_settings(accepts_unregistered_carriers=True)
    _add_shipping_order(sim, "W-2-A")
    choice = CARRIERS.resolve("Colis Privé", "https://colisprive.fr/t/CP9", "decathlon_fr", SH21, accepts_unregistered=True)
    client.update_tracking("W-2-A", **tracking_payload(choice, "CP9"))
    stored = sim.get_order("W-2-A")
    assert (stored["shipping_company"], stored["shipping_tracking"], stored["shipping_tracking_url"]) == (
        "Colis Privé", "CP9", "https://colisprive.fr/t/CP9")


# ---- the fulfilments section of the configuration ---------------------------------------------------


def test_existing_configs_load_with_fulfilment_defaults():
    settings = load_settings(DEFAULT_CONFIG_PATH)
    for marketplace in settings.marketplaces:
        assert marketplace.fulfilments == FulfilmentsConfig()
    defaults = FulfilmentsConfig()
    assert (defaults.partial_shipments, defaults.accepts_unregistered_carriers, defaults.unacknowledged_after_minutes) == (
        False, False, 60)
    assert (defaults.invoice.enabled, defaults.invoice.type_code, defaults.invoice.source) == (False, "CUSTOMER_INVOICE", None)
    assert (defaults.sweep_cron, defaults.carriers_file) == ("*/30 * * * *", "data/carriers.yaml")
    assert settings.resolve_path(defaults.carriers_file).is_file()


def _config_with(tmp_path, fulfilments: dict) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    data["marketplaces"][1]["fulfilments"] = fulfilments
    path = tmp_path / "marketplaces.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_full_fulfilments_section_loads(tmp_path):
    section = {
        "partial_shipments": True, "accepts_unregistered_carriers": True, "unacknowledged_after_minutes": 90,
        "invoice": {"enabled": True, "type_code": "CUSTOMER_INVOICE", "source": "https://erp.example/{shopify_order_id}.pdf",
                    "missing_after_hours": 48, "authorization_env": "ERP_INVOICE_AUTH"},
        "sweep_cron": "*/10 * * * *", "carriers_file": "config/carriers.yaml", "multiple_shipments": True,
    }
    loaded = load_settings(_config_with(tmp_path, section)).marketplaces[1].fulfilments
    assert loaded.model_dump() == section


@pytest.mark.parametrize(
    "section, field, fragments",
    [
        ({"sweep_cron": "every 30 minutes"}, "sweep_cron", ["not a valid cron expression"]),
        ({"unacknowledged_after_minutes": 0}, "unacknowledged_after_minutes", ["greater than or equal to 1"]),
        ({"invoice": {"enabled": True}}, "invoice.source", ["required when invoice.enabled is true"]),
        ({"invoice": {"source": "inv/{order}.pdf"}}, "invoice.source", ["unknown placeholder(s) ['order']", "{order_name}"]),
        ({"invoice": {"source": "inv/{order_name.pdf"}}, "invoice.source", ["not a valid template"]),
        ({"invoice": {"type_code": "invoice"}}, "invoice.type_code", ["^[A-Z][A-Z0-9_]*$"]),
        ({"invoice": {"missing_after_hours": 0}}, "invoice.missing_after_hours", ["greater than or equal to 1"]),
        ({"invoice": {"authorization_env": "Bearer abc"}}, "invoice.authorization_env", ["^[A-Z_][A-Z0-9_]*$"]),
        ({"partial_shipment": True}, "partial_shipment", ["Extra inputs are not permitted"]),
    ],
    ids=["cron", "minutes", "source missing", "placeholder", "template", "type code", "missing hours", "auth env", "typo"],
)
def test_a_wrong_fulfilments_section_names_the_field(tmp_path, section, field, fragments):
    with pytest.raises(ConfigError) as caught:
        load_settings(_config_with(tmp_path, section))
    message = str(caught.value)
    assert f"  - marketplaces.1.fulfilments.{field}: " in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_invoice_source_renders_per_order():
    url = InvoiceConfig(enabled=True, source="https://erp.example/inv/{order_name}-{mirakl_order_id}.pdf")
    assert url.is_url
    assert url.render(order_name="#1001", mirakl_order_id="M-1-A", shopify_order_id="55") == (
        "https://erp.example/inv/%231001-M-1-A.pdf")
    path = InvoiceConfig(enabled=True, source="invoices/{shopify_order_id}/{order_name}.pdf")
    assert not path.is_url
    assert path.render(order_name="../#10/01", mirakl_order_id="M", shopify_order_id="55") == "invoices/55/__#10_01.pdf"
    with pytest.raises(ValueError, match="invoice.source is not set"):
        InvoiceConfig().render(order_name="#1", mirakl_order_id="M", shopify_order_id="1")
