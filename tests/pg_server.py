"""A real throwaway PostgreSQL cluster for the test session, and a fresh database per test.

The session fixture runs Debian's server binaries (`/usr/lib/postgresql/<version>/bin`, newest version) on a
free port on 127.0.0.1, with its data dir and unix socket in a temporary dir that is removed at the end.
PostgreSQL refuses to run as root, so when the tests run as root (here and in CI) every server command goes
through `runuser -u postgres`; Debian's postgresql package creates that system user.

The test role `vraagbaak` is the cluster's bootstrap superuser, so it may create and drop databases. It gets a
random password and every connection, TCP and socket, must authenticate with scram-sha-256: trust on loopback
would let any local user or process on a shared CI machine into the cluster while it runs.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

logger = logging.getLogger(__name__)

DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
TEST_ROLE = "vraagbaak"
TEST_DATABASE = "vraagbaak_test"
SERVER_USER = "postgres"
START_ATTEMPTS = 3
NOT_INSTALLED = "PostgreSQL server is not installed (apt-get install postgresql); CI installs it"

# Durability off: the cluster is thrown away, and fsync on every commit is most of the start and test time.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "shared_buffers": "'32MB'",
    "logging_collector": "off",
}


def find_server_bindir() -> Path | None:
    """The bin dir of the newest PostgreSQL server under /usr/lib/postgresql, else one on PATH, else None."""
    versions = []
    if DEBIAN_PG_ROOT.is_dir():
        for entry in DEBIAN_PG_ROOT.iterdir():
            bindir = entry / "bin"
            if re.fullmatch(r"\d+(\.\d+)*", entry.name) and (bindir / "initdb").is_file() \
                    and (bindir / "pg_ctl").is_file():
                versions.append((tuple(int(part) for part in entry.name.split(".")), bindir))
    if versions:
        return max(versions)[1]
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).parent / "initdb").is_file():
        return Path(on_path).parent
    return None


def _free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now (the server may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _ServerRunner:
    """Runs server commands as an unprivileged user: `postgres` via runuser when we are root, else ourselves."""

    def __init__(self, *, bindir: Path, workdir: Path) -> None:
        self.bindir = bindir
        self.workdir = workdir
        self.as_other_user = os.geteuid() == 0

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one server binary; the working dir is one the server user can enter."""
        command = [str(self.bindir / tool), *args]
        if self.as_other_user:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(command, cwd=self.workdir, capture_output=True, text=True, timeout=120)


def _check(result: subprocess.CompletedProcess[str], what: str, log: Path | None = None) -> None:
    """Fail with the tool's output and the server log tail when a server command did not succeed."""
    if result.returncode == 0:
        return
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}{tail}")


def _url(*, password: str, port: int, dbname: str) -> str:
    """The SQLAlchemy URL for the test role."""
    return f"postgresql+psycopg://{TEST_ROLE}:{quote(password, safe='')}@127.0.0.1:{port}/{dbname}"


