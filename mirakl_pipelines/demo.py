"""The demo: two sandbox Mirakl marketplaces and a sandbox Shopify store on 127.0.0.1, a scenario
placing orders, and the Dagster UI (webserver + daemon, schedules running) on an embedded SQLite
instance. Everything it writes stays under its work directory; Ctrl-C stops every process it started.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import yaml

from mirakl_pipelines import running_demo
from mirakl_pipelines.config import CONFIG_ENV_VAR, PROJECT_ROOT, RATE_LIMIT_SCALE_ENV, load_settings
from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.offers import catalogue_offers
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.scenario import Scenario, ScenarioSettings
from mirakl_pipelines.sandbox.server import RunningServer, serve_in_thread
from mirakl_pipelines.sandbox.shopify.app import create_shopify_app
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, StoreSettings
from mirakl_pipelines.sandbox.shopify.shop_floor import ShopFloor
from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
from mirakl_pipelines.webhooks.app import WEBHOOK_PATH, create_webhook_app
from mirakl_pipelines.webhooks.topics import FULFILMENT_TOPICS, INVENTORY_TOPICS

CATALOGUE = PROJECT_ROOT / "data" / "sandbox" / "catalogue.yaml"
# Two marketplaces side by side. Decathlon quotes prices tax included, ships complete orders only (one OR23 +
# OR24), queues unmapped carriers and gets the invoice (OR74, served by the sandbox store); Leroy Merlin quotes
# them tax excluded, has Mirakl's multiple shipments (one ST01 shipment per parcel, each with its tracking) and
# takes carriers by name and URL.
DEMO_MARKETPLACES = {
    "decathlon_fr": dict(name="Decathlon FR (sandbox)", window_hours=72, refuse_unservable=False, tax_mode="TAX_INCLUDED",
                         partial_shipments=False, multiple_shipments=False, accepts_unregistered_carriers=False,
                         invoice=True,
                         stock={"locations": ["Entrepôt Lyon", "Boutique Paris"], "mode": "sum", "buffer_units": 2}),
    "leroymerlin_fr": dict(name="Leroy Merlin FR (sandbox)", window_hours=120, refuse_unservable=True,
                           tax_mode="TAX_EXCLUDED", partial_shipments=True, multiple_shipments=True,
                           accepts_unregistered_carriers=True, invoice=False,
                           stock={"locations": ["Entrepôt Lyon"], "mode": "single", "buffer_percent": "10", "cap": 50,
                                  "zero_below": 2}),
}
# Each marketplace's own stock policy (above); in the demo changed SKUs go every 3 minutes, every SKU every 15, and an
# inventory webhook starts a push 10 s after the first change of its burst.
DEMO_STOCK_CRONS = {"cron": "*/3 * * * *", "full_cron": "*/15 * * * *", "debounce_seconds": 10}
# Something happens on the shop floor (a delivery, a sale over the counter, a write-off, a count) this often.
DEMO_SHOP_FLOOR_SECONDS = 25.0
# Payments the marketplaces take later than acceptance arrive within the demo's first minutes: a debit after
# shipment or delivery a minute later, a payment term of N days after N × 4 s, delivery two minutes after shipping.
DEMO_DEFERRED_DEBIT = timedelta(seconds=60)
DEMO_PAYMENT_DAY = timedelta(seconds=4)
DEMO_RECEIVE_DELAY = timedelta(minutes=2)
# Customer service cancels some orders 70-150 s after acceptance: mostly after the import (debit 20 s, then the next
# minute's refresh) and before the warehouse ships (DEMO_WAREHOUSE_DELAY after import), so holds show at once.
DEMO_CANCEL_DELAY = (70.0, 150.0)
DEMO_WAREHOUSE_DELAY = 90.0
# Short enough that the check turns red within minutes when the sandbox rejects shipments.
DEMO_UNACKNOWLEDGED_MINUTES = 3
# The partitions start this many days back and the scenario seeds orders on those days, so the UI's partition
# bar means something and a backfill of the past days has real work.
DEMO_PAST_DAYS = 3
DEMO_PAST_ORDERS_PER_DAY = 6
# Shopify's orders(query:) search index lags writes by seconds: the demo's store plays that too.
DEMO_SEARCH_INDEX_LAG_SECONDS = 5.0
# Partitions start here when the sandbox seeded no past days (tests, benchmarks).
DEFAULT_PARTITIONS_START = "2026-01-01"


@dataclass
class Sandbox:
    """The running simulators, their servers and the scenario."""

    sims: dict[str, MarketplaceSim]
    store: ShopifyStore
    scenario: Scenario
    servers: dict[str, RunningServer]
    secrets: dict[str, str]
    stop_event: threading.Event = field(default_factory=threading.Event)
    partitions_start: date | None = None  # the first day the scenario seeded orders on

    def start_scenario(self, interval: float = 1.0) -> threading.Thread:
        thread = threading.Thread(target=self.scenario.run, args=(self.stop_event, interval), name="scenario", daemon=True)
        thread.start()
        return thread

    def settings_dict(self, workdir: Path, cron: str = "* * * * *") -> dict:
        """The pipelines' configuration for this sandbox (what a real deployment writes by hand)."""
        return {
            "partitions_start_date": self.partitions_start.isoformat() if self.partitions_start else DEFAULT_PARTITIONS_START,
            "ledger_url_env": "MIRAKL_PIPELINES_LEDGER_URL",
            "ledger_default_url": f"sqlite:///{workdir / 'ledger.sqlite'}",
            "warehouse_path": str(workdir / "warehouse"),
            "shopify_stores": [{
                "name": "sandbox", "shop_url": self.servers["shopify"].url, "access_token_env": "SANDBOX_SHOPIFY_TOKEN",
                "webhook_secret_env": "SANDBOX_SHOPIFY_WEBHOOK_SECRET", "currency": "EUR",
            }],
            "marketplaces": [{
                "code": code, "name": spec["name"], "base_url": self.servers[code].url,
                "api_key_env": f"SANDBOX_{code.upper()}_API_KEY", "currency": "EUR",
                "orders": {"states": ["SHIPPING"], "tags": ["mirakl", "sandbox"], "tax_mode": spec["tax_mode"]},
                "acceptance": {"mode": "auto", "window_hours": spec["window_hours"], "refuse_unservable": spec["refuse_unservable"]},
                "schedule": {"cron": cron, "lookback_minutes": 120},
                "fulfilments": self._fulfilments(spec),
                "stock": {**spec["stock"], **DEMO_STOCK_CRONS},
            } for code, spec in DEMO_MARKETPLACES.items()],
        }

    def _fulfilments(self, spec: dict) -> dict:
        invoice = {"enabled": True, "source": f"{self.servers['shopify'].url}/_sandbox/invoices/{{order_name}}.pdf"}
        return {"partial_shipments": spec["partial_shipments"], "multiple_shipments": spec["multiple_shipments"],
                "accepts_unregistered_carriers": spec["accepts_unregistered_carriers"],
                "unacknowledged_after_minutes": DEMO_UNACKNOWLEDGED_MINUTES,
                "invoice": invoice if spec["invoice"] else {"enabled": False}}

    def env(self) -> dict[str, str]:
        return {
            "SANDBOX_SHOPIFY_TOKEN": self.secrets["shopify"],
            "SANDBOX_SHOPIFY_WEBHOOK_SECRET": self.secrets["webhook"],
            **{f"SANDBOX_{code.upper()}_API_KEY": self.secrets[code] for code in self.sims},
        }

    def stop(self) -> None:
        self.stop_event.set()
        for server in self.servers.values():
            server.stop()


