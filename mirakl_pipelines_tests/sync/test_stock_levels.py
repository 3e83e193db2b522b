"""The shared stock frames: fixed columns and dtypes, and membership that stays in Arrow."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mirakl_pipelines.sync.stock_levels import (
    LEVEL_DTYPES, OFFER_DTYPES, LocationLevel, OfferStock, is_in, levels_frame, offers_frame,
)


def test_frames_have_their_columns_and_dtypes_even_when_empty():
    assert dict(levels_frame([]).dtypes.astype(str)) == LEVEL_DTYPES
    assert dict(offers_frame([]).dtypes.astype(str)) == OFFER_DTYPES
    frame = levels_frame([LocationLevel(None, "v", "i", None, None, None, False)])
    assert frame["sku"].isna().all() and frame["available"].isna().all() and not frame["tracked"].iloc[0]
    assert offers_frame([OfferStock("A", "1", None)])["quantity"].isna().all()


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=5)), max_size=30),
       members=st.lists(st.text(max_size=5), max_size=30))
def test_is_in_agrees_with_python_sets(values, members):
    series = pd.Series(pd.array(values, dtype="string"))
    assert is_in(series, members).tolist() == [v is not None and v in set(members) for v in values]
