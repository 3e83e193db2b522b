"""Asset checks of the order flow, evaluated from the ledger at the end of each `shopify_orders` run.

A check answers for every marketplace at once, whichever marketplace's run evaluates it: Dagster keeps
one latest result per check, so a check scoped to the run's marketplace would turn green on another
marketplace's run while the first still has a problem. Each check also covers every day, not just the
run's: an order stuck since yesterday matters today. A failing check lists the orders concerned,
prefixed by their marketplace, and counts them per marketplace.
"""

from datetime import datetime, timedelta
from typing import Sequence

import dagster as dg

from mirakl_pipelines.config import MarketplaceConfig
from mirakl_pipelines.defs.findings import Findings
from mirakl_pipelines.defs.orders.importer import (
    ACCEPTANCE_EXCEPTION_KINDS,
    CANCELLED_AFTER_IMPORT,
    FOLLOW_UP_FAILED,
    IMPORT_EXCEPTION_KINDS,
)
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sync.acceptance import acceptance_urgency

ASSET = "shopify_orders"
# Exceptions a person must settle before the order can be imported or decided: counted by open_import_exceptions.
ORDER_EXCEPTION_KINDS = (*IMPORT_EXCEPTION_KINDS, *ACCEPTANCE_EXCEPTION_KINDS)

ORDER_CHECK_SPECS = [
    dg.AssetCheckSpec(
        "eligible_orders_imported", asset=ASSET,
        description="Every order eligible for import, on every marketplace, is in Shopify within its marketplace's "
                    "import deadline.",
    ),
    dg.AssetCheckSpec(
        "acceptance_window", asset=ASSET,
        description="No order of any marketplace waits for acceptance past half its window (WARN) or near its end (ERROR).",
    ),
    dg.AssetCheckSpec(
        "open_import_exceptions", asset=ASSET,
        description="No order of any marketplace waits in the exception queue for a person: an import problem or an "
                    "acceptance an operator must decide or retry.",
    ),
    dg.AssetCheckSpec(
        "imported_orders_in_step", asset=ASSET,
        description="Shopify follows what Mirakl said after the import: debits marked paid, hidden addresses completed, "
                    "cancelled units held (ERROR when one is still to do or failed); cancellations an operator must "
                    "still settle in Shopify (WARN).",
    ),
]

# How long a follow-up may wait for the run that observed it (a run takes seconds to a minute) before it is late.
FOLLOW_UP_GRACE = timedelta(minutes=2)


def evaluate_order_checks(ledger: Ledger, marketplaces: Sequence[MarketplaceConfig],
                          now: datetime) -> list[dg.AssetCheckResult]:
    late, urgent, exceptions = Findings(marketplaces), Findings(marketplaces), Findings(marketplaces)
    behind, failed, cancelled = Findings(marketplaces), Findings(marketplaces), Findings(marketplaces)
    worst, awaiting = "ok", 0
    for marketplace in marketplaces:
        code = marketplace.code
        deadline = now - timedelta(minutes=marketplace.orders.import_deadline_minutes)
        late.add(code, [f"{o.mirakl_order_id} (eligible since {o.eligible_since:%Y-%m-%d %H:%M} UTC, {o.import_state})"
                        for o in ledger.pending_imports(code, eligible_before=deadline)])

        window = timedelta(hours=marketplace.acceptance.window_hours)
        waiting = [(o, acceptance_urgency(o.acceptance_deadline, window, now)) for o in ledger.awaiting_acceptance(code)
                   if o.acceptance_deadline is not None]
        awaiting += len(waiting)
        pressing = [(o, u) for o, u in waiting if u != "ok"]
        if any(u == "error" for _, u in pressing):
            worst = "error"
        elif pressing and worst == "ok":
            worst = "warn"
        urgent.add(code, [f"{o.mirakl_order_id}: {u.upper()}, deadline {o.acceptance_deadline:%Y-%m-%d %H:%M} UTC"
                          for o, u in pressing])

        exceptions.add(code, [f"{e.record_id} [{e.kind}] {e.reason}"
                              for e in ledger.open_exceptions(code, kinds=ORDER_EXCEPTION_KINDS)])
        # Behind only once a run had time to bring it in: a change observed seconds ago is being followed up by the
        # marketplace's own run, while another marketplace's run evaluates this check.
        seen_before = now - FOLLOW_UP_GRACE
        behind.add(code, [f"{o.mirakl_order_id} ({o.shopify_order_name}): Mirakl's latest change not yet in Shopify"
                          for o in ledger.follow_ups(code) if o.updated_at <= seen_before])
        failed.add(code, [f"{e.record_id}: {e.reason}" for e in ledger.open_exceptions(code, kinds=[FOLLOW_UP_FAILED])])
        cancelled.add(code, [f"{e.record_id}: {e.reason}"
                             for e in ledger.open_exceptions(code, kinds=[CANCELLED_AFTER_IMPORT])])

    step = Findings.combined(behind, failed, cancelled)
    return [
        dg.AssetCheckResult(
            check_name="eligible_orders_imported", passed=not late, severity=dg.AssetCheckSeverity.ERROR,
            metadata=late.metadata(late_orders=len(late.rows), deadline_minutes=dg.MetadataValue.json(
                {m.code: m.orders.import_deadline_minutes for m in marketplaces})),
        ),
        dg.AssetCheckResult(
            check_name="acceptance_window", passed=worst == "ok",
            severity=dg.AssetCheckSeverity.ERROR if worst == "error" else dg.AssetCheckSeverity.WARN,
            metadata=urgent.metadata(awaiting_acceptance=awaiting, urgent=len(urgent.rows)),
        ),
        dg.AssetCheckResult(
            check_name="open_import_exceptions", passed=not exceptions, severity=dg.AssetCheckSeverity.WARN,
            metadata=exceptions.metadata(open_exceptions=len(exceptions.rows)),
        ),
        dg.AssetCheckResult(
            check_name="imported_orders_in_step", passed=not step,
            severity=dg.AssetCheckSeverity.ERROR if behind or failed else dg.AssetCheckSeverity.WARN,
            metadata=step.metadata(follow_ups_to_do=len(behind.rows), follow_ups_failed=len(failed.rows),
                                   cancellations_to_settle=len(cancelled.rows)),
        ),
    ]
