"""`mirakl-pipelines webhooks`: secrets from the store's environment variable (and its _PREVIOUS), ledger from the config."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from mirakl_pipelines.cli import main
from mirakl_pipelines.config import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH, load_settings
from mirakl_pipelines.ledger import Ledger
from mirakl_pipelines.sandbox.server import free_port
from mirakl_pipelines.webhooks.serve import webhook_secrets
from mirakl_pipelines_tests.webhooks.deliveries import encode, fulfilment_payload, headers

SECRET_ENV = "TEST_RECEIVER_WEBHOOK_SECRET"
LEDGER_ENV = "TEST_RECEIVER_LEDGER_URL"


def write_config(tmp_path: Path, *, second_store: bool = False) -> Path:
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    data["ledger_url_env"] = LEDGER_ENV
    data["ledger_default_url"] = f"sqlite:///{tmp_path / 'default-ledger.sqlite'}"
    data["shopify_stores"][0]["webhook_secret_env"] = SECRET_ENV
    if second_store:
        data["shopify_stores"].append({**data["shopify_stores"][0], "name": "outlet", "webhook_secret_env": SECRET_ENV + "_2"})
    path = tmp_path / "marketplaces.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_secrets_come_from_each_store_with_the_previous_one_during_rotation(tmp_path):
    settings = load_settings(write_config(tmp_path, second_store=True))
    env = {SECRET_ENV: "new", SECRET_ENV + "_PREVIOUS": "old", SECRET_ENV + "_2": "outlet"}
    assert webhook_secrets(settings, env) == ["new", "old", "outlet"]
    assert webhook_secrets(settings, {SECRET_ENV: "new", SECRET_ENV + "_2": "new"}) == ["new"]
    with pytest.raises(Exception, match=f"outlet.*{SECRET_ENV}_2 .*not set"):
        webhook_secrets(settings, {SECRET_ENV: "new"})


def test_a_missing_secret_stops_the_command_with_the_variable_named(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    monkeypatch.setenv(LEDGER_ENV, f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    assert main(["webhooks", "--config", str(write_config(tmp_path)), "--port", str(free_port())]) == 2
    assert SECRET_ENV in capsys.readouterr().err


def test_the_command_serves_the_receiver_on_the_configured_ledger(tmp_path):
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != CONFIG_ENV_VAR}
    env.update({SECRET_ENV: "current-secret", SECRET_ENV + "_PREVIOUS": "old-secret", LEDGER_ENV: ledger_url})
    process = subprocess.Popen(
        [sys.executable, "-m", "mirakl_pipelines.cli", "webhooks", "--port", str(port),
         "--config", str(write_config(tmp_path))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(base + "/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "receiver did not start"
                time.sleep(0.1)
        assert health.json() == {"status": "ok", "inbox_last_id": 0}
        body = encode(fulfilment_payload())
        assert httpx.post(base + "/webhooks/shopify", content=body,
                          headers=headers(body, webhook_id="cli-1", secret="old-secret")).status_code == 200
        assert httpx.post(base + "/webhooks/shopify", content=body,
                          headers=headers(body, secret="wrong")).status_code == 401
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    with Ledger.connect(ledger_url) as ledger:
        assert [e.webhook_id for e in ledger.inbox_after(0)] == ["cli-1"]
    assert '"webhook_id": "cli-1"' in output  # the delivery log line reaches the operator
    assert "current-secret" not in output and "old-secret" not in output
