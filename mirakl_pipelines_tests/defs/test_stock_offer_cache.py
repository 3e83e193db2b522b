"""The offers kept between stock runs: a large catalogue exported in full once a day, then by differential exports
(OF52 with last_request_date) merged into the kept table — against the Mirakl sandbox over loopback HTTP."""

import time
from datetime import datetime, timedelta, timezone

import pandas as pd

from mirakl_pipelines.defs.stock.offer_cache import OfferCache, current_offers, merge_changes
from mirakl_pipelines.mirakl.offers import export_offer_changes
from mirakl_pipelines.sync.stock_levels import OfferStock, offers_frame
from mirakl_pipelines_tests.mirakl.test_offers import make_client, sim  # noqa: F401 (fixtures)


def _quantities(frame: pd.DataFrame) -> dict[str, int]:
    return dict(zip(frame["offer_sku"], frame["quantity"]))


def test_a_large_catalogue_is_exported_in_full_once_then_by_its_changes(sim, make_client, tmp_path):  # noqa: F811
    client, cache = make_client(), OfferCache(tmp_path, "sandbox")
    now = datetime.now(timezone.utc)
    first = current_offers(client, cache, export_threshold=100, now=now)  # 251 offers: above the threshold
    assert first.source == "OF52" and len(first.offers) == 251 and cache.state().source == "OF52"
    assert sim.offers.counts["offer_exports"] == 1
    sim.offers.seed([{"sku": "SKU-0001", "quantity": 42}, {"sku": "SKU-NEW", "quantity": 5}])
    second = current_offers(client, cache, export_threshold=100, now=now + timedelta(minutes=15))
    assert sim.offers.counts["offer_exports"] == 2  # a differential export, merged into the kept offers
    got = _quantities(second.offers)
    assert (got["SKU-0001"], got["SKU-NEW"], len(got)) == (42, 5, 252)
    assert got["SKU-0002"] == 2 and _quantities(cache.offers()) == got
    # The next day starts with a full export again.
    current_offers(client, cache, export_threshold=100, now=now + timedelta(days=1))
    assert cache.state().full_at.date() == datetime.now(timezone.utc).date()


def test_a_small_catalogue_is_read_whole_every_time(sim, make_client, tmp_path):  # noqa: F811
    client, cache = make_client(), OfferCache(tmp_path, "sandbox")
    now = datetime.now(timezone.utc)
    assert current_offers(client, cache, export_threshold=2000, now=now).source == "OF21"
    sim.offers.seed([{"sku": "SKU-0003", "quantity": 9}])
    again = current_offers(client, cache, export_threshold=2000, now=now)
    assert again.source == "OF21" and _quantities(again.offers)["SKU-0003"] == 9
    assert sim.offers.counts["offer_exports"] == 0


def test_differential_exports_name_what_changed_since(sim, make_client):  # noqa: F811
    client = make_client()
    time.sleep(1.1)  # after the fixture's offers were seeded (Mirakl's dates are to the second)
    before = datetime.now(timezone.utc)
    sim.offers.seed([{"sku": "SKU-0010", "quantity": 77}])
    changes = export_offer_changes(client, before)
    assert _quantities(changes.updated.offers) == {"SKU-0010": 77} and changes.deleted == []


def test_merging_replaces_updated_offers_and_drops_deleted_ones():
    kept = offers_frame([OfferStock("A", "1", 3), OfferStock("B", "2", 4), OfferStock("C", "3", 5)])
    updated = offers_frame([OfferStock("B", "2", 9, active=False), OfferStock("D", "4", 1)])
    merged = merge_changes(kept, updated, ["C"])
    assert merged.to_dict("records") == [
        {"offer_sku": "A", "offer_id": "1", "quantity": 3, "active": True},
        {"offer_sku": "B", "offer_id": "2", "quantity": 9, "active": False},
        {"offer_sku": "D", "offer_id": "4", "quantity": 1, "active": True},
    ]
