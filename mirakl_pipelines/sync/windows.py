"""Poll windows inside a daily partition, and merging re-fetched orders into the day's data.

The partition is a UTC day; a poll fetches `[max(day start - look-back, last window end - look-back), now)`
so that late updates (Mirakl itself shifts `start_update_date` back) are seen again, then merges them.
The first polls of a day reach back into the previous day by the look-back: an order updated just
before midnight, after that day's last poll, is fetched within a minute of midnight instead of waiting
for the previous day's close-out (02:30). Naive datetimes are taken as UTC.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from mirakl_pipelines.mirakl.models import MiraklOrder

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
    lookback: timedelta,
    full_day: bool = False,
) -> tuple[datetime, datetime]:
    """The [start, end) update-date window to fetch for the partition `day` at `now`.

    - `full_day` (close-out or backfill) and a past day never fetched: the whole day;
    - otherwise `[max(day start - lookback, last_window_end - lookback), min(now, day end))`: the first
      run of today starts `lookback` before midnight, and runs stay in the previous day's tail until the
      look-back has passed midnight.
    Raises ValueError when `now` is before the day starts (a partition of the future).
    """
    start, end = partition_day_bounds(day)
    now = _utc(now)
    if now < start:
        raise ValueError(f"partition {day.isoformat()} starts at {start.isoformat()}, after now ({now.isoformat()})")
    if lookback < timedelta(0):
        raise ValueError(f"look-back must not be negative, got {lookback}")
    if full_day or (last_window_end is None and now >= end):
        return start, end
    window_end = min(now, end)
    earliest = start - lookback  # the previous day's tail
    if last_window_end is None:
        return earliest, window_end
    window_start = max(earliest, _utc(last_window_end) - lookback)
    # A watermark ahead of `now` (clock skew) gives an empty window, never an inverted one.
    return min(window_start, window_end), window_end


@dataclass(frozen=True)
class MergeResult:
    orders: list[MiraklOrder]
    new: int  # orders the day did not hold yet
    updated: int  # orders whose newer version replaced the one held


def _newer_or_same(candidate: MiraklOrder, kept: MiraklOrder) -> bool:
    candidate_at, kept_at = candidate.last_updated_date, kept.last_updated_date
    if candidate_at is None or kept_at is None:
        return candidate_at is not None or kept_at is None
    return _utc(candidate_at) >= _utc(kept_at)


def merge_orders(existing: list[MiraklOrder], fresh: list[MiraklOrder]) -> MergeResult:
    """Fold a fetch into the day's orders, one per order_id, the latest last_updated_date winning.

    On a tie (or missing dates) the fresh copy wins: it was fetched later. Existing orders keep
    their position; orders seen for the first time are appended in the order they were fetched.
    Overlapping look-back windows return the same orders again: those count as neither new nor updated.
    """
    merged: dict[str, MiraklOrder] = {}
    for order in existing:
        kept = merged.get(order.order_id)
        if kept is None or _newer_or_same(order, kept):
            merged[order.order_id] = order
    known = dict(merged)
    for order in fresh:
        kept = merged.get(order.order_id)
        if kept is None or _newer_or_same(order, kept):
            merged[order.order_id] = order
    new = sum(1 for order_id in merged if order_id not in known)
    updated = sum(
        1 for order_id, order in merged.items()
        if order_id in known and order is not known[order_id] and order.last_updated_date != known[order_id].last_updated_date
    )
    return MergeResult(list(merged.values()), new, updated)


__all__ = ["MergeResult", "fetch_window", "merge_orders", "partition_day_bounds"]
