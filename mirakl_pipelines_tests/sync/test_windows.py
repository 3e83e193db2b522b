from datetime import date, datetime, timedelta, timezone

import pytest

from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.sync.windows import fetch_window, merge_orders, partition_day_bounds

UTC = timezone.utc
DAY = date(2026, 3, 14)
START = datetime(2026, 3, 14, tzinfo=UTC)
END = datetime(2026, 3, 15, tzinfo=UTC)
TWO_HOURS = timedelta(hours=2)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


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
    ("now", "watermark", "full_day", "expected"),
    [
        # first run of today: from the look-back before midnight (yesterday's tail) to now
        (at(14, 0, 15), None, False, (at(13, 22), at(14, 0, 15))),
        # a normal poll: the last window end minus the look-back
        (at(14, 10, 15), at(14, 10), False, (at(14, 8), at(14, 10, 15))),
        # the look-back crosses midnight: the early polls keep covering yesterday's tail
        (at(14, 1, 0), at(14, 0, 45), False, (at(13, 22, 45), at(14, 1, 0))),
        # ... never further back than the look-back before midnight
        (at(14, 0, 5), at(13, 23, 59), False, (at(13, 22), at(14, 0, 5))),
        # the first poll after midnight still belongs to yesterday's partition: capped at its end
        (at(15, 0, 10), at(14, 23, 50), False, (at(14, 21, 50), END)),
        # close-out of yesterday once the look-back has passed midnight: the whole day
        (at(15, 2, 30), at(14, 23, 50), True, (START, END)),
        # backfill of a past day never fetched: the whole day, even without full_day
        (at(20, 9, 0), None, False, (START, END)),
        # full_day on today (manual re-run): the whole day (end in the future is fine for Mirakl)
        (at(14, 12, 0), at(14, 11, 0), True, (START, END)),
        # a watermark in the future (clock skew): an empty window, never an inverted one
        (at(14, 10, 0), at(14, 13, 0), False, (at(14, 10, 0), at(14, 10, 0))),
        # now exactly at the day start
        (START, None, False, (at(13, 22), START)),
    ],
)
def test_fetch_window(now, watermark, full_day, expected):
    assert fetch_window(DAY, now, watermark, TWO_HOURS, full_day=full_day) == expected


def test_fetch_window_with_zero_lookback_continues_from_the_watermark():
    assert fetch_window(DAY, at(14, 10, 15), at(14, 10), timedelta(0)) == (at(14, 10), at(14, 10, 15))


def test_fetch_window_accepts_other_timezones_and_naive_utc():
    paris = timezone(timedelta(hours=1))
    now = datetime(2026, 3, 14, 11, 15, tzinfo=paris)  # 10:15 UTC
    assert fetch_window(DAY, now, datetime(2026, 3, 14, 10, 0), TWO_HOURS) == (at(14, 8), at(14, 10, 15))


@pytest.mark.parametrize("full_day", [False, True])
def test_future_day_is_refused(full_day):
    with pytest.raises(ValueError, match="2026-03-14 starts at .* after now"):
        fetch_window(DAY, at(13, 23, 59), None, TWO_HOURS, full_day=full_day)


def test_negative_lookback_is_refused():
    with pytest.raises(ValueError, match="look-back"):
        fetch_window(DAY, at(14, 10), at(14, 9), timedelta(minutes=-5))


# -- merging re-fetched orders ---------------------------------------------------------------


def order(order_id, updated, state="SHIPPING"):
    return MiraklOrder.model_validate(rec(order_id, updated, state))


def _orders(records):
    return [MiraklOrder.model_validate(r) for r in records]


def _key(o):
    return o.order_id, o.order_state, o.last_updated_date


def rec(order_id, updated, state="SHIPPING"):
    return {"order_id": order_id, "last_updated_date": updated, "order_state": state}


