"""deploy/ holds together: the compose file, the image, the workspace and the Helm values agree with each other
and with the project's dagster.yaml, and no secret is written in them.

No Docker daemon or Kubernetes cluster runs here, so the compose file and the chart values are checked as
files; test_production_profile.py runs the same processes with the same instance on a real PostgreSQL.
"""

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from mirakl_pipelines.config import PROJECT_ROOT, load_settings
from mirakl_pipelines.ledger import Ledger

DEPLOY = PROJECT_ROOT / "deploy"
INSTANCE_SERVICES = ("code-server", "webserver", "daemon")  # the processes that open Dagster's instance
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY|WEBHOOK_URL")
INTERPOLATION = re.compile(r"^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$")


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return _yaml(DEPLOY / "docker-compose.yaml")


@pytest.fixture(scope="module")
def instance() -> dict:
    return _yaml(PROJECT_ROOT / "dagster.yaml")


def _instance_env_vars(node) -> set[str]:
    """The environment variables dagster.yaml reads ({env: NAME} anywhere in it)."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_instance_env_vars(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_instance_env_vars(v) for v in node)) if node else set()
    return set()


def _dagster_module() -> tuple[str, str]:
    tool = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["dagster"]
    return tool["module_name"], tool["code_location_name"]


def test_compose_runs_dagsters_deployment_layout(compose):
    services = compose["services"]
    assert set(services) == {"postgresql", "code-server", "webserver", "daemon", "webhooks"}
    module, location = _dagster_module()
    grpc = _yaml(DEPLOY / "workspace.yaml")["load_from"][0]["grpc_server"]
    assert grpc == {"host": "code-server", "port": 4000, "location_name": location}
    code_server = services["code-server"]["command"]
    assert code_server[:3] == ["dagster", "api", "grpc"]
    assert code_server[code_server.index("-p") + 1] == str(grpc["port"])
    assert code_server[code_server.index("-m") + 1] == module
    for name in ("webserver", "daemon"):
        command = services[name]["command"]
        assert command[command.index("-w") + 1] == "/opt/dagster/dagster_home/workspace.yaml"
        assert services[name]["depends_on"] == {"postgresql": {"condition": "service_healthy"},
                                                "code-server": {"condition": "service_healthy"}}
    assert "healthcheck" in services["postgresql"] and "healthcheck" in services["code-server"]
    # One network, one image for every Dagster process (the code server's build).
    assert all(s["networks"] == ["mirakl_pipelines"] for s in services.values())
    assert {s["image"] for n, s in services.items() if n != "postgresql"} == {"mirakl-pipelines:${MIRAKL_PIPELINES_IMAGE_TAG:-latest}"}
    assert {str(s["build"]) for n, s in services.items() if n != "postgresql"} == {
        str({"context": "..", "dockerfile": "deploy/Dockerfile"})}


def test_compose_gives_every_instance_process_what_dagster_yaml_reads(compose, instance):
    needed = _instance_env_vars(instance)
    assert needed == {"DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"}
    for name in INSTANCE_SERVICES:
        environment = compose["services"][name]["environment"]
        assert needed <= set(environment), (name, needed - set(environment))
        assert environment["DAGSTER_PG_HOST"] == "postgresql"
    # The pipelines' own settings reach the processes that run them (runs execute in the code server).
    for name in ("code-server", "webhooks"):
        environment = compose["services"][name]["environment"]
        assert environment["MIRAKL_PIPELINES_CONFIG"] == "/opt/dagster/config/marketplaces.yaml"
        assert environment["MIRAKL_PIPELINES_LEDGER_URL"].startswith("postgresql+psycopg2://")
        assert compose["services"][name]["env_file"] == ".env"


def test_compose_holds_no_secret(compose):
    for service_name, service in compose["services"].items():
        for name, value in service.get("environment", {}).items():
            if SECRET_NAME.search(name):
                assert INTERPOLATION.match(str(value)), f"{service_name}: {name} is written inline"
    # The passwords must be given: compose refuses to start without them rather than use an empty one.
    assert compose["services"]["postgresql"]["environment"]["POSTGRES_PASSWORD"].startswith("${DAGSTER_PG_PASSWORD:?")
    text = (DEPLOY / "docker-compose.yaml").read_text()
    assert "${DAGSTER_PG_PASSWORD:?" in text


def test_env_example_names_every_variable_the_default_config_reads_and_no_secret():
    example = dict(line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    settings = load_settings(PROJECT_ROOT / "data" / "marketplaces.yaml")
    named = {m.api_key_env for m in settings.marketplaces}
    named |= {s.access_token_env for s in settings.shopify_stores} | {s.webhook_secret_env for s in settings.shopify_stores}
    assert named <= set(example), named - set(example)
    assert {"DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB", "MIRAKL_LEDGER_DB"} <= set(example)
    assert all(value == "" for name, value in example.items() if SECRET_NAME.search(name)), example


def test_dockerfile_builds_the_production_image():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if line and not line.startswith((" ", "#"))]
    assert instructions[0] == "FROM python:3.11-slim"
    assert "RUN pip install -r requirements.lock" in instructions
    assert "RUN pip install --no-deps -e ." in instructions
    # Every COPY source exists (the build context is the project root).
    for line in instructions:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (PROJECT_ROOT / source).exists(), source
    assert "COPY dagster.yaml deploy/workspace.yaml $DAGSTER_HOME/" in instructions
    module, _ = _dagster_module()
    assert instructions[-1] == f'CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "{module}"]'
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert {".git", ".venv", "data/warehouse", "deploy/.env"} <= set(ignored)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(node):
    if isinstance(node, dict):
        return {_snake(k): _snake_keys(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_snake_keys(v) for v in node]
    return node


def test_helm_values_carry_the_same_production_policy_as_dagster_yaml(instance):
    values = _yaml(DEPLOY / "helm" / "values.yaml")
    daemon = values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert daemon["runCoordinator"]["type"] == instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert queued["dequeueIntervalSeconds"] == instance["run_coordinator"]["config"]["dequeue_interval_seconds"]
    assert queued["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    # Tag values ({applyLimitPerUniqueValue: true}) are passed through to dagster.yaml as they are.
    assert queued["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert values["additionalInstanceConfig"]["concurrency"] == {"pools": instance["concurrency"]["pools"]}
    monitoring = _snake_keys(daemon["runMonitoring"])
    assert {k: monitoring[k] for k in instance["run_monitoring"]} == instance["run_monitoring"]
    assert _snake_keys(daemon["runRetries"]) == instance["run_retries"]
    assert _snake_keys(daemon["sensors"]) == instance["sensors"]
    assert _snake_keys(daemon["schedules"]) == instance["schedules"]
    retention = {k: {"purge_after_days": v["purgeAfterDays"]} for k, v in values["retention"].items() if k != "enabled"}
    assert retention == instance["retention"]
    assert values["telemetry"] == instance["telemetry"]


def test_helm_values_run_our_image_with_secrets_from_kubernetes():
    values = _yaml(DEPLOY / "helm" / "values.yaml")
    module, _ = _dagster_module()
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", module]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert deployment["envSecrets"] == values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]
    assert set(deployment["env"]) == {"MIRAKL_PIPELINES_CONFIG"}  # everything else from the secret
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlPassword"] == ""
    assert values["generatePostgresqlPasswordSecret"] is False and values["global"]["postgresqlSecretName"]


@pytest.mark.postgres
def test_postgres_init_script_creates_the_ledger_database(postgres_server):
    """The compose PostgreSQL's first-start script, run with psql against a real server, then the ledger in it."""
    psql = postgres_server.bin_dir / "psql"
    if not psql.is_file():
        pytest.skip(f"psql not found next to initdb in {postgres_server.bin_dir}")
    env = {**os.environ, "PATH": f"{postgres_server.bin_dir}:{os.environ['PATH']}", "PGHOST": postgres_server.host,
           "PGPORT": str(postgres_server.port), "POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres",
           "MIRAKL_LEDGER_DB": "mirakl_ledger_init"}
    done = subprocess.run(["sh", str(DEPLOY / "postgres-init" / "10-ledger-database.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with Ledger.connect(postgres_server.url("mirakl_ledger_init")) as ledger:
        assert ledger.backend == "postgresql"
        assert sa.inspect(ledger.engine).has_table("order_links")
