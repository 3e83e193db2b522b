"""Shared fixtures: a throwaway PostgreSQL server per test session, and ledgers on both backends.

Each pytest process (each xdist worker) that asks for PostgreSQL starts its own server with
``initdb`` + ``pg_ctl`` on 127.0.0.1, a free port and a private socket directory, and removes it
at session end. As root the server runs as the ``postgres`` user (initdb refuses root). A server
left behind by a killed session is stopped by the next session that starts one.
"""

import atexit
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_DIR_PREFIX = "mirakl-pg-"
PG_BIN_ENV = "MIRAKL_PG_BIN"  # override where initdb/pg_ctl live
PG_SUPERUSER = "postgres"
_START_ATTEMPTS = 3


def find_postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl: $MIRAKL_PG_BIN, Debian's newest version, or PATH."""
    candidates = []
    if os.environ.get(PG_BIN_ENV):
        candidates.append(Path(os.environ[PG_BIN_ENV]))
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted((Path(p) for p in debian), key=lambda p: _version_key(p.parent.name), reverse=True)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def _version_key(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else 0 for part in name.split("."))


def _server_user() -> str | None:
    """As root, the unprivileged account that runs the server; otherwise None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in (PG_SUPERUSER, "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root but neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


def _as_user(user: str | None, command: list[str]) -> list[str]:
    if user is None:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *command]
    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(command)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    user: str | None
    port: int = 0
    host: str = "127.0.0.1"
    _stopped: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://{PG_SUPERUSER}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg2

        name = f"test_{uuid.uuid4().hex[:16]}"
        conn = psycopg2.connect(host=self.host, port=self.port, user=PG_SUPERUSER, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "owner.pid").write_text(str(os.getpid()))
        socket_dir = self.root / "sock"
        socket_dir.mkdir()
        if self.user is not None:
            for path in (self.root, socket_dir):
                shutil.chown(path, user=self.user)
        self._run(
            [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", PG_SUPERUSER, "-A", "trust",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            what="initdb",
        )
        last_error = None
        for _ in range(_START_ATTEMPTS):  # the free port can be taken between probing and binding
            self.port = _free_port()
            options = (
                f"-h {self.host} -p {self.port} -k {socket_dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            try:
                self._run(
                    [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_file),
                     "-o", options, "-w", "-t", "60", "start"],
                    what="pg_ctl start",
                )
                return
            except RuntimeError as exc:
                last_error = exc
        raise last_error

    def stop(self) -> None:
        """Stop the server and delete its files; safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        stop_server_dir(self.root, self.bin_dir, self.user)

    def _run(self, command: list[str], *, what: str) -> None:
        result = subprocess.run(_as_user(self.user, command), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise RuntimeError(
                f"{what} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}\n{log}".rstrip()
            )


def stop_server_dir(root: Path, bin_dir: Path, user: str | None) -> None:
    """Stop the server whose files are under ``root`` (if running) and remove ``root``."""
    data_dir = root / "data"
    if (data_dir / "postmaster.pid").exists():
        subprocess.run(
            _as_user(user, [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "-t", "30", "stop"]),
            capture_output=True,
            timeout=60,
        )
        pid_file = data_dir / "postmaster.pid"
        if pid_file.exists():  # pg_ctl could not stop it: end that one postmaster by its pid
            try:
                pid = int(pid_file.read_text().split()[0])
                if _pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            except (ValueError, IndexError, OSError):
                pass
    shutil.rmtree(root, ignore_errors=True)


def _reap_abandoned_servers(bin_dir: Path, user: str | None) -> None:
    """Stop servers left by sessions that died without cleaning up (owner process gone)."""
    for root in Path(tempfile.gettempdir()).glob(f"{PG_DIR_PREFIX}*"):
        try:
            owner = int((root / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if owner != os.getpid() and not _pid_alive(owner):
            stop_server_dir(root, bin_dir, user)


def _interrupt_on_sigterm() -> None:
    # Default SIGTERM kills pytest without running finalizers, which would leave the server up.
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:

        def _raise(signum, frame):
            raise KeyboardInterrupt(f"received signal {signum}")

        signal.signal(signal.SIGTERM, _raise)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for this pytest process (one per xdist worker), removed at session end."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries not found (looked in $MIRAKL_PG_BIN, /usr/lib/postgresql/*/bin and PATH); "
            "`make test` installs them with `apt-get install postgresql`"
        )
    user = _server_user()
    _reap_abandoned_servers(bin_dir, user)
    _interrupt_on_sigterm()
    server = PostgresServer(bin_dir=bin_dir, root=Path(tempfile.mkdtemp(prefix=PG_DIR_PREFIX)), user=user)
    atexit.register(server.stop)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)


@pytest.fixture
def make_postgres_url(postgres_server):
    """Factory: each call creates a fresh empty database and returns its ``postgresql+psycopg2://`` URL."""
    return postgres_server.create_database


@pytest.fixture
def postgres_url(make_postgres_url) -> str:
    """A fresh empty database for this test (``postgresql+psycopg2://…``)."""
    return make_postgres_url()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request, tmp_path) -> str:
    """A URL for an empty ledger, once per backend: SQLite file under tmp_path, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger' / 'ledger.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def ledger(ledger_url):
    """A connected, empty ledger on each backend."""
    from mirakl_pipelines.ledger import Ledger

    connected = Ledger.connect(ledger_url)
    try:
        yield connected
    finally:
        connected.close()
