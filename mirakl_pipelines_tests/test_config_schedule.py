"""The schedule section: the refresh overlap is new, and configs written before it still load."""

import pytest
from pydantic import ValidationError

from mirakl_pipelines.config import ScheduleConfig, load_settings
from mirakl_pipelines.config import PROJECT_ROOT


def test_configs_without_an_overlap_still_load_with_the_default():
    settings = load_settings(PROJECT_ROOT / "data" / "marketplaces.yaml")
    assert {m.schedule.overlap_minutes for m in settings.marketplaces} == {2}
    assert {m.schedule.lookback_minutes for m in settings.marketplaces} == {120}


@pytest.mark.parametrize("overlap", [-1, 61])
def test_overlap_out_of_range_is_refused(overlap):
    with pytest.raises(ValidationError, match="overlap_minutes"):
        ScheduleConfig(overlap_minutes=overlap)
