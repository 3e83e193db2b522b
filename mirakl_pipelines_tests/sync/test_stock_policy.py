"""Stock policy: which locations count, how they add up, what is held back, and what is reported instead of guessed."""

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirakl_pipelines.config import StockConfig
from mirakl_pipelines.sync.sku_map import SkuMap, SkuMapError, SkuMapFile
from mirakl_pipelines.sync.stock_policy import (
    QUANTITY_DTYPES,
    StockPolicyError,
    compute_stock,
    published_quantities,
    resolve_locations,
)
from mirakl_pipelines_tests.sync.stock_fixtures import LILLE, LOCATIONS, LYON, PARIS, quantities, snapshot, variant


def policy(**kwargs) -> StockConfig:
    return StockConfig(**kwargs)


def kinds(computation) -> list[tuple[str, str]]:
    return [(f.kind, f.sku) for f in computation.findings]


# ---- locations -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["Entrepôt Lyon", "gid://shopify/Location/101", "101", "entrepôt lyon", "Entrepot Lyon"])
def test_a_location_is_named_by_name_gid_or_legacy_id(entry):
    assert resolve_locations(LOCATIONS, [entry]) == [LYON]


def test_no_location_listed_means_every_active_location():
    assert resolve_locations(LOCATIONS, []) == [LYON, PARIS]
    # An inactive location counts when it is named.
    assert resolve_locations(LOCATIONS, ["Retours Lille", "101"]) == [LILLE, LYON]


def test_an_unknown_location_names_the_entry_and_the_known_ones():
    with pytest.raises(StockPolicyError) as caught:
        resolve_locations(LOCATIONS, ["Entrepôt Lyon", "Marseille"])
    text = str(caught.value)
    assert "'Marseille'" in text and "'Entrepôt Lyon' (101)" in text and "'Retours Lille' (103)" in text
    with pytest.raises(StockPolicyError, match="'999'"):
        resolve_locations(LOCATIONS, ["999"])


def test_an_ambiguous_location_asks_for_the_id():
    twins = [LYON, LYON.__class__("gid://shopify/Location/201", "201", "ENTREPÔT LYON")]
    with pytest.raises(StockPolicyError, match="ambiguous.*101.*201.*numeric id"):
        resolve_locations(twins, ["entrepot lyon"])
    # The exact name is not ambiguous.
    assert resolve_locations(twins, ["ENTREPÔT LYON"]) == [twins[1]]


def test_a_location_named_twice_is_refused_rather_than_counted_twice():
    with pytest.raises(StockPolicyError, match="'Entrepôt Lyon' and '101' both name 'Entrepôt Lyon'"):
        resolve_locations(LOCATIONS, ["Entrepôt Lyon", "101"])


# ---- sum or single, negative and missing stock -----------------------------------------------------------------


def test_sum_adds_the_counted_locations_and_single_takes_one():
    snap = snapshot(variant(1, "A", {LYON: 10, PARIS: 4, LILLE: 7}), variant(2, "B", {PARIS: 3}))
    assert quantities(compute_stock(snap, policy())) == {"A": 14, "B": 3}  # Lille is inactive: not counted
    assert quantities(compute_stock(snap, policy(locations=["Entrepôt Lyon", "Retours Lille"]))) == {"A": 17, "B": 0}
    single = compute_stock(snap, policy(mode="single", locations=["Boutique Paris"]))
    assert quantities(single) == {"A": 4, "B": 3}
    assert single.locations == [PARIS]


def test_negative_levels_count_as_they_are_and_the_total_is_floored_at_zero():
    snap = snapshot(variant(1, "A", {LYON: 5, PARIS: -2}), variant(2, "B", {LYON: -3, PARIS: 1}))
    rows = compute_stock(snap, policy()).quantities.set_index("offer_sku")
    assert rows.loc["A", "shopify_available"] == 3 and rows.loc["A", "quantity"] == 3
    assert rows.loc["B", "shopify_available"] == -2  # units already owed stay visible
    assert rows.loc["B", "servable"] == 0 and rows.loc["B", "quantity"] == 0


