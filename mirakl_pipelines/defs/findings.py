"""What an asset check found, marketplace by marketplace: rows people read, counts per marketplace.

Checks answer for every marketplace at once (see defs/orders/checks.py), so each lists its rows prefixed
by the marketplace and counts them per marketplace in its metadata.
"""

from typing import Sequence

import dagster as dg

from mirakl_pipelines.config import MarketplaceConfig

_LISTED = 50  # orders listed in a check's metadata; the counts are always complete


def listing(rows: list[str]) -> dg.MetadataValue:
    text = "\n".join(f"- {r}" for r in rows[:_LISTED])
    if len(rows) > _LISTED:
        text += f"\n- … and {len(rows) - _LISTED} more"
    return dg.MetadataValue.md(text or "_none_")


class Findings:
    """What one check found, marketplace by marketplace: rows for people, counts per marketplace."""

    def __init__(self, marketplaces: Sequence[MarketplaceConfig]):
        self.rows: list[str] = []
        self.counts: dict[str, int] = {m.code: 0 for m in marketplaces}

    def add(self, code: str, rows: list[str]) -> None:
        self.rows += [f"{code} {row}" for row in rows]
        self.counts[code] = self.counts.get(code, 0) + len(rows)

    @classmethod
    def combined(cls, *parts: "Findings") -> "Findings":
        """One listing of several findings (in the order given), their counts added up."""
        whole = cls([])
        for part in parts:
            whole.rows += part.rows
            for code, count in part.counts.items():
                whole.counts[code] = whole.counts.get(code, 0) + count
        return whole

    def __bool__(self) -> bool:
        return bool(self.rows)

    def metadata(self, **extra) -> dict:
        return {**extra, "by_marketplace": dg.MetadataValue.json(self.counts), "orders": listing(self.rows)}
