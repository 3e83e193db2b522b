"""Carrier mapping: Shopify tracking company -> the marketplace's SH21 carrier code, or a clear way out."""

from pathlib import Path

import pytest
import yaml

from mirakl_pipelines.config import PROJECT_ROOT
from mirakl_pipelines.mirakl.client import Carrier
from mirakl_pipelines.sandbox.mirakl.carriers import default_carriers
from mirakl_pipelines.sync.carriers import CarrierMap, CarrierMapError, normalise_company

SHIPPED_MAP = PROJECT_ROOT / "data" / "carriers.yaml"
SH21 = [Carrier.model_validate(c) for c in default_carriers()]


@pytest.fixture(scope="module")
def shipped() -> CarrierMap:
    return CarrierMap.load(SHIPPED_MAP)


def write_map(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "carriers.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


# ---- the shipped file ------------------------------------------------------------------------------


def test_every_code_of_the_shipped_map_is_in_the_sandbox_carrier_list(shipped):
    codes = {c.code for c in SH21}
    raw = yaml.safe_load(SHIPPED_MAP.read_text())
    assert {"default", "decathlon_fr", "leroymerlin_fr"} <= set(raw)
    for section, entries in raw.items():
        for company, code in entries.items():
            assert code in codes, (section, company, code)
            # Each entry resolves to itself, registered, on the marketplaces that see it.
            marketplace = "decathlon_fr" if section == "default" else section
            choice = shipped.resolve(company, None, marketplace, SH21, accepts_unregistered=False)
            assert (choice.kind, choice.carrier_code) == ("registered", code)


def test_a_marketplace_section_applies_to_that_marketplace_only(shipped):
    assert shipped.code_for("Own delivery", "leroymerlin_fr") == "LIVRAISON_VENDEUR"
    assert shipped.code_for("Own delivery", "decathlon_fr") is None
    assert shipped.code_for("Colissimo", "leroymerlin_fr") == "COLISSIMO_FR"  # from default


def test_section_entries_override_default(tmp_path):
    mapping = CarrierMap.load(write_map(tmp_path, {"default": {"DHL": "DHL"}, "leroymerlin_fr": {"DHL": "DHL_FREIGHT"}}))
    assert mapping.code_for("DHL", "leroymerlin_fr") == "DHL_FREIGHT"
    assert mapping.code_for("DHL", "decathlon_fr") == "DHL"


@pytest.mark.parametrize("spelling", ["DHL Express", "dhl-express", "  Dhl   EXPRESS. ", "dhl_express", "DHLExpress"])
def test_matching_ignores_case_spaces_and_punctuation(shipped, spelling):
    choice = shipped.resolve(spelling, None, "decathlon_fr", SH21, accepts_unregistered=False)
    assert (choice.kind, choice.carrier_code, choice.carrier_label) == ("registered", "DHL", "DHL Express")


def test_accents_are_ignored_too():
    assert normalise_company("Colis Privé") == normalise_company("COLIS-PRIVE") == "colisprive"


# ---- registered -----------------------------------------------------------------------------------


def test_registered_carrier_takes_its_url_from_mirakl_and_needs_a_number(shipped):
    choice = shipped.resolve("Colissimo", "https://ignored.example/1", "decathlon_fr", SH21, accepts_unregistered=True)
    assert choice.kind == "registered" and choice.carrier_code == "COLISSIMO_FR"
    assert choice.carrier_url is None and choice.carrier_name is None  # computed by Mirakl, not sent
    assert choice.needs_tracking_number
    assert choice.tracking_url_for("6A123") == "https://www.laposte.fr/outils/suivre-vos-envois?code=6A123"


def test_registered_carrier_without_tracking_page(shipped):
    choice = shipped.resolve("Livraison par le vendeur", None, "leroymerlin_fr", SH21, accepts_unregistered=False)
    assert choice.kind == "registered" and not choice.needs_tracking_number
    assert choice.tracking_url_for("X1") is None


# ---- unregistered ---------------------------------------------------------------------------------


def test_unmapped_carrier_goes_unregistered_where_the_marketplace_accepts_it(shipped):
    choice = shipped.resolve("Colis Privé", "https://colisprive.fr/t/ABC", "decathlon_fr", SH21, accepts_unregistered=True)
    assert choice.kind == "unregistered"
    assert (choice.carrier_name, choice.carrier_url, choice.carrier_code) == ("Colis Privé", "https://colisprive.fr/t/ABC", None)
    assert choice.tracking_url_for("ABC") == "https://colisprive.fr/t/ABC"
    assert "not mapped" in choice.reason


def test_stale_mapping_is_named_and_only_sent_unregistered_where_allowed(tmp_path):
    mapping = CarrierMap.load(write_map(tmp_path, {"default": {"Geodis": "GEODIS"}}))
    refused = mapping.resolve("Geodis", None, "decathlon_fr", SH21, accepts_unregistered=False)
    assert refused.kind == "unknown"
    assert "maps it to GEODIS" in refused.reason and "has no GEODIS" in refused.reason and "decathlon_fr" in refused.reason
    sent = mapping.resolve("Geodis", "https://geodis.example/t", "decathlon_fr", SH21, accepts_unregistered=True)
    assert sent.kind == "unregistered" and "has no GEODIS" in sent.reason


# ---- unknown --------------------------------------------------------------------------------------


def test_unknown_carrier_reason_names_carrier_marketplace_and_line(shipped):
    choice = shipped.resolve("Colis Privé", None, "leroymerlin_fr", SH21, accepts_unregistered=False)
    assert choice.kind == "unknown" and not choice.shippable
    assert "'Colis Privé'" in choice.reason
    assert "leroymerlin_fr" in choice.reason
    assert str(SHIPPED_MAP) in choice.reason
    assert choice.yaml_line.startswith("Colis Privé: <one of: CHRONOPOST, COLISSIMO_FR,")
    assert choice.yaml_line in choice.reason


def test_the_suggested_line_once_added_ships_the_next_run(tmp_path):
    """An SH21 carrier nobody mapped: the suggested line is exact, and adding it makes the carrier registered."""
    data = {"default": {"UPS": "UPS"}}
    path = write_map(tmp_path, data)
    before = CarrierMap.load(path).resolve("mondial-relay", None, "decathlon_fr", SH21, accepts_unregistered=False)
    assert before.kind == "unknown"
    assert before.yaml_line == "mondial-relay: MONDIAL_RELAY"
    path.write_text(path.read_text() + f"decathlon_fr:\n  {before.yaml_line}\n")
    after = CarrierMap.load(path).resolve("mondial-relay", None, "decathlon_fr", SH21, accepts_unregistered=False)
    assert (after.kind, after.carrier_code) == ("registered", "MONDIAL_RELAY")


def test_suggested_line_is_valid_yaml_for_awkward_names(tmp_path):
    sh21 = SH21 + [Carrier(code="DHL_PAR", label="DHL: Paris #2")]
    choice = CarrierMap.from_data({}).resolve("DHL: Paris #2", None, "decathlon_fr", sh21, accepts_unregistered=False)
    assert choice.yaml_line == '"DHL: Paris #2": DHL_PAR'
    assert yaml.safe_load(choice.yaml_line) == {"DHL: Paris #2": "DHL_PAR"}


@pytest.mark.parametrize("company", [None, "", "   "])
def test_fulfilment_without_company_is_unknown_even_where_unregistered_is_accepted(shipped, company):
    choice = shipped.resolve(company, "https://t.example/1", "decathlon_fr", SH21, accepts_unregistered=True)
    assert choice.kind == "unknown" and "no tracking company" in choice.reason and choice.yaml_line is None


# ---- a broken file --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, fragments",
    [
        (["UPS"], ["expected a mapping of marketplace code"]),
        ({"Decathlon FR": {"UPS": "UPS"}}, ["section 'Decathlon FR'", "[a-z0-9_]+"]),
        ({"decathlon_fr": ["UPS"]}, ["section decathlon_fr", "got list"]),
        ({"decathlon_fr": {"UPS": None}}, ["section decathlon_fr, entry 'UPS'", "carrier_code"]),
        ({"decathlon_fr": {"UPS": "U P S"}}, ["section decathlon_fr, entry 'UPS'", "'U P S'"]),
        ({"default": {"---": "UPS"}}, ["section default, entry '---'", "non-empty name"]),
        ({"default": {"DHL Express": "DHL", "dhl-express": "DHL_FREIGHT"}},
         ["section default, entry 'dhl-express'", "'DHL Express'", "DHL_FREIGHT instead of DHL"]),
    ],
    ids=["not a mapping", "bad section", "section not a mapping", "no code", "bad code", "empty name", "conflict"],
)
def test_a_broken_file_fails_naming_file_section_and_entry(tmp_path, data, fragments):
    path = write_map(tmp_path, data)
    with pytest.raises(CarrierMapError) as caught:
        CarrierMap.load(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_same_name_twice_with_the_same_code_is_fine(tmp_path):
    mapping = CarrierMap.load(write_map(tmp_path, {"default": {"DHL Express": "DHL", "dhl-express": "DHL"}}))
    assert mapping.code_for("DHL EXPRESS", "x") == "DHL"


def test_missing_and_unparsable_files_name_the_path(tmp_path):
    with pytest.raises(CarrierMapError, match="cannot read carrier mapping file .*nowhere.yaml"):
        CarrierMap.load(tmp_path / "nowhere.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("default: {UPS: [\n")
    with pytest.raises(CarrierMapError, match=r"bad.yaml is not valid YAML"):
        CarrierMap.load(bad)


def test_an_empty_file_maps_nothing(tmp_path):
    path = tmp_path / "carriers.yaml"
    path.write_text("# nothing yet\n")
    assert CarrierMap.load(path).resolve("UPS", None, "decathlon_fr", SH21, accepts_unregistered=False).kind == "unknown"
