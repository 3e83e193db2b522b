"""Fetch windows inside daily partitions, and which version of an order a day keeps.

The partition is a UTC day. A refresh fetches `[last window end - overlap, now)`: only what changed since the
previous refresh, with a small overlap for clocks and Mirakl's indexing latency (Mirakl itself also shifts
`start_update_date` back). A day's first refresh chains from the previous day's last window end, so an order
updated just before midnight, after that day's last refresh, is fetched within a minute of midnight instead of
waiting for the previous day's close-out (02:30); without that watermark it reaches back by the look-back.
A close-out, a past day and a backfill of a range fetch whole days. Naive datetimes are taken as UTC.
"""

from datetime import date, datetime, time, timedelta, timezone
from typing import Sequence

_DAY = timedelta(days=1)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def partition_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC day as a half-open interval [00:00, next day 00:00)."""
    start = datetime.combine(day, time.min, tzinfo=timezone.utc)
    return start, start + _DAY


def fetch_window(
    day: date,
    now: datetime,
    last_window_end: datetime | None,
    overlap: timedelta,
    *,
    lookback: timedelta,
    previous_day_end: datetime | None = None,
    full_day: bool = False,
) -> tuple[datetime, datetime]:
    """The [start, end) update-date window to fetch for the partition `day` at `now`.

    - `full_day` (close-out) and a past day never fetched: the whole day;
    - a refresh: from `last_window_end - overlap`; a day's first refresh from the previous day's
      `previous_day_end - overlap`, else from `lookback` before midnight; never earlier than `lookback`
      before midnight; up to `min(now, day end)`.
    Raises ValueError when `now` is before the day starts (a partition of the future).
    """
    start, end = partition_day_bounds(day)
    now = _utc(now)
    if now < start:
        raise ValueError(f"partition {day.isoformat()} starts at {start.isoformat()}, after now ({now.isoformat()})")
    for name, span in (("overlap", overlap), ("look-back", lookback)):
        if span < timedelta(0):
            raise ValueError(f"{name} must not be negative, got {span}")
    if full_day or (last_window_end is None and now >= end):
        return start, end
    window_end = min(now, end)
    earliest = start - lookback  # the furthest a refresh reaches into the previous day's tail
    chained_from = last_window_end if last_window_end is not None else previous_day_end
    window_start = earliest if chained_from is None else max(earliest, _utc(chained_from) - overlap)
    # A watermark ahead of `now` (clock skew) gives an empty window, never an inverted one.
    return min(window_start, window_end), window_end


def range_window(days: Sequence[date], now: datetime) -> tuple[datetime, datetime]:
    """The one window of a backfill of consecutive `days`: from the first one's start to the last one's end (or now)."""
    if not days:
        raise ValueError("a backfill window needs at least one day")
    first, last = min(days), max(days)
    start, _ = partition_day_bounds(first)
    _, end = partition_day_bounds(last)
    now = _utc(now)
    if now < start:
        raise ValueError(f"partition {first.isoformat()} starts at {start.isoformat()}, after now ({now.isoformat()})")
    return start, min(end, now)


def route_day(updated: datetime | None, days: Sequence[date]) -> date:
    """The day partition of `days` an order fetched by a backfill belongs to: the UTC day of its last update,
    clamped into the range (Mirakl's start-date slack returns a few orders of the day before; undated → first day)."""
    first, last = min(days), max(days)
    if updated is None:
        return first
    day = _utc(updated).date()
    return first if day < first else last if day > last else day


def is_newer(candidate: datetime | None, held: datetime | None) -> bool:
    """Whether a fetched version replaces the one a day holds: a later update does; the same update is the same
    snapshot (the overlap fetches it again); a dated version beats an undated one, never the reverse."""
    if candidate is None:
        return False
    return held is None or _utc(candidate) > _utc(held)


__all__ = ["fetch_window", "is_newer", "partition_day_bounds", "range_window", "route_day"]
