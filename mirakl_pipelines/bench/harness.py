"""The benchmarks' moving parts: the sandbox process, orders placed over its control routes, the job process.

Nothing here is timed by itself; each benchmark module decides what to measure.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator, Optional

import httpx
import yaml

from mirakl_pipelines.config import CONFIG_ENV_VAR, RATE_LIMIT_SCALE_ENV
from mirakl_pipelines.demo import CATALOGUE, write_demo_instance
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sandbox.server import free_port

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MARKETPLACES = ("decathlon_fr", "leroymerlin_fr")  # the demo's, as start_sandbox builds them


class BenchError(RuntimeError):
    """A benchmark could not measure what it set out to (a run failed, a process died): never a silent figure."""


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process, from /proc/<pid>/stat (fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces: skip past it
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def stop_process_group(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM the child's own process group (it was started in a new session), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.pop("MIRAKL_PIPELINES_LEDGER_URL", None)  # the benchmark's ledger is the SQLite file in its workdir
    return env


@dataclass
class SandboxProcess:
    process: subprocess.Popen
    info: dict
    http: httpx.Client

    @property
    def pid(self) -> int:
        return self.info["pid"]

    @property
    def env(self) -> dict[str, str]:
        return self.info["env"]

    def url(self, name: str) -> str:
        return self.info["urls"][name]

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def set_faults(self, **knobs) -> None:
        """The same fault knobs on every simulator (both marketplaces and the shop)."""
        for url in self.info["urls"].values():
            self.http.post(f"{url}/_sandbox/faults", json=knobs).raise_for_status()

    def shop_stats(self) -> dict:
        return self._get(self.url("shopify"), "/_sandbox/stats")

    def marketplace_stats(self, code: str) -> dict:
        return self._get(self.url(code), "/_sandbox/stats")

    def shop_webhooks(self) -> dict:
        """The store's webhook faults, subscriptions and delivery stats."""
        return self._get(self.url("shopify"), "/_sandbox/webhooks")

    def shop_orders(self) -> list[dict]:
        return self._get(self.url("shopify"), "/_sandbox/orders")

    def marketplace_orders(self, code: str) -> list[dict]:
        return self._get(self.url(code), "/_sandbox/orders")["orders"]

    def place_orders(self, code: str, orders: list[dict], threads: int = 4) -> list[str]:
        """POST each order (build_order's arguments as JSON) to the marketplace's control route; their ids."""
        url = f"{self.url(code)}/_sandbox/orders"

        def place(order: dict) -> str:
            response = self.http.post(url, content=json.dumps(order, default=str))
            if response.status_code != 201:
                raise BenchError(f"placing order {order.get('order_id')} on {code}: {response.status_code} {response.text[:500]}")
            return response.json()["order_id"]

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(place, orders))

    def stock_control(self, method: str, path: str, body: Optional[dict] = None):
        """A call to the stock benchmarks' control app (the sandbox process started with `--stock-control`)."""
        base = self.info.get("stock_control_url")
        if not base:
            raise BenchError("the sandbox process was started without --stock-control")
        response = self.http.request(method, base + path, json=body)
        if response.status_code != 200:
            raise BenchError(f"{method} {path} on the stock control app: {response.status_code} {response.text[:500]}")
        return response.json()

    def _get(self, base: str, path: str):
        response = self.http.get(base + path)
        response.raise_for_status()
        return json.loads(response.text, parse_float=Decimal)


@contextmanager
def sandbox_process(workdir: Path, *, rate_limit_scale: float = 1.0, debit_delay: float = 20.0,
                    scenario_orders_per_minute: float = 0.0, cron: str = "* * * * *",
                    shipping: Optional[dict] = None, start_timeout: float = 60.0,
                    extra_args: Optional[list[str]] = None) -> Iterator[SandboxProcess]:
    """Start `python -m mirakl_pipelines.bench.sandbox_process` and stop it (and only it) at the end.

    `shipping` (e.g. {"warehouse_delay": 5, "partial_share": 0, "unknown_carrier_share": 0}) also runs the
    webhook receiver, subscribed to the store, and the warehouse in that process, as the demo does.
    `extra_args`: more of sandbox_process's options (e.g. ["--stock-skus", "100000", "--stock-control"]).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    info_path = workdir / "sandbox.json"
    info_path.unlink(missing_ok=True)
    log = open(workdir / "sandbox.log", "w")
    options = []
    if shipping is not None:
        options = ["--shipping"] + [arg for name, value in shipping.items()
                                    for arg in (f"--{name.replace('_', '-')}", str(value))]
    process = subprocess.Popen(
        [sys.executable, "-m", "mirakl_pipelines.bench.sandbox_process", "--info", str(info_path),
         "--workdir", str(workdir), "--rate-limit-scale", str(rate_limit_scale), "--debit-delay", str(debit_delay),
         "--scenario-orders-per-minute", str(scenario_orders_per_minute), "--cron", cron, *options,
         *(extra_args or [])],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=child_env({}),
    )
    http = httpx.Client(timeout=60)
    try:
        deadline = time.monotonic() + start_timeout
        while not info_path.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the sandbox process did not start: {(workdir / 'sandbox.log').read_text()[-3000:]}")
            time.sleep(0.05)
        yield SandboxProcess(process, json.loads(info_path.read_text()), http)
    finally:
        http.close()
        stop_process_group(process)
        log.close()


@contextmanager
def dagster_dev(sandbox: SandboxProcess, config_path: Path, workdir: Path,
                port: Optional[int] = None) -> Iterator[subprocess.Popen]:
    """`dagster dev` (webserver + daemon, schedules and sensors running) on a SQLite instance in `workdir`, as
    `mirakl-pipelines demo` starts it (from the work directory, real Mirakl limits); stopped with its group at the end."""
    home = workdir / "dagster_home"
    write_demo_instance(home)
    env = child_env({**sandbox.env, CONFIG_ENV_VAR: str(config_path), "DAGSTER_HOME": str(home), RATE_LIMIT_SCALE_ENV: "1"})
    log = open(workdir / "dagster.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-W", "ignore:Function `dev_command` is superseded", "-m", "dagster", "dev",
         "-m", "mirakl_pipelines.definitions", "-h", "127.0.0.1", "-p", str(port or free_port())],
        env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        yield process
    finally:
        stop_process_group(process, timeout=30)
        log.close()


def run_records(dagster_home: Path) -> list:
    """Every run record of the instance in `dagster_home` (loads Dagster: call it once the runs are over)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return list(instance.get_run_records())