# The demo's Dagster instance: embedded SQLite under DAGSTER_HOME, no services. The run queue is polled every
# second instead of every 5 s: a fulfilment's push run waits in that queue, and shipping latency counts. Runs are
# dequeued in threads, so one marketplace's push does not wait for the other's process start; sensors are evaluated
# in threads (as in production), so a slow run-status sensor does not delay the inbox sensor's tick, and a tick's
# runs (one per marketplace) are submitted side by side.
DEMO_INSTANCE_YAML = (
    "telemetry:\n  enabled: false\n"
    "run_queue:\n  dequeue_interval_seconds: 1\n  dequeue_use_threads: true\n  dequeue_num_workers: 4\n"
    # One stock run per marketplace at a time (as in production): a file never goes over one Mirakl is processing.
    "  tag_concurrency_limits:\n    - key: mirakl_pipelines/stock\n      value: {applyLimitPerUniqueValue: true}\n"
    "      limit: 1\n"
    "sensors:\n  use_threads: true\n  num_workers: 4\n  num_submit_workers: 4\n"
)


def write_demo_instance(dagster_home: Path, console_log_level: str | None = None) -> None:
    """`console_log_level`: what runs print on the console (python_log_level; Dagster's default is DEBUG, a line
    per event). The UI keeps every event either way."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    logs = f"python_logs:\n  python_log_level: {console_log_level}\n" if console_log_level else ""
    (dagster_home / "dagster.yaml").write_text(DEMO_INSTANCE_YAML + logs)


def start_shipping(sandbox: Sandbox, ledger_url: str, *, seed: int, delay_seconds: float = 30.0,
                   partial_share: float = 0.1, unknown_carrier_share: float = 0.05,
                   dagster_graphql_url: str | None = None) -> tuple[RunningServer, Warehouse]:
    """The Shopify side of shipping: the webhook receiver (in a thread, storing into `ledger_url`'s inbox, and
    starting each fulfilment's push run through `dagster_graphql_url` when given), the store's subscription to it
    (fulfilments, and inventory changes for the stock flow), and a warehouse fulfilling imported orders after a delay
    with a French carrier mix."""
    receiver = serve_in_thread(create_webhook_app(ledger_url, [sandbox.secrets["webhook"]],
                                                  dagster_graphql_url=dagster_graphql_url), name="webhooks")
    sandbox.store.subscribe(f"{receiver.url}{WEBHOOK_PATH}", sandbox.secrets["webhook"],
                            list(FULFILMENT_TOPICS + INVENTORY_TOPICS))
    warehouse = Warehouse(sandbox.store, seed=seed, delay_seconds=delay_seconds, partial_share=partial_share,
                          unknown_carrier_share=unknown_carrier_share)
    warehouse.start()
    return receiver, warehouse


def start_sandbox(seed: int = 7, orders_per_minute: float = 4.0, rate_limit_scale: float = 1.0,
                  debit_delay: timedelta = timedelta(seconds=20), backlog: int = 3, plain: bool = False,
                  past_days: int = 0, search_index_lag_seconds: float = 0.0, showcase: bool = False) -> Sandbox:
    """The demo's simulators on loopback. `plain`: the scenario without the spec's variety (French orders paid on
    acceptance, no promotion, fee or cancellation), for benchmarks that stay comparable from one run to the next.
    `past_days`: orders on each of that many days before today (the partitions then start on the first of them).
    `showcase`: the first orders show the flows chance might leave out of the first minutes (ScenarioSettings)."""
    keys = {code: f"sandbox-{code}-{secrets.token_hex(8)}" for code in DEMO_MARKETPLACES}
    keys["shopify"] = f"shpat_{secrets.token_hex(16)}"
    keys["webhook"] = secrets.token_hex(16)
    sims = {
        code: MarketplaceSim(MarketplaceSettings(
            code=code, api_key=keys[code], acceptance_window=timedelta(hours=spec["window_hours"]),
            debit_delay=debit_delay, rate_limit_scale=rate_limit_scale,
            accepts_unregistered_carriers=spec["accepts_unregistered_carriers"],
            multiple_shipments=spec["multiple_shipments"], deferred_debit_delay=DEMO_DEFERRED_DEBIT,
            payment_duration_day=DEMO_PAYMENT_DAY, receive_delay=DEMO_RECEIVE_DELAY,
        ))
        for code, spec in DEMO_MARKETPLACES.items()
    }
    store = ShopifyStore.from_catalogue_file(CATALOGUE, StoreSettings(access_token=keys["shopify"],
                                                                      search_index_lag_seconds=search_index_lag_seconds))
    catalogue = yaml.safe_load(CATALOGUE.read_text())
    excluded = tuple(code for code, spec in DEMO_MARKETPLACES.items() if spec["tax_mode"] == "TAX_EXCLUDED")
    scenario_settings = (ScenarioSettings.plain(seed=seed, orders_per_minute=orders_per_minute) if plain else
                         ScenarioSettings(seed=seed, orders_per_minute=orders_per_minute, showcase=showcase,
                                          tax_excluded_marketplaces=excluded, cancel_delay_seconds=DEMO_CANCEL_DELAY))
    scenario = Scenario(sims, catalogue, scenario_settings)
    # Every marketplace lists the catalogue at the quantities a previous tool left (every location, no buffer), and
    # the SKUs Shopify no longer has at 0 (an operator zeroed them: nothing would ever update them).
    for sim in sims.values():
        sim.offers.seed(catalogue_offers(catalogue, unknown_quantity=0))
    servers = {code: serve_in_thread(create_mirakl_app(sim), name=code) for code, sim in sims.items()}
    servers["shopify"] = serve_in_thread(create_shopify_app(store), name="shopify")
    past = scenario.seed_past_days(past_days, DEMO_PAST_ORDERS_PER_DAY) if past_days else None
    scenario.seed_backlog(backlog)
    return Sandbox(sims, store, scenario, servers, keys, partitions_start=past)


def _print_urls(sandbox: Sandbox, extra: dict[str, str]) -> None:
    """Where everything is, with the sandbox's keys: they are generated per run and die with it, and a user
    needs them to call the sandbox APIs themselves."""
    keys = {**{code: f"API key {sandbox.secrets[code]}" for code in sandbox.sims},
            "shopify": f"access token {sandbox.secrets['shopify']}",
            "webhooks": f"HMAC secret {sandbox.secrets['webhook']}"}
    print("mirakl-pipelines sandbox is up (throwaway keys, valid until the demo stops):")
    for name, server in sandbox.servers.items():
        print(f"  {name:<16} {server.url:<24} {keys.get(name, '')}".rstrip())
    for name, url in extra.items():
        print(f"  {name:<16} {url}")
    code = next(iter(sandbox.sims))
    mirakl, shopify = sandbox.servers[code].url, sandbox.servers["shopify"].url
    query = '{"query": "{ orders(first: 5, reverse: true) { nodes { name createdAt displayFinancialStatus } } }"}'
    print("try:")
    print(f"  curl -H 'Authorization: {sandbox.secrets[code]}' '{mirakl}/api/orders?max=5'")
    print(f"  curl -H 'X-Shopify-Access-Token: {sandbox.secrets['shopify']}' -H 'Content-Type: application/json' \\\n"
          f"       -d '{query}' {shopify}/admin/api/{sandbox.store.settings.api_version}/graphql.json")
    print(f"  read-only views, no key: {shopify}/_sandbox/orders.html (the store's orders), "
          f"{mirakl}/_sandbox/orders.html ({code}'s orders)")
    sys.stdout.flush()


@dataclass
class _Signals:
    """Ctrl-C or SIGTERM sets `stop`; a second one sets `hurry` (stop now, without waiting for runs)."""

    stop: threading.Event = field(default_factory=threading.Event)
    hurry: threading.Event = field(default_factory=threading.Event)

    def _handle(self, *_) -> None:
        (self.hurry if self.stop.is_set() else self.stop).set()


def _stop_on_signals() -> _Signals:
    """Installed before any child starts: a child inherits an *ignored* SIGINT (as under a non-interactive
    shell's `&`), and dagster dev then ignores SIGTERM too."""
    signals = _Signals()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signals._handle)
    return signals


def _wait(stop: threading.Event, child: subprocess.Popen | None = None) -> None:
    """Block until `stop` is set, or until `child` exits."""
    while not stop.wait(0.5):
        if child is not None and child.poll() is not None:
            return


def run_sandbox_only(seed: int, orders_per_minute: float, workdir: str) -> int:
    signals = _stop_on_signals()
    sandbox = start_sandbox(seed=seed, orders_per_minute=orders_per_minute)
    sandbox.start_scenario()
    _print_urls(sandbox, {})
    try:
        _wait(signals.stop)
    finally:
        sandbox.stop()
    return 0


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on host:port (bound as the webserver binds: SO_REUSEADDR, so a
    port in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _port_taken_message(port: int) -> str:
    other = next((p for p in range(port + 1, min(port + 100, 65536)) if not port_in_use(p)), port + 1)
    return (f"port {port} on 127.0.0.1 is already in use by another program: the Dagster UI cannot listen there.\n"
            f"Choose another port: make demo DEMO_ARGS=\"--port {other}\"   (or: mirakl-pipelines demo --port {other})")


class _DagsterConsole:
    """dagster dev's output: every line into `<workdir>/dagster.log`, and onto the console until the demo
    starts stopping (what dagster prints while it is being stopped is noise: the full log keeps it)."""

    def __init__(self, stream, log_path: Path):
        self.muted = threading.Event()
        self._thread = threading.Thread(target=self._pump, args=(stream, log_path), name="dagster-console", daemon=True)
        self._thread.start()

    def _pump(self, stream, log_path: Path) -> None:
        with log_path.open("a", encoding="utf-8") as log:
            for line in stream:
                log.write(line)
                log.flush()
                if not self.muted.is_set():
                    sys.stdout.write(line)
                    sys.stdout.flush()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _announce_ui(port: int, stop: threading.Event, log_path: Path, timeout: float = 300.0) -> None:
    """Say when the UI answers (dagster's own "Serving…" line is below the console's log level)."""
    import httpx

    deadline = time.monotonic() + timeout
    while not stop.wait(1.0) and time.monotonic() < deadline:
        try:
            info = httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            continue
        if "dagster_webserver_version" in info:
            print(f"Dagster UI ready: http://127.0.0.1:{port}  (runs' INFO lines below; every event in the UI "
                  f"and in {log_path})")
            sys.stdout.flush()
        return


# How long a stop waits for the runs in progress to finish (a run takes seconds; a stopped one would end FAILED).
DEMO_RUN_GRACE_SECONDS = 45.0
_UNFINISHED = ("NOT_STARTED", "QUEUED", "STARTING", "STARTED", "CANCELING")


def _runs(dagster_home: Path, statuses: tuple[str, ...]) -> list:
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        return list(instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus[s] for s in statuses])))


