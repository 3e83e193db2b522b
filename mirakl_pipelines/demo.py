"""The demo: two sandbox Mirakl marketplaces and a sandbox Shopify store on 127.0.0.1, a scenario
placing orders, and the Dagster UI (webserver + daemon, schedules running) on an embedded SQLite
instance. Everything it writes stays under its work directory; Ctrl-C stops every process it started.
"""

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import yaml

from mirakl_pipelines.config import CONFIG_ENV_VAR, PROJECT_ROOT, RATE_LIMIT_SCALE_ENV, load_settings
from mirakl_pipelines.sandbox.mirakl.app import create_mirakl_app
from mirakl_pipelines.sandbox.mirakl.state import MarketplaceSettings, MarketplaceSim
from mirakl_pipelines.sandbox.scenario import Scenario, ScenarioSettings
from mirakl_pipelines.sandbox.server import RunningServer, serve_in_thread
from mirakl_pipelines.sandbox.shopify.app import create_shopify_app
from mirakl_pipelines.sandbox.shopify.store import ShopifyStore, StoreSettings
from mirakl_pipelines.sandbox.shopify.warehouse import Warehouse
from mirakl_pipelines.webhooks.app import WEBHOOK_PATH, create_webhook_app
from mirakl_pipelines.webhooks.topics import FULFILMENT_TOPICS

CATALOGUE = PROJECT_ROOT / "data" / "sandbox" / "catalogue.yaml"
# Two marketplaces side by side. Decathlon quotes prices tax included, ships complete orders only (one OR23 +
# OR24), queues unmapped carriers and gets the invoice (OR74, served by the sandbox store); Leroy Merlin quotes
# them tax excluded, has Mirakl's multiple shipments (one ST01 shipment per parcel, each with its tracking) and
# takes carriers by name and URL.
DEMO_MARKETPLACES = {
    "decathlon_fr": dict(name="Decathlon FR (sandbox)", window_hours=72, refuse_unservable=False, tax_mode="TAX_INCLUDED",
                         partial_shipments=False, multiple_shipments=False, accepts_unregistered_carriers=False,
                         invoice=True),
    "leroymerlin_fr": dict(name="Leroy Merlin FR (sandbox)", window_hours=120, refuse_unservable=True,
                           tax_mode="TAX_EXCLUDED", partial_shipments=True, multiple_shipments=True,
                           accepts_unregistered_carriers=True, invoice=False),
}
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