def test_a_sku_stocked_at_none_of_the_counted_locations_is_published_as_zero_and_reported_once():
    snap = snapshot(variant(1, "NOWHERE", {}), variant(2, "LILLE-ONLY", {LILLE: 9}), variant(3, "OK", {LYON: 0}))
    computation = compute_stock(snap, policy(), sku_map=SkuMap({"NOWHERE": "NOWHERE", "NOWHERE-2": "NOWHERE"}))
    assert quantities(computation) == {"LILLE-ONLY": 0, "NOWHERE": 0, "NOWHERE-2": 0, "OK": 0}
    assert kinds(computation) == [("not_stocked", "LILLE-ONLY"), ("not_stocked", "NOWHERE")]
    reason = computation.findings[1].reason
    assert "stocked at none of the counted locations (Entrepôt Lyon, Boutique Paris)" in reason
    assert "published as 0" in reason


# ---- buffers, cap, threshold ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "available, knobs, expected",
    [
        (29, dict(buffer_percent=Decimal(10)), 26),  # 26.1 rounds down
        (8, dict(buffer_percent=Decimal("12.5")), 7),  # exactly 7
        (30, dict(buffer_units=1, buffer_percent=Decimal(10)), 26),  # units first: 29 → 26
        (3, dict(buffer_units=5), 0),
        (10, dict(buffer_percent=Decimal(100)), 0),
        (1, dict(buffer_percent=Decimal("0.0001")), 0),  # 0.9999 rounds down
        (10_000, dict(buffer_percent=Decimal("0.0001")), 9_999),
        (80, dict(cap=50), 50),
        (1, dict(zero_below=2), 0),
        (2, dict(zero_below=2), 2),
        (12, dict(buffer_percent=Decimal(10), cap=50, zero_below=2), 10),
        (2, dict(buffer_percent=Decimal(10), cap=50, zero_below=2), 0),  # 1.8 → 1 < 2
        (100, dict(cap=0, zero_below=5), 0),
    ],
)
def test_buffers_cap_and_threshold_apply_in_order_and_round_down(available, knobs, expected):
    computation = compute_stock(snapshot(variant(1, "A", {LYON: available})), policy(**knobs))
    assert quantities(computation) == {"A": expected}


def test_published_quantities_stay_exact_beyond_int64_products():
    big = np.array([9_000_000_000_000_000], dtype=np.int64)
    assert published_quantities(big, policy(buffer_percent=Decimal("33.3333")))[0] == 9_000_000_000_000_000 * 666_667 // 1_000_000


def test_promised_units_are_taken_off_before_the_buffers():
    snap = snapshot(variant(1, "A", {LYON: 10}), variant(2, "B", {LYON: 2}), variant(3, "C", {LYON: 5}))
    computation = compute_stock(snap, policy(buffer_units=1), promised={"A": 3, "B": 5, "UNKNOWN": 4})
    rows = computation.quantities.set_index("offer_sku")
    assert rows["promised"].to_dict() == {"A": 3, "B": 5, "C": 0}
    assert rows["servable"].to_dict() == {"A": 7, "B": 0, "C": 5}
    assert rows["quantity"].to_dict() == {"A": 6, "B": 0, "C": 4}
    with pytest.raises(StockPolicyError, match=r"negative for SKU\(s\) \['A'\]"):
        compute_stock(snap, policy(), promised={"A": -1})


# ---- what is reported instead of published --------------------------------------------------------------------


def test_untracked_skuless_duplicate_and_unsendable_variants_are_reported_not_published():
    snap = snapshot(
        variant(1, "OK", {LYON: 4}),
        variant(2, "LOOSE", {LYON: 7}, tracked=False),
        variant(3, None, {LYON: 5}),
        variant(4, "  ", {LYON: 5}),
        variant(5, "TWIN", {LYON: 1}),
        variant(6, "TWIN", {PARIS: 2}),
        variant(7, "TWO\nLINES", {LYON: 3}),
    )
    computation = compute_stock(snap, policy())
    assert quantities(computation) == {"OK": 4}
    assert kinds(computation) == [
        ("no_sku", None), ("no_sku", None), ("invalid_sku", "TWO\nLINES"), ("duplicate_sku", "TWIN"), ("untracked", "LOOSE"),
    ]
    assert [f.variant_id for f in computation.findings[:2]] == ["gid://shopify/ProductVariant/3", "gid://shopify/ProductVariant/4"]
    by_kind = {f.kind: f for f in computation.findings}
    assert "gid://shopify/ProductVariant/5" in by_kind["duplicate_sku"].reason
    assert "gid://shopify/ProductVariant/6" in by_kind["duplicate_sku"].reason
    assert "not published" in by_kind["untracked"].reason and "Track quantity" in by_kind["untracked"].reason
    assert computation.finding_counts() == {
        "no_sku": 2, "invalid_sku": 1, "duplicate_sku": 1, "untracked": 1, "mapped_sku_missing": 0, "shadowed_sku": 0,
        "not_stocked": 0,
    }


