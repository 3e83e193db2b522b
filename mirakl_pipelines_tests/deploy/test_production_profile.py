"""The production profile, proven on a real PostgreSQL server: the code server (gRPC), the daemon and the
webserver as separate processes, with the project's dagster.yaml (PostgreSQL from DAGSTER_PG_*) and the
ledger in a second database, as deploy/docker-compose.yaml runs them. The order schedules tick every minute
against the sandbox (its own process) until every placed order is in the Shopify store.

Orders are placed before the first tick, per marketplace: some already paid (SHIPPING, imported by the first
tick) and some awaiting acceptance (accepted by the first tick, paid two seconds later, imported by the
second). So the test takes two schedule ticks, about two to three minutes.
"""

import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from mirakl_pipelines.bench.harness import (
    MARKETPLACES,
    order_specs,
    sandbox_process,
    stop_process_group,
    write_config,
)
from mirakl_pipelines.config import CONFIG_ENV_VAR, PROJECT_ROOT, RATE_LIMIT_SCALE_ENV
from mirakl_pipelines.defs.orders.automation import JOB_NAME
from mirakl_pipelines.demo import DEMO_MARKETPLACES
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.ledger.tables import order_links
from mirakl_pipelines.sandbox.server import free_port
from mirakl_pipelines.sandbox.shopify.schema import shopify_sdl_path
from mirakl_pipelines_tests.test_demo_smoke import _processes_with_env

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(720)]  # 420 s, plus a possible wait for midnight

PAID, AWAITING = 2, 2  # orders placed per marketplace in each state
DEADLINE_SECONDS = 300  # two minute ticks after start-up, with room for a loaded 2-core machine
# Mirakl's call intervals shrunk tenfold on both sides (OR11: 6 s instead of 60 s): two runs of a marketplace a
# little under a minute apart (the queue delays one more than the other) must not skip a refresh here.
RATE_LIMIT_SCALE = 0.1
UNFINISHED = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}

RUNS_QUERY = """
{ runsOrError { __typename ... on Runs { results { runId status jobName tags { key value } } } } }
"""
LOCATIONS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


@pytest.fixture
def databases(postgres_server) -> tuple[str, str]:
    """Dagster's instance database and the ledger's, on the session's PostgreSQL server."""
    return postgres_server.create_database(), postgres_server.create_database()


def _dagster_home(path: Path, code_server_port: int) -> Path:
    """DAGSTER_HOME as the image builds it: the project's dagster.yaml, deploy/workspace.yaml aimed at our port."""
    path.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", path / "dagster.yaml")
    workspace = yaml.safe_load((PROJECT_ROOT / "deploy" / "workspace.yaml").read_text())
    workspace["load_from"][0]["grpc_server"].update(host="127.0.0.1", port=code_server_port)
    (path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
    return path


def _pg_env(instance_url: str) -> dict[str, str]:
    url = make_url(instance_url)
    return {"DAGSTER_PG_HOST": url.host, "DAGSTER_PG_PORT": str(url.port), "DAGSTER_PG_USER": url.username,
            "DAGSTER_PG_PASSWORD": url.password or "", "DAGSTER_PG_DB": url.database}


@contextmanager
def _service(name: str, command: list[str], env: dict[str, str], workdir: Path) -> Iterator[subprocess.Popen]:
    """One long-running process in its own session (its run workers with it), stopped with its group."""
    log = open(workdir / f"{name}.log", "w")
    process = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        yield process
    finally:
        stop_process_group(process, timeout=30)
        log.close()


def _wait_healthy(bin_dir: Path, port: int, process: subprocess.Popen, workdir: Path, timeout: float = 120.0) -> None:
    """Until `dagster api grpc-health-check` (the compose file's health check) passes."""
    deadline = time.monotonic() + timeout
    while subprocess.run([str(bin_dir / "dagster"), "api", "grpc-health-check", "-p", str(port)],
                         capture_output=True, timeout=60).returncode != 0:
        assert process.poll() is None, f"the code server exited with {process.returncode}\n{_tails(workdir)}"
        assert time.monotonic() < deadline, f"the code server is not healthy after {timeout:.0f} s\n{_tails(workdir)}"
        time.sleep(1)


def _tails(workdir: Path) -> str:
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}" for log in sorted(workdir.glob("*.log")))


