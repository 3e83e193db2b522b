"""`mirakl-pipelines check-config` and `exceptions`, in process and as the installed command."""

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from mirakl_pipelines import running_demo
from mirakl_pipelines.cli import main
from mirakl_pipelines.config import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH, PROJECT_ROOT
from mirakl_pipelines.ledger import Ledger

SHIPPED = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
SHIPPED_CODES = [m["code"] for m in SHIPPED["marketplaces"]]
LEDGER_ENV = SHIPPED["ledger_url_env"]
NOW = datetime(2026, 3, 14, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch, tmp_path):
    """The developer's own config or ledger variables, or a demo they are running, must not leak into these tests."""
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    monkeypatch.delenv(LEDGER_ENV, raising=False)
    monkeypatch.setattr(running_demo, "default_workdirs", lambda: [tmp_path / "project" / ".demo"])


def write_config(tmp_path: Path, **overrides) -> Path:
    data = {**SHIPPED, **overrides}
    path = tmp_path / "marketplaces.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def bad_config(tmp_path: Path) -> Path:
    markets = [dict(m) for m in SHIPPED["marketplaces"]]
    markets[0] = {**markets[0], "schedule": {"cron": "every quarter hour"}}
    return write_config(tmp_path, marketplaces=markets)


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in {CONFIG_ENV_VAR, LEDGER_ENV}}


def run_command(*args: str) -> subprocess.CompletedProcess:
    """The installed console script beside the interpreter, else `python -m mirakl_pipelines.cli`."""
    script = Path(sys.executable).with_name("mirakl-pipelines")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mirakl_pipelines.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, env=_clean_env(), cwd=PROJECT_ROOT)


# ---- check-config -----------------------------------------------------------------------------------


