"""The stock section of a marketplace: defaults, the shipped policies, and located errors for a wrong one."""

import copy
from decimal import Decimal

import pytest
import yaml

from mirakl_pipelines.config import DEFAULT_CONFIG_PATH, PROJECT_ROOT, ConfigError, StockConfig, load_settings, parse_settings
from mirakl_pipelines.sync.sku_map import SkuMapFile


@pytest.fixture
def shipped() -> dict:
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())


def error_with(shipped: dict, **stock) -> str:
    data = copy.deepcopy(shipped)
    data["marketplaces"][0]["stock"] = stock
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, DEFAULT_CONFIG_PATH)
    return str(caught.value)


def test_defaults():
    stock = StockConfig()
    assert (stock.enabled, stock.locations, stock.mode) == (True, [], "sum")
    assert (stock.buffer_units, stock.buffer_percent, stock.cap, stock.zero_below) == (0, Decimal(0), None, 0)
    assert (stock.sku_map_file, stock.cron, stock.full_cron, stock.debounce_seconds) == (None, "*/15 * * * *", "0 3 * * *", 10)
    assert (stock.tolerance, stock.max_differing_skus) == (0, 10)
    assert (stock.shopify_bulk_threshold, stock.mirakl_export_threshold, stock.import_timeout_seconds) == (5000, 2000, 600)


def test_the_shipped_marketplaces_show_two_policies():
    settings = load_settings(DEFAULT_CONFIG_PATH)
    decathlon, leroymerlin = settings.marketplace("decathlon_fr").stock, settings.marketplace("leroymerlin_fr").stock
    assert (decathlon.mode, decathlon.locations, decathlon.buffer_units) == ("sum", ["Entrepôt Lyon", "Boutique Paris"], 2)
    assert (leroymerlin.mode, leroymerlin.locations) == ("single", ["Entrepôt Lyon"])
    assert (leroymerlin.buffer_percent, leroymerlin.cap, leroymerlin.zero_below) == (Decimal(10), 50, 2)
    # The mapping file it names exists and parses, with lines for that marketplace.
    sku_map = SkuMapFile.load(settings.resolve_path(leroymerlin.sku_map_file)).for_marketplace("leroymerlin_fr")
    assert sku_map.offers and decathlon.sku_map_file is None


def test_the_shipped_locations_are_the_sandbox_stores_locations():
    catalogue = yaml.safe_load((PROJECT_ROOT / "data" / "sandbox" / "catalogue.yaml").read_text())
    names = {catalogue["location"]} | {loc["name"] for loc in catalogue.get("locations", [])}
    for m in load_settings(DEFAULT_CONFIG_PATH).marketplaces:
        assert set(m.stock.locations) <= names, (m.code, m.stock.locations, names)


def test_a_marketplace_without_a_stock_section_gets_the_defaults(shipped):
    data = copy.deepcopy(shipped)
    for m in data["marketplaces"]:
        m.pop("stock", None)
    assert all(m.stock == StockConfig() for m in parse_settings(data, DEFAULT_CONFIG_PATH).marketplaces)


@pytest.mark.parametrize(
    "stock, where, message",
    [
        (dict(mode="single"), "stock.mode", "list exactly one in stock.locations (got 0)"),
        (dict(mode="single", locations=["A", "B"]), "stock.mode", "(got 2)"),
        (dict(mode="both"), "stock.mode", "'sum' or 'single'"),
        (dict(locations=["Lyon", " "]), "stock.locations", "location entries [1] are empty"),
        (dict(buffer_units=-1), "stock.buffer_units", "greater than or equal to 0"),
        (dict(buffer_percent=101), "stock.buffer_percent", "less than or equal to 100"),
        (dict(buffer_percent="12.34567"), "stock.buffer_percent", "no more than 4 decimal places"),
        (dict(cap=5, zero_below=6), "stock.zero_below", "zero_below 6 is above cap 5"),
        (dict(cron="every 5 min"), "stock.cron", "not a valid cron expression"),
        (dict(full_cron="61 * * * *"), "stock.full_cron", "not a valid cron expression"),
        (dict(debounce_seconds=901), "stock.debounce_seconds", "less than or equal to 900"),
        (dict(sku_map_file=""), "stock.sku_map_file", "at least 1 character"),
        (dict(buffer=2), "stock.buffer", "Extra inputs are not permitted"),
    ],
)
def test_a_wrong_stock_section_fails_naming_the_field(shipped, stock, where, message):
    text = error_with(shipped, **stock)
    assert f"marketplaces.0.{where}:" in text and message in text


def test_cap_zero_pauses_a_marketplace_whatever_zero_below_says():
    assert StockConfig(cap=0, zero_below=3).cap == 0
