"""Runs `orders_sync` partitions in a process of its own and writes what they cost to a JSON file.

    python -m mirakl_pipelines.bench.job_runner spec.json result.json

The spec names the config file, the Dagster home and the runs (label, marketplace, day). The job is
the project's own (`mirakl_pipelines.definitions.defs`, as `dagster dev` loads it), executed in
process on a SQLite instance. For each run: wall time, each step's STEP_START → STEP_SUCCESS time,
this process's CPU, the sandbox process's CPU, and both assets' metadata. Peak RSS is the process's.
"""

import json
import os
import resource
import sys
import time

_STARTED = time.monotonic()

import dagster as dg  # noqa: E402  (timed: the import is part of a run's start-up)

from mirakl_pipelines.bench.harness import process_cpu_seconds  # noqa: E402
from mirakl_pipelines.config import CONFIG_ENV_VAR, RATE_LIMIT_SCALE_ENV  # noqa: E402


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    materializations = result.asset_materializations_for_node(asset)
    if not materializations:
        return {}
    return {key: value.value for key, value in materializations[-1].metadata.items()}


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    started: dict[str, float] = {}
    durations: dict[str, float] = {}
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
    for entry in instance.all_logs(run_id, of_type=kinds):
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            started[entry.step_key] = entry.timestamp
        elif entry.step_key in started:
            durations[entry.step_key] = entry.timestamp - started[entry.step_key]
    return durations


def _failure(result: dg.ExecuteInProcessResult) -> str:
    messages = [event.message or "" for event in result.all_events if event.is_failure]
    return "; ".join(messages)[-3000:] or "the run failed"


def run(spec: dict) -> dict:
    os.environ[CONFIG_ENV_VAR] = spec["config_path"]
    os.environ[RATE_LIMIT_SCALE_ENV] = str(spec["rate_limit_scale"])
    from mirakl_pipelines.definitions import defs  # reads the two variables above, as `dagster dev` would
    from mirakl_pipelines.defs.orders.automation import JOB_NAME
    from mirakl_pipelines.defs.partitions import partition_key
    from datetime import date

    job = defs.resolve_job_def(JOB_NAME)
    os.makedirs(spec["dagster_home"], exist_ok=True)
    instance = dg.DagsterInstance.local_temp(spec["dagster_home"], overrides={"telemetry": {"enabled": False}})
    sandbox_pid = spec.get("sandbox_pid")
    out: dict = {"load_seconds": time.monotonic() - _STARTED, "rss_before_runs_kib": _rss_kib(), "runs": []}
    for run_spec in spec["runs"]:
        key = partition_key(date.fromisoformat(run_spec["day"]), run_spec["marketplace"])
        sandbox_cpu = process_cpu_seconds(sandbox_pid) if sandbox_pid else 0.0
        cpu = _own_cpu_seconds()
        started = time.perf_counter()
        result = job.execute_in_process(partition_key=key, instance=instance, raise_on_error=False,
                                        tags=run_spec.get("tags") or {})
        wall = time.perf_counter() - started
        cpu = _own_cpu_seconds() - cpu
        sandbox_cpu = (process_cpu_seconds(sandbox_pid) - sandbox_cpu) if sandbox_pid else 0.0
        steps = _step_seconds(instance, result.run_id)
        out["runs"].append({
            "label": run_spec["label"],
            "partition": str(key),
            "success": result.success,
            "error": None if result.success else _failure(result),
            "wall_seconds": wall,
            "steps": steps,
            "step_seconds_total": sum(steps.values()),
            "cpu_seconds": cpu,
            "sandbox_cpu_seconds": sandbox_cpu,
            "metadata": {asset: _metadata(result, asset) for asset in ("mirakl_orders", "shopify_orders")},
        })
    out["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        spec = json.load(f)
    result = run(spec)
    with open(argv[1], "w") as f:
        json.dump(result, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