@pytest.mark.parametrize(
    ("existing", "fresh", "expected"),
    [
        ([], [], []),
        ([], [rec("A", "2026-03-14T10:00:00Z")], [rec("A", "2026-03-14T10:00:00Z")]),
        # a newer update replaces the record in place
        ([rec("A", "2026-03-14T10:00:00Z"), rec("B", "2026-03-14T10:05:00Z")],
         [rec("A", "2026-03-14T11:00:00Z", "SHIPPED")],
         [rec("A", "2026-03-14T11:00:00Z", "SHIPPED"), rec("B", "2026-03-14T10:05:00Z")]),
        # an older copy (returned again by the look-back) does not win
        ([rec("A", "2026-03-14T11:00:00Z", "SHIPPED")], [rec("A", "2026-03-14T10:00:00Z")],
         [rec("A", "2026-03-14T11:00:00Z", "SHIPPED")]),
        # the same date: the fresh copy wins
        ([rec("A", "2026-03-14T10:00:00Z")], [rec("A", "2026-03-14T10:00:00.000Z", "SHIPPED")],
         [rec("A", "2026-03-14T10:00:00.000Z", "SHIPPED")]),
        # dates compared as instants, not as text
        ([rec("A", "2026-03-14T11:30:00+02:00", "OLD")], [rec("A", "2026-03-14T10:00:00Z", "NEW")],
         [rec("A", "2026-03-14T10:00:00Z", "NEW")]),
        # datetimes as well as strings; duplicates inside one list
        ([rec("A", datetime(2026, 3, 14, 10, tzinfo=UTC))],
         [rec("B", "2026-03-14T09:00:00Z"), rec("A", "2026-03-14T12:00:00Z", "X"),
          rec("A", "2026-03-14T11:00:00Z", "Y")],
         [rec("A", "2026-03-14T12:00:00Z", "X"), rec("B", "2026-03-14T09:00:00Z")]),
        # a dated record beats an undated one either way
        ([rec("A", None, "OLD")], [rec("A", "2026-03-14T10:00:00Z", "NEW")], [rec("A", "2026-03-14T10:00:00Z", "NEW")]),
        ([rec("A", "2026-03-14T10:00:00Z", "OLD")], [rec("A", None, "NEW")], [rec("A", "2026-03-14T10:00:00Z", "OLD")]),
    ],
)
def test_merge_orders(existing, fresh, expected):
    merged = merge_orders(_orders(existing), _orders(fresh)).orders
    assert [_key(o) for o in merged] == [_key(o) for o in _orders(expected)]


def test_merge_counts_new_and_updated_but_not_refetched_copies():
    existing = [order("A", "2026-03-14T10:00:00Z"), order("B", "2026-03-14T10:05:00Z")]
    fresh = [order("A", "2026-03-14T10:00:00Z"), order("B", "2026-03-14T11:00:00Z", "SHIPPED"), order("C", None)]
    result = merge_orders(existing, fresh)
    assert (result.new, result.updated) == (1, 1)
    assert [o.order_id for o in result.orders] == ["A", "B", "C"]


def test_an_update_just_before_midnight_is_fetched_by_the_first_poll_of_the_next_day():
    """Issue 8, point 12: yesterday's last poll ended at 23:59:00; Mirakl updates an order at 23:59:30.
    Yesterday's partition is next fetched by the 02:30 close-out; today's first poll must cover it."""
    late_update = datetime(2026, 3, 14, 23, 59, 30, tzinfo=UTC)
    yesterday_last = fetch_window(DAY, datetime(2026, 3, 14, 23, 59, tzinfo=UTC), at(14, 23, 58), timedelta(minutes=5))
    assert not yesterday_last[0] <= late_update < yesterday_last[1]
    first_of_today = fetch_window(date(2026, 3, 15), datetime(2026, 3, 15, 0, 0, 40, tzinfo=UTC), None,
                                  timedelta(minutes=5))
    assert first_of_today[0] <= late_update < first_of_today[1]
    # the old rule (clamped to midnight) missed it:
    assert not datetime(2026, 3, 15, tzinfo=UTC) <= late_update
