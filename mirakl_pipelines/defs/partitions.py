"""Partitions: one per UTC day (today included) and marketplace.

Never 15-minute partitions: a 15-minute poll re-materialises today's partition; the fetch window
is not the partition (see DESIGN.md).
"""

from datetime import date

import dagster as dg

from mirakl_pipelines.config import Settings


def daily_by_marketplace(settings: Settings) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {
            "date": dg.DailyPartitionsDefinition(start_date=settings.partitions_start_date, end_offset=1),
            "marketplace": dg.StaticPartitionsDefinition([m.code for m in settings.marketplaces]),
        }
    )


def partition_key(day: date, marketplace: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day.isoformat(), "marketplace": marketplace})


def split_partition_key(context) -> tuple[date, str]:
    """(day, marketplace code) of the run's partition."""
    keys = context.partition_key.keys_by_dimension
    return date.fromisoformat(keys["date"]), keys["marketplace"]
