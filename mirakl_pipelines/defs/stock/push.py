"""One stock run of one marketplace: Shopify's levels → the marketplace's policy → one STO01 file → Mirakl's offers.

The order of the steps is the point:
1. imports sent by an earlier run and not finished are polled first (a file is never sent over one Mirakl is
   still processing; their outcome settles the ledger);
2. Mirakl's offers before the push: read now when the catalogue is read whole (OF21), else as the previous run's
   export left them (offer_cache: Mirakl rations exports);
3. the run waits for STO01's slot (once a minute) *before* (re-)reading Shopify, so the file carries the freshest
   levels, not levels read a minute before they could be sent;
4. the file carries the offers whose computed quantity differs from the last one sent (all of them on a full run)
   and those whose quantity on Mirakl drifted from it (sync.stock_diff.drifted_lines), only offers Mirakl has;
5. STO02 is polled until the import finishes and STO03's report becomes one exception per rejected offer;
6. Mirakl's offers are read back for the `stock_delta` check.
"""

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator, Optional

import pandas as pd

from mirakl_pipelines.config import MarketplaceConfig, Settings
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.mirakl.client import MiraklClient
from mirakl_pipelines.defs.orders.assets import FLOW as ORDERS_FLOW
from mirakl_pipelines.defs.stock.offer_cache import OfferCache, current_offers
from mirakl_pipelines.mirakl.offers import (
    StockImportStillRunning,
    send_stock_file,
    stock_import_error_report,
    wait_for_stock_import,
)
from mirakl_pipelines.shopify.client import ShopifyClient
from mirakl_pipelines.shopify.inventory import read_inventory
from mirakl_pipelines.sync.stock_diff import StockDelta, changed_lines, drifted_lines, stock_delta, union_lines
from mirakl_pipelines.sync.stock_file import parse_error_report, stock_import_csv
from mirakl_pipelines.sync.stock_levels import InventorySnapshot, MiraklOffers, is_in
from mirakl_pipelines.sync.sku_map import SkuMap, marketplace_sku_map
from mirakl_pipelines.sync.stock_policy import StockComputation, compute_stock

LINE_REJECTED = "stock_line_rejected"  # STO03 named the SKU's line
IMPORT_FAILED = "stock_import_failed"  # the whole file failed, or never finished
VARIANT_PROBLEM = "stock_variant"  # a Shopify variant that cannot be published as it is (no SKU, duplicate, mapping)
STOCK_EXCEPTION_KINDS = (LINE_REJECTED, IMPORT_FAILED, VARIANT_PROBLEM)
# Findings an operator must fix (exceptions); the others (untracked, stocked nowhere) are metadata.
_EXCEPTION_FINDINGS = ("no_sku", "invalid_sku", "duplicate_sku", "mapped_sku_missing", "shadowed_sku")
# A re-read of Shopify after waiting for STO01's slot only pays off when the read is cheap.
REREAD_AFTER_SECONDS = 5.0

