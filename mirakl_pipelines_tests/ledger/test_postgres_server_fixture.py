"""The test PostgreSQL server (conftest) starts, serves, and leaves no process or file behind."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest

from mirakl_pipelines_tests.conftest import (
    PG_DIR_PREFIX,
    PostgresServer,
    _pid_alive,
    _reap_abandoned_servers,
    _server_user,
    find_postgres_bin,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def bin_dir():
    found = find_postgres_bin()
    if found is None:
        pytest.skip("PostgreSQL server binaries not found")
    return found


def _postmaster_pid(server: PostgresServer) -> int:
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])


def test_fresh_databases_are_separate(postgres_server, make_postgres_url):
    first, second = make_postgres_url(), make_postgres_url()
    assert first != second and first.startswith("postgresql+psycopg2://postgres@127.0.0.1:")
    conn = psycopg2.connect(host="127.0.0.1", port=postgres_server.port, user="postgres", dbname=first.rsplit("/", 1)[1])
    try:
        with conn.cursor() as cursor:
            cursor.execute("select count(*) from pg_tables where schemaname = 'public'")
            assert cursor.fetchone() == (0,)
    finally:
        conn.close()


def test_stop_ends_the_server_and_removes_its_files(bin_dir):
    server = PostgresServer(bin_dir=bin_dir, root=Path(tempfile.mkdtemp(prefix=PG_DIR_PREFIX)), user=_server_user())
    try:
        server.start()
        pid = _postmaster_pid(server)
        assert _pid_alive(pid)
        server.create_database()
    finally:
        server.stop()
    assert not server.root.exists()
    assert not _pid_alive(pid) or _is_zombie(pid)
    server.stop()  # idempotent


def test_a_server_abandoned_by_a_dead_session_is_reaped(bin_dir):
    server = PostgresServer(bin_dir=bin_dir, root=Path(tempfile.mkdtemp(prefix=PG_DIR_PREFIX)), user=_server_user())
    try:
        server.start()
        pid = _postmaster_pid(server)
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        (server.root / "owner.pid").write_text(dead.stdout.strip())  # as if its pytest had been killed
        _reap_abandoned_servers(bin_dir, server.user)
        assert not server.root.exists()
        assert not _pid_alive(pid) or _is_zombie(pid)
    finally:
        server.stop()


def _is_zombie(pid: int) -> bool:
    # An exited postmaster stays a zombie until init reaps it; it no longer holds anything.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_own_server_is_not_reaped(postgres_server):
    _reap_abandoned_servers(postgres_server.bin_dir, postgres_server.user)
    assert postgres_server.root.exists()
    assert os.getpid() == int((postgres_server.root / "owner.pid").read_text())