def test_the_quantities_frame_has_its_columns_types_and_order():
    snap = snapshot(variant(1, "B", {LYON: 1}), variant(2, "A", {LYON: 2}), variant(3, "C", {}))
    frame = compute_stock(snap, policy()).quantities
    assert {c: str(t) for c, t in frame.dtypes.items()} == QUANTITY_DTYPES
    assert list(frame["offer_sku"]) == ["A", "B", "C"]
    empty = compute_stock(snapshot(), policy()).quantities
    assert list(empty.columns) == list(QUANTITY_DTYPES) and len(empty) == 0


def test_single_mode_with_several_locations_is_refused_even_past_the_config():
    loose = StockConfig.model_construct(**{**policy().model_dump(), "mode": "single", "locations": ["101", "102"]})
    with pytest.raises(StockPolicyError, match="exactly one location"):
        compute_stock(snapshot(variant(1, "A", {LYON: 1})), loose)


# ---- SKU mapping -------------------------------------------------------------------------------------------------


def test_mapped_offers_publish_their_shopify_skus_stock():
    snap = snapshot(variant(1, "HEAD-400", {LYON: 9}), variant(2, "BOTTLE", {LYON: 4}), variant(3, "VEST", {LYON: 2}))
    sku_map = SkuMapFile.parse(
        "marketplace,offer_sku,shopify_sku\n"
        "*,LM-1,HEAD-400\n"
        "*,HEAD-400,HEAD-400\n"  # one Shopify SKU backs two offers
        "*,LM-2,BOTTLE\n"  # renamed everywhere ...
        "decathlon_fr,LM-2,VEST\n"  # ... except on Decathlon, where LM-2 is the vest
        "*,LM-3,GONE\n",
        "data/sku_map.csv",
    )
    lm = compute_stock(snap, policy(), sku_map=sku_map.for_marketplace("leroymerlin_fr"))
    # LM-3's Shopify SKU does not exist: not published, reported with the file's line.
    assert quantities(lm) == {"HEAD-400": 9, "LM-1": 9, "LM-2": 4, "VEST": 2}
    assert kinds(lm) == [("mapped_sku_missing", "GONE")]
    assert "offer 'LM-3'" in lm.findings[0].reason and "data/sku_map.csv line 6" in lm.findings[0].reason
    decathlon = compute_stock(snap, policy(), sku_map=sku_map.for_marketplace("decathlon_fr"))
    # BOTTLE is not renamed on Decathlon, so it is its own offer; VEST is published as LM-2 only.
    assert quantities(decathlon) == {"BOTTLE": 4, "HEAD-400": 9, "LM-1": 9, "LM-2": 2}
    assert list(decathlon.quantities.set_index("offer_sku").loc[["LM-1", "LM-2"], "shopify_sku"]) == ["HEAD-400", "VEST"]


def test_an_offer_claimed_by_the_map_shadows_the_shopify_sku_of_that_name():
    snap = snapshot(variant(1, "A", {LYON: 1}), variant(2, "B", {LYON: 5}))
    computation = compute_stock(snap, policy(), sku_map=SkuMap({"A": "B"}, "map.csv", {"A": 2}))
    assert quantities(computation) == {"A": 5}
    assert kinds(computation) == [("shadowed_sku", "A")]
    assert "map.csv line 2 maps that offer to Shopify SKU 'B'" in computation.findings[0].reason


