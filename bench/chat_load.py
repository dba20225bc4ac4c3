"""Load benchmark of the chat API, with wrk, against any base URL (or several, alternating).

    # Against servers already running (any implementation of the API):
    .venv/bin/python bench/chat_load.py --target ours=http://127.0.0.1:8080 \\
        --target original=http://127.0.0.1:8081 --baseline original

    # Self-contained: starts PostgreSQL, Redis and `python -m chat_service serve` itself:
    .venv/bin/python bench/chat_load.py [--workers 2]

    # With each server's CPU per request (its process and children, from /proc):
    ... --target ours=URL --pid ours=PID --target original=URL --pid original=PID

Each target gets its own users (registered, then logged in, through the API) and at least
100 messages (posted through the API), then each scenario runs with wrk for --duration
seconds at each --connections count, the targets taking turns, so that whatever else the
machine is doing weighs on all of them alike. Printed per run: the load average just before,
requests/s, p50/p99 latency, errors (socket errors and non-2xx/3xx answers), the ratio
to the baseline target's requests/s, and, for targets with a --pid, the CPU time the server's
processes spent per request (user + system; PostgreSQL's and Redis' own time not included).
On a machine the benchmark saturates, requests/s moves with whatever else runs; CPU per
request barely does. Scenarios:

- page: `GET /api/messages` (a page of 50 messages)
- poll: `GET /api/messages?after_id=<newest>` (the empty poll every open client makes)
- etag: `GET /api/messages` with `If-None-Match` (304), for targets that send ETags
- post: `POST /api/messages` (201), one session per wrk thread
- page+logins: the page while --login-concurrency logins run all the time (logins are
  expensive by design; this shows whether they slow other requests down)

Needs wrk (Debian package `wrk`). Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password"  # noqa: S105  # of throwaway benchmark users
PRELOAD = 100
SCENARIOS = ("page", "poll", "etag", "post", "page+logins")

# wrk reports through this: one JSON line with the totals and the latency percentiles.
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class Target:
    name: str
    url: str
    pid: int | None = None
    tokens: list[str] = field(default_factory=list)
    newest: int = 0
    etag: str | None = None
    nicknames: list[str] = field(default_factory=list)


@dataclass
class Run:
    scenario: str
    connections: int
    target: str
    load: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: float | None = None


async def prepare(target: Target, users: int) -> None:
    """Users, sessions and at least PRELOAD messages on `target`, through its API."""
    run = secrets.token_hex(3)
    async with aiohttp.ClientSession() as http:
        for i in range(users):
            nickname = f"bench{run}{i}"
            body = {"nickname": nickname, "password": PASSWORD}
            async with http.post(f"{target.url}/api/register", json=body) as r:
                if r.status not in (200, 201):
                    raise SystemExit(f"{target.name}: register answered {r.status}")
            async with http.post(f"{target.url}/api/login", json=body) as r:
                target.tokens.append((await r.json())["token"])
            target.nicknames.append(nickname)
        ids = []
        for i in range(PRELOAD):
            async with http.post(f"{target.url}/api/messages", json={"text": f"preloaded {i}"},
                                 headers={"Authorization": f"Bearer {target.tokens[0]}"}) as r:
                ids.append((await r.json())["id"])
        target.newest = max(ids)
        async with http.get(f"{target.url}/api/messages") as r:
            page = await r.json()
            if not isinstance(page, list) or len(page) != 50:
                raise SystemExit(f"{target.name}: GET /api/messages did not give 50 messages")
            target.etag = r.headers.get("ETag")


def wrk_script(path: Path, *, method: str = "GET", body: str | None = None,
               headers: dict[str, str] | None = None, tokens: list[str] | None = None) -> None:
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    for name, value in (headers or {}).items():
        lines.append(f'wrk.headers["{name}"] = {json.dumps(value)}')
    if tokens:
        # One session per wrk thread, as distinct users would have.
        lines += ["local tokens = {" + ", ".join(json.dumps(t) for t in tokens) + "}",
                  "local counter = 0",
                  "setup = function(thread)",
                  "  counter = counter + 1",
                  "  thread:set('token', tokens[(counter - 1) % #tokens + 1])",
                  "end",
                  "init = function(args)",
                  '  wrk.headers["Authorization"] = "Bearer " .. token',
                  "end"]
    path.write_text("\n".join(lines) + "\n" + _DONE)


def wrk(url: str, script: Path, connections: int, duration: float, threads: int) -> dict[str, int]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s",
         "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, int] = json.loads(line.removeprefix("RESULT "))
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far (Linux /proc)."""
    pids = {pid}
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids.update(int(c) for c in (task / "children").read_text().split())
    total = 0
    for one in pids:
        with contextlib.suppress(OSError):  # a child that just ended
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def logins_running(target: Target, concurrency: int) -> Iterator[list[int]]:
    """Logins at `concurrency`, all the time, in a thread, until the block ends."""
    statuses: list[int] = []
    stop = threading.Event()

    async def one(nickname: str) -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                async with http.post(f"{target.url}/api/login",
                                     json={"nickname": nickname, "password": PASSWORD}) as r:
                    await r.read()
                    statuses.append(r.status)

    def run() -> None:
        async def all_of_them() -> None:
            await asyncio.gather(*(one(target.nicknames[i % len(target.nicknames)])
                                   for i in range(concurrency)))
        asyncio.run(all_of_them())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(1)  # let the logins get going
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(30)


