"""Runs `stock_sync` partitions in a process of its own and writes what they cost to a JSON file.

    python -m mirakl_pipelines.bench.stock_runner spec.json result.json

The stock job's counterpart of job_runner.py (same spec, same figures: wall time, steps, this process's CPU and
peak RSS, the sandbox process's CPU, both assets' metadata), plus the time each run spent waiting for the
sandbox's asynchronous processing: the bulk operation (bulkOperationRunQuery → COMPLETED, polled), the offer
export (the OF52 request, which the sandbox answers once it has built the export, then OF53 until COMPLETED) and the
stock import (STO01 → STO02 COMPLETE). Those waits are measured by wrapping the product's own wait functions (and
OF52's request) in this process; nothing else of the product is touched. With "profile_dir" in the spec, each run's
cProfile statistics are written there.
"""

import cProfile
import json
import os
import resource
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from mirakl_pipelines.bench import job_runner  # its clock starts before Dagster is imported: load_seconds
from mirakl_pipelines.bench.harness import process_cpu_seconds
from mirakl_pipelines.config import CONFIG_ENV_VAR, RATE_LIMIT_SCALE_ENV

WAITS = defaultdict(float)  # what the current run waited for, by kind (seconds)


@contextmanager
def _waiting(kind: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        WAITS[kind] += time.perf_counter() - started


def _wrap(module, name: str, kind: str) -> None:
    original = getattr(module, name)

    def timed(*args, **kwargs):
        with _waiting(kind):
            return original(*args, **kwargs)

    setattr(module, name, timed)


def instrument() -> None:
    """Time the product's waits for the sandbox (each wrapped where the product looks the function up)."""
    from mirakl_pipelines.defs.stock import push
    from mirakl_pipelines.mirakl import offers
    from mirakl_pipelines.mirakl.client import MiraklClient
    from mirakl_pipelines.shopify import inventory

    _wrap(inventory, "wait_for_bulk_operation", "bulk_operation")  # looked up in inventory's globals by _read_bulk
    _wrap(offers, "_await_export", "offer_export")  # by _export_rows
    _wrap(push, "wait_for_stock_import", "stock_import")  # imported by name into push.py
    send_json = MiraklClient._send_json

    def timed_send_json(self, operation, *args, **kwargs):
        if operation != "OF52":
            return send_json(self, operation, *args, **kwargs)
        # The sandbox builds the whole export inside the OF52 request (Mirakl answers at once and works after):
        # the request's time is the sandbox's export processing too.
        with _waiting("offer_export"):
            return send_json(self, operation, *args, **kwargs)

    MiraklClient._send_json = timed_send_json


def _metadata(result, asset: str) -> dict:
    for event in reversed(result.get_asset_materialization_events()):  # whatever the step's name
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return {key: value.value for key, value in materialization.metadata.items()}
    return {}


def _check(result) -> dict:
    evaluations = result.get_asset_check_evaluations()
    return {e.check_name: {"passed": e.passed, "severity": e.severity.value} for e in evaluations}


def run(spec: dict) -> dict:
    os.environ[CONFIG_ENV_VAR] = spec["config_path"]
    os.environ[RATE_LIMIT_SCALE_ENV] = str(spec["rate_limit_scale"])
    from datetime import date

    import dagster as dg

    from mirakl_pipelines.definitions import defs  # reads the two variables above, as `dagster dev` would
    from mirakl_pipelines.defs.partitions import partition_key
    from mirakl_pipelines.defs.stock.assets import JOB_NAME

    instrument()
    job = defs.resolve_job_def(JOB_NAME)
    os.makedirs(spec["dagster_home"], exist_ok=True)
    instance = dg.DagsterInstance.local_temp(spec["dagster_home"], overrides={"telemetry": {"enabled": False}})
    sandbox_pid = spec.get("sandbox_pid")
    out: dict = {"load_seconds": time.monotonic() - job_runner._STARTED, "rss_before_runs_kib": job_runner._rss_kib(), "runs": []}
    for run_spec in spec["runs"]:
        key = partition_key(date.fromisoformat(run_spec["day"]), run_spec["marketplace"])
        WAITS.clear()
        sandbox_cpu = process_cpu_seconds(sandbox_pid) if sandbox_pid else 0.0
        cpu = job_runner._own_cpu_seconds()
        started = time.perf_counter()
        profiler = cProfile.Profile() if spec.get("profile_dir") else None
        if profiler:
            profiler.enable()
        result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False,
                                        tags=run_spec.get("tags") or {})
        if profiler:
            profiler.disable()
            profiler.dump_stats(os.path.join(spec["profile_dir"], f"{run_spec['label'].replace(' ', '_')}.prof"))
        wall = time.perf_counter() - started
        cpu = job_runner._own_cpu_seconds() - cpu
        sandbox_cpu = (process_cpu_seconds(sandbox_pid) - sandbox_cpu) if sandbox_pid else 0.0
        steps = job_runner._step_seconds(instance, result.run_id)
        out["runs"].append({
            "label": run_spec["label"],
            "partition": str(key),
            "success": result.success,
            "error": None if result.success else job_runner._failure(result),
            "wall_seconds": wall,
            "steps": steps,
            "step_seconds_total": sum(steps.values()),
            "cpu_seconds": cpu,
            "sandbox_cpu_seconds": sandbox_cpu,
            "sandbox_waits": dict(WAITS),
            "metadata": {asset: _metadata(result, asset) for asset in ("shopify_stock", "mirakl_stock")},
            "checks": _check(result),
        })
    out["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    return out


def main(argv: list[str]) -> int:
    if len(argv) == 2:  # spec.json result.json
        Path(argv[1]).write_text(json.dumps(run(json.loads(Path(argv[0]).read_text())), indent=2, default=str))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