def _libpq_uri(sqlalchemy_url: str) -> str:
    """The same address as a plain libpq URI, which psycopg.connect accepts."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _start_cluster(runner: _ServerRunner, *, workdir: Path, data: Path, password: str) -> int:
    """initdb a cluster in data and start it on a free loopback port; returns the port."""
    pwfile = workdir / "pwfile"
    pwfile.write_text(password + "\n")
    if runner.as_other_user:
        server_user = pwd.getpwnam(SERVER_USER)
        os.chown(pwfile, server_user.pw_uid, server_user.pw_gid)
    pwfile.chmod(0o600)
    # --no-sync: initdb otherwise fsyncs every file it wrote; C locale and UTF8 so no host locale is needed.
    _check(runner.run("initdb", "-D", str(data), "-U", TEST_ROLE, f"--pwfile={pwfile}",
                      "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"),
           "initdb")
    pwfile.unlink()

    # Appended to the file initdb wrote, so it stays owned by the server user; the port is per attempt.
    socket_dir = str(workdir).replace("'", "''")
    with (data / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{name} = {value}\n" for name, value in SERVER_SETTINGS.items())
        conf.write(f"unix_socket_directories = '{socket_dir}'\n")
    log = workdir / "server.log"
    for attempt in range(1, START_ATTEMPTS + 1):
        port = _free_port()
        result = runner.run("pg_ctl", "start", "-D", str(data), "-l", str(log), "-o", f"-p {port}",
                            "-w", "-t", "60")
        if result.returncode == 0:
            return port
        # Only a lost race for the port is worth another try; anything else fails now with the log.
        port_taken = log.exists() and "Address already in use" in log.read_text(errors="replace")
        if attempt == START_ATTEMPTS or not port_taken:
            _check(result, "pg_ctl start", log)
        log.unlink()
        logger.warning("PostgreSQL did not start on port %d (attempt %d), retrying", port, attempt)
    raise AssertionError("unreachable")


class Cluster:
    """A running throwaway cluster: its URL, and stop / start for fault runs (``bench/region.py``)."""

    def __init__(self, runner: _ServerRunner, *, workdir: Path, data: Path, password: str, port: int) -> None:
        self.runner, self.workdir, self.data, self.password, self.port = runner, workdir, data, password, port

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the `vraagbaak_test` database."""
        return _url(password=self.password, port=self.port, dbname=TEST_DATABASE)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: connections are cut, as when the database host goes down)."""
        _check(self.runner.run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w"), "pg_ctl stop")

    def start(self) -> None:
        """Start it again on the same port."""
        log = self.workdir / "restart.log"
        _check(self.runner.run("pg_ctl", "start", "-D", str(self.data), "-l", str(log), "-o", f"-p {self.port}",
                               "-w", "-t", "60"), "pg_ctl start", log)


def server_problem() -> str | None:
    """Why no cluster can be started here, or None."""
    if find_server_bindir() is None:
        return NOT_INSTALLED
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return ("PostgreSQL refuses to run as root and there is no 'postgres' system user "
                    "(apt-get install postgresql creates it)")
    return None


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A throwaway cluster with a `vraagbaak_test` database, removed at the end."""
    import psycopg
    from psycopg import sql

    problem = server_problem()
    if problem:
        raise RuntimeError(problem)
    bindir = find_server_bindir()
    assert bindir is not None
    started = time.perf_counter()
    # Not pytest's tmp_path: its parent is root-only (0700), so the postgres user could not reach the data dir.
    workdir = Path(tempfile.mkdtemp(prefix="vraagbaak-pg-"))
    runner = _ServerRunner(bindir=bindir, workdir=workdir)
    if runner.as_other_user:
        server_user = pwd.getpwnam(SERVER_USER)
        os.chown(workdir, server_user.pw_uid, server_user.pw_gid)
    data = workdir / "data"
    try:
        password = secrets.token_urlsafe(24)
        port = _start_cluster(runner, workdir=workdir, data=data, password=password)
        with psycopg.connect(_libpq_uri(_url(password=password, port=port, dbname="postgres")),
                             autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEST_DATABASE)))
        logger.info("PostgreSQL %s ready on 127.0.0.1:%d in %.2fs", bindir.parent.name, port,
                    time.perf_counter() - started)
        yield Cluster(runner, workdir=workdir, data=data, password=password, port=port)
    finally:
        # Also after a failed start: pg_ctl may have timed out on a server that did come up.
        if (data / "postmaster.pid").exists():
            # Immediate: no shutdown checkpoint, the data is deleted right after anyway.
            stopped = runner.run("pg_ctl", "stop", "-D", str(data), "-m", "immediate", "-w")
            if stopped.returncode != 0:
                logger.error("pg_ctl stop failed: %s", stopped.stderr.strip())
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the session; yields the SQLAlchemy URL of its `vraagbaak_test` db."""
    problem = server_problem()
    if problem:
        pytest.skip(problem)
    with running_cluster() as cluster:
        yield cluster.url


@pytest.fixture
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, uniquely named database for one test, dropped afterwards; yields its SQLAlchemy URL."""
    import psycopg
    from psycopg import sql

    name = f"vraagbaak_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq_uri(postgres_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(_libpq_uri(postgres_url), autocommit=True) as admin:
            # FORCE: a test that forgot engine.dispose() still holds pooled connections, which would block DROP.
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
