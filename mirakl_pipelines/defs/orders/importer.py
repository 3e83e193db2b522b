"""One marketplace's order batch: decide acceptances in Mirakl, create the Shopify orders, remember everything.

The business rules are in `sync/`; this module sequences the API calls and the ledger writes so
that a crash at any point is repaired by the next run:
- a Shopify order is created at most once per Mirakl order: the ledger is checked first, then
  Shopify itself by `sourceIdentifier`, and only then is `orderCreate` called;
- an order that cannot be imported or accepted goes to the exception queue with a reason an
  operator can act on, and never stops the rest of the batch.
"""

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Mapping

from mirakl_pipelines.config import MarketplaceConfig, ShopifyStoreConfig
from mirakl_pipelines.defs.alerts import Alerts
from mirakl_pipelines.ledger import Ledger, OrderLink
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.mirakl.errors import (
    CallBudgetExceeded,
    MiraklError,
    MiraklInvalidState,
    MiraklRateLimited,
    MiraklServerError,
)
from mirakl_pipelines.mirakl.models import MiraklOrder
from mirakl_pipelines.shopify.client import ShopifyClient
from mirakl_pipelines.shopify.errors import ShopifyError, ShopifyUserError
from mirakl_pipelines.shopify.models import Variant
from mirakl_pipelines.sync.acceptance import accept_all, acceptance_deadline, decide_acceptance
from mirakl_pipelines.sync.eligibility import skip_reason
from mirakl_pipelines.sync.order_mapping import MappingError, build_order_create, source_identifier

WAITING_ACCEPTANCE = "WAITING_ACCEPTANCE"
# Exception kinds an import can raise; a successful import resolves them.
IMPORT_EXCEPTION_KINDS = ("unknown_sku", "missing_address", "invalid_order", "currency", "import_failed")
ACCEPTANCE_EXCEPTION_KINDS = ("acceptance_failed", "acceptance_needed")
# Worth another OR21 later in the run; any other Mirakl error is a refusal to report at once.
TRANSIENT_MIRAKL_ERRORS = (MiraklServerError, MiraklRateLimited, CallBudgetExceeded)
# Set by the exactly-once test to kill the process between the Shopify call and the ledger write.
CRASH_ENV = "MIRAKL_PIPELINES_CRASH_AT"


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os._exit(70)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class BatchReport:
    considered: int = 0
    eligible: int = 0
    imported: int = 0
    recovered: int = 0  # found already in Shopify (a previous run died before its ledger write)
    already_imported: int = 0
    failed: int = 0
    accepted: int = 0
    refused: int = 0
    left_for_operator: int = 0
    acceptance_failed: int = 0
    skipped: Counter = field(default_factory=Counter)
    imported_orders: list[dict] = field(default_factory=list)  # preview rows


