"""The demo as a user starts it: sandbox + scenario + Dagster UI with schedules; orders get imported and
accepted; the console stays readable; Ctrl-C leaves no process behind and no run FAILED by the stop."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mirakl_pipelines.sandbox.server import free_port
from mirakl_pipelines.sandbox.shopify.schema import shopify_sdl_path

pytestmark = pytest.mark.slow


def _processes_with_env(marker: str) -> list[int]:
    """Pids whose environment mentions `marker` (the demo's DAGSTER_HOME), other than ours."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _progress(ledger: Path) -> tuple[int, int, int]:
    """Orders imported, accepted, and fulfilments shipped in Mirakl, per the demo's ledger."""
    if not ledger.exists():
        return 0, 0, 0
    with sqlite3.connect(ledger) as db:
        try:
            imported = db.execute("select count(*) from order_links where import_state = 'imported'").fetchone()[0]
            accepted = db.execute("select count(*) from order_links where acceptance_state = 'accepted'").fetchone()[0]
            shipped = db.execute("select count(*) from fulfilment_pushes where or24_state in ('done', 'already')").fetchone()[0]
        except sqlite3.OperationalError:
            return 0, 0, 0
    return imported, accepted, shipped


def test_demo_imports_and_accepts_orders_then_stops_cleanly(tmp_path):
    if not shopify_sdl_path().exists():
        pytest.skip(f"the demo's Shopify sandbox needs the Admin GraphQL SDL, absent at {shopify_sdl_path()}")
    port = free_port()
    work = tmp_path / "demo"
    demo = subprocess.Popen(
        [sys.executable, "-m", "mirakl_pipelines.cli", "demo", "--port", str(port), "--workdir", str(work),
         "--orders-per-minute", "6"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        imported = accepted = shipped = 0
        while time.monotonic() < deadline and not (imported and accepted and shipped):
            assert demo.poll() is None, demo.stdout.read()[-5000:]
            time.sleep(3)
            imported, accepted, shipped = _progress(work / "ledger.sqlite")
        assert imported > 0 and accepted > 0 and shipped > 0, f"imported={imported} accepted={accepted} shipped={shipped}"
        assert httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=10).status_code == 200
    finally:
        os.kill(demo.pid, signal.SIGINT)  # what Ctrl-C sends
        try:
            demo.wait(120)  # it first lets the runs in progress finish
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    time.sleep(1)
    assert _processes_with_env(str(work / "dagster_home")) == []
    console = demo.stdout.read()
    assert "API key sandbox-" in console and "access token shpat_" in console
    # One line per event and per sensor tick stays in the log file, out of the console; so does the shutdown.
    for noise in (" - DEBUG - ", "Checking for new runs for sensor", "DagsterExecutionInterruptedError", "Traceback"):
        assert noise not in console, f"{noise!r} on the console:\n{console[-3000:]}"
    assert " - INFO - orders_sync - " in (work / "dagster.log").read_text()  # dagster's console output, kept
    assert not (work / "running.json").exists()
    statuses = _run_statuses(work / "dagster_home")
    assert statuses and "FAILURE" not in statuses, statuses


def _run_statuses(dagster_home: Path) -> dict[str, int]:
    with sqlite3.connect(dagster_home / "history" / "runs.db") as db:
        return dict(db.execute("select status, count(*) from runs group by status").fetchall())
