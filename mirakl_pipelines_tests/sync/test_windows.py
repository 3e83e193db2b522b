from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mirakl_pipelines.sync.windows import fetch_window, is_newer, partition_day_bounds, range_window, route_day

UTC = timezone.utc
DAY = date(2026, 3, 14)
START = datetime(2026, 3, 14, tzinfo=UTC)
END = datetime(2026, 3, 15, tzinfo=UTC)
TWO_HOURS = timedelta(hours=2)
OVERLAP = timedelta(minutes=2)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (DAY, (START, END)),
        (date(2026, 2, 28), (datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))),
        (date(2028, 2, 28), (datetime(2028, 2, 28, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC))),
        (date(2026, 12, 31), (datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))),
    ],
)
def test_partition_day_bounds(day, expected):
    assert partition_day_bounds(day) == expected


@pytest.mark.parametrize(
    ("now", "watermark", "previous", "full_day", "expected"),
    [
        # a refresh: only what changed since the last window end, minus the small overlap
        (at(14, 10, 1), at(14, 10), None, False, (at(14, 9, 58), at(14, 10, 1))),
        # the first refresh of today chains from yesterday's last window end
        (at(14, 0, 0, 40), None, at(13, 23, 59), False, (at(13, 23, 57), at(14, 0, 0, 40))),
        # ... without yesterday's watermark it reaches back by the look-back
        (at(14, 0, 15), None, None, False, (at(13, 22), at(14, 0, 15))),
        # ... and never further back than the look-back, however old yesterday's watermark
        (at(14, 0, 15), None, at(13, 12), False, (at(13, 22), at(14, 0, 15))),
        # early refreshes overlap midnight by the overlap only
        (at(14, 0, 2), at(14, 0, 1), None, False, (at(13, 23, 59), at(14, 0, 2))),
        # the first refresh after midnight still belongs to yesterday's partition: capped at its end
        (at(15, 0, 10), at(14, 23, 50), None, False, (at(14, 23, 48), END)),
        # close-out of yesterday: the whole day
        (at(15, 2, 30), at(14, 23, 50), None, True, (START, END)),
        # backfill of a past day never fetched: the whole day, even without full_day
        (at(20, 9, 0), None, at(13, 23, 59), False, (START, END)),
        # full_day on today (manual re-run): the whole day (end in the future is fine for Mirakl)
        (at(14, 12, 0), at(14, 11, 0), None, True, (START, END)),
        # a watermark in the future (clock skew): an empty window, never an inverted one
        (at(14, 10, 0), at(14, 13, 0), None, False, (at(14, 10, 0), at(14, 10, 0))),
        # now exactly at the day start
        (START, None, None, False, (at(13, 22), START)),
    ],
)
def test_fetch_window(now, watermark, previous, full_day, expected):
    assert fetch_window(DAY, now, watermark, OVERLAP, lookback=TWO_HOURS, previous_day_end=previous,
                        full_day=full_day) == expected


def test_fetch_window_with_zero_overlap_continues_from_the_watermark():
    assert fetch_window(DAY, at(14, 10, 15), at(14, 10), timedelta(0), lookback=TWO_HOURS) == (at(14, 10), at(14, 10, 15))


def test_fetch_window_accepts_other_timezones_and_naive_utc():
    paris = timezone(timedelta(hours=1))
    now = datetime(2026, 3, 14, 11, 15, tzinfo=paris)  # 10:15 UTC
    assert fetch_window(DAY, now, datetime(2026, 3, 14, 10, 0), OVERLAP, lookback=TWO_HOURS) == \
        (at(14, 9, 58), at(14, 10, 15))


@pytest.mark.parametrize("full_day", [False, True])
def test_future_day_is_refused(full_day):
    with pytest.raises(ValueError, match="2026-03-14 starts at .* after now"):
        fetch_window(DAY, at(13, 23, 59), None, OVERLAP, lookback=TWO_HOURS, full_day=full_day)


@pytest.mark.parametrize(("overlap", "lookback", "name"), [(timedelta(minutes=-5), TWO_HOURS, "overlap"),
                                                          (OVERLAP, timedelta(minutes=-1), "look-back")])
