"""The two tables the stock flow compares: what Shopify has per inventory level, what Mirakl has per offer.

Both sides are read into pandas frames with fixed columns (a catalogue of 100,000 SKUs × 3 locations
is 300,000 levels: frames, not lists of objects). The Shopify reader (paginated GraphQL or a bulk
operation) and the Mirakl reader (OF21 or the OF52–OF54 export) each build one of these; the stock
policy and the diff read nothing else.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Literal, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# One row per (variant, location where its item is stocked). A variant whose item is stocked nowhere
# still has one row, with no location and no quantity, so it is reported rather than silently absent.
LEVEL_DTYPES = {
    "sku": "string",  # <NA> when the variant has no SKU (reported, never guessed)
    "variant_id": "string",  # gid://shopify/ProductVariant/…
    "inventory_item_id": "string",  # gid://shopify/InventoryItem/…
    "location_id": "string",  # gid://shopify/Location/…; <NA> when the item is stocked nowhere
    "location_name": "string",
    "available": "Int64",  # may be negative (oversold); <NA> when there is no level
    "tracked": "boolean",  # untracked items have no meaningful quantity: reported, not published
}
LEVEL_COLUMNS = tuple(LEVEL_DTYPES)

# One row per Mirakl offer of the shop.
OFFER_DTYPES = {
    "offer_sku": "string",  # the shop's SKU (OF21 `shop_sku`, OF54 `offer-sku`/`shop-sku`)
    "offer_id": "string",
    "quantity": "Int64",
    "active": "boolean",
}
OFFER_COLUMNS = tuple(OFFER_DTYPES)


@dataclass(frozen=True)
class LocationLevel:
    """One inventory level as a reader sees it (rows for `levels_frame`)."""

    sku: Optional[str]
    variant_id: str
    inventory_item_id: str
    location_id: Optional[str]
    location_name: Optional[str]
    available: Optional[int]
    tracked: bool


@dataclass(frozen=True)
class ShopifyLocation:
    id: str  # gid://shopify/Location/…
    legacy_id: str  # the number in the admin URL, which operators may write in the config
    name: str
    active: bool = True


@dataclass(frozen=True)
class OfferStock:
    """One offer as a reader sees it (rows for `offers_frame`)."""

    offer_sku: str
    offer_id: str
    quantity: Optional[int]
    active: bool = True


@dataclass
class InventorySnapshot:
    """Shopify's inventory at `read_at`: every location and every variant's levels."""

    locations: list[ShopifyLocation]
    levels: pd.DataFrame  # LEVEL_COLUMNS
    read_at: datetime
    source: Literal["paginated", "bulk"]


@dataclass
class MiraklOffers:
    """Mirakl's offers at `read_at`."""

    offers: pd.DataFrame  # OFFER_COLUMNS
    read_at: datetime
    source: Literal["OF21", "OF52"]


def _frame(rows: Iterable[tuple], dtypes: dict[str, str]) -> pd.DataFrame:
    columns = list(zip(*rows)) or [()] * len(dtypes)
    return pd.DataFrame({name: pd.array(list(values), dtype=dtype)
                         for (name, dtype), values in zip(dtypes.items(), columns)})


def levels_frame(levels: Iterable[LocationLevel]) -> pd.DataFrame:
    return _frame(((l.sku, l.variant_id, l.inventory_item_id, l.location_id, l.location_name, l.available, l.tracked)
                   for l in levels), LEVEL_DTYPES)


def offers_frame(offers: Iterable[OfferStock]) -> pd.DataFrame:
    return _frame(((o.offer_sku, o.offer_id, o.quantity, o.active) for o in offers), OFFER_DTYPES)


def is_in(values: pd.Series, members: Iterable) -> np.ndarray:
    """Which of `values` (text) are among `members`, as a boolean array (missing values: False). pandas' own
    `isin` on Arrow-backed text turns every member into a Python scalar: seconds for 100,000 SKUs; this stays in Arrow."""
    found = pc.is_in(pa.array(values.astype("object"), type=pa.string(), from_pandas=True),
                     value_set=pa.array(list(members), type=pa.string()))
    return found.fill_null(False).to_numpy(zero_copy_only=False)