def run_events(dagster_home: Path, run_ids: list[str]) -> dict[str, list[tuple[str, str, float]]]:
    """Each run's event log as (DagsterEventType name, message, epoch seconds), oldest first (loads Dagster)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return {run_id: [(e.dagster_event_type.name if e.dagster_event_type else "", e.message or "", e.timestamp)
                         for e in instance.all_logs(run_id)] for run_id in run_ids}


@dataclass(frozen=True)
class RunStats:
    statuses: dict[str, int]
    launch: list[float]  # seconds from queued to started, per finished run
    duration: list[float]  # seconds from started to finished

    @classmethod
    def of(cls, records: list) -> "RunStats":
        statuses: dict[str, int] = {}
        for record in records:
            statuses[record.dagster_run.status.value] = statuses.get(record.dagster_run.status.value, 0) + 1
        finished = [r for r in records if r.start_time and r.end_time]
        return cls(statuses, [r.start_time - r.create_timestamp.timestamp() for r in finished],
                   [r.end_time - r.start_time for r in finished])

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))


@dataclass(frozen=True)
class DemoRun:
    """What the demo set-up left after running: the measured span, both sides' orders, call counts and runs."""

    start: datetime
    end: datetime
    shop_orders: list[dict]
    mirakl_orders: dict[str, list[dict]]
    mirakl_stats: dict[str, dict]
    webhook_stats: Optional[dict]
    records: list
    disruptions: Optional[dict] = None  # what a `disrupt` callback of run_demo_setup did, as it reported it

    def mirakl_calls(self) -> str:
        return "; ".join(f"{c} {s['calls']} (429: {s['rejected_429']})" for c, s in self.mirakl_stats.items())


def run_demo_setup(workdir: Path, duration_s: float, *, debit_delay_s: float, orders_per_minute: float,
                   shipping: Optional[dict] = None, disrupt: Optional[Callable] = None,
                   receiver_launches: bool = True, sandbox_args: Optional[list[str]] = None) -> DemoRun:
    """The demo set-up for `duration_s` (sandbox + scenario with Mirakl's real limits, one-minute refreshes,
    `dagster dev` with schedules and sensors; with `shipping`, the receiver and the warehouse too), then its state.

    `disrupt(sandbox, config_path, dagster_process, stop_event) -> dict` runs in a thread meanwhile (faults, kills,
    other callers) until `stop_event` is set; what it returns is kept in `DemoRun.disruptions`.
    With `shipping` and `receiver_launches`, the receiver starts each fulfilment's push run through the webserver's
    GraphQL endpoint, as the demo's does (the port is chosen first: the receiver starts before `dagster dev`).
    `sandbox_args`: more options for the sandbox process (sandbox_process's `extra_args`).
    """
    port = free_port()
    graphql_url = f"http://127.0.0.1:{port}/graphql" if shipping is not None and receiver_launches else None
    if graphql_url:
        shipping = {**shipping, "dagster_graphql_url": graphql_url}
    with sandbox_process(workdir, rate_limit_scale=1.0, debit_delay=debit_delay_s, cron="* * * * *",
                         scenario_orders_per_minute=orders_per_minute, shipping=shipping,
                         extra_args=sandbox_args) as sandbox:
        config = write_config(sandbox, workdir, dagster_graphql_url=graphql_url)
        with dagster_dev(sandbox, config, workdir, port=port) as dagster:
            start = datetime.now(timezone.utc)
            with ThreadPoolExecutor(1) as pool:
                stop = threading.Event()
                disrupted = pool.submit(disrupt, sandbox, config, dagster, stop) if disrupt else None
                try:
                    wait_alive(dagster, duration_s, workdir / "dagster.log")
                finally:
                    stop.set()
                disruptions = disrupted.result() if disrupted else None
            end = datetime.now(timezone.utc)
            observed = dict(
                shop_orders=sandbox.shop_orders(),
                mirakl_orders={code: sandbox.marketplace_orders(code) for code in MARKETPLACES},
                mirakl_stats={code: sandbox.marketplace_stats(code) for code in MARKETPLACES},
                webhook_stats=sandbox.shop_webhooks()["stats"] if shipping else None,
            )
    return DemoRun(start, end, records=run_records(workdir / "dagster_home"), disruptions=disruptions, **observed)


