"""What an unattended demo run (`mirakl-pipelines demo --for SECONDS`) shows at its end: per marketplace what
each flow did (from the ledger), the latest outcome of every asset check (from the Dagster instance), and the
datasets written (from the warehouse)."""

from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from mirakl_pipelines.config import Settings
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.ledger.tables import exception_queue, fulfilment_pushes, order_lines, order_links, stock_imports, stock_sent


def summarize(settings: Settings, dagster_home: Path | None, seconds: float) -> str:
    lines = [f"demo summary after {seconds:.0f} s"]
    totals = _run_totals(dagster_home) if dagster_home is not None else {}
    with Ledger.connect(settings.ledger_url()) as ledger, ledger.engine.connect() as conn:
        for m in settings.marketplaces:
            lines += [f"  {m.name} ({m.code}):"] + [f"    {text}" for text in _flows(conn, m.code, totals.get(m.code, Counter()))]
    if dagster_home is not None:
        lines += ["  asset checks (latest evaluation, every marketplace):"] + [f"    {text}" for text in _checks(settings, dagster_home)]
    lines += ["  datasets:"] + [f"    {text}" for text in _datasets(settings.resolve_path(settings.warehouse_path))]
    return "\n".join(lines)


# What the order runs did, summed over every shopify_orders materialisation of the marketplace.
_RUN_FIGURES = ("imported", "marked_paid", "units_held_after_cancellation", "addresses_completed", "follow_ups_failed")


def _run_totals(dagster_home: Path) -> dict[str, Counter]:
    from dagster import AssetKey, DagsterInstance

    totals: dict[str, Counter] = {}
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.fetch_materializations(AssetKey("shopify_orders"), limit=10_000).records  # the most Dagster returns at once: hours of demo
        for record in records:
            event = record.event_log_entry.dagster_event
            code = (event.partition or "").split("|")[-1] if event else ""
            metadata = record.asset_materialization.metadata if record.asset_materialization else {}
            counter = totals.setdefault(code, Counter())
            for name in _RUN_FIGURES:
                if name in metadata:
                    counter[name] += int(metadata[name].value)
    return totals


def _flows(conn: sa.Connection, code: str, runs: Counter) -> list[str]:
    links = order_links.c

    def count(*where) -> int:
        return conn.scalar(sa.select(sa.func.count()).select_from(order_links).where(links.marketplace == code, *where))

    imported = links.import_state == "imported"
    shipped = conn.scalar(sa.select(sa.func.count(sa.distinct(fulfilment_pushes.c.mirakl_order_id))).where(
        fulfilment_pushes.c.marketplace == code, fulfilment_pushes.c.or24_state.in_(("done", "already"))))
    held = conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(order_lines.c.held_quantity), 0)).where(
        order_lines.c.marketplace == code))
    skipped = Counter(dict(conn.execute(sa.select(links.skip_reason, sa.func.count()).where(
        links.marketplace == code, links.skip_reason.is_not(None), links.import_state != "imported")
        .group_by(links.skip_reason)).all()))
    exceptions = Counter(dict(conn.execute(sa.select(exception_queue.c.kind, sa.func.count()).where(
        exception_queue.c.marketplace == code, exception_queue.c.status == "open").group_by(exception_queue.c.kind)).all()))
    return [
        f"orders: {count()} seen, {count(links.acceptance_state.in_(('accepted', 'partial')))} accepted, "
        f"{count(links.acceptance_state == 'refused')} refused, {count(imported)} imported into Shopify "
        f"({count(imported, links.payment_state == 'pending')} still pending payment, "
        f"{count(imported, links.address_state == 'missing')} waiting for their address)",
        f"not imported: {_counts(skipped)}",
        f"after import: {runs['marked_paid']} marked paid when the debit arrived, {held} cancelled units held in "
        f"Shopify, {runs['addresses_completed']} addresses completed, {runs['follow_ups_failed']} follow-ups failed",
        f"shipments: {shipped} orders shipped in Mirakl",
        _stock(conn, code),
        f"open exceptions: {_counts(exceptions)}",
    ]


def _stock(conn: sa.Connection, code: str) -> str:
    imports = stock_imports.c
    by_status = Counter(dict(conn.execute(sa.select(imports.status, sa.func.count()).where(imports.marketplace == code)
                                          .group_by(imports.status)).all()))
    lines = conn.scalar(sa.select(sa.func.coalesce(sa.func.sum(imports.lines), 0)).where(imports.marketplace == code))
    states = Counter(dict(conn.execute(sa.select(stock_sent.c.state, sa.func.count()).where(stock_sent.c.marketplace == code)
                                       .group_by(stock_sent.c.state)).all()))
    return (f"stock: {sum(by_status.values())} STO01 imports ({_counts(by_status)}) carrying {lines} lines; "
            f"offers as last sent: {_counts(states)}")


def _checks(settings: Settings, dagster_home: Path) -> list[str]:
    """Each check's latest evaluation: one answer for every marketplace at once (see defs/orders/checks.py)."""
    from dagster import DagsterInstance

    from mirakl_pipelines.definitions import build_definitions

    keys = sorted(build_definitions(settings).resolve_asset_graph().asset_check_keys, key=lambda k: k.to_user_string())
    rows = []
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for key in keys:
            # The latest evaluation: a run the stop cut short only planned its checks, so look past it.
            history = instance.event_log_storage.get_asset_check_execution_history(key, limit=20)
            evaluation = next((e for e in (r.event.dagster_event.event_specific_data for r in history if r.event)
                               if hasattr(e, "passed")), None)
            text = "not evaluated"
            if evaluation is not None:
                text = "passed" if evaluation.passed else f"failed ({evaluation.severity.value})"
                counts = evaluation.metadata.get("by_marketplace")
                if counts is not None and not evaluation.passed:
                    text += ": " + ", ".join(f"{code} {n}" for code, n in counts.value.items())
            rows.append(f"{key.asset_key.to_user_string()}:{key.name}: {text}")
    return rows


def _datasets(warehouse: Path) -> list[str]:
    if not warehouse.exists():
        return ["none written"]
    rows = []
    for dataset in sorted(p for p in warehouse.iterdir() if p.is_dir()):
        files = [f for f in dataset.rglob("*") if f.is_file()]
        kinds = ", ".join(sorted({f.suffix.lstrip(".") or "file" for f in files})) or "none"
        rows.append(f"{dataset.name}: {len(files)} file(s) ({kinds}) under {dataset}")
    return rows or ["none written"]


def _counts(counter: Counter) -> str:
    return ", ".join(f"{key} {n}" for key, n in counter.most_common()) or "none"