def test_negative_spans_are_refused(overlap, lookback, name):
    with pytest.raises(ValueError, match=name):
        fetch_window(DAY, at(14, 10), at(14, 9), overlap, lookback=lookback)


_MOMENTS = st.datetimes(min_value=datetime(2026, 3, 13, 20), max_value=datetime(2026, 3, 16), timezones=st.just(UTC))


@given(now=_MOMENTS, watermark=st.none() | _MOMENTS, previous=st.none() | _MOMENTS,
       overlap=st.integers(0, 60), lookback=st.integers(0, 24 * 60))
def test_refresh_windows_never_leave_a_gap(now, watermark, previous, overlap, lookback):
    """Whatever the watermarks: a window never inverts, never ends after the day or now, and a refresh starts no
    later than the previous window end minus the overlap (nothing since the last fetch is skipped)."""
    if now < START:
        return
    start, end = fetch_window(DAY, now, watermark, timedelta(minutes=overlap), lookback=timedelta(minutes=lookback),
                              previous_day_end=previous)
    assert start <= end <= max(min(now, END), start)
    assert start >= START - timedelta(minutes=lookback) or (watermark is None and now >= END)
    if watermark is not None and watermark - timedelta(minutes=overlap) <= min(now, END):
        assert start <= max(watermark - timedelta(minutes=overlap), START - timedelta(minutes=lookback))


def test_an_update_just_before_midnight_is_fetched_by_the_first_refresh_of_the_next_day():
    """Yesterday's last refresh ended at 23:59:00; Mirakl updates an order at 23:59:30. Yesterday's partition is
    next fetched by the 02:30 close-out; today's first refresh chains from yesterday's watermark and covers it."""
    late_update = at(14, 23, 59, 30)
    yesterday_last = fetch_window(DAY, at(14, 23, 59), at(14, 23, 58), OVERLAP, lookback=TWO_HOURS)
    assert not yesterday_last[0] <= late_update < yesterday_last[1]
    first_of_today = fetch_window(date(2026, 3, 15), at(15, 0, 0, 40), None, OVERLAP, lookback=TWO_HOURS,
                                  previous_day_end=yesterday_last[1])
    assert first_of_today[0] <= late_update < first_of_today[1]


def test_a_range_window_spans_its_days_up_to_now():
    days = [date(2026, 3, 12), date(2026, 3, 13), DAY]
    assert range_window(days, at(20, 9)) == (datetime(2026, 3, 12, tzinfo=UTC), END)
    assert range_window(list(reversed(days)), at(14, 9)) == (datetime(2026, 3, 12, tzinfo=UTC), at(14, 9))
    with pytest.raises(ValueError, match="at least one day"):
        range_window([], at(14, 9))
    with pytest.raises(ValueError, match="after now"):
        range_window(days, at(11, 23))


@pytest.mark.parametrize(
    ("updated", "expected"),
    [(at(13, 23, 59), date(2026, 3, 13)), (at(14, 0), DAY), (at(12, 23, 59), date(2026, 3, 13)),
     (at(15, 0), DAY), (None, date(2026, 3, 13)),
     (datetime(2026, 3, 14, 0, 30, tzinfo=timezone(timedelta(hours=1))), date(2026, 3, 13))],
)
def test_route_day_is_the_utc_day_of_the_last_update_clamped_into_the_range(updated, expected):
    assert route_day(updated, [DAY, date(2026, 3, 13)]) == expected


@pytest.mark.parametrize(
    ("candidate", "held", "expected"),
    [(at(14, 11), at(14, 10), True), (at(14, 10), at(14, 10), False), (at(14, 9), at(14, 10), False),
     (at(14, 10), None, True), (None, at(14, 10), False), (None, None, False),
     # instants, not wall clocks
     (datetime(2026, 3, 14, 11, 30, tzinfo=timezone(timedelta(hours=2))), at(14, 10), False)],
)
def test_is_newer(candidate, held, expected):
    assert is_newer(candidate, held) is expected
