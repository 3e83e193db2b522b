"""What each marketplace's offers are, kept between stock runs beside the datasets (`mirakl_offers/<code>.*`).

A small catalogue is read whole every run (OF21 pages). A large one is exported (OF52 → OF53 → OF54), but Mirakl
allows a *full* export once a day and a *differential* one (offers changed since `last_request_date`) once a
minute: the first run of the day exports in full, the later ones export the changes since the previous request
and merge them into the kept table.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Optional

import pandas as pd

from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.mirakl.offers import export_offer_changes, read_offers
from mirakl_pipelines.sync.stock_levels import OFFER_COLUMNS, OFFER_DTYPES, MiraklOffers, is_in

# A differential export asks from a little before the previous request: Mirakl's clock and ours may differ.
OVERLAP = timedelta(minutes=2)


@dataclass(frozen=True)
class CacheState:
    source: str  # OF21 | OF52: how the offers were last read in full
    full_at: datetime  # the last full read
    last_request: datetime  # when the last read (full or differential) was asked for


class OfferCache:
    def __init__(self, folder: str | Path, code: str):
        self.table = Path(folder) / "mirakl_offers" / f"{code}.parquet"
        self.meta = self.table.with_suffix(".json")

    def state(self) -> Optional[CacheState]:
        if not (self.meta.exists() and self.table.exists()):
            return None
        data = json.loads(self.meta.read_text())
        return CacheState(data["source"], datetime.fromisoformat(data["full_at"]), datetime.fromisoformat(data["last_request"]))

    def offers(self) -> pd.DataFrame:
        frame = pd.read_parquet(self.table)
        return frame.astype(OFFER_DTYPES)[list(OFFER_COLUMNS)]

    def save(self, offers: pd.DataFrame, state: CacheState) -> None:
        self.table.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.table.with_suffix(".parquet.tmp")
        offers[list(OFFER_COLUMNS)].to_parquet(tmp, index=False)
        tmp.replace(self.table)
        meta_tmp = self.meta.with_suffix(".json.tmp")
        meta_tmp.write_text(json.dumps({"source": state.source, "full_at": state.full_at.isoformat(),
                                        "last_request": state.last_request.isoformat()}))
        meta_tmp.replace(self.meta)  # the state names a table that is already in place


def current_offers(client: MiraklClient, cache: OfferCache, *, export_threshold: int, now: datetime) -> MiraklOffers:
    """The marketplace's offers now, reading as little as Mirakl's limits ask (see the module docstring)."""
    state = cache.state()
    if state is not None and state.source == "OF52" and state.full_at.date() == now.date():
        changes = export_offer_changes(client, state.last_request - OVERLAP)
        merged = merge_changes(cache.offers(), changes.updated.offers, changes.deleted)
        cache.save(merged, CacheState("OF52", state.full_at, changes.updated.read_at))
        return MiraklOffers(offers=merged, read_at=changes.updated.read_at, source="OF52")
    offers = read_offers(client, export_threshold=export_threshold)
    cache.save(offers.offers, CacheState(offers.source, offers.read_at, offers.read_at))
    return offers


def merge_changes(kept: pd.DataFrame, updated: pd.DataFrame, deleted: list[str]) -> pd.DataFrame:
    """`kept` with the offers of `updated` replacing theirs (by offer SKU) and the `deleted` SKUs removed."""
    gone = set(deleted) | set(updated["offer_sku"].dropna().tolist())
    rest = kept[~is_in(kept["offer_sku"], gone)]
    merged = pd.concat([rest, updated[~is_in(updated["offer_sku"], deleted)]], ignore_index=True)
    return merged.sort_values("offer_sku", kind="stable").reset_index(drop=True).astype(OFFER_DTYPES)
