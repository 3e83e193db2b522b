"""From Shopify's inventory to the quantity each Mirakl offer publishes, under one marketplace's stock policy.

Per Shopify SKU: `shopify_available` is the sum of `available` at the counted locations (or the one location
in `single` mode; negative levels count as they are: those units are already owed), minus the units promised
to Mirakl orders Shopify does not show yet, floored at 0 (`servable`). The published `quantity` is then
servable − buffer_units, minus buffer_percent rounded down, capped, and 0 when below zero_below — integers
throughout (10 % off 29 publishes 26; 12.5 % off 8 publishes 7). Each step is monotone, so a SKU never
publishes less because Shopify has more.

Nothing is guessed: variants without SKU, untracked items, SKUs on two variants, mapped Shopify SKUs that do
not exist are not published and become findings with a reason an operator can act on; a SKU stocked at none
of the counted locations is published as 0 and reported once.
"""

import re
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from mirakl_pipelines.config import StockConfig
from mirakl_pipelines.sync.carriers import normalise_company
from mirakl_pipelines.sync.sku_map import SkuMap, load_sku_map  # load_sku_map: re-exported for the stock flow
from mirakl_pipelines.sync.stock_levels import InventorySnapshot, ShopifyLocation

QUANTITY_DTYPES = {
    "offer_sku": "string",
    "shopify_sku": "string",
    "shopify_available": "Int64",
    "promised": "Int64",
    "servable": "Int64",
    "quantity": "Int64",
}
QUANTITY_COLUMNS = tuple(QUANTITY_DTYPES)

# In the order findings are listed.
FINDING_KINDS = (
    "no_sku", "invalid_sku", "duplicate_sku", "untracked", "mapped_sku_missing", "shadowed_sku", "not_stocked",
)
_LINE_BREAK = re.compile(r"[\r\n]")
_LEGACY_ID = re.compile(r"^\d+$")


class StockPolicyError(ValueError):
    """The stock policy cannot be applied (an unknown or ambiguous location, negative promised units)."""


@dataclass(frozen=True)
class StockFinding:
    """A variant or SKU the computation could not publish as asked, and why."""

    kind: str  # one of FINDING_KINDS
    sku: Optional[str]
    variant_id: Optional[str]  # the first variant concerned; the reason names all of them
    reason: str


@dataclass
class StockComputation:
    quantities: pd.DataFrame  # QUANTITY_COLUMNS, one row per offer_sku, sorted by offer_sku
    findings: list[StockFinding]
    locations: list[ShopifyLocation] = field(default_factory=list)  # the counted ones

    def finding_counts(self) -> dict[str, int]:
        return finding_counts(self.findings)


def finding_counts(findings: Sequence[StockFinding]) -> dict[str, int]:
    """Findings counted by kind (every kind present, for stable metadata)."""
    counts = dict.fromkeys(FINDING_KINDS, 0)
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return counts


def resolve_locations(known: Sequence[ShopifyLocation], wanted: Sequence[str]) -> list[ShopifyLocation]:
    """The locations `wanted` names (name, gid or legacy id), in that order; every active location when empty."""
    if not wanted:
        return [loc for loc in known if loc.active]
    described = ", ".join(f"{loc.name!r} ({loc.legacy_id})" for loc in known) or "(none)"
    chosen: list[ShopifyLocation] = []
    named_by: dict[str, str] = {}
    for entry in wanted:
        text = entry.strip()
        if text.startswith("gid://"):
            matches = [loc for loc in known if loc.id == text]
        elif _LEGACY_ID.match(text):
            matches = [loc for loc in known if loc.legacy_id == text]
        else:
            # Exact name first; then ignoring case, accents and punctuation ("entrepot lyon"), when that is unambiguous.
            matches = [loc for loc in known if loc.name == text] or [
                loc for loc in known if normalise_company(loc.name) == normalise_company(text)
            ]
        if not matches:
            raise StockPolicyError(f"stock location {entry!r} is not a Shopify location of this store; known: {described}")
        if len(matches) > 1:
            names = ", ".join(f"{loc.name!r} ({loc.legacy_id})" for loc in matches)
            raise StockPolicyError(f"stock location {entry!r} is ambiguous: it matches {names}; use the numeric id")
        location = matches[0]
        if location.id in named_by:
            raise StockPolicyError(
                f"stock locations {named_by[location.id]!r} and {entry!r} both name {location.name!r}: "
                "its stock would count twice"
            )
        named_by[location.id] = entry
        chosen.append(location)
    return chosen


