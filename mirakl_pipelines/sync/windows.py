"""Poll windows inside a daily partition, and merging re-fetched orders into the day's data.

The partition is a UTC day; a poll fetches `[max(day start, last window end - look-back), now)` so
that late updates (Mirakl itself shifts `start_update_date` back) are seen again, then merges them.
Naive datetimes are taken as UTC.
"""

from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Optional

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
    last_window_end: Optional[datetime],
    lookback: timedelta,
    full_day: bool = False,
) -> tuple[datetime, datetime]:
    """The [start, end) update-date window to fetch for the partition `day` at `now`.

    - `full_day` (close-out or backfill) and a past day never fetched: the whole day;
    - otherwise `[max(day start, last_window_end - lookback), min(now, day end))`, the first run of
      today starting at midnight.
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
    if last_window_end is None:
        return start, window_end
    window_start = max(start, _utc(last_window_end) - lookback)
    # A watermark ahead of `now` (clock skew) gives an empty window, never an inverted one.
    return min(window_start, window_end), window_end


def _updated_at(record: dict[str, Any]) -> Optional[datetime]:
    value = record.get("last_updated_date")
    if value is None:
        return None
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str):
        try:
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(
        f"order {record.get('order_id')!r}: last_updated_date {value!r} is not an ISO-8601 date-time"
    )


def _order_id(record: dict[str, Any], where: str, index: int) -> str:
    order_id = record.get("order_id")
    if not order_id:
        raise ValueError(f"{where} record #{index} has no order_id: {sorted(record)[:8]}")
    return order_id


def merge_orders(existing: list[dict], fresh: list[dict]) -> list[dict]:
    """Union of both lists, one record per order_id, keeping the latest last_updated_date.

    On a tie (or missing dates) the fresh record wins: it was fetched later. Existing orders keep
    their position; orders seen for the first time are appended in the order they were fetched.
    """
    merged: dict[str, dict] = {}
    for index, record in enumerate(existing):
        order_id = _order_id(record, "existing", index)
        kept = merged.get(order_id)
        if kept is None or _newer_or_same(record, kept):
            merged[order_id] = record
    for index, record in enumerate(fresh):
        order_id = _order_id(record, "fresh", index)
        kept = merged.get(order_id)
        if kept is None or _newer_or_same(record, kept):
            merged[order_id] = record
    return list(merged.values())


def _newer_or_same(candidate: dict, kept: dict) -> bool:
    candidate_at, kept_at = _updated_at(candidate), _updated_at(kept)
    if candidate_at is None or kept_at is None:
        return candidate_at is not None or kept_at is None
    return candidate_at >= kept_at


__all__ = ["fetch_window", "merge_orders", "partition_day_bounds"]
