"""`serve`: the HTTP server as one process, or as a supervisor and worker processes.

One Python process uses at most one CPU, so `serve` starts one worker per CPU the
container may use (`workers_default`). Each worker is a whole application (its own
pools, event-hub subscription and in-memory newest messages) listening on the same
port with SO_REUSEPORT, so the kernel spreads connections across them. The
supervisor (the container's main process) only forks the workers, forwards SIGTERM
and SIGINT to them, and waits: a worker that dies is replaced, but one that exits
for a bad configuration, an unreachable or unmigrated database stops the whole
server with its exit code, as a single process would. Workers share one directory
of metrics files (see `chat_service.metrics`).

With one worker there is no supervisor: the server runs in the calling process.
This module does I/O (processes, signals, the listening socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from aiohttp import web
from prometheus_client import multiprocess

from chat_service import listening, loops
from chat_service.app import create_app
from chat_service.config import Config
from chat_service.metrics import use_multiprocess_files
from chat_service.state import METRICS

log = logging.getLogger("chat_service")

# Exit codes of a worker that must stop the server rather than be replaced.
FATAL_EXIT_CODES = frozenset({2, 3, 4})
_RESTART_DELAY = 1.0
_POLL = 0.1


def workers_default() -> int:
    """CPUs this process may use: its affinity, capped by its cgroup's CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cgroup_cpu_quota() -> float | None:
    """The cgroup's CPU limit in CPUs (v2 `cpu.max`, or v1's quota/period); None if none."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        v1 = Path("/sys/fs/cgroup/cpu")
        quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
        period_us = int((v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 else quota_us / period_us


# Runs a function and turns the errors a server may stop with into an exit code.
Guard = Callable[[Config, Callable[[], int | None]], int]


def serve(config: Config, workers: int, guard: Guard) -> int:
    """Run the server until SIGTERM/SIGINT; returns the exit code.

    `guard` reports the errors a server stops with (SchemaNotReady, Unavailable) and
    gives their exit code, in this process or in each worker.
    """
    if workers <= 1:
        return guard(config, lambda: _run(config, reuse_port=False))
    return _Supervisor(config, workers, guard).run()


def _run(config: Config, *, reuse_port: bool) -> None:
    with asyncio.Runner(loop_factory=loops.new_loop) as runner:
        runner.run(_serve(config, reuse_port=reuse_port))


async def _serve(config: Config, *, reuse_port: bool) -> None:
    app = create_app(config)
    runner = listening.runner(
        app, config, on_slow_client=lambda: app[METRICS].limited.labels("header_timeout").inc())
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.http_host, config.http_port, reuse_port=reuse_port)
        await site.start()
        log.info("listening on %s:%s", config.http_host, config.http_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down: finishing in-flight requests, closing event streams")
    finally:
        await runner.cleanup()
    log.info("stopped")


class _Supervisor:
    """Forks the workers, replaces those that die, and stops them all on a signal."""

    def __init__(self, config: Config, workers: int, guard: Guard) -> None:
        self._config = config
        self._workers = workers
        self._guard = guard
        self._children: set[int] = set()
        self._stopping = False
        self._exit_code = 0

    def run(self) -> int:
        metrics_dir = Path(tempfile.mkdtemp(prefix="chat-metrics-"))
        config = replace(self._config, metrics_dir=metrics_dir)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            log.info("starting %d worker processes on %s:%s", self._workers,
                     config.http_host, config.http_port)
            for _ in range(self._workers):
                self._fork(config)
            self._wait(config)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return self._exit_code

    def _fork(self, config: Config) -> None:
        # Nothing buffered may be written twice, by parent and child.
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            os._exit(_worker(config, self._guard))
        self._children.add(pid)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stop(signal.Signals(signum))

    def _stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if not self._stopping:
            log.info("stopping %d worker processes (%s)", len(self._children), sig.name)
        self._stopping = True
        self._deadline = time.monotonic() + self._config.shutdown_timeout + 5
        for pid in self._children:
            _signal(pid, sig)

    def _wait(self, config: Config) -> None:
        while self._children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                if self._stopping and time.monotonic() > self._deadline:
                    log.warning("workers still running after the shutdown timeout: killing")
                    for child in self._children:
                        _signal(child, signal.SIGKILL)
                time.sleep(_POLL)
                continue
            if pid not in self._children:
                continue
            self._children.discard(pid)
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                pid, str(config.metrics_dir))
            code = os.waitstatus_to_exitcode(status)
            if self._stopping:
                continue
            if code in FATAL_EXIT_CODES:
                self._exit_code = code
                self._stop()
                continue
            log.warning("worker %d exited (%s); starting another", pid, code)
            time.sleep(_RESTART_DELAY)
            if not self._stopping:
                self._fork(config)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _worker(config: Config, guard: Guard) -> int:
    """The body of a forked worker process; returns its exit code."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    assert config.metrics_dir is not None
    use_multiprocess_files(config.metrics_dir)
    try:
        return guard(config, lambda: _run(config, reuse_port=True))
    except BaseException:
        log.exception("worker failed")
        return 1
    finally:
        logging.shutdown()