def test_check_config_accepts_the_shipped_file(capsys):
    assert main(["check-config"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"ok: {len(SHIPPED_CODES)} marketplace(s): {', '.join(SHIPPED_CODES)}"
    assert err.strip() == f"configuration: {DEFAULT_CONFIG_PATH} (default)"


def test_check_config_rejects_a_bad_file_naming_the_field(tmp_path, capsys):
    path = bad_config(tmp_path)
    assert main(["check-config", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert str(path) in err
    assert "marketplaces.0.schedule.cron" in err
    assert "'every quarter hour' is not a valid cron expression" in err


def test_check_config_reads_the_file_named_by_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV_VAR, str(bad_config(tmp_path)))
    assert main(["check-config"]) == 2
    assert "marketplaces.0.schedule.cron" in capsys.readouterr().err


def test_check_config_on_a_missing_file_exits_2(tmp_path, capsys):
    path = tmp_path / "absent.yaml"
    assert main(["check-config", "--config", str(path)]) == 2
    assert f"cannot read configuration file {path}" in capsys.readouterr().err


def test_installed_command_checks_the_shipped_file():
    result = run_command("check-config", "--config", str(DEFAULT_CONFIG_PATH))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(", ".join(SHIPPED_CODES))


def test_installed_command_exits_2_on_a_bad_file_naming_the_field(tmp_path):
    path = bad_config(tmp_path)
    result = run_command("check-config", "--config", str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "marketplaces.0.schedule.cron" in result.stderr
    assert "Traceback" not in result.stderr


def test_module_entry_point_behaves_like_the_script(tmp_path):
    path = bad_config(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "mirakl_pipelines.cli", "check-config", "--config", str(path)],
        capture_output=True, text=True, timeout=60, env=_clean_env(), cwd=PROJECT_ROOT,
    )
    assert result.returncode == 2
    assert "marketplaces.0.schedule.cron" in result.stderr


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["check-configuration"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ---- exceptions ---------------------------------------------------------------------------------------


@pytest.fixture
def ledger_file(tmp_path) -> Path:
    """A SQLite ledger with two open exceptions on two marketplaces, one raised twice, and one resolved."""
    path = tmp_path / "ledger" / "ledger.sqlite"
    path.parent.mkdir()
    ledger = Ledger.connect(f"sqlite:///{path}")
    try:
        first, second = SHIPPED_CODES[:2]
        for market, order_id in ((first, "DEC-100001-A"), (second, "LER-100002-A"), (first, "DEC-100003-A")):
            ledger.observe_order(
                market, order_id, commercial_id=order_id[:-2], mirakl_state="SHIPPING", created_at=NOW - timedelta(hours=1),
                updated_at=NOW - timedelta(minutes=30), acceptance_deadline=None, eligible=True, skip_reason=None, now=NOW,
            )
        ledger.raise_exception(first, "unknown_sku", "DEC-100001-A", "SKU ALP-DISCONTINUED-01 is not in Shopify",
                               {"sku": "ALP-DISCONTINUED-01"}, now=NOW)
        ledger.raise_exception(first, "unknown_sku", "DEC-100001-A", "SKU ALP-DISCONTINUED-01 is not in Shopify",
                               {"sku": "ALP-DISCONTINUED-01"}, now=NOW + timedelta(minutes=15))
        ledger.raise_exception(second, "invalid_order", "LER-100002-A", "shipping address has no zip code",
                               now=NOW + timedelta(minutes=1))
        ledger.raise_exception(first, "failed_acceptance", "DEC-100003-A", "OR21 answered 400 ORDER_INVALID_STATE",
                               now=NOW + timedelta(minutes=2))
        assert ledger.resolve_exceptions(first, "DEC-100003-A", now=NOW + timedelta(minutes=3)) == 1
    finally:
        ledger.close()
    return path


@pytest.fixture
def config_with_ledger(tmp_path, ledger_file) -> Path:
    return write_config(tmp_path, ledger_default_url=f"sqlite:///{ledger_file}")


def test_exceptions_lists_open_exceptions_as_text(config_with_ledger, capsys):
    assert main(["exceptions", "--config", str(config_with_ledger)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "2 open exception(s)"
    first, second = SHIPPED_CODES[:2]
    assert lines[0].endswith("(x2, last 2026-03-14 09:45): SKU ALP-DISCONTINUED-01 is not in Shopify")
    assert f" {first} unknown_sku DEC-100001-A " in lines[0]
    assert f" {second} invalid_order LER-100002-A " in lines[1]
    assert lines[1].endswith("shipping address has no zip code")
    assert not any("DEC-100003-A" in line for line in lines)  # resolved


def test_exceptions_as_json(config_with_ledger, capsys):
    assert main(["exceptions", "--config", str(config_with_ledger), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["marketplace"], r["kind"], r["record"], r["occurrences"]) for r in rows] == [
        (SHIPPED_CODES[0], "unknown_sku", "DEC-100001-A", 2),
        (SHIPPED_CODES[1], "invalid_order", "LER-100002-A", 1),
    ]
    assert rows[0]["reason"] == "SKU ALP-DISCONTINUED-01 is not in Shopify"
    assert datetime.fromisoformat(rows[0]["last_seen_at"]) == NOW + timedelta(minutes=15)
    assert len({r["id"] for r in rows}) == 2


def test_exceptions_for_one_marketplace(config_with_ledger, capsys):
    second = SHIPPED_CODES[1]
    assert main(["exceptions", "--config", str(config_with_ledger), "--marketplace", second, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["marketplace"], r["record"]) for r in rows] == [(second, "LER-100002-A")]


def test_exceptions_reads_the_ledger_named_by_the_environment(tmp_path, ledger_file, capsys, monkeypatch):
    config = write_config(tmp_path, ledger_default_url=f"sqlite:///{tmp_path / 'elsewhere.sqlite'}")
    monkeypatch.setenv(LEDGER_ENV, f"sqlite:///{ledger_file}")
    assert main(["exceptions", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "2 open exception(s)"


def test_exceptions_without_a_ledger_says_so_and_creates_none(tmp_path, capsys):
    ledger = tmp_path / "nowhere" / "ledger.sqlite"
    config = write_config(tmp_path, ledger_default_url=f"sqlite:///{ledger}")
    assert main(["exceptions", "--config", str(config), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert f"no ledger at {ledger}: nothing has been synced with this configuration yet" in err
    assert not ledger.parent.exists()  # reading never creates a ledger, nor its directory
    assert main(["exceptions", "--config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "0 open exception(s)"
    assert not ledger.parent.exists()


def test_exceptions_on_a_database_that_is_not_a_ledger_exits_1_and_leaves_it_alone(tmp_path, capsys):
    import sqlite3

    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("create table notes (text varchar)")
    config = write_config(tmp_path, ledger_default_url=f"sqlite:///{path}")
    assert main(["exceptions", "--config", str(config)]) == 1
    assert f"cannot read the ledger at sqlite:///{path}: no such table: exception_queue" in capsys.readouterr().err
    with sqlite3.connect(path) as db:
        assert [name for (name,) in db.execute("select name from sqlite_master where type = 'table'")] == ["notes"]


# ---- which configuration a command reads ----------------------------------------------------------------


def _demo_running_in(workdir: Path, config: Path, pid: int) -> None:
    """What a running demo leaves in its work directory (running_demo.record, for another pid)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / running_demo.RECORD_NAME).write_text(json.dumps({"pid": pid, "port": 3000, "config": str(config)}))


def test_exceptions_reads_the_running_demos_configuration(tmp_path, config_with_ledger, capsys):
    demo = tmp_path / "project" / ".demo"
    _demo_running_in(demo, config_with_ledger, os.getpid())
    assert main(["exceptions"]) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "2 open exception(s)"
    assert f"configuration: {config_with_ledger} (the running demo's, pid {os.getpid()})" in err


def test_a_stopped_demos_record_is_ignored_and_its_configuration_named(tmp_path, config_with_ledger, capsys, monkeypatch):
    demo = tmp_path / "project" / ".demo"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _demo_running_in(demo, config_with_ledger, int(finished.stdout))
    (demo / "marketplaces.yaml").write_text(config_with_ledger.read_text())
    absent = tmp_path / "data" / "ledger.sqlite"
    monkeypatch.setenv(LEDGER_ENV, f"sqlite:///{absent}")  # the default file's ledger, not there yet
    assert main(["exceptions"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "0 open exception(s)"
    assert f"configuration: {DEFAULT_CONFIG_PATH} (default)" in err
    assert f"the demo's configuration is {demo / 'marketplaces.yaml'}: pass it with --config" in err
    assert not absent.parent.exists()


def test_the_environment_variable_wins_over_a_running_demo(tmp_path, config_with_ledger, capsys, monkeypatch):
    _demo_running_in(tmp_path / "project" / ".demo", config_with_ledger, os.getpid())
    monkeypatch.setenv(CONFIG_ENV_VAR, str(DEFAULT_CONFIG_PATH))
    assert main(["check-config"]) == 0
    assert f"configuration: {DEFAULT_CONFIG_PATH} (${CONFIG_ENV_VAR})" in capsys.readouterr().err


def test_installed_command_finds_the_demo_running_from_its_directory(tmp_path, config_with_ledger):
    """As a user types it from the directory they started `make demo` in, with no option."""
    _demo_running_in(tmp_path / ".demo", config_with_ledger, os.getpid())
    script = Path(sys.executable).with_name("mirakl-pipelines")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mirakl_pipelines.cli"]
    result = subprocess.run([*command, "exceptions", "--json"], capture_output=True, text=True, timeout=60,
                            env=_clean_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [r["record"] for r in json.loads(result.stdout)] == ["DEC-100001-A", "LER-100002-A"]
    assert "(the running demo's, pid" in result.stderr


def test_installed_command_lists_exceptions_as_json(config_with_ledger):
    result = run_command("exceptions", "--config", str(config_with_ledger), "--json")
    assert result.returncode == 0, result.stderr
    assert [r["record"] for r in json.loads(result.stdout)] == ["DEC-100001-A", "LER-100002-A"]


def test_exceptions_with_a_bad_config_exits_2_naming_the_field(tmp_path, capsys):
    assert main(["exceptions", "--config", str(bad_config(tmp_path))]) == 2
    assert "marketplaces.0.schedule.cron" in capsys.readouterr().err
