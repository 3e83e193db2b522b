"""What a stock push sends (the SKUs that changed), and how far Mirakl's offers are from what was computed.

`stock_delta` classifies each offer both sides know (difference = Mirakl − computed):

- match: no difference.
- oversell (ERROR): Mirakl shows more than Shopify can serve, by more than `tolerance`. In-flight orders do not
  excuse it: an order on Mirakl only ever lowers Mirakl's quantity.
- in_flight (WARN): Mirakl shows less, by no more than tolerance + the units ordered on Mirakl since the snapshot.
- within_tolerance (WARN): Mirakl shows more than computed (not more than servable), by no more than tolerance.
- lost_sales (WARN): Mirakl shows less than computed beyond tolerance + in-flight units.
- above_computed (WARN): Mirakl shows more than computed beyond tolerance, but no more than servable (the safety
  buffer is eaten, not the stock).

Severity: ERROR on any oversell, or when more than `max_differing_skus` offers differ beyond tolerance
(oversell, lost_sales, above_computed); else WARN on any difference or on a Mirakl-only offer with stock;
else PASS. Offers Mirakl has that were not computed (`mirakl_only`) and computed SKUs Mirakl has no offer for
(`not_on_mirakl`) are counted and listed apart: they are not errors.
"""

from dataclasses import dataclass
from typing import Literal, Mapping, Optional

import numpy as np
import pandas as pd

Severity = Literal["PASS", "WARN", "ERROR"]
STATUSES = ("match", "oversell", "in_flight", "within_tolerance", "lost_sales", "above_computed")
BEYOND_TOLERANCE = ("oversell", "lost_sales", "above_computed")
DELTA_DTYPES = {
    "offer_sku": "string",
    "computed": "Int64",
    "mirakl": "Int64",
    "difference": "Int64",  # mirakl − computed
    "in_flight": "Int64",
    "servable": "Int64",
    "status": "string",
    "reason": "string",  # <NA> for a match
}
DELTA_COLUMNS = tuple(DELTA_DTYPES)
LINE_DTYPES = {"offer_sku": "string", "quantity": "Int64"}


def changed_lines(computed: pd.DataFrame, last_sent: Optional[pd.DataFrame], *, full: bool) -> pd.DataFrame:
    """The offers whose quantity differs from what was last sent (never sent = changed); every offer when `full`.

    Columns offer_sku, quantity, sorted by offer_sku. An offer sent before but no longer computed is not resent
    (nothing is known to send for it).
    """
    current = _lines(computed, "computed")
    if not full and last_sent is not None and len(last_sent):
        sent = _lines(last_sent, "last sent").rename(columns={"quantity": "sent"})
        merged = current.merge(sent, on="offer_sku", how="left")
        keep = merged["sent"].isna() | (merged["sent"] != merged["quantity"]).fillna(True)
        current = merged.loc[keep.to_numpy(dtype=bool), ["offer_sku", "quantity"]]
    return current.sort_values("offer_sku", kind="stable").reset_index(drop=True)


def drifted_lines(computed: pd.DataFrame, mirakl_offers: pd.DataFrame, *, orders_known: bool) -> pd.DataFrame:
    """The offers whose quantity on Mirakl has drifted from the computed one in a way a push must correct, with the
    computed quantity (columns offer_sku, quantity, sorted).

    Mirakl above the computed quantity is always corrected: it would sell units Shopify cannot serve (a line the
    marketplace dropped, units Mirakl gave back when an order was cancelled). Mirakl below it is corrected only when
    `orders_known`: every order placed on Mirakl before its quantities were read is in the ledger, so the gap is not
    an order still on its way to Shopify (which Mirakl rightly took off) but a decrement the policy's cap or
    threshold hides, or a manual edit in the marketplace's back office.
    """
    current = _lines(computed, "computed")
    mirakl = pd.DataFrame({
        "offer_sku": pd.array(mirakl_offers["offer_sku"], dtype="string"),
        "mirakl": pd.array(mirakl_offers["quantity"], dtype="Int64").fillna(0),
    }).drop_duplicates("offer_sku", keep="first")
    both = current.merge(mirakl, on="offer_sku", how="inner")
    q, m = both["quantity"].to_numpy(dtype=np.int64), both["mirakl"].to_numpy(dtype=np.int64)
    drift = (m > q) | ((m < q) & orders_known)
    return both.loc[drift, ["offer_sku", "quantity"]].sort_values("offer_sku", kind="stable").reset_index(drop=True)


