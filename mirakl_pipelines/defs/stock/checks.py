"""The `stock_delta` check on `mirakl_stock`, answering for every marketplace at once.

Dagster keeps one latest result per check, so a result about the run's marketplace alone would turn green on
another marketplace's run. The run's own marketplace is judged from what it just read back from Mirakl; the others
from their latest snapshot in `stock_snapshots` (today's, else yesterday's), which carries each SKU's verdict and
the snapshot's severity.
"""

from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc

from mirakl_pipelines.config import Settings
from mirakl_pipelines.defs.findings import Findings, listing
from mirakl_pipelines.defs.stock.datasets import latest_snapshot
from mirakl_pipelines.defs.stock.push import STOCK_EXCEPTION_KINDS, StockRunReport
from mirakl_pipelines.ledger import Ledger

ASSET = "mirakl_stock"
_SEVERITY_ORDER = {"PASS": 0, "WARN": 1, "ERROR": 2}
_WORST_LISTED = 20

STOCK_CHECK_SPECS = [
    dg.AssetCheckSpec(
        "stock_delta", asset=ASSET,
        description="After a push, per offer SKU, Mirakl's quantity equals the one computed from Shopify: WARN on "
                    "differences explained by orders in flight (within the tolerance) or Mirakl showing less; ERROR "
                    "when Mirakl shows more than Shopify can serve (overselling) or more SKUs differ than allowed."),
]


def _row(worst: dict) -> str:
    parts = [f"{worst.get('offer_sku')}: Mirakl {worst.get('mirakl')}, computed {worst.get('computed')}"]
    if worst.get("servable") is not None:
        parts.append(f"servable {worst['servable']}")
    if worst.get("in_flight"):
        parts.append(f"in flight {worst['in_flight']}")
    return ", ".join(parts) + f" [{worst.get('status')}] {worst.get('reason') or ''}".rstrip()


def _from_dataset(warehouse: str | Path, code: str, day: date) -> tuple[str, list[dict], dict]:
    """(severity, worst rows, counts by status) of the marketplace's latest snapshot; PASS with nothing when none."""
    for d in (day, day - timedelta(days=1)):
        table = latest_snapshot(warehouse, code, d)
        if table is None or not table.num_rows:
            continue
        severity = table["check_severity"][0].as_py() or "PASS"
        counts = {s["values"]: s["counts"] for s in pc.value_counts(table["delta_status"].drop_null()).to_pylist()}
        counts["differing"] = sum(n for status, n in counts.items() if status != "match")
        differing = table.filter(pc.not_equal(table["delta_status"], "match")).select(
            ["offer_sku", "mirakl_quantity", "computed", "difference", "servable", "in_flight", "delta_status"]).to_pylist()
        differing.sort(key=lambda r: (r["delta_status"] != "oversell", -abs(r["difference"] or 0), r["offer_sku"]))
        return severity, [{"offer_sku": r["offer_sku"], "mirakl": r["mirakl_quantity"], "computed": r["computed"],
                           "servable": r["servable"], "in_flight": r["in_flight"], "status": r["delta_status"]}
                          for r in differing[:_WORST_LISTED]], counts
    return "PASS", [], {}


def stock_delta_result(report: StockRunReport, settings: Settings, ledger: Ledger, warehouse: str | Path, own: str,
                       day: date) -> dg.AssetCheckResult:
    severities, counts, worst = {}, {}, Findings([])
    for m in settings.marketplaces:
        if not m.stock.enabled:
            continue
        if m.code == own:
            delta = report.delta
            severities[m.code], rows, counts[m.code] = delta.severity, delta.worst[:_WORST_LISTED], delta.counts
        else:
            severities[m.code], rows, counts[m.code] = _from_dataset(warehouse, m.code, day)
        worst.add(m.code, [_row(r) for r in rows])
    severity = max(severities.values(), key=_SEVERITY_ORDER.get, default="PASS")
    exceptions = Findings(settings.marketplaces)
    for m in settings.marketplaces:
        exceptions.add(m.code, [f"{e.record_id} [{e.kind}] {e.reason}"
                                for e in ledger.open_exceptions(m.code, kinds=STOCK_EXCEPTION_KINDS)])
    return dg.AssetCheckResult(
        check_name="stock_delta", asset_key=ASSET, passed=severity == "PASS",
        severity=dg.AssetCheckSeverity.ERROR if severity == "ERROR" else dg.AssetCheckSeverity.WARN,
        metadata={
            "severity_by_marketplace": dg.MetadataValue.json(severities),
            "skus_by_status": dg.MetadataValue.json(counts),
            "verified_marketplace": own,
            "worst_skus": listing(worst.rows),
            # SKUs differing per marketplace (the key every check uses for its per-marketplace counts)
            "by_marketplace": dg.MetadataValue.json({c: n.get("differing", 0) for c, n in counts.items()}),
            "open_stock_exceptions": listing(exceptions.rows),
            "open_stock_exceptions_count": len(exceptions.rows),
        },
    )