def test_mapped_offers_of_unpublishable_skus_are_not_published_either():
    snap = snapshot(variant(1, "LOOSE", {LYON: 3}, tracked=False))
    computation = compute_stock(snap, policy(), sku_map=SkuMap({"LM-1": "LOOSE"}))
    assert quantities(computation) == {}
    assert kinds(computation) == [("untracked", "LOOSE")]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "the file is empty"),
        ("offer_sku,shopify_sku\nA,B\n", "line 1: the first line must be the header marketplace,offer_sku,shopify_sku"),
        ("marketplace,offer_sku,shopify_sku\n*,A\n", "line 2: expected 3 values"),
        ("marketplace,offer_sku,shopify_sku\nDecathlon FR,A,B\n", "line 2: marketplace 'Decathlon FR' is neither"),
        ("marketplace,offer_sku,shopify_sku\n*,,B\n", "line 2: offer_sku and shopify_sku must both be given"),
        ("marketplace,offer_sku,shopify_sku\n*,A,B\n\n*,A,C\n", "line 4: offer 'A' for * is already mapped to 'B' on line 2"),
        ('marketplace,offer_sku,shopify_sku\n*,"A\nB",C\n', "line 3: a SKU spans several lines"),
    ],
)
def test_a_wrong_mapping_file_names_the_file_and_the_line(text, message):
    with pytest.raises(SkuMapError) as caught:
        SkuMapFile.parse(text, "data/sku_map.csv")
    assert "invalid SKU mapping file data/sku_map.csv" in str(caught.value)
    assert message in str(caught.value)


def test_the_mapping_file_tolerates_a_bom_comments_blank_lines_spaces_and_repeats(tmp_path):
    path = tmp_path / "sku_map.csv"
    path.write_text("\ufeff# exceptions\nMarketplace, Offer_SKU ,shopify_sku\n\n# Leroy Merlin\nleroymerlin_fr, LM-1 ,A\n"
                    "leroymerlin_fr,LM-1,A\n", encoding="utf-8")
    parsed = SkuMapFile.load(path)
    assert [(m.marketplace, m.offer_sku, m.shopify_sku, m.line) for m in parsed.mappings] == [("leroymerlin_fr", "LM-1", "A", 5)]
    with pytest.raises(SkuMapError, match="cannot read SKU mapping file .*missing.csv"):
        SkuMapFile.load(tmp_path / "missing.csv")


# ---- properties --------------------------------------------------------------------------------------------------

@st.composite
def policies(draw) -> StockConfig:
    cap = draw(st.none() | st.integers(0, 200))
    return StockConfig(
        buffer_units=draw(st.integers(0, 20)),
        buffer_percent=draw(st.decimals(0, 100, places=4)),
        cap=cap,
        zero_below=draw(st.integers(0, 10 if not cap else min(cap, 10))),  # 0 < cap < zero_below is refused
    )


def reference_quantity(servable: int, p: StockConfig) -> int:
    """The policy written out with exact fractions, one SKU at a time."""
    q = max(0, servable - p.buffer_units)
    q = int(Fraction(q) * (1 - Fraction(p.buffer_percent) / 100))  # int() of a non-negative fraction rounds down
    if p.cap is not None:
        q = min(q, p.cap)
    return 0 if q < p.zero_below else q


@settings(max_examples=80, deadline=None)
@given(
    levels=st.lists(st.tuples(st.integers(-50, 500), st.integers(-50, 500)), min_size=1, max_size=8),
    bumps=st.lists(st.integers(0, 40), min_size=8, max_size=8),
    promised=st.lists(st.integers(0, 60), min_size=8, max_size=8),
    p=policies(),
)
def test_published_quantity_is_bounded_exact_and_monotone_in_available(levels, bumps, promised, p):
    def run(extra: int = 0):
        snap = snapshot(*(variant(i, f"S{i}", {LYON: lyon + (bumps[i] if extra else 0), PARIS: paris})
                          for i, (lyon, paris) in enumerate(levels)))
        return compute_stock(snap, p, promised={f"S{i}": promised[i] for i in range(len(levels))}).quantities.set_index("offer_sku")

    before, after = run(), run(extra=1)
    for sku, row in before.iterrows():
        servable = max(0, int(row["shopify_available"]) - int(row["promised"]))
        assert row["servable"] == servable
        assert 0 <= row["quantity"] <= servable
        assert p.cap is None or row["quantity"] <= p.cap
        assert row["quantity"] == reference_quantity(servable, p)
        assert after.loc[sku, "quantity"] >= row["quantity"]  # more in Shopify never publishes less