@dataclass
class OrderBatch:
    marketplace: MarketplaceConfig
    store: ShopifyStoreConfig
    mirakl: MiraklClient
    shopify: ShopifyClient
    ledger: Ledger
    alerts: Alerts
    log: logging.Logger
    now: Callable[[], datetime] = _utcnow
    report: BatchReport = field(default_factory=BatchReport)

    def run(self, orders: list[MiraklOrder]) -> BatchReport:
        links, reasons = self._observe(orders)
        to_decide = [o for o in orders if self._awaits_decision(links[o.order_id])]
        to_import = [o for o in orders if self._needs_import(links[o.order_id], reasons[o.order_id])]
        variants = self._variants(to_decide + to_import)
        if self.marketplace.acceptance.mode != "after_import":
            self._decide(to_decide, variants)
        for order in to_import:
            self._import(order, variants)
        return self.report

    # -- ledger bookkeeping -------------------------------------------------------------------

    def _observe(self, orders: list[MiraklOrder]) -> tuple[dict[str, OrderLink], dict[str, str | None]]:
        # One read for the whole day, then writes only for orders that changed: a refresh that
        # finds nothing new must stay cheap however many orders the day holds.
        links = self.ledger.get_order_links(self.marketplace.code, [o.order_id for o in orders])
        reasons = {}
        for order in orders:
            reason = reasons[order.order_id] = skip_reason(order, self.marketplace.orders)
            self.report.considered += 1
            if reason is None:
                self.report.eligible += 1
            else:
                self.report.skipped[reason] += 1
            known = links.get(order.order_id)
            if (known is not None and known.mirakl_state == order.order_state
                    and known.mirakl_updated_at == order.last_updated_date and known.eligible == (reason is None)):
                continue
            links[order.order_id] = self.ledger.observe_order(
                self.marketplace.code,
                order.order_id,
                commercial_id=order.commercial_id,
                mirakl_state=order.order_state,
                created_at=order.created_date,
                updated_at=order.last_updated_date,
                acceptance_deadline=acceptance_deadline(order, self.marketplace.acceptance),
                eligible=reason is None,
                skip_reason=reason,
                now=self.now(),
            )
        return links, reasons

    # The ledger holds the latest state seen of each order (an older day's file may hold an older
    # snapshot): decisions follow the ledger, and only an eligible snapshot is imported.
    def _awaits_decision(self, link: OrderLink) -> bool:
        return link.mirakl_state == WAITING_ACCEPTANCE and link.acceptance_state in ("pending", "left", "failed")

    def _needs_import(self, link: OrderLink, reason: str | None) -> bool:
        if link.import_state == "imported":
            self.report.already_imported += 1
            return False
        return link.eligible and reason is None

    def _variants(self, orders: list[MiraklOrder]) -> Mapping[str, Variant]:
        skus = sorted({line.sku for o in orders for line in o.order_lines if line.sku})
        return self.shopify.variants_by_sku(skus) if skus else {}

    # -- acceptance ---------------------------------------------------------------------------

    def _decide(self, orders: list[MiraklOrder], variants: Mapping[str, Variant]) -> None:
        reserved: dict[str, int] = {}
        for order in orders:
            decision = decide_acceptance(order, variants, self.marketplace.acceptance, reserved)
            if decision.action == "leave":
                self.report.left_for_operator += 1
                self.ledger.record_acceptance(self.marketplace.code, order.order_id, state="left", now=self.now())
                self.ledger.raise_exception(
                    self.marketplace.code, "acceptance_needed", order.order_id,
                    f"order {order.order_id} needs an operator's decision: {decision.reason}",
                    {"lines": {line.order_line_id: line.sku for line in order.order_lines}}, now=self.now(),
                )
                continue
            self._send_decision(order, decision.lines, decision.action, decision.reason)

    def _send_decision(self, order: MiraklOrder, lines: dict[str, bool], action: str, reason: str | None) -> None:
        code = self.marketplace.code
        attempts = self.marketplace.acceptance.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                self.mirakl.accept_order(order.order_id, lines)
                break
            except MiraklInvalidState as e:
                # Decided elsewhere (back office, auto-refusal): the next fetch shows the real state.
                self.log.info("order %s is no longer awaiting acceptance: %s", order.order_id, e.message)
                self.ledger.record_acceptance(code, order.order_id, state="not_applicable", now=self.now())
                return
            except TRANSIENT_MIRAKL_ERRORS as e:
                if attempt == attempts:
                    self._acceptance_failed(order, lines, f"OR21 for order {order.order_id} failed after {attempts} attempts: {e}")
                    return
                self.log.warning("OR21 for %s failed (attempt %d/%d): %s", order.order_id, attempt, attempts, e)
            except MiraklError as e:  # refused by Mirakl: sending it again would not help
                self._acceptance_failed(order, lines, f"Mirakl refused the decision on order {order.order_id}: {e}")
                return
        state = {"accept": "accepted", "refuse": "refused", "partial": "partial"}[action]
        self.report.accepted += action in ("accept", "partial")
        self.report.refused += action == "refuse"
        self.ledger.record_acceptance(code, order.order_id, state=state, now=self.now())
        self.ledger.resolve_exceptions(code, order.order_id, ACCEPTANCE_EXCEPTION_KINDS, now=self.now())
        if reason:
            self.log.info("order %s: %s (%s)", order.order_id, action, reason)

    def _acceptance_failed(self, order: MiraklOrder, lines: dict[str, bool], text: str) -> None:
        self.report.acceptance_failed += 1
        self.ledger.record_acceptance(self.marketplace.code, order.order_id, state="failed", now=self.now())
        self.ledger.raise_exception(
            self.marketplace.code, "acceptance_failed", order.order_id, text, {"decision": lines}, now=self.now()
        )
        self.alerts.send(f"Acceptance failed on {self.marketplace.name}", text, logger=self.log)

    # -- import -------------------------------------------------------------------------------

    def _import(self, order: MiraklOrder, variants: Mapping[str, Variant]) -> None:
        code = self.marketplace.code
        try:
            request = build_order_create(order, variants, self.marketplace, self.store)
        except MappingError as e:
            self._import_failed(order, _exception_kind(e.kind), e.reason, {"kind": e.kind})
            return
        try:
            existing = self.shopify.find_orders_by_source_identifier(source_identifier(code, order.order_id))
            if existing:
                ref = existing[0]
                self.report.recovered += 1
                self.log.warning("order %s was already in Shopify as %s: linking it, not creating it again", order.order_id, ref.name)
            else:
                ref = self.shopify.create_order(request.order, request.options)
        except ShopifyUserError as e:
            self._import_failed(order, "import_failed", f"Shopify refused order {order.order_id}: {e}", {"user_errors": e.user_errors})
            return
        except ShopifyError as e:
            self._import_failed(order, "import_failed", f"Shopify call failed for order {order.order_id}: {e}", {})
            return
        _crash_point("after_shopify_create")
        self.ledger.record_import(
            code, order.order_id, shopify_order_id=ref.id, shopify_order_name=ref.name,
            shopify_legacy_id=ref.legacy_id, now=self.now(),
        )
        self.ledger.resolve_exceptions(code, order.order_id, IMPORT_EXCEPTION_KINDS, now=self.now())
        self.report.imported += 1
        self.report.imported_orders.append(
            {"mirakl_order_id": order.order_id, "shopify_order": ref.name, "url": self.store.admin_order_url(ref.legacy_id)}
        )
        if self.marketplace.acceptance.mode == "after_import" and order.order_state == WAITING_ACCEPTANCE:
            decision = accept_all(order)
            self._send_decision(order, decision.lines, decision.action, decision.reason)

    def _import_failed(self, order: MiraklOrder, kind: str, reason: str, details: dict) -> None:
        self.report.failed += 1
        self.ledger.record_import_failure(self.marketplace.code, order.order_id, now=self.now())
        self.ledger.raise_exception(self.marketplace.code, kind, order.order_id, reason, details, now=self.now())
        self.log.warning("order %s not imported (%s): %s", order.order_id, kind, reason)


def _exception_kind(mapping_kind: str) -> str:
    return {"malformed": "invalid_order"}.get(mapping_kind, mapping_kind)