def union_lines(*frames: pd.DataFrame) -> pd.DataFrame:
    """Stock lines of several reasons as one file's lines: one line per offer (the first frame's wins), sorted."""
    lines = pd.concat([_lines(f, "stock") for f in frames], ignore_index=True).drop_duplicates("offer_sku", keep="first")
    return lines.sort_values("offer_sku", kind="stable").reset_index(drop=True)


def _lines(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    lines = pd.DataFrame({
        "offer_sku": pd.array(frame["offer_sku"], dtype="string"),
        "quantity": pd.array(frame["quantity"], dtype="Int64"),
    })
    blank = lines.loc[lines["offer_sku"].isna() | lines["quantity"].isna(), "offer_sku"]
    if len(blank):
        raise ValueError(f"{what} stock lines lack an offer SKU or a quantity (offer SKU(s) {list(blank)[:10]})")
    repeated = lines.loc[lines["offer_sku"].duplicated(), "offer_sku"]
    if len(repeated):
        raise ValueError(f"{what} stock lines repeat offer SKU(s) {sorted(set(repeated))[:10]}: one line per offer")
    return lines


@dataclass
class StockDelta:
    severity: Severity
    rows: pd.DataFrame  # DELTA_COLUMNS, one row per offer both sides know, sorted by offer_sku
    counts: dict[str, int]
    worst: list[dict]  # the worst differing offers (oversell first, then by |difference|), for metadata
    mirakl_only: pd.DataFrame  # offer_sku, quantity: Mirakl offers nothing was computed for
    not_on_mirakl: list[str]  # computed offer SKUs Mirakl has no offer for

    @property
    def description(self) -> str:
        c = self.counts
        if self.severity == "PASS":
            return f"Mirakl matches the computed stock for all {c['compared']} offers"
        return (
            f"{c['differing']} of {c['compared']} offers differ ({c['beyond_tolerance']} beyond tolerance, "
            f"{c['oversell']} oversell risk, {c['lost_sales']} lost sales); {c['mirakl_only']} Mirakl-only offers, "
            f"{c['not_on_mirakl']} computed SKUs without a Mirakl offer"
        )


def stock_delta(
    computation_quantities: pd.DataFrame,
    mirakl_offers: pd.DataFrame,
    *,
    in_flight: Optional[Mapping[str, int]] = None,
    tolerance: int = 0,
    max_differing_skus: int = 10,
    worst: int = 20,
) -> StockDelta:
    """Compare per offer what Mirakl reports with what was computed (rules in the module docstring).

    `computation_quantities` has offer_sku, quantity and servable (StockComputation.quantities); `mirakl_offers`
    OFFER_COLUMNS (a Mirakl offer SKU listed twice counts once, the first). `in_flight`: units per offer SKU
    ordered on Mirakl since the Shopify snapshot, which Mirakl has already taken off.
    """
    computed = pd.DataFrame({
        "offer_sku": pd.array(computation_quantities["offer_sku"], dtype="string"),
        "computed": pd.array(computation_quantities["quantity"], dtype="Int64"),
        "servable": pd.array(computation_quantities["servable"], dtype="Int64"),
    })
    mirakl = pd.DataFrame({
        "offer_sku": pd.array(mirakl_offers["offer_sku"], dtype="string"),
        # OF21 requires a quantity; an offer without one is offering nothing.
        "mirakl": pd.array(mirakl_offers["quantity"], dtype="Int64").fillna(0),
    }).drop_duplicates("offer_sku", keep="first")
    # One outer join sorts every offer into: both sides, Mirakl only, computed only.
    joined = computed.merge(mirakl, on="offer_sku", how="outer", indicator=True, sort=True)
    side = joined.pop("_merge").to_numpy()
    both = joined[side == "both"].reset_index(drop=True)

    c = both["computed"].fillna(0).to_numpy(dtype=np.int64)
    m = both["mirakl"].to_numpy(dtype=np.int64)
    s = both["servable"].fillna(0).to_numpy(dtype=np.int64)
    f = both["offer_sku"].map(dict(in_flight or {})).fillna(0).to_numpy(dtype=np.int64) if in_flight else np.zeros_like(c)
    d = m - c
    status = np.select(
        [d == 0, m - s > tolerance, (d < 0) & (-d <= tolerance + f), (d > 0) & (d <= tolerance), d < 0],
        ["match", "oversell", "in_flight", "within_tolerance", "lost_sales"],
        default="above_computed",
    ).astype(object)
    reasons = np.full(len(both), None, dtype=object)
    for i in np.flatnonzero(d != 0):  # only the differing offers need a sentence
        reasons[i] = _reason(status[i], both["offer_sku"].iat[i], c[i], m[i], s[i], f[i])
    rows = pd.DataFrame({
        "offer_sku": pd.array(both["offer_sku"], dtype="string"),
        "computed": pd.array(c, dtype="Int64"),
        "mirakl": pd.array(m, dtype="Int64"),
        "difference": pd.array(d, dtype="Int64"),
        "in_flight": pd.array(f, dtype="Int64"),
        "servable": pd.array(s, dtype="Int64"),
        "status": pd.array(status, dtype="string"),
        "reason": pd.array(reasons, dtype="string"),
    })

    mirakl_only = joined.loc[side == "right_only", ["offer_sku", "mirakl"]].rename(columns={"mirakl": "quantity"})
    mirakl_only = mirakl_only.reset_index(drop=True)
    not_on_mirakl = joined.loc[side == "left_only", "offer_sku"].tolist()

    by_status = pd.Series(status).value_counts()
    counts = {name: int(by_status.get(name, 0)) for name in STATUSES}
    counts.update(
        compared=len(rows),
        differing=int((d != 0).sum()),
        beyond_tolerance=int(sum(counts[name] for name in BEYOND_TOLERANCE)),
        mirakl_only=len(mirakl_only),
        mirakl_only_with_stock=int((mirakl_only["quantity"] > 0).sum()),
        not_on_mirakl=len(not_on_mirakl),
    )
    if counts["oversell"] or counts["beyond_tolerance"] > max_differing_skus:
        severity: Severity = "ERROR"
    elif counts["differing"] or counts["mirakl_only_with_stock"]:
        severity = "WARN"
    else:
        severity = "PASS"
    return StockDelta(severity, rows, counts, _worst(rows, worst), mirakl_only, not_on_mirakl)


def _reason(status: str, sku: str, computed: int, mirakl: int, servable: int, in_flight: int) -> Optional[str]:
    if status == "match":
        return None
    shows = f"Mirakl shows {mirakl} for {sku!r}"
    if status == "oversell":
        return f"oversell risk: {shows} but Shopify can serve only {servable} (computed {computed})"
    if status == "in_flight":
        return f"{shows}, computed {computed}: explained by {in_flight} unit(s) ordered on Mirakl since the snapshot and the tolerance"
    if status == "within_tolerance":
        return f"{shows}, computed {computed}: within tolerance"
    if status == "lost_sales":
        return (f"lost sales: {shows}, computed {computed} ({computed - mirakl} fewer, {in_flight} in flight): "
                "the push did not reach the offer")
    return f"{shows}, computed {computed}: above the computed quantity, eating the safety buffer (servable {servable})"


def _worst(rows: pd.DataFrame, limit: int) -> list[dict]:
    differing = rows[rows["status"] != "match"]
    if not len(differing) or limit <= 0:
        return []
    ranked = differing.assign(
        _oversell=(differing["status"] != "oversell").astype(int),
        _size=-differing["difference"].abs().astype("int64"),
    ).sort_values(["_oversell", "_size", "offer_sku"], kind="stable").head(limit)
    return [
        {
            "offer_sku": str(r.offer_sku), "computed": int(r.computed), "mirakl": int(r.mirakl),
            "difference": int(r.difference), "in_flight": int(r.in_flight), "servable": int(r.servable),
            "status": str(r.status), "reason": str(r.reason),
        }
        for r in ranked.itertuples(index=False)
    ]


__all__ = ["BEYOND_TOLERANCE", "DELTA_COLUMNS", "STATUSES", "StockDelta", "changed_lines", "drifted_lines", "stock_delta",
           "union_lines"]
