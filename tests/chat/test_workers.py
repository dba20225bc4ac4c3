"""`serve` with several worker processes on one port: one server to its clients, to
Prometheus, to Kubernetes (SIGTERM, exit codes), and a dead worker is replaced."""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from chathelpers import ServerProcess, create_database, relaying, run_cli
from servers import PostgresServer, free_port

from chat_service.serving import workers_default


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found.update(int(c) for c in children)
    return found


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{re.escape(name)}\{{(.*)\}} (\S+)", line) or \
            re.fullmatch(rf"{re.escape(name)} (\S+)", line)
        if match and (len(match.groups()) == 1 or
                      ",".join(sorted(match[1].split(","))) == wanted):
            return float(match.groups()[-1])
    return 0.0


def test_default_follows_the_cpus_allowed() -> None:
    assert 1 <= workers_default() <= len(os.sched_getaffinity(0))


def _get(url: str) -> tuple[int, str]:
    # A new connection each time, so the kernel spreads them over the workers.
    with urllib.request.urlopen(url, timeout=5) as reply:  # noqa: S310  # loopback
        return reply.status, reply.read().decode()


def test_workers_share_the_port_and_report_together(
        server_process: Callable[..., ServerProcess]) -> None:
    server = server_process(HTTP_WORKERS="2")
    workers = _children(server.proc.pid)
    assert len(workers) == 2
    for _ in range(60):
        assert _get(server.url + "/api/messages")[0] == 200
    # Whichever worker answers the scrape (on the metrics port, which every worker
    # serves), it counts every worker's requests.
    _, text = _get(f"http://127.0.0.1:{server.env['METRICS_PORT']}/metrics")
    assert _metric(text, "chat_http_requests_total", method="GET", route="/api/messages",
                   status="200") == 60
    assert _metric(text, "chat_db_pool_size") >= 2  # one pool per worker, summed

    # A worker that dies is replaced; the server keeps answering meanwhile.
    victim = sorted(workers)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while len(_children(server.proc.pid) - {victim}) < 2:
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.1)
    assert _get(server.url + "/health/readyz")[0] == 200

    # SIGTERM stops every worker and the supervisor, cleanly.
    replacement = _children(server.proc.pid)
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 15
    assert not [pid for pid in replacement if Path(f"/proc/{pid}").exists()]
    assert "starting another" in server.output()


def test_a_worker_that_cannot_start_stops_the_server(postgres_server: PostgresServer,
                                                     chat_env: dict[str, str]) -> None:
    env = {**chat_env, **create_database(postgres_server, "unmigrated_workers"),
           "HTTP_WORKERS": "2"}
    result = run_cli(env, "serve", timeout=60)
    assert result.returncode == 4
    assert "not migrated" in result.stderr


def test_one_worker_is_one_process(server_process: Callable[..., ServerProcess]) -> None:
    server = server_process(HTTP_WORKERS="1")
    assert _children(server.proc.pid) == set()
    with urllib.request.urlopen(server.url + "/api/messages", timeout=5) as reply:  # noqa: S310
        assert reply.status == 200


def test_workers_option_checked() -> None:
    result = run_cli({}, "serve", "--workers", "0")
    assert result.returncode == 2
    assert "--workers: must be an integer 1-64" in result.stderr


def test_serve_waits_for_a_database_that_is_still_starting(
        chat_env: dict[str, str], tmp_path: Path) -> None:
    """The server's event loop survives failed connection attempts: each one closes a
    socket the loop was watching, and the next attempt reuses its descriptor number
    (uvloop kept a closed handle for it, and the retry died; see chat_service.loops)."""
    port = free_port()
    server = ServerProcess({**chat_env, "POSTGRES_PORT": str(port), "HTTP_WORKERS": "1",
                            "POSTGRES_STARTUP_TIMEOUT_SECONDS": "60"},
                           tmp_path / "late.log")
    try:
        time.sleep(3)  # several refused attempts
        assert server.proc.poll() is None, server.output()
        # The database "starts": a relay on the port it was told, to the real server.
        with relaying(port, int(chat_env["POSTGRES_PORT"])):
            server.wait_ready()
            assert _get(server.url + "/health/readyz")[0] == 200
            assert _get(server.url + "/api/messages") == (200, "[]")
        assert server.output().count("not reachable yet") >= 3
    finally:
        server.stop()
