"""How `make demo` / `mirakl-pipelines demo` start, before anything runs: options through the Makefile, a
taken UI port, a work directory another demo is using, and what the banner gives a user to call the sandbox."""

import json
import os
import shutil
import socket
import subprocess
import sys

import httpx
import pytest

from mirakl_pipelines import running_demo
from mirakl_pipelines.cli import main
from mirakl_pipelines.config import PROJECT_ROOT
from mirakl_pipelines.demo import port_in_use


@pytest.fixture
def listening_port():
    """A port another program listens on (all interfaces, as a stray dev server would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _outside_make() -> dict:
    """The environment without make's own variables: under `make test` (CI) a nested make would print
    "Entering/Leaving directory" lines around the command."""
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_passes_demo_args_to_the_command():
    result = subprocess.run(["make", "-n", "--no-print-directory", "demo", 'DEMO_ARGS=--port 3001 --orders-per-minute 10'],
                            capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=30, env=_outside_make())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].endswith("/bin/mirakl-pipelines demo --port 3001 --orders-per-minute 10")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_without_args_runs_the_plain_command():
    result = subprocess.run(["make", "-n", "--no-print-directory", "demo"], capture_output=True, text=True,
                            cwd=PROJECT_ROOT, timeout=30, env=_outside_make())
    assert result.stdout.strip().splitlines()[-1].rstrip().endswith("/bin/mirakl-pipelines demo")


def test_port_in_use(listening_port):
    assert port_in_use(listening_port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    assert not port_in_use(free)


def test_demo_on_a_taken_port_stops_at_once_saying_how_to_choose_another(listening_port, tmp_path, capsys):
    work = tmp_path / "demo"
    assert main(["demo", "--port", str(listening_port), "--workdir", str(work)]) == 2
    err = capsys.readouterr().err
    assert f"port {listening_port} on 127.0.0.1 is already in use by another program" in err
    assert 'make demo DEMO_ARGS="--port ' in err
    suggested = int(err.split('DEMO_ARGS="--port ')[1].split('"')[0])
    assert suggested != listening_port and not port_in_use(suggested)
    assert not work.exists()  # nothing started, nothing written


def test_demo_in_a_work_directory_another_demo_is_using_stops(tmp_path, capsys):
    work = tmp_path / "demo"
    work.mkdir()
    config = work / "marketplaces.yaml"
    config.write_text("{}")
    running_demo.record(work, config, 3000)  # this process stands for the other demo
    assert main(["demo", "--port", "1", "--workdir", str(work)]) == 2
    assert f"a demo is already running in {work} (pid {os.getpid()}, UI on port 3000)" in capsys.readouterr().err


def test_the_installed_command_exits_2_on_a_taken_port(listening_port, tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "mirakl-pipelines")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "mirakl_pipelines.cli"]
    result = subprocess.run([*command, "demo", "--port", str(listening_port), "--workdir", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "already in use" in result.stderr and "Traceback" not in result.stderr


def test_running_demo_record_is_found_while_alive_and_cleared(tmp_path):
    config = tmp_path / "marketplaces.yaml"
    config.write_text("{}")
    assert running_demo.find([tmp_path]) is None
    running_demo.record(tmp_path, config, 3123)
    found = running_demo.find([tmp_path])
    assert (found.pid, found.port, found.config) == (os.getpid(), 3123, config)
    running_demo.clear(tmp_path)
    assert running_demo.find([tmp_path]) is None
    (tmp_path / running_demo.RECORD_NAME).write_text(json.dumps({"pid": 2**22 + 17, "port": 1, "config": str(config)}))
    assert running_demo.find([tmp_path]) is None  # no such process


def test_the_banner_gives_keys_and_commands_that_work(capsys):
    from mirakl_pipelines.demo import _print_urls, start_sandbox
    from mirakl_pipelines.sandbox.shopify.schema import shopify_sdl_path

    if not shopify_sdl_path().exists():
        pytest.skip(f"the Shopify sandbox needs the Admin GraphQL SDL, absent at {shopify_sdl_path()}")
    sandbox = start_sandbox(seed=5, backlog=2, past_days=2)
    try:
        _print_urls(sandbox, {"dagster UI": "http://127.0.0.1:3000"})
        out = capsys.readouterr().out
        for code in sandbox.sims:
            assert f"API key {sandbox.secrets[code]}" in out
        assert f"access token {sandbox.secrets['shopify']}" in out
        assert sandbox.settings_dict(PROJECT_ROOT)["partitions_start_date"] == sandbox.partitions_start.isoformat()
        # The printed curl commands, run as a user pastes them into a shell.
        commands = out.split("try:\n")[1].replace("\\\n", " ").splitlines()
        mirakl_curl, shopify_curl = commands[0].strip(), commands[1].strip()
        assert mirakl_curl.startswith("curl ") and shopify_curl.startswith("curl ")
        if shutil.which("curl"):
            listed = json.loads(subprocess.run(["bash", "-c", f"{mirakl_curl} -sS --fail"], capture_output=True,
                                               text=True, timeout=30, check=True).stdout)
            assert listed["total_count"] == 2 + 2 * 6  # the backlog and two past days
            answer = json.loads(subprocess.run(["bash", "-c", f"{shopify_curl} -sS --fail"], capture_output=True,
                                               text=True, timeout=30, check=True).stdout)
            assert answer["data"]["orders"] == {"nodes": []}  # nothing imported: no pipeline runs here
        for url in (f"{sandbox.servers['shopify'].url}/_sandbox/orders.html",
                    f"{next(iter(sandbox.servers.values())).url}/_sandbox/orders.html"):
            assert url in out
        page = httpx.get(f"{next(iter(sandbox.servers.values())).url}/_sandbox/orders.html", timeout=10)
        assert page.headers["content-type"].startswith("text/html")
        assert page.text.count("<tr><td>") == 2 + 2 * 6
        assert sandbox.store.settings.search_index_lag_seconds == 0.0  # only the demo turns the lag on
    finally:
        sandbox.stop()