def _let_runs_finish(dagster_home: Path, hurry: threading.Event, grace: float = DEMO_RUN_GRACE_SECONDS) -> None:
    """Wait until no run is starting or executing (or `grace` passed, or a second Ctrl-C): the daemon keeps
    launching, so the moment none runs is the moment to stop."""
    deadline = time.monotonic() + grace
    told = False
    while time.monotonic() < deadline and not hurry.is_set():
        running = _runs(dagster_home, ("STARTING", "STARTED", "CANCELING"))
        if not running:
            return
        if not told:
            print(f"waiting for {len(running)} run(s) in progress to finish (Ctrl-C again to stop at once)…")
            sys.stdout.flush()
            told = True
        hurry.wait(0.5)


def _cancel_unfinished_runs(dagster_home: Path, stopped_at: float) -> int:
    """Runs the stop cut short end CANCELED, not FAILED: those that never finished, and those that failed
    because their process was stopped (after `stopped_at`, epoch seconds). Returns how many."""
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        cut = list(instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus[s] for s in _UNFINISHED])))
        failed = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.FAILURE]), limit=20)
        cut += [run for run in failed
                if (record := instance.get_run_record_by_id(run.run_id)) and record.end_time and record.end_time >= stopped_at]
        for run in cut:
            instance.report_run_canceled(run, message="The demo stopped before this run finished.")
    return len(cut)