log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class StockRunReport:
    mode: str = "delta"
    snapshot: Optional[InventorySnapshot] = None
    computation: Optional[StockComputation] = None
    lines: Optional[pd.DataFrame] = None  # what the file carried (offer_sku, quantity)
    not_offered: int = 0  # computed SKUs the marketplace has no offer for (not sent)
    drifted: int = 0  # offers sent because Mirakl's quantity drifted from the computed one (not because it changed)
    import_id: Optional[str] = None
    import_status: Optional[str] = None
    lines_in_success: Optional[int] = None
    lines_in_error: Optional[int] = None
    rejected: dict[str, str] = field(default_factory=dict)
    earlier_imports: list[str] = field(default_factory=list)  # ids polled to their end first
    blocked_by: Optional[str] = None  # an earlier import still running: nothing sent
    slot_wait_seconds: float = 0.0
    offers: Optional[MiraklOffers] = None
    delta: Optional[StockDelta] = None
    in_flight: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class StockPush:
    def __init__(self, settings: Settings, marketplace: MarketplaceConfig, mirakl: MiraklClient, shopify: ShopifyClient,
                 ledger: Ledger, state_dir: Path, *, run_id: Optional[str] = None,
                 sleep: Callable[[float], None] = time.sleep, logger: logging.Logger | logging.LoggerAdapter = log):
        self.settings, self.marketplace, self.policy = settings, marketplace, marketplace.stock
        self.mirakl, self.shopify, self.ledger = mirakl, shopify, ledger
        self.run_id = run_id
        self.offers = OfferCache(state_dir, marketplace.code)
        self.sleep, self.log = sleep, logger
        self.report = StockRunReport()

    # ---- the run ------------------------------------------------------------------------------------

    def run(self, *, full: bool) -> StockRunReport:
        report, code = self.report, self.marketplace.code
        report.mode = "full" if full or self.ledger.last_stock_import(code) is None else "delta"
        timeout = float(self.policy.import_timeout_seconds)  # Mirakl's processing time: real seconds, not a call rate
        with self._timed("earlier_imports"):
            for earlier in self.ledger.unfinished_stock_imports(code):
                if not self._finish(earlier.import_id, earlier.sent_at, timeout):
                    report.blocked_by = earlier.import_id
                    break
                report.earlier_imports.append(earlier.import_id)
        with self._timed("mirakl_before"):
            before = self._offers_before()
        with self._timed("shopify_read"):
            self._read_and_compute()
        lines = self._lines(before)
        if len(lines) and report.blocked_by is None:
            waited = self._wait_for_slot()
            if waited > REREAD_AFTER_SECONDS and report.snapshot.source == "paginated":
                with self._timed("shopify_reread"):
                    self._read_and_compute()
                lines = self._lines(before)
        if len(lines) and report.blocked_by is None:
            self._send(lines, timeout)
        with self._timed("mirakl_read"):
            report.offers = self._read_offers()
        report.in_flight = self._in_flight(report.offers)
        report.delta = stock_delta(report.computation.quantities, report.offers.offers, in_flight=report.in_flight,
                                   tolerance=self.policy.tolerance, max_differing_skus=self.policy.max_differing_skus)
        self._raise_findings()
        return report

    # ---- steps --------------------------------------------------------------------------------------

    def _read_and_compute(self) -> None:
        report, store = self.report, self.settings.store_for(self.marketplace).name
        report.snapshot = read_inventory(self.shopify, bulk_threshold=self.policy.shopify_bulk_threshold)
        report.computation = compute_stock(report.snapshot, self.policy, promised=self._promised(store),
                                           sku_map=marketplace_sku_map(self.settings, self.marketplace))

    def _promised(self, store: str) -> dict[str, int]:
        """Units by Shopify SKU promised to orders of every marketplace selling from the store, not in Shopify yet
        (each marketplace's order lines carry its offer SKUs: its own mapping file turns them into Shopify's)."""
        promised: dict[str, int] = {}
        for m in self.settings.marketplaces:
            if self.settings.store_for(m).name != store:
                continue
            units = self.ledger.reserved_units([m.code], waiting_in=[m.code] if m.acceptance.mode == "auto" else [])
            offers = (marketplace_sku_map(self.settings, m) or SkuMap({})).offers
            for sku, n in units.items():
                promised[offers.get(sku, sku)] = promised.get(offers.get(sku, sku), 0) + n
        return promised

    def _lines(self, before: MiraklOffers) -> pd.DataFrame:
        """The file's lines: offers whose computed quantity differs from the last one sent (all on a full run), and
        offers whose quantity on Mirakl drifted from it (sync.stock_diff.drifted_lines); only offers Mirakl has."""
        report = self.report
        computed = report.computation.quantities[["offer_sku", "quantity"]]
        known = is_in(computed["offer_sku"], before.offers["offer_sku"].dropna())
        report.not_offered = int((~known).sum())
        computed = computed[known]
        changed = changed_lines(computed, self.ledger.sent_stock(self.marketplace.code)[["offer_sku", "quantity"]],
                                full=report.mode == "full")
        drifted = drifted_lines(computed, before.offers, orders_known=self._orders_known(before.read_at))
        report.drifted = int((~is_in(drifted["offer_sku"], changed["offer_sku"])).sum())
        return union_lines(changed, drifted)

    def _orders_known(self, at: datetime) -> bool:
        """Whether the order flow has read this marketplace's orders up to `at` (its watermark)."""
        code = self.marketplace.code
        seen = (self.ledger.get_watermark(ORDERS_FLOW, code, at.date())
                or self.ledger.get_watermark(ORDERS_FLOW, code, at.date() - timedelta(days=1)))
        return seen is not None and seen >= at

    def _in_flight(self, offers: MiraklOffers) -> dict[str, int]:
        """Units per offer Mirakl took off since its line was sent, as far as the ledger can tell: orders placed since
        and not in Shopify yet; and, while orders placed before the reading may not be in the ledger yet, the whole
        gap below the quantity last sent (Mirakl lowers an offer only for orders; this run's own lines included, as
        orders keep coming while STO02 is polled)."""
        in_flight = dict(self.ledger.units_in_flight(self.marketplace.code))
        if self._orders_known(offers.read_at):
            return in_flight
        sent = self.ledger.sent_stock(self.marketplace.code)
        last = dict(zip(sent["offer_sku"].tolist(), sent["quantity"].tolist()))
        for sku, quantity in zip(offers.offers["offer_sku"].tolist(), offers.offers["quantity"].tolist()):
            if sku in last and quantity is not pd.NA and quantity is not None:
                gap = int(last[sku]) - int(quantity)
                if gap > in_flight.get(sku, 0):
                    in_flight[sku] = gap
        return in_flight

    def _wait_for_slot(self) -> float:
        """Seconds waited for STO01's slot (the client books it when it sends; this only waits for it to open)."""
        key, interval = self.mirakl.call_slot("STO01")
        wait = self.ledger.next_slot(key, interval) - time.time()
        if wait > 0:
            self.log.info("stock %s: waiting %.1f s for STO01's slot (once a minute) before reading Shopify",
                          self.marketplace.code, wait)
            self.sleep(wait)
        self.report.slot_wait_seconds = max(0.0, wait)
        return max(0.0, wait)

    def _send(self, lines: pd.DataFrame, timeout: float) -> None:
        report, code = self.report, self.marketplace.code
        with self._timed("sto01"):
            import_id = send_stock_file(self.mirakl, stock_import_csv(lines), filename=f"stock-{code}.csv")
        self.ledger.record_stock_import(code, import_id, mode=report.mode, run_id=self.run_id, lines=lines,
                                        snapshot_at=report.snapshot.read_at, now=_utcnow())
        report.import_id, report.lines = import_id, lines
        self.log.info("stock %s: STO01 import %s sent with %d line(s) (%s)", code, import_id, len(lines), report.mode)
        with self._timed("sto02"):
            self._finish(import_id, _utcnow(), timeout, lines=lines)

    def _finish(self, import_id: str, sent_at: datetime, timeout: float, lines: Optional[pd.DataFrame] = None) -> bool:
        """Poll an import to its end and settle it in the ledger; False when it is still running after `timeout`."""
        code, now = self.marketplace.code, _utcnow()
        remaining = max(0.0, timeout - (now - sent_at).total_seconds())
        try:
            status = wait_for_stock_import(self.mirakl, import_id, timeout_seconds=remaining)
        except StockImportStillRunning as running:
            last = running.last.status if running.last is not None else "not answered"
            if running.last is not None:
                self.ledger.update_stock_import(code, import_id, last, now=_utcnow(),
                                                lines_in_success=running.last.lines_in_success,
                                                lines_in_error=running.last.lines_in_error)
            self.ledger.raise_exception(
                code, IMPORT_FAILED, import_id,
                f"stock import {import_id} is still {last} {timeout:.0f} s after it was sent; no new stock file is "
                f"sent until Mirakl finishes it", {"status": last}, now=_utcnow())
            if import_id == self.report.import_id:
                self.report.import_status = last
            return False
        rejected = {}
        if status.has_error_report:
            sent_skus = (lines["offer_sku"].tolist() if lines is not None
                         else self.ledger.stock_import_skus(code, import_id))
            report = stock_import_error_report(self.mirakl, import_id)
            for error in parse_error_report(report, sent_skus):
                key = error.offer_sku or f"{import_id}:line {error.line_number}"
                rejected[key] = error.reason
        error = None
        if status.status == "FAILED":
            error = "; ".join(f"{sku}: {reason}" for sku, reason in list(rejected.items())[:5]) or "the import failed"
            self.ledger.raise_exception(code, IMPORT_FAILED, import_id,
                                        f"stock import {import_id} FAILED as a whole ({error}); its lines are sent again "
                                        "by the next run", {"lines_in_error": status.lines_in_error}, now=_utcnow())
        self.ledger.settle_stock_import(code, import_id, status.status, now=_utcnow(), rejected=rejected if status.status ==
                                        "COMPLETE" else None, lines_in_success=status.lines_in_success,
                                        lines_in_error=status.lines_in_error, error=error)
        if status.status == "COMPLETE":
            for sku, reason in rejected.items():
                self.ledger.raise_exception(code, LINE_REJECTED, sku,
                                            f"Mirakl rejected the stock line of offer {sku} in import {import_id}: {reason}",
                                            {"import_id": import_id}, now=_utcnow())
            self._resolve_applied(import_id, set(rejected))
        self._note(import_id, status, rejected)
        return True

    def _note(self, import_id: str, status, rejected: Optional[dict] = None) -> None:
        if import_id == self.report.import_id:
            self.report.import_status = status.status
            self.report.lines_in_success, self.report.lines_in_error = status.lines_in_success, status.lines_in_error
            self.report.rejected = dict(rejected or {})

    def _resolve_applied(self, import_id: str, rejected: set[str]) -> None:
        code = self.marketplace.code
        open_rows = self.ledger.open_exceptions(code, kinds=[LINE_REJECTED])
        if not open_rows:
            return
        applied = set(self.ledger.sent_stock(code, states=("applied",))["offer_sku"].tolist())
        for row in open_rows:
            if row.record_id in applied and row.record_id not in rejected:
                self.ledger.resolve_exceptions(code, row.record_id, kinds=[LINE_REJECTED], now=_utcnow())

    def _raise_findings(self) -> None:
        code = self.marketplace.code
        for finding in self.report.computation.findings:
            if finding.kind in _EXCEPTION_FINDINGS:
                self.ledger.raise_exception(code, VARIANT_PROBLEM, finding.variant_id or finding.sku or "?", finding.reason,
                                            {"kind": finding.kind, "sku": finding.sku}, now=_utcnow())

    # ---- the offers the marketplace has ----------------------------------------------------------------

    def _offers_before(self) -> MiraklOffers:
        """Mirakl's offers before the push: read now when the catalogue is read whole each time (OF21, cheap, or the
        first run), else as the previous run's read left them (exports are rationed: see offer_cache)."""
        state = self.offers.state()
        if state is None or state.source == "OF21":
            return self._read_offers()
        return MiraklOffers(offers=self.offers.offers(), read_at=state.last_request, source="OF52")

    def _read_offers(self) -> MiraklOffers:
        return current_offers(self.mirakl, self.offers, export_threshold=self.policy.mirakl_export_threshold,
                              now=_utcnow())

    # ---- timings ------------------------------------------------------------------------------------

    @contextmanager
    def _timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            timings = self.report.timings
            timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - start, 3)
