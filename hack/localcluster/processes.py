"""The cluster's processes: started in their own sessions, recorded by PID, stopped by PID."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ClusterError(Exception):
    """A failure with a message meant for the person at the terminal."""


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ensure_port_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ClusterError(f"port {port} for {what} is already taken on {host}: {e}") from None


@dataclass
class Proc:
    name: str
    pid: int
    binary: str

    def alive(self) -> bool:
        """True when the PID still runs *our* binary (PIDs get reused)."""
        try:
            exe = os.readlink(f"/proc/{self.pid}/exe")
        except OSError:
            return False
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return False
        return exe.removesuffix(" (deleted)") == self.binary


class State:
    """The on-disk record of one running cluster: mode, ports, PIDs, host changes."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.file = directory / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.file.read_text())
        except FileNotFoundError:
            return {}
        return data

    def procs(self) -> list[Proc]:
        return [Proc(**p) for p in self.load().get("procs", [])]

    def update(self, **fields: Any) -> None:
        """Merge fields into the record, atomically (a crash never leaves half a file)."""
        data = {**self.load(), **fields}
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.rename(self.file)

    def add_proc(self, proc: Proc) -> None:
        self.update(procs=[*(p.__dict__ for p in self.procs()), proc.__dict__])

    def running(self) -> bool:
        return any(p.alive() for p in self.procs())


def start(name: str, argv: list[str], state: State, env: dict[str, str] | None = None) -> Proc:
    """Start a process in its own session with its output in logs/<name>.log; record its PID."""
    state.logs.mkdir(parents=True, exist_ok=True)
    logfile = open(state.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(argv, stdout=logfile, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=state.dir,
                            env=env)
    logfile.close()
    p = Proc(name=name, pid=proc.pid, binary=os.path.realpath(argv[0]))
    state.add_proc(p)
    return p


def log_tail(state: State, name: str, chars: int = 3000) -> str:
    try:
        return (state.logs / f"{name}.log").read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return "(no log)"


def wait_http(url: str, what: str, proc: Proc, state: State, timeout: float = 90,
              context: ssl.SSLContext | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc.alive():
            raise ClusterError(f"{what} exited during start-up; the end of its log:\n"
                               + log_tail(state, proc.name))
        try:
            with urllib.request.urlopen(url, timeout=3, context=context) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.2)
    raise ClusterError(f"{what} did not become healthy at {url} within {timeout:.0f} s ({last})")


def wait_path(path: Path, what: str, proc: Proc, state: State, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if not proc.alive():
            raise ClusterError(f"{what} exited during start-up; the end of its log:\n"
                               + log_tail(state, proc.name))
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} did not create {path} within {timeout:.0f} s")
        time.sleep(0.1)


def stop(procs: list[Proc], grace: float = 15) -> list[Proc]:
    """SIGTERM in reverse start order, SIGKILL after the grace period; returns what ran."""
    running = [p for p in procs if p.alive()]
    for p in reversed(running):
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(p.alive() for p in running) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in running:
        if p.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(p.alive() for p in running) and time.monotonic() < deadline:
        time.sleep(0.05)
    return running
