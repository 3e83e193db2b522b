"""What a push sends (changed SKUs, or all of them), and the stock-delta check's verdict on injected drift."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirakl_pipelines.config import StockConfig
from mirakl_pipelines.sync.stock_diff import DELTA_DTYPES, changed_lines, drifted_lines, stock_delta, union_lines
from mirakl_pipelines.sync.stock_levels import OfferStock, offers_frame
from mirakl_pipelines.sync.stock_policy import compute_stock
from mirakl_pipelines_tests.sync.stock_fixtures import LYON, snapshot, variant


def lines(pairs: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"offer_sku": pd.array(list(pairs), dtype="string"),
                         "quantity": pd.array(list(pairs.values()), dtype="Int64")})


def as_dict(frame: pd.DataFrame) -> dict[str, int]:
    return dict(zip(frame["offer_sku"], frame["quantity"].astype(int)))


# ---- changed lines ----------------------------------------------------------------------------------------------


def test_only_changed_and_never_sent_skus_are_sent_in_order():
    computed = lines({"C": 3, "A": 1, "B": 2, "D": 0})
    sent = lines({"A": 1, "B": 5, "Z": 9})
    changed = changed_lines(computed, sent, full=False)
    assert list(changed["offer_sku"]) == ["B", "C", "D"]  # Z, no longer computed, is not resent
    assert as_dict(changed) == {"B": 2, "C": 3, "D": 0}
    assert as_dict(changed_lines(computed, sent, full=True)) == {"A": 1, "B": 2, "C": 3, "D": 0}
    assert list(changed_lines(computed, None, full=False)["offer_sku"]) == ["A", "B", "C", "D"]
    assert len(changed_lines(computed, computed, full=False)) == 0


def test_repeated_or_blank_lines_are_refused():
    with pytest.raises(ValueError, match=r"computed stock lines repeat offer SKU\(s\) \['A'\]"):
        changed_lines(pd.DataFrame({"offer_sku": ["A", "A"], "quantity": [1, 2]}), None, full=True)
    with pytest.raises(ValueError, match="lack an offer SKU or a quantity"):
        changed_lines(pd.DataFrame({"offer_sku": ["A"], "quantity": [None]}), None, full=True)


@settings(max_examples=60, deadline=None)
@given(
    computed=st.dictionaries(st.text(min_size=1, max_size=6), st.integers(0, 5), max_size=15),
    sent=st.dictionaries(st.text(min_size=1, max_size=6), st.integers(0, 5), max_size=15),
)
def test_sending_the_changed_lines_brings_mirakl_to_the_computed_stock(computed, sent):
    changed = as_dict(changed_lines(lines(computed), lines(sent), full=False))
    assert {**sent, **changed}.items() >= computed.items()
    assert all(sent.get(sku) != qty for sku, qty in changed.items())  # nothing sent needlessly


# ---- stock delta --------------------------------------------------------------------------------------------------


def offers(pairs: dict[str, int]) -> pd.DataFrame:
    return offers_frame(OfferStock(sku, f"o-{sku}", qty) for sku, qty in pairs.items())


def computation(**available: int):
    """Each SKU with `available` at Lyon, published with a 2-unit buffer (so servable = computed + 2)."""
    snap = snapshot(*(variant(i, sku, {LYON: qty}) for i, (sku, qty) in enumerate(available.items())))
    return compute_stock(snap, StockConfig(buffer_units=2)).quantities


def test_mirakl_matching_the_computed_stock_passes():
    delta = stock_delta(computation(A=10, B=0), offers({"A": 8, "B": 0}), tolerance=0, max_differing_skus=0)
    assert delta.severity == "PASS" and delta.worst == []
    assert delta.counts["compared"] == 2 and delta.counts["match"] == 2
    assert {c: str(t) for c, t in delta.rows.dtypes.items()} == DELTA_DTYPES
    assert delta.rows["reason"].isna().all()
    assert "all 2 offers" in delta.description


def test_each_kind_of_drift_is_classified():
    quantities = computation(MATCH=10, INFLIGHT=10, TOL=10, LOST=10, ABOVE=10, OVER=10)  # computed 8, servable 10
    mirakl = offers({"MATCH": 8, "INFLIGHT": 5, "TOL": 9, "LOST": 2, "ABOVE": 10, "OVER": 12, "MIRAKL-ONLY": 4, "ZERO-ONLY": 0})
    delta = stock_delta(quantities, mirakl, in_flight={"INFLIGHT": 2, "LOST": 1}, tolerance=1, max_differing_skus=10)
    rows = delta.rows.set_index("offer_sku")
    assert rows["status"].to_dict() == {
        "ABOVE": "above_computed", "INFLIGHT": "in_flight", "LOST": "lost_sales", "MATCH": "match", "OVER": "oversell",
        "TOL": "within_tolerance",
    }
    assert rows.loc["OVER", "difference"] == 4 and rows.loc["LOST", "difference"] == -6
    assert rows.loc["INFLIGHT", "in_flight"] == 2
    assert "oversell risk: Mirakl shows 12 for 'OVER' but Shopify can serve only 10" in rows.loc["OVER", "reason"]
    assert "lost sales" in rows.loc["LOST", "reason"]
    assert delta.severity == "ERROR"  # oversell
    assert delta.counts == {"oversell": 1, "lost_sales": 1, "above_computed": 1, "in_flight": 1, "within_tolerance": 1,
                            "match": 1, "compared": 6, "beyond_tolerance": 3, "differing": 5, "mirakl_only": 2,
                            "mirakl_only_with_stock": 1, "not_on_mirakl": 0}
    # Oversell first, then the largest differences.
    assert [w["offer_sku"] for w in delta.worst] == ["OVER", "LOST", "INFLIGHT", "ABOVE", "TOL"]
    assert delta.worst[0] == {"offer_sku": "OVER", "computed": 8, "mirakl": 12, "difference": 4, "in_flight": 0,
                              "servable": 10, "status": "oversell", "reason": rows.loc["OVER", "reason"]}
    assert as_dict(delta.mirakl_only) == {"MIRAKL-ONLY": 4, "ZERO-ONLY": 0}
    assert [w["offer_sku"] for w in stock_delta(quantities, mirakl, tolerance=1, worst=2).worst] == ["OVER", "LOST"]


def test_in_flight_orders_do_not_excuse_mirakl_showing_more_than_servable():
    delta = stock_delta(computation(A=10), offers({"A": 11}), in_flight={"A": 5}, tolerance=0, max_differing_skus=10)
    assert delta.rows["status"].tolist() == ["oversell"] and delta.severity == "ERROR"
    assert stock_delta(computation(A=10), offers({"A": 11}), tolerance=1).severity == "WARN"


def test_a_dropped_part_of_an_import_is_an_error_beyond_max_differing_skus():
    skus = {f"S{i:02d}": 20 for i in range(12)}
    quantities = computation(**skus)  # computed 18 each
    # Mirakl kept an old, lower quantity for the lines an import skipped.
    for dropped, severity in ((3, "WARN"), (4, "ERROR")):
        mirakl = offers({sku: (5 if i < dropped else 18) for i, sku in enumerate(skus)})
        delta = stock_delta(quantities, mirakl, tolerance=0, max_differing_skus=3)
        assert (delta.severity, delta.counts["lost_sales"]) == (severity, dropped)


def test_differences_only_in_flight_or_missing_offers_are_warnings_at_most():
    quantities = computation(A=10, B=10, NEW=3)
    assert stock_delta(quantities, offers({"A": 7, "B": 8}), in_flight={"A": 1}, tolerance=2).severity == "WARN"
    delta = stock_delta(quantities, offers({"A": 8, "B": 8, "GONE": 0}), tolerance=0, max_differing_skus=0)
    assert delta.severity == "PASS"  # a computed SKU without an offer, or an empty Mirakl-only offer, is not drift
    assert delta.not_on_mirakl == ["NEW"] and delta.counts["mirakl_only"] == 1
    assert stock_delta(quantities, offers({"A": 8, "B": 8, "GONE": 3})).severity == "WARN"  # stock nothing updates


def test_an_empty_comparison_passes():
    delta = stock_delta(computation(), offers({}), tolerance=0)
    assert delta.severity == "PASS" and len(delta.rows) == 0 and list(delta.rows.columns) == list(DELTA_DTYPES)


def test_drift_above_is_always_corrected_and_below_only_once_every_order_is_known():
    computed = lines({"A": 5, "B": 5, "C": 5, "D": 5})
    mirakl = offers({"A": 7, "B": 3, "C": 5})  # D: no offer
    assert as_dict(drifted_lines(computed, mirakl, orders_known=False)) == {"A": 5}
    assert as_dict(drifted_lines(computed, mirakl, orders_known=True)) == {"A": 5, "B": 5}


def test_a_file_carries_one_line_per_offer_the_changed_quantity_first():
    merged = union_lines(lines({"B": 2, "A": 1}), lines({"A": 9, "C": 3}))
    assert list(merged["offer_sku"]) == ["A", "B", "C"] and as_dict(merged) == {"A": 1, "B": 2, "C": 3}