@dataclass
class Sandbox:
    """The running simulators, their servers and the scenario."""

    sims: dict[str, MarketplaceSim]
    store: ShopifyStore
    scenario: Scenario
    servers: dict[str, RunningServer]
    secrets: dict[str, str]
    stop_event: threading.Event = field(default_factory=threading.Event)

    def start_scenario(self, interval: float = 1.0) -> threading.Thread:
        thread = threading.Thread(target=self.scenario.run, args=(self.stop_event, interval), name="scenario", daemon=True)
        thread.start()
        return thread

    def settings_dict(self, workdir: Path, cron: str = "* * * * *") -> dict:
        """The pipelines' configuration for this sandbox (what a real deployment writes by hand)."""
        return {
            "partitions_start_date": "2026-01-01",
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
# second instead of every 5 s: a fulfilment's push run waits in that queue, and shipping latency counts.
DEMO_INSTANCE_YAML = "telemetry:\n  enabled: false\nrun_queue:\n  dequeue_interval_seconds: 1\n"


def write_demo_instance(dagster_home: Path) -> None:
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(DEMO_INSTANCE_YAML)


def start_shipping(sandbox: Sandbox, ledger_url: str, *, seed: int, delay_seconds: float = 30.0,
                   partial_share: float = 0.1, unknown_carrier_share: float = 0.05) -> tuple[RunningServer, Warehouse]:
    """The Shopify side of shipping: the webhook receiver (in a thread, storing into `ledger_url`'s inbox), the
    store's subscription to it, and a warehouse fulfilling imported orders after a delay with a French carrier mix."""
    receiver = serve_in_thread(create_webhook_app(ledger_url, [sandbox.secrets["webhook"]]), name="webhooks")
    sandbox.store.subscribe(f"{receiver.url}{WEBHOOK_PATH}", sandbox.secrets["webhook"], list(FULFILMENT_TOPICS))
    warehouse = Warehouse(sandbox.store, seed=seed, delay_seconds=delay_seconds, partial_share=partial_share,
                          unknown_carrier_share=unknown_carrier_share)
    warehouse.start()
    return receiver, warehouse


def start_sandbox(seed: int = 7, orders_per_minute: float = 4.0, rate_limit_scale: float = 1.0,
                  debit_delay: timedelta = timedelta(seconds=20), backlog: int = 3, plain: bool = False) -> Sandbox:
    """The demo's simulators on loopback. `plain`: the scenario without the spec's variety (French orders paid on
    acceptance, no promotion, fee or cancellation), for benchmarks that stay comparable from one run to the next."""
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
    store = ShopifyStore.from_catalogue_file(CATALOGUE, StoreSettings(access_token=keys["shopify"]))
    catalogue = yaml.safe_load(CATALOGUE.read_text())
    excluded = tuple(code for code, spec in DEMO_MARKETPLACES.items() if spec["tax_mode"] == "TAX_EXCLUDED")
    scenario_settings = (ScenarioSettings.plain(seed=seed, orders_per_minute=orders_per_minute) if plain else
                         ScenarioSettings(seed=seed, orders_per_minute=orders_per_minute,
                                          tax_excluded_marketplaces=excluded, cancel_delay_seconds=DEMO_CANCEL_DELAY))
    scenario = Scenario(sims, catalogue, scenario_settings)
    servers = {code: serve_in_thread(create_mirakl_app(sim), name=code) for code, sim in sims.items()}
    servers["shopify"] = serve_in_thread(create_shopify_app(store), name="shopify")
    scenario.seed_backlog(backlog)
    return Sandbox(sims, store, scenario, servers, keys)


def _print_urls(sandbox: Sandbox, extra: dict[str, str]) -> None:
    print("mirakl-pipelines sandbox is up:")
    for name, server in sandbox.servers.items():
        print(f"  {name:<16} {server.url}")
    for name, url in extra.items():
        print(f"  {name:<16} {url}")
    sys.stdout.flush()


def _stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM. Installed before any child starts: a child inherits an
    *ignored* SIGINT (as under a non-interactive shell's `&`), and dagster dev then ignores SIGTERM too."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _wait(stop: threading.Event, child: subprocess.Popen | None = None) -> None:
    """Block until `stop` is set, or until `child` exits."""
    while not stop.wait(0.5):
        if child is not None and child.poll() is not None:
            return


def run_sandbox_only(seed: int, orders_per_minute: float, workdir: str) -> int:
    stop = _stop_on_signals()
    sandbox = start_sandbox(seed=seed, orders_per_minute=orders_per_minute)
    sandbox.start_scenario()
    _print_urls(sandbox, {})
    try:
        _wait(stop)
    finally:
        sandbox.stop()
    return 0


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
    """The demo until Ctrl-C, or for `duration` seconds, after which it stops and prints its summary."""
    work = (Path(workdir) if Path(workdir).is_absolute() else PROJECT_ROOT / workdir).resolve()
    dagster_home = work / "dagster_home"
    write_demo_instance(dagster_home)
    stop = _stop_on_signals()
    started = time.monotonic()
    if duration is not None:
        timer = threading.Timer(duration, stop.set)
        timer.daemon = True
        timer.start()
    sandbox = start_sandbox(seed=seed, orders_per_minute=orders_per_minute)
    config_path = work / "marketplaces.yaml"
    config_path.write_text(yaml.safe_dump(sandbox.settings_dict(work), sort_keys=False))
    env = {**os.environ, **sandbox.env(), CONFIG_ENV_VAR: str(config_path), "DAGSTER_HOME": str(dagster_home),
           RATE_LIMIT_SCALE_ENV: "1"}
    sandbox.start_scenario()
    receiver, warehouse = start_shipping(sandbox, f"sqlite:///{work / 'ledger.sqlite'}", seed=seed,
                                         delay_seconds=DEMO_WAREHOUSE_DELAY)
    sandbox.servers["webhooks"] = receiver
    # Run from the work directory: the production dagster.yaml at the project root is not the demo's instance.
    dagster = subprocess.Popen(
        [sys.executable, "-W", "ignore:Function `dev_command` is superseded", "-m", "dagster", "dev",
         "-m", "mirakl_pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=env, cwd=work, start_new_session=True,
    )
    _print_urls(sandbox, {"dagster UI": f"http://127.0.0.1:{port}", "config": str(config_path)})
    try:
        _wait(stop, dagster)
        if dagster.poll() is not None:
            print(f"dagster dev exited with {dagster.returncode}", file=sys.stderr)
            return dagster.returncode or 1
        return 0
    finally:
        _stop_process_group(dagster)
        warehouse.stop()
        sandbox.stop()
        if duration is not None:
            _print_summary(config_path, dagster_home, time.monotonic() - started)


def _print_summary(config_path: Path, dagster_home: Path, seconds: float) -> None:
    from mirakl_pipelines.demo_summary import summarize

    try:
        print(summarize(load_settings(config_path), dagster_home, seconds))
    except Exception as e:  # the demo itself ran: a summary that cannot be read is reported, not raised
        print(f"demo summary unavailable: {e!r}", file=sys.stderr)
    sys.stdout.flush()
