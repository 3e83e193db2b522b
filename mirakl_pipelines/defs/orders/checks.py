"""Asset checks of the order flow, evaluated from the ledger at the end of each `shopify_orders` run.

Each check covers the whole marketplace (not just the run's day): an order stuck since yesterday
matters today. A failing check lists the orders concerned in its metadata.
"""

from datetime import datetime, timedelta

import dagster as dg

from mirakl_pipelines.config import MarketplaceConfig
from mirakl_pipelines.defs.orders.importer import CANCELLED_AFTER_IMPORT, FOLLOW_UP_FAILED, IMPORT_EXCEPTION_KINDS
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sync.acceptance import acceptance_urgency

ASSET = "shopify_orders"

ORDER_CHECK_SPECS = [
    dg.AssetCheckSpec(
        "eligible_orders_imported", asset=ASSET,
        description="Every order eligible for import is in Shopify within the marketplace's import deadline.",
    ),
    dg.AssetCheckSpec(
        "acceptance_window", asset=ASSET,
        description="No order waits for acceptance past half its window (WARN) or near its end (ERROR).",
    ),
    dg.AssetCheckSpec(
        "open_import_exceptions", asset=ASSET,
        description="No order of the marketplace sits in the exception queue for an import problem.",
    ),
    dg.AssetCheckSpec(
        "imported_orders_in_step", asset=ASSET,
        description="Shopify follows what Mirakl said after the import: debits marked paid, hidden addresses completed, "
                    "cancelled units held (ERROR when one is still to do or failed); cancellations an operator must "
                    "still settle in Shopify (WARN).",
    ),
]

_LISTED = 50  # orders listed in a check's metadata; the count is always complete


def _listing(rows: list[str]) -> dg.MetadataValue:
    text = "\n".join(f"- {r}" for r in rows[:_LISTED])
    if len(rows) > _LISTED:
        text += f"\n- … and {len(rows) - _LISTED} more"
    return dg.MetadataValue.md(text or "_none_")


def evaluate_order_checks(ledger: Ledger, marketplace: MarketplaceConfig, now: datetime) -> list[dg.AssetCheckResult]:
    code = marketplace.code
    deadline = now - timedelta(minutes=marketplace.orders.import_deadline_minutes)
    late = ledger.pending_imports(code, eligible_before=deadline)
    late_rows = [f"{o.mirakl_order_id} (eligible since {o.eligible_since:%Y-%m-%d %H:%M} UTC, {o.import_state})" for o in late]

    window = timedelta(hours=marketplace.acceptance.window_hours)
    waiting = [(o, acceptance_urgency(o.acceptance_deadline, window, now)) for o in ledger.awaiting_acceptance(code)
               if o.acceptance_deadline is not None]
    urgent = [(o, u) for o, u in waiting if u != "ok"]
    worst = "error" if any(u == "error" for _, u in urgent) else ("warn" if urgent else "ok")
    urgent_rows = [f"{o.mirakl_order_id}: {u.upper()}, deadline {o.acceptance_deadline:%Y-%m-%d %H:%M} UTC" for o, u in urgent]

    exceptions = ledger.open_exceptions(code, kinds=IMPORT_EXCEPTION_KINDS)
    exception_rows = [f"{e.record_id} [{e.kind}] {e.reason}" for e in exceptions]

    behind = ledger.follow_ups(code)
    failed = ledger.open_exceptions(code, kinds=[FOLLOW_UP_FAILED])
    cancelled = ledger.open_exceptions(code, kinds=[CANCELLED_AFTER_IMPORT])
    step_rows = ([f"{o.mirakl_order_id} ({o.shopify_order_name}): Mirakl's latest change not yet in Shopify" for o in behind]
                 + [f"{e.record_id}: {e.reason}" for e in failed] + [f"{e.record_id}: {e.reason}" for e in cancelled])

    return [
        dg.AssetCheckResult(
            check_name="eligible_orders_imported", passed=not late, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"late_orders": len(late), "deadline_minutes": marketplace.orders.import_deadline_minutes,
                      "orders": _listing(late_rows)},
        ),
        dg.AssetCheckResult(
            check_name="acceptance_window", passed=worst == "ok",
            severity=dg.AssetCheckSeverity.ERROR if worst == "error" else dg.AssetCheckSeverity.WARN,
            metadata={"awaiting_acceptance": len(waiting), "urgent": len(urgent), "orders": _listing(urgent_rows)},
        ),
        dg.AssetCheckResult(
            check_name="open_import_exceptions", passed=not exceptions, severity=dg.AssetCheckSeverity.WARN,
            metadata={"open_exceptions": len(exceptions), "orders": _listing(exception_rows)},
        ),
        dg.AssetCheckResult(
            check_name="imported_orders_in_step", passed=not (behind or failed or cancelled),
            severity=dg.AssetCheckSeverity.ERROR if behind or failed else dg.AssetCheckSeverity.WARN,
            metadata={"follow_ups_to_do": len(behind), "follow_ups_failed": len(failed),
                      "cancellations_to_settle": len(cancelled), "orders": _listing(step_rows)},
        ),
    ]
