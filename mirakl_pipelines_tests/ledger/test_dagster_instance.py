"""The production dagster.yaml is valid for Dagster 1.13 and its PostgreSQL storage really connects.

(Here because the instance shares the ledger's PostgreSQL in production; the file is at the project root.)
"""

import shutil
from pathlib import Path

import pytest
import yaml
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from sqlalchemy.engine import make_url

from mirakl_pipelines.defs.fulfilments.assets import SHIPPING_TAG
from mirakl_pipelines.defs.stock.assets import STOCK_TAG

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PG_ENV = {
    "DAGSTER_PG_HOST": "db.internal",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "secret",
    "DAGSTER_PG_DB": "dagster",
}


@pytest.fixture
def pg_env(monkeypatch):
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)


def test_dagster_yaml_validates_against_the_instance_schema(pg_env):
    config, custom_class = dagster_instance_config(str(PROJECT_ROOT))
    assert custom_class is None
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_coordinator"]["config"]["dequeue_interval_seconds"] == 1
    # One import run, one shipment push run and one stock run per marketplace at a time, apart from each other.
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == [
        {"key": "marketplace", "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
        {"key": SHIPPING_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
        {"key": STOCK_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
    ]
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert config["telemetry"]["enabled"] is False


def test_dagster_yaml_rejects_a_typo(tmp_path, pg_env):
    broken = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    broken["run_retries"]["retry_on_asset_failure"] = False  # not a Dagster setting
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_workspace_yaml_loads_the_definitions_module():
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())
    assert workspace == {"load_from": [{"python_module": "mirakl_pipelines.definitions"}]}


@pytest.mark.postgres
def test_the_instance_opens_its_postgres_storage_with_psycopg2(postgres_url, tmp_path, monkeypatch):
    from dagster import DagsterInstance

    url = make_url(postgres_url)
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port))
    monkeypatch.setenv("DAGSTER_PG_USER", url.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")
    monkeypatch.setenv("DAGSTER_PG_DB", url.database)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = DagsterInstance.from_config(str(tmp_path))
    try:
        assert instance.get_runs() == []
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    finally:
        instance.dispose()