def _stop_process_group(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop `dagster dev` and everything it started. SIGTERM to the group takes it down in seconds
    (measured: SIGINT left every child running for 20 s); SIGKILL if that is not enough."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    # dagster dev may exit before its children: clear whatever is left of its process group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_demo(port: int, seed: int, orders_per_minute: float, workdir: str, duration: float | None = None) -> int:
    """The demo until Ctrl-C, or for `duration` seconds, after which it stops as Ctrl-C does and prints its summary."""
    work = (Path(workdir) if Path(workdir).is_absolute() else PROJECT_ROOT / workdir).resolve()
    other = running_demo.find([work])
    if other is not None:
        print(f"a demo is already running in {work} (pid {other.pid}, UI on port {other.port}): stop it first, "
              f"or give this one another --workdir", file=sys.stderr)
        return 2
    if port_in_use(port):
        print(_port_taken_message(port), file=sys.stderr)
        return 2
    dagster_home = work / "dagster_home"
    write_demo_instance(dagster_home, console_log_level="INFO")
    signals = _stop_on_signals()
    stop = signals.stop
    started = time.monotonic()
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    sandbox = start_sandbox(seed=seed, orders_per_minute=orders_per_minute, past_days=DEMO_PAST_DAYS,
                            search_index_lag_seconds=DEMO_SEARCH_INDEX_LAG_SECONDS, showcase=True)
    config_path = work / "marketplaces.yaml"
    # The receiver starts fulfilments' push runs through the UI's GraphQL endpoint; the sensor, reading this, leaves
    # fresh deliveries to it.
    graphql_url = f"http://127.0.0.1:{port}/graphql"
    config_path.write_text(yaml.safe_dump({**sandbox.settings_dict(work), "webhooks": {"dagster_graphql_url": graphql_url}},
                                          sort_keys=False))
    env = {**os.environ, **sandbox.env(), CONFIG_ENV_VAR: str(config_path), "DAGSTER_HOME": str(dagster_home),
           RATE_LIMIT_SCALE_ENV: "1", "PYTHONWARNINGS": _quiet_warnings()}
    sandbox.start_scenario()
    receiver, warehouse = start_shipping(sandbox, f"sqlite:///{work / 'ledger.sqlite'}", seed=seed,
                                         delay_seconds=DEMO_WAREHOUSE_DELAY, dagster_graphql_url=graphql_url)
    sandbox.servers["webhooks"] = receiver
    floor = ShopFloor(sandbox.store, seed=seed)
    floor.start(DEMO_SHOP_FLOOR_SECONDS)
    log_path = work / "dagster.log"
    # Run from the work directory: the production dagster.yaml at the project root is not the demo's instance.
    # The services log warnings only (not every sensor tick); runs log INFO (python_log_level in the instance).
    dagster = subprocess.Popen(
        [sys.executable, "-W", "ignore:Function `dev_command` is superseded", "-m", "dagster", "dev",
         "-m", "mirakl_pipelines.definitions", "-h", "127.0.0.1", "-p", str(port), "--log-level", "warning"],
        env=env, cwd=work, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="replace",
    )
    console = _DagsterConsole(dagster.stdout, log_path)
    running_demo.record(work, config_path, port)
    _print_urls(sandbox, {"dagster UI": f"http://127.0.0.1:{port}", "config": str(config_path)})
    threading.Thread(target=_announce_ui, args=(port, stop, log_path), name="announce-ui", daemon=True).start()
    try:
        _wait(stop, dagster)
        if dagster.poll() is not None:
            console.join(5)
            print(f"dagster dev exited with {dagster.returncode} (its log: {log_path})", file=sys.stderr)
            return dagster.returncode or 1
        print("stopping the demo…")
        sys.stdout.flush()
        _let_runs_finish(dagster_home, signals.hurry)
        return 0
    finally:
        console.muted.set()
        stopped_at = time.time()
        _stop_process_group(dagster)
        warehouse.stop()
        floor.stop()
        sandbox.stop()
        running_demo.clear(work)
        _tidy_runs(dagster_home, stopped_at)
        print(f"demo stopped; its config, ledger, datasets and Dagster instance stay in {work}")
        if duration is not None:
            _print_summary(config_path, dagster_home, time.monotonic() - started)
        sys.stdout.flush()


# Warnings every process of dagster dev prints again each time it loads the definitions (each run does): for the
# code's developers, not for the demo's console. Message prefixes, as PYTHONWARNINGS matches them.
DEMO_SILENCED_WARNINGS = (
    "Parameter `backfill_policy` of function `asset` is currently in beta",
    "Asset job orders_sync materializes assets with varying BackfillPolicies",
)


def _quiet_warnings() -> str:
    ours = [f"ignore:{message}" for message in DEMO_SILENCED_WARNINGS]
    return ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), *ours]))


def _tidy_runs(dagster_home: Path, stopped_at: float) -> None:
    try:
        cancelled = _cancel_unfinished_runs(dagster_home, stopped_at)
    except Exception as e:  # the demo stopped either way: say so, do not raise over it
        print(f"could not mark the interrupted runs canceled: {e!r}", file=sys.stderr)
        return
    if cancelled:
        print(f"{cancelled} run(s) cut short by the stop were marked CANCELED")


def _print_summary(config_path: Path, dagster_home: Path, seconds: float) -> None:
    from mirakl_pipelines.demo_summary import summarize

    try:
        with warnings.catch_warnings():  # the summary loads the definitions: the same warnings as dagster's processes
            for message in DEMO_SILENCED_WARNINGS:
                warnings.filterwarnings("ignore", message=re.escape(message))
            print(summarize(load_settings(config_path), dagster_home, seconds))
    except Exception as e:  # the demo itself ran: a summary that cannot be read is reported, not raised
        print(f"demo summary unavailable: {e!r}", file=sys.stderr)
    sys.stdout.flush()
