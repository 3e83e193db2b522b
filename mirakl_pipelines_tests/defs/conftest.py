"""A running sandbox (two marketplaces, one shop, real loopback HTTP) and pipeline settings pointing at it."""

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from mirakl_pipelines.config import Settings, load_settings
from mirakl_pipelines.demo import Sandbox, start_sandbox
from mirakl_pipelines.sandbox.shopify.schema import shopify_sdl_path

# Mirakl's documented call intervals, shrunk on both sides so tests need not wait a minute per OR11.
RATE_LIMIT_SCALE = 0.0005


@pytest.fixture
def sandbox() -> Sandbox:
    if not shopify_sdl_path().exists():
        pytest.skip(f"the Shopify sandbox needs the Admin GraphQL SDL, absent at {shopify_sdl_path()} (../shared/ is not beside the project)")
    box = start_sandbox(seed=11, rate_limit_scale=RATE_LIMIT_SCALE, debit_delay=timedelta(seconds=0.5), backlog=0)
    yield box
    box.stop()


@pytest.fixture
def config_path(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MIRAKL_PIPELINES_LEDGER_URL", raising=False)
    path = tmp_path / "marketplaces.yaml"
    path.write_text(yaml.safe_dump(sandbox.settings_dict(tmp_path)))
    return path


@pytest.fixture
def settings(config_path: Path) -> Settings:
    return load_settings(config_path)