def wait_alive(process: subprocess.Popen, seconds: float, log_path: Path, what: str = "dagster dev") -> None:
    """Sleep `seconds`, raising BenchError (with the log's tail) as soon as `process` exits."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{what} exited with {process.returncode}: {log_path.read_text()[-3000:]}")
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def inbox_entries(ledger_url: str, topics: Optional[list[str]] = None) -> list:
    """Every webhook inbox entry of the ledger (only `topics`, when given), oldest first, read page by page."""
    entries: list = []
    with Ledger.connect(ledger_url) as ledger:
        while page := ledger.inbox_after(entries[-1].id if entries else 0, topics=topics, limit=1000):
            entries += page
    return entries


def write_config(sandbox: SandboxProcess, workdir: Path, dagster_graphql_url: Optional[str] = None) -> Path:
    """The pipelines' configuration for this sandbox (the one the sandbox wrote), as a file; with
    `dagster_graphql_url`, the one the receiver launches push runs through (the sensor then leaves fresh deliveries
    to it)."""
    path = workdir / "marketplaces.yaml"
    settings = sandbox.info["settings"]
    if dagster_graphql_url:
        settings = {**settings, "webhooks": {"dagster_graphql_url": dagster_graphql_url}}
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def run_jobs(sandbox: SandboxProcess, config_path: Path, workdir: Path, runs: list[dict],
             rate_limit_scale: float, timeout: float = 1800.0, runner: str = "mirakl_pipelines.bench.job_runner",
             extra_spec: Optional[dict] = None) -> dict:
    """Run `runs` ({label, marketplace, day}) in one `runner` child process (job_runner: orders_sync); its JSON result.

    Raises BenchError naming the run when one fails: a figure from a failed run means nothing.
    """
    spec = {"config_path": str(config_path), "rate_limit_scale": rate_limit_scale,
            "dagster_home": str(workdir / "dagster_home"), "sandbox_pid": sandbox.pid, "runs": runs, **(extra_spec or {})}
    spec_path, result_path = workdir / "job_spec.json", workdir / "job_result.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    result_path.unlink(missing_ok=True)
    env = child_env({**sandbox.env, CONFIG_ENV_VAR: str(config_path), RATE_LIMIT_SCALE_ENV: str(rate_limit_scale)})
    done = subprocess.run([sys.executable, "-m", runner, str(spec_path), str(result_path)],
                          env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not result_path.exists():
        raise BenchError(f"the job process exited with {done.returncode}: {done.stderr[-4000:]}")
    result = json.loads(result_path.read_text())  # timings and counts, no money
    for run in result["runs"]:
        if not run["success"]:
            raise BenchError(f"run {run['label']!r} ({run['partition']}) failed: {run['error']}")
    return result


def catalogue_lines() -> list[dict]:
    """One order line per catalogue variant the shop knows (SKU, title, price as text)."""
    catalogue = yaml.safe_load(CATALOGUE.read_text())
    return [{"sku": v["sku"], "title": f"{p['title']} {v['title']}", "unit_price": str(v["price"])}
            for p in catalogue["products"] for v in p["variants"]]


def order_specs(prefix: str, count: int, state: str, created: list[datetime]) -> list[dict]:
    """`count` orders for POST /_sandbox/orders: 1–3 known SKUs each (deterministic), created at the given times."""
    lines = catalogue_lines()
    specs = []
    for i in range(count):
        picked = [lines[(i + k * 3) % len(lines)] for k in range(1 + i % 3)]
        specs.append({
            "order_id": f"{prefix}-{i:06d}-A",
            "lines": [{**line, "quantity": 1 + (i + n) % 2} for n, line in enumerate(picked)],
            "state": state,
            "created": created[i].astimezone(timezone.utc).isoformat(),
        })
    return specs


def spread(count: int, start: datetime, end: datetime) -> list[datetime]:
    """`count` moments evenly spread over [start, end)."""
    step = (end - start) / max(count, 1)
    return [start + step * i for i in range(count)]


def default_workdir(name: str, base: Optional[Path] = None) -> Path:
    from mirakl_pipelines.config import PROJECT_ROOT

    return (base or PROJECT_ROOT / ".bench") / name
