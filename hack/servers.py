"""Real PostgreSQL and Redis servers on loopback, for tests and benchmarks.

Each server runs from Debian's packages on a free port with its data in a
temporary directory, and can be stopped and started again on the same port
and data (the resilience tests need that). Nothing here is a fake: these are
the real `postgres` and `redis-server` binaries.

Standard library only.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class ServerError(Exception):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path,
               timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServerError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def _postgres_bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda p: int(p.parent.parent.name))
    if not found:
        raise ServerError("PostgreSQL is not installed (Debian package `postgresql`)")
    return found[-1].parent


def _run_as() -> tuple[list[str], int, int]:
    """PostgreSQL refuses to run as root: drop to the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise ServerError("running as root needs the `postgres` system user") from None
    return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"], \
        pw.pw_uid, pw.pw_gid


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class PostgresServer:
    """A PostgreSQL cluster in its own directory; `start`/`stop` keep port and data."""

    user: str = "chat"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    database: str = "chat"
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chatenv-pg-")))
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        return (f"host={self.host} port={self.port} dbname={self.database} "
                f"user={self.user} password={self.password}")

    @property
    def env(self) -> dict[str, str]:
        """The chat service's variable names for this server."""
        return {"POSTGRES_HOST": self.host, "POSTGRES_PORT": str(self.port),
                "POSTGRES_DB": self.database, "POSTGRES_USER": self.user,
                "POSTGRES_PASSWORD": self.password}

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def init(self) -> None:
        bindir = _postgres_bindir()
        prefix, uid, gid = _run_as()
        os.chown(self.root, uid, gid)
        self.root.chmod(0o700)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        os.chown(pwfile, uid, gid)
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(self.root / "data"), "-U", self.user,
             "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
             "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True,
        )
        pwfile.unlink()
        self.start()
        self.psql("postgres", f'CREATE DATABASE "{self.database}"')

    def psql(self, database: str, sql: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run SQL through the server's local socket as its superuser."""
        prefix, _, _ = _run_as()
        return subprocess.run(
            [*prefix, str(_postgres_bindir() / "psql"), "-h", str(self.root), "-p", str(self.port),
             "-U", self.user, "-d", database, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            check=check, capture_output=True, text=True,
        )

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        bindir = _postgres_bindir()
        prefix, _, _ = _run_as()
        log = self.root / "postgres.log"
        with open(log, "ab") as out:
            self._proc = subprocess.Popen(
                [*prefix, str(bindir / "postgres"), "-D", str(self.root / "data"),
                 "-p", str(self.port), "-k", str(self.root), "-c", f"listen_addresses={self.host}",
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=200"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _wait_port(self.port, self._proc, "postgres", log)
        # The port opens a moment before the server accepts queries.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.psql("postgres", "SELECT 1", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise ServerError("postgres did not accept queries within 30 s")

    def stop(self) -> None:
        """Fast shutdown: clients are disconnected, as in a crash of the database host."""
        _stop(self._proc, signal.SIGINT)
        self._proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class RedisServer:
    """A redis-server with a password, no persistence; `start`/`stop` keep the port."""

    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="chatenv-redis-")))
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"REDIS_HOST": self.host, "REDIS_PORT": str(self.port),
                "REDIS_PASSWORD": self.password, "REDIS_DB": "0"}

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        binary = shutil.which("redis-server")
        if not binary:
            raise ServerError("Redis is not installed (Debian package `redis-server`)")
        conf = self.root / "redis.conf"
        # The password goes in a file, not on the command line, where `ps` would show it.
        conf.write_text(
            f"port {self.port}\nbind {self.host}\nrequirepass {self.password}\n"
            f'save ""\nappendonly no\ndir {self.root}\nprotected-mode yes\n'
        )
        conf.chmod(0o600)
        log = self.root / "redis.log"
        with open(log, "ab") as out:
            self._proc = subprocess.Popen(
                [binary, str(conf)], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        _wait_port(self.port, self._proc, "redis-server", log)

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
