"""The stock flow's triggers: debounced webhook pushes, the store a delivery concerns, past days refused."""

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest

from mirakl_pipelines.config import parse_settings
from mirakl_pipelines.defs.stock.assets import PastStockDay, refuse_past_day
from mirakl_pipelines.defs.stock.automation import due_pushes, marketplaces_of_shop

NOW = 1_000_000.0


def test_a_burst_waits_for_its_debounce_then_yields_one_push_per_marketplace():
    burst = {"mk_a": [(1, NOW - 5), (2, NOW - 3), (3, NOW - 1)], "mk_b": [(1, NOW - 5), (3, NOW - 1)]}
    assert due_pushes(burst, {"mk_a": 10, "mk_b": 4}, NOW, {}) == ({"mk_b": 3}, {})
    assert due_pushes(burst, {"mk_a": 10, "mk_b": 4}, NOW + 5, {}) == ({"mk_a": 3, "mk_b": 3}, {})


def test_a_run_that_has_not_read_shopify_yet_takes_the_changes():
    burst = {"mk_a": [(7, NOW - 30), (8, NOW - 20)]}
    for status, started in [("QUEUED", None), ("STARTING", None), ("STARTED", NOW - 10)]:
        assert due_pushes(burst, {"mk_a": 5}, NOW, {"mk_a": [(status, started)]}) == ({}, {"mk_a": 8})
    # A run that started before the last change may have read Shopify already: a new run is needed.
    assert due_pushes(burst, {"mk_a": 5}, NOW, {"mk_a": [("STARTED", NOW - 25)]}) == ({"mk_a": 8}, {})


def _settings(stores: list[dict]) -> object:
    return parse_settings({
        "shopify_stores": stores,
        "marketplaces": [
            {"code": "mk_a", "name": "A", "base_url": "http://127.0.0.1:1", "api_key_env": "A_KEY", "shopify_store": stores[0]["name"]},
            {"code": "mk_b", "name": "B", "base_url": "http://127.0.0.1:2", "api_key_env": "B_KEY", "shopify_store": stores[-1]["name"]},
            {"code": "mk_c", "name": "C", "base_url": "http://127.0.0.1:3", "api_key_env": "C_KEY", "stock": {"enabled": False}},
        ],
    }, source=__file__)


def test_a_delivery_concerns_the_stock_enabled_marketplaces_of_its_store():
    one = _settings([{"name": "brand", "shop_url": "https://brand.myshopify.com"}])
    assert marketplaces_of_shop(one, "whatever.myshopify.com") == ["mk_a", "mk_b"]
    two = _settings([{"name": "brand", "shop_url": "https://brand.myshopify.com"},
                     {"name": "outlet", "shop_url": "https://outlet.myshopify.com"}])
    assert marketplaces_of_shop(two, "outlet.myshopify.com") == ["mk_b"]
    assert marketplaces_of_shop(two, "unknown.myshopify.com") == []


def test_only_today_is_materialised_and_yesterday_for_a_few_minutes_after_midnight():
    noon = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    refuse_past_day(date(2026, 12, 2), noon)
    with pytest.raises(PastStockDay, match="cannot be re-read for the past") as refused:
        refuse_past_day(date(2026, 12, 1), noon)
    assert isinstance(refused.value, dg.Failure) and not refused.value.allow_retries
    refuse_past_day(date(2026, 12, 1), datetime(2026, 12, 2, 0, 5, tzinfo=timezone.utc))
    with pytest.raises(PastStockDay):
        refuse_past_day(date(2026, 11, 30), datetime(2026, 12, 2, 0, 5, tzinfo=timezone.utc))
    with pytest.raises(PastStockDay):
        refuse_past_day(date(2026, 12, 1), datetime(2026, 12, 2, 0, 10, tzinfo=timezone.utc) + timedelta(seconds=1))