def published_quantities(servable: np.ndarray, policy: StockConfig) -> np.ndarray:
    """What to publish for each servable quantity (int64, ≥ 0): buffers, then cap, then zero_below."""
    q = np.maximum(np.asarray(servable, dtype=np.int64) - policy.buffer_units, 0)
    if policy.buffer_percent:
        # percent = num/den exactly, so kept = q·(100·den − num) // (100·den): integer floor, no float rounding.
        num, den = policy.buffer_percent.as_integer_ratio()
        kept, whole = 100 * den - num, 100 * den
        if len(q) and int(q.max()) > np.iinfo(np.int64).max // max(kept, 1):
            q = np.array([int(v) * kept // whole for v in q], dtype=np.int64)  # beyond int64 products: exact ints
        else:
            q = q * kept // whole
    if policy.cap is not None:
        q = np.minimum(q, policy.cap)
    if policy.zero_below:
        q = np.where(q < policy.zero_below, 0, q)
    return q


def compute_stock(
    snapshot: InventorySnapshot,
    policy: StockConfig,
    *,
    promised: Optional[Mapping[str, int]] = None,
    sku_map: Optional[SkuMap] = None,
) -> StockComputation:
    """The quantity each offer publishes (see the module docstring), and the findings."""
    counted = resolve_locations(snapshot.locations, policy.locations)
    if policy.mode == "single" and len(counted) != 1:
        raise StockPolicyError(f"stock mode 'single' needs exactly one location; the policy names {len(counted)}")
    levels = snapshot.levels
    variants = levels.drop_duplicates("variant_id", keep="first")[["variant_id", "sku", "tracked"]]
    variants = variants.reset_index(drop=True)
    has_sku, publishable, findings = _screen(variants)

    # Shopify side, one row per publishable SKU: available at the counted locations (NA = stocked at none of them).
    counted_ids = [loc.id for loc in counted]
    at_counted = levels[levels["location_id"].isin(counted_ids).fillna(False) & levels["available"].notna()]
    sums = at_counted.groupby("variant_id", sort=False)["available"].sum()
    stock = variants.loc[publishable, ["sku", "variant_id"]].rename(columns={"sku": "shopify_sku"}).reset_index(drop=True)
    stock["available"] = stock["variant_id"].map(sums).astype("Int64")

    offers = _offers(stock, variants.loc[has_sku, "sku"], sku_map, findings)
    table = offers.merge(stock, on="shopify_sku", how="left", validate="many_to_one")

    not_stocked = table.loc[table["available"].isna(), ["shopify_sku", "variant_id"]].drop_duplicates("shopify_sku")
    where = ", ".join(loc.name for loc in counted) or "(no location)"
    for s, v in not_stocked.sort_values("shopify_sku").itertuples(index=False):
        findings.append(StockFinding(
            "not_stocked", s, v, f"SKU {s!r} is stocked at none of the counted locations ({where}): published as 0",
        ))

    available = table["available"].fillna(0).astype("int64").to_numpy()
    owed = _promised_units(promised, table["shopify_sku"])
    servable = np.maximum(available - owed, 0)
    quantities = pd.DataFrame({
        "offer_sku": pd.array(table["offer_sku"], dtype="string"),
        "shopify_sku": pd.array(table["shopify_sku"], dtype="string"),
        "shopify_available": pd.array(available, dtype="Int64"),
        "promised": pd.array(owed, dtype="Int64"),
        "servable": pd.array(servable, dtype="Int64"),
        "quantity": pd.array(published_quantities(servable, policy), dtype="Int64"),
    }).sort_values("offer_sku", kind="stable").reset_index(drop=True)
    order = {kind: i for i, kind in enumerate(FINDING_KINDS)}
    findings.sort(key=lambda f: (order[f.kind], f.sku or "", f.variant_id or ""))
    return StockComputation(quantities, findings, counted)


def _screen(variants: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[StockFinding]]:
    """(has a SKU, publishable, findings) per variant: no SKU, a SKU with a line break, on two variants, untracked."""
    findings: list[StockFinding] = []
    sku = variants["sku"]
    has_sku = sku.fillna("").str.strip().ne("").to_numpy(dtype=bool)
    invalid = has_sku & sku.fillna("").str.contains(_LINE_BREAK).to_numpy(dtype=bool)
    duplicated = has_sku & sku.where(pd.Series(has_sku)).duplicated(keep=False).to_numpy(dtype=bool)
    tracked = variants["tracked"].fillna(False).to_numpy(dtype=bool)

    for v in variants.loc[~has_sku, "variant_id"]:
        findings.append(StockFinding(
            "no_sku", None, v, f"variant {v} has no SKU, so no Mirakl offer can be matched to it: give it a SKU in Shopify",
        ))
    for v, s in variants.loc[invalid, ["variant_id", "sku"]].itertuples(index=False):
        findings.append(StockFinding(
            "invalid_sku", s, v, f"SKU {s!r} of variant {v} contains a line break, which a stock file cannot carry: "
                                 "not published; correct the SKU in Shopify",
        ))
    for s, group in variants.loc[duplicated & ~invalid].groupby("sku", sort=True)["variant_id"]:
        ids = list(group)
        findings.append(StockFinding(
            "duplicate_sku", s, ids[0], f"SKU {s!r} is on {len(ids)} variants ({', '.join(ids)}): whose stock it means "
                                        "is unknown, so it is not published; give each variant its own SKU",
        ))
    for v, s in variants.loc[has_sku & ~invalid & ~duplicated & ~tracked, ["variant_id", "sku"]].itertuples(index=False):
        findings.append(StockFinding(
            "untracked", s, v, f"SKU {s!r} (variant {v}) does not track inventory in Shopify, so it has no quantity "
                               "to publish: not published; turn on 'Track quantity' or remove the offer",
        ))
    return has_sku, has_sku & ~invalid & ~duplicated & tracked, findings


def _offers(stock: pd.DataFrame, known_skus: pd.Series, sku_map: Optional[SkuMap], findings: list) -> pd.DataFrame:
    """offer_sku → shopify_sku: every publishable SKU as itself, except where the mapping file says otherwise."""
    mapped = dict(sku_map.offers) if sku_map else {}
    own = stock["shopify_sku"]
    if not mapped:
        return _pairs(own, own)
    # Set lookups on plain Python strings: pandas' isin on Arrow-backed strings converts its values one by one.
    own_values = own.to_numpy(dtype=object)
    sources, claimed = set(mapped.values()), set(mapped)
    renamed = np.fromiter((sku in sources for sku in own_values), dtype=bool, count=len(own_values))
    taken = np.fromiter((sku in claimed for sku in own_values), dtype=bool, count=len(own_values))
    # A SKU the file renames is published under its mapped offers only; an offer SKU the file claims is its.
    for sku in sorted(own_values[taken & ~renamed]):
        findings.append(StockFinding(
            "shadowed_sku", sku, None, f"Shopify SKU {sku!r} is not published as offer {sku!r}: {sku_map.where(sku)} maps "
                                       f"that offer to Shopify SKU {mapped[sku]!r}; map {sku!r} to an offer there to publish it",
        ))
    known = set(known_skus.to_numpy(dtype=object))
    for offer_sku, shopify_sku in sorted(mapped.items()):
        if shopify_sku not in known:
            findings.append(StockFinding(
                "mapped_sku_missing", shopify_sku, None,
                f"offer {offer_sku!r} is mapped to Shopify SKU {shopify_sku!r} ({sku_map.where(offer_sku)}), which no "
                "Shopify variant has: not published; correct the mapping file or the SKU in Shopify",
            ))
    # Mapped offers of unpublishable SKUs (untracked, duplicated) drop out here; their SKU's finding says why.
    publishable = set(own_values)
    pairs = [(o, sku) for o, sku in mapped.items() if sku in publishable]
    identity = own_values[~renamed & ~taken]
    return _pairs(np.concatenate([identity, np.array([o for o, _ in pairs], dtype=object)]),
                  np.concatenate([identity, np.array([sku for _, sku in pairs], dtype=object)]))


def _pairs(offer_skus, shopify_skus) -> pd.DataFrame:
    return pd.DataFrame({"offer_sku": pd.array(offer_skus, dtype="string"),
                         "shopify_sku": pd.array(shopify_skus, dtype="string")})


def _promised_units(promised: Optional[Mapping[str, int]], skus: pd.Series) -> np.ndarray:
    if not promised:
        return np.zeros(len(skus), dtype=np.int64)
    negative = sorted(s for s, units in promised.items() if units < 0)
    if negative:
        raise StockPolicyError(f"promised units must be ≥ 0; negative for SKU(s) {negative}")
    return skus.map(promised).fillna(0).astype("int64").to_numpy()


__all__ = [
    "FINDING_KINDS", "QUANTITY_COLUMNS", "StockComputation", "StockFinding", "StockPolicyError", "compute_stock",
    "finding_counts", "load_sku_map", "published_quantities", "resolve_locations",
]