def measure(target: Target, scenario: str, connections: int, args: argparse.Namespace,
            scratch: Path) -> Run | None:
    script = scratch / f"{target.name}-{scenario}.lua"
    url = f"{target.url}/api/messages"
    if scenario == "poll":
        url += f"?after_id={target.newest}"
        wrk_script(script)
    elif scenario == "etag":
        if target.etag is None:
            return None
        wrk_script(script, headers={"If-None-Match": target.etag})
    elif scenario == "post":
        wrk_script(script, method="POST", body='{"text": "a benchmark message"}',
                   headers={"Content-Type": "application/json"}, tokens=target.tokens)
    else:
        wrk_script(script)
    load = os.getloadavg()[0]
    cpu_before = None if target.pid is None else cpu_seconds(target.pid)
    if scenario == "page+logins":
        with logins_running(target, args.login_concurrency) as logins:
            result = wrk(url, script, connections, args.duration, args.threads)
        if any(s != 200 for s in logins):
            print(f"  ({target.name}: {sum(s != 200 for s in logins)} logins failed)")
    else:
        result = wrk(url, script, connections, args.duration, args.threads)
    cpu_us = None
    if target.pid is not None and cpu_before is not None and result["requests"]:
        cpu_us = (cpu_seconds(target.pid) - cpu_before) * 1e6 / result["requests"]
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Run(scenario, connections, target.name, load,
               rps=result["requests"] / (result["duration_us"] / 1e6),
               p50_ms=result["p50_us"] / 1000, p99_ms=result["p99_us"] / 1000,
               errors=errors, requests=result["requests"], cpu_us=cpu_us)


def report(runs: list[Run], baseline: str | None, as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.__dict__ for r in runs], indent=2))
        return
    base = {(r.scenario, r.connections): r.rps for r in runs if r.target == baseline}
    print(f"{'scenario':<12} {'conns':>5} {'target':<10} {'load':>5} {'req/s':>9} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'ratio':>6} {'cpu us/req':>10}")
    for r in runs:
        ref = base.get((r.scenario, r.connections))
        ratio = f"{r.rps / ref:.2f}" if ref else "-"
        cpu = "-" if r.cpu_us is None else f"{r.cpu_us:.0f}"
        print(f"{r.scenario:<12} {r.connections:>5} {r.target:<10} {r.load:>5.2f} "
              f"{r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7} {ratio:>6} "
              f"{cpu:>10}")


@contextlib.contextmanager
def own_service(workers: int | None) -> Iterator[tuple[str, int]]:
    """(URL, pid) of the chat service on loopback, with its own PostgreSQL and Redis,
    stopped afterwards."""
    sys.path.insert(0, str(ROOT / "hack"))
    from servers import PostgresServer, RedisServer, free_port

    pg, rd = PostgresServer(), RedisServer()
    proc = None
    try:
        pg.init()
        rd.start()
        port = free_port()
        env = {"PATH": os.environ["PATH"], **pg.env, **rd.env, "HTTP_HOST": "127.0.0.1",
               "HTTP_PORT": str(port), "LOG_LEVEL": "WARNING",
               "LOGIN_RATE_LIMIT_PER_NICKNAME": "1000000",
               "LOGIN_RATE_LIMIT_PER_ADDRESS": "1000000",
               "REGISTER_RATE_LIMIT_PER_ADDRESS": "1000000",
               "POST_RATE_LIMIT_PER_USER": "1000000000", "USER_STORAGE_MAX_BYTES": str(2**62),
               "METRICS_PORT": "0"}
        subprocess.run([sys.executable, "-m", "chat_service", "migrate"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        command = [sys.executable, "-m", "chat_service", "serve"]
        if workers is not None:
            command += ["--workers", str(workers)]
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health/readyz", timeout=1):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the service did not become ready") from None
                time.sleep(0.2)
        yield url, proc.pid
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        pg.close()
        rd.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", default=[], metavar="NAME=URL",
                        help="a running server to measure (repeat to compare; in turns)")
    parser.add_argument("--pid", action="append", default=[], metavar="NAME=PID",
                        help="a target's server process, for its CPU per request")
    parser.add_argument("--baseline", help="the target the ratio column divides by")
    parser.add_argument("--workers", type=int, help="own service only: --workers to pass")
    parser.add_argument("--connections", default="32,64", help="comma-separated counts")
    parser.add_argument("--duration", type=float, default=20, help="seconds per run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--users", type=int, default=8, help="sessions per target")
    parser.add_argument("--login-concurrency", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print JSON rows")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package `wrk`)")
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")

    with contextlib.ExitStack() as stack:
        pids = dict(p.split("=", 1) for p in args.pid)
        if args.target:
            targets = [Target(*t.split("=", 1)) for t in args.target]
            for target in targets:
                target.pid = int(pids.pop(target.name)) if target.name in pids else None
            if pids:
                raise SystemExit(f"--pid for no --target: {', '.join(sorted(pids))}")
        else:
            url, pid = stack.enter_context(own_service(args.workers))
            targets = [Target("chat", url, pid=pid)]
        for target in targets:
            target.url = target.url.rstrip("/")
            asyncio.run(prepare(target, args.users))
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chat-load-")))
        print(f"{os.cpu_count()} CPUs; {args.duration:g} s per run; wrk -t{args.threads}",
              file=sys.stderr)
        runs = []
        for scenario in scenarios:
            for connections in (int(c) for c in args.connections.split(",")):
                for target in targets:
                    run = measure(target, scenario, connections, args, scratch)
                    if run is not None:
                        runs.append(run)
                        cpu = "" if run.cpu_us is None else f", {run.cpu_us:.0f} us CPU/req"
                        print(f"  {run.scenario} c={run.connections} {run.target}: "
                              f"{run.rps:.0f} req/s, p99 {run.p99_ms:.1f} ms, "
                              f"{run.errors} errors{cpu} (load {run.load:.2f})",
                              file=sys.stderr)
    report(runs, args.baseline, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
