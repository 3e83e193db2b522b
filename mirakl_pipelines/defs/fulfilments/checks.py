"""Asset checks of the shipment flow, evaluated at the end of each `mirakl_shipments` run.

Like the order checks, each answers for every marketplace at once (Dagster keeps one latest result per
check, so a check scoped to the run's marketplace would turn green on another marketplace's run). The
run's own marketplace is verified against Mirakl (`ShipmentPush.unacknowledged` reads orders back);
the others are taken as the ledger last saw them, which their own runs keep verified.
"""

from datetime import datetime, timedelta
from typing import Sequence

import dagster as dg

from mirakl_pipelines.config import MarketplaceConfig
from mirakl_pipelines.defs.findings import Findings
from mirakl_pipelines.defs.fulfilments.push import (
    CARRIER_EXCEPTION,
    INVOICE_EXCEPTION,
    SHIPMENT_EXCEPTION,
    LateFulfilment,
    ShipmentPush,
)
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.ledger.inbox import QUARANTINE_KIND, QUARANTINE_MARKETPLACE
from mirakl_pipelines.mirakl.models import SHIPPED_STATES
from mirakl_pipelines.sync.shipments import DEAD_ORDER_STATES

ASSET = "mirakl_shipments"
# Shipping problems a person must settle, apart from carriers (their own check).
SHIPPING_EXCEPTION_KINDS = (SHIPMENT_EXCEPTION, INVOICE_EXCEPTION)

SHIPMENT_CHECK_SPECS = [
    dg.AssetCheckSpec("unacknowledged_fulfilments", asset=ASSET,
                      description="Every fulfilment of an imported order, on every marketplace, is SHIPPED in Mirakl "
                                  "within its marketplace's threshold."),
    dg.AssetCheckSpec("open_carrier_exceptions", asset=ASSET,
                      description="No fulfilment of any marketplace waits for a carrier mapping."),
    dg.AssetCheckSpec("open_shipping_exceptions", asset=ASSET,
                      description="No shipment or invoice upload of any marketplace failed and waits for a person, and "
                                  "the webhook receiver quarantined no delivery it could not store as parsed."),
]


def _late_row(x: LateFulfilment) -> str:
    p = x.push
    return (f"{p.mirakl_order_id}: Mirakl {x.mirakl_state}; {p.shopify_fulfillment_id}, OR23 {p.or23.state}, "
            f"OR24 {p.or24.state}: {p.or24.error or p.or23.error or ''}")


def ledger_late(ledger: Ledger, marketplace: MarketplaceConfig, older_than: datetime) -> list[LateFulfilment]:
    """Late fulfilments as the ledger last saw their Mirakl orders (no API call)."""
    candidates = ledger.unshipped(marketplace.code, older_than=older_than)
    links = ledger.get_order_links(marketplace.code, sorted({p.mirakl_order_id for p in candidates}))
    late = []
    for push in candidates:
        link = links.get(push.mirakl_order_id)
        state = link.mirakl_state if link is not None else None
        if state not in SHIPPED_STATES and state not in DEAD_ORDER_STATES:
            late.append(LateFulfilment(push, state or "not in the ledger"))
    return late


def shipment_checks(push: ShipmentPush, marketplaces: Sequence[MarketplaceConfig], now: datetime) -> list[dg.AssetCheckResult]:
    own, ledger = push.marketplace, push.ledger
    late, carriers, failures = Findings(marketplaces), Findings(marketplaces), Findings(marketplaces)
    verified = None
    for marketplace in marketplaces:
        older_than = now - timedelta(minutes=marketplace.fulfilments.unacknowledged_after_minutes)
        if marketplace.code == own.code:
            verified = push.unacknowledged(older_than=older_than)
            found = verified.late
        else:
            found = ledger_late(ledger, marketplace, older_than)
        late.add(marketplace.code, [_late_row(x) for x in found])
        carriers.add(marketplace.code, [f"{e.record_id}: {e.reason}"
                                        for e in ledger.open_exceptions(marketplace.code, kinds=[CARRIER_EXCEPTION])])
        failures.add(marketplace.code, [f"{e.record_id} [{e.kind}] {e.reason}" for e in
                                        ledger.open_exceptions(marketplace.code, kinds=SHIPPING_EXCEPTION_KINDS)])
    # Deliveries the receiver kept verbatim because they could not be stored as parsed: no marketplace yet.
    failures.add(QUARANTINE_MARKETPLACE, [f"{e.record_id} [{e.kind}] {e.reason}" for e in
                                          ledger.open_exceptions(QUARANTINE_MARKETPLACE, kinds=[QUARANTINE_KIND])])
    return [
        dg.AssetCheckResult(
            check_name="unacknowledged_fulfilments", passed=not late, severity=dg.AssetCheckSeverity.ERROR,
            metadata=late.metadata(
                late=len(late.rows),
                threshold_minutes=dg.MetadataValue.json({m.code: m.fulfilments.unacknowledged_after_minutes
                                                         for m in marketplaces}),
                verified_marketplace=own.code,
                orders_verified_by_refresh=verified.by_refresh, orders_read_back=verified.read_back,
                orders_unverified=verified.unverified, read_back_note=verified.note or ""),
        ),
        dg.AssetCheckResult(
            check_name="open_carrier_exceptions", passed=not carriers, severity=dg.AssetCheckSeverity.WARN,
            metadata=carriers.metadata(open=len(carriers.rows)),
        ),
        dg.AssetCheckResult(
            check_name="open_shipping_exceptions", passed=not failures, severity=dg.AssetCheckSeverity.WARN,
            metadata=failures.metadata(open=len(failures.rows)),
        ),
    ]