def _graphql(http: httpx.Client, url: str, query: str) -> dict:
    response = http.post(f"{url}/graphql", json={"query": query})
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _placed_orders(sandbox) -> dict[str, list[str]]:
    """PAID + AWAITING orders on each marketplace, created a moment ago; their ids per marketplace."""
    now = datetime.now(timezone.utc)
    created = [now - timedelta(seconds=30 - i) for i in range(PAID + AWAITING)]
    placed = {}
    for code in MARKETPLACES:
        prefix = code.split("_")[0].upper()
        specs = (order_specs(f"{prefix}-PAID", PAID, "SHIPPING", created[:PAID])
                 + order_specs(f"{prefix}-WAIT", AWAITING, "WAITING_ACCEPTANCE", created[PAID:]))
        for spec in specs:  # quoted as the marketplace quotes its prices
            spec["tax_mode"] = DEMO_MARKETPLACES[code]["tax_mode"]
        placed[code] = sandbox.place_orders(code, specs)
    return placed


def _wait_out_midnight() -> None:
    """Orders placed before midnight UTC and imported after it fall in yesterday's partition, which the
    minute refreshes never read: start after midnight instead (at most a few minutes, rarely)."""
    now = datetime.now(timezone.utc)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), timezone.utc)
    if midnight - now < timedelta(minutes=5):
        time.sleep((midnight - now).total_seconds() + 1)


def test_schedules_import_orders_with_the_production_instance_on_postgres(databases, tmp_path, monkeypatch):
    if not shopify_sdl_path().exists():
        pytest.skip(f"the Shopify sandbox needs the Admin GraphQL SDL, absent at {shopify_sdl_path()}")
    _wait_out_midnight()
    instance_url, ledger_url = databases
    work = tmp_path / "production"
    grpc_port, web_port = free_port(), free_port()
    home = _dagster_home(work / "dagster_home", grpc_port)
    web = f"http://127.0.0.1:{web_port}"
    http = httpx.Client(timeout=30)

    with ExitStack() as stack:
        stack.callback(http.close)
        sandbox = stack.enter_context(sandbox_process(work, debit_delay=2.0, cron="* * * * *",
                                                         rate_limit_scale=RATE_LIMIT_SCALE))
        config = write_config(sandbox, work)
        placed = _placed_orders(sandbox)
        env = {**os.environ, **sandbox.env, **_pg_env(instance_url), "DAGSTER_HOME": str(home),
               CONFIG_ENV_VAR: str(config), "MIRAKL_PIPELINES_LEDGER_URL": ledger_url, RATE_LIMIT_SCALE_ENV: str(RATE_LIMIT_SCALE)}
        workspace = str(home / "workspace.yaml")
        bin_dir = Path(sys.executable).parent  # the venv's console scripts, as the image runs them
        services = {
            "code-server": [str(bin_dir / "dagster"), "api", "grpc", "-h", "127.0.0.1", "-p", str(grpc_port),
                            "-m", "mirakl_pipelines.definitions", "--location-name", "mirakl_pipelines"],
            "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", workspace],
            "webserver": [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(web_port), "-w", workspace],
        }
        # As compose orders them: the daemon and the webserver once the code server answers its health check
        # (a daemon that finds it unreachable retries only a minute later, and would miss a tick).
        processes = {"code-server": stack.enter_context(_service("code-server", services.pop("code-server"), env, work))}
        _wait_healthy(bin_dir, grpc_port, processes["code-server"], work)
        processes |= {name: stack.enter_context(_service(name, command, env, work)) for name, command in services.items()}

        wanted = {f"{code}:{order_id}".lower() for code, ids in placed.items() for order_id in ids}
        deadline = time.monotonic() + DEADLINE_SECONDS
        runs: list[dict] = []
        while True:
            for name, process in processes.items():
                assert process.poll() is None, f"{name} exited with {process.returncode}\n{_tails(work)}"
            shop = [o for o in sandbox.shop_orders() if (o.get("sourceIdentifier") or "").lower() in wanted]
            try:
                runs = _graphql(http, web, RUNS_QUERY)["runsOrError"]["results"]
            except httpx.TransportError:  # the webserver is still starting
                runs = []
            # Done when every order is in the shop and no run is under way (the next tick is most of a minute off).
            if len(shop) >= len(wanted) and runs and not any(r["status"] in UNFINISHED for r in runs):
                break
            assert time.monotonic() < deadline, (
                f"{len(shop)}/{len(wanted)} orders in the shop after {DEADLINE_SECONDS} s; runs: "
                f"{[(r['status'], r['tags']) for r in runs]}\n{_tails(work)}")
            time.sleep(2)

        # The webserver serves from the same PostgreSQL instance and loads the code from the code server.
        assert http.get(f"{web}/server_info").status_code == 200
        entries = _graphql(http, web, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"]
        assert [(e["name"], e["loadStatus"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
            ("mirakl_pipelines", "LOADED", "RepositoryLocation")]
        assert {r["status"] for r in runs} == {"SUCCESS"}, runs
        marketplaces_run = {t["value"] for r in runs if r["jobName"] == JOB_NAME for t in r["tags"] if t["key"] == "marketplace"}
        assert marketplaces_run == set(MARKETPLACES)
        shop_orders = sandbox.shop_orders()

    # Each placed order is in the store exactly once, though later ticks fetched it again.
    identifiers = [(o.get("sourceIdentifier") or "").lower() for o in shop_orders]
    assert sorted(i for i in identifiers if i in wanted) == sorted(wanted)
    assert len(shop_orders) == len(wanted)

    # The ledger, on PostgreSQL: every order imported; those awaiting acceptance accepted first.
    with Ledger.connect(ledger_url) as ledger, ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(order_links.c.marketplace, order_links.c.mirakl_order_id,
                                      order_links.c.import_state, order_links.c.acceptance_state)).all()
    links = {(r.marketplace, r.mirakl_order_id): r for r in rows}
    for code, ids in placed.items():
        for order_id in ids:
            assert links[(code, order_id)].import_state == "imported", links.get((code, order_id))
            if "-WAIT-" in order_id:
                assert links[(code, order_id)].acceptance_state == "accepted"

    # The materialisations and check evaluations, read from Dagster's PostgreSQL event log.
    for name, value in _pg_env(instance_url).items():
        monkeypatch.setenv(name, value)
    _assert_event_log(home)

    # Nothing left behind: no process still runs with this DAGSTER_HOME (run workers included).
    time.sleep(1)
    assert _processes_with_env(str(home)) == []


def _assert_event_log(home: Path) -> None:
    from dagster import AssetKey, DagsterInstance

    from mirakl_pipelines.defs.orders.checks import ORDER_CHECK_SPECS

    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        for asset in ("mirakl_orders", "shopify_orders"):
            records = instance.fetch_materializations(AssetKey(asset), limit=100).records
            materialised = {r.event_log_entry.dagster_event.partition.split("|")[-1] for r in records}
            assert materialised == set(MARKETPLACES), (asset, materialised)
        imported = sum(int(r.asset_materialization.metadata["imported"].value)
                       for r in instance.fetch_materializations(AssetKey("shopify_orders"), limit=100).records)
        assert imported == len(MARKETPLACES) * (PAID + AWAITING)
        for spec in ORDER_CHECK_SPECS:
            history = instance.event_log_storage.get_asset_check_execution_history(spec.key, limit=100)
            assert history, f"no evaluation of {spec.key.to_user_string()}"
            assert {record.status.value for record in history} == {"SUCCEEDED"}, (spec.key, history)
