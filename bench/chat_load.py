"""Load benchmark of the chat service: one service process on real PostgreSQL and Redis.

    .venv/bin/python bench/chat_load.py [--concurrency 32] [--scale 1.0] [--json]

Starts PostgreSQL and Redis (hack/servers.py) and `python -m chat_service serve` on
loopback, preloads 10 000 messages, then runs each scenario at a fixed concurrency
for a bounded number of requests (and at most --max-seconds each) and prints
requests/s and p50/p99 latency. Password hashing uses the production argon2
defaults, so the login figures are what a real deployment pays per login.
Everything stops by itself; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hack"))

from servers import PostgresServer, RedisServer, free_port  # noqa: E402

PRELOAD = 10_000


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    def row(self) -> dict[str, object]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

        return {"scenario": self.name, "requests": self.requests, "errors": self.errors,
                "rps": round(self.requests / self.seconds, 1),
                "p50_ms": round(pct(0.50), 2), "p99_ms": round(pct(0.99), 2),
                "mean_ms": round(statistics.fmean(ordered) * 1000, 2)}


async def run_scenario(name: str, total: int, concurrency: int, max_seconds: float,
                       one: Callable[[int], Awaitable[bool]]) -> Result:
    """Send `total` requests from `concurrency` workers (stopping early at max_seconds)."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.monotonic() + max_seconds

    async def worker() -> None:
        nonlocal issued, errors
        while issued < total and time.monotonic() < deadline:
            n = issued
            issued += 1
            started = time.perf_counter()
            ok = await one(n)
            latencies.append(time.perf_counter() - started)
            errors += not ok

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(name, len(latencies), errors, time.perf_counter() - started, latencies)


def start_service(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "chat_service", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/readyz",
                                        timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the service did not become ready")


async def bench(url: str, args: argparse.Namespace) -> list[Result]:
    c = args.concurrency

    def n(base: int) -> int:
        return max(c, int(base * args.scale))

    connector = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=connector) as http:
        tokens = []
        for i in range(c):
            async with http.post(f"{url}/api/register",
                                 json={"nickname": f"bench{i}", "password": "bench-password"}) as r:
                tokens.append((await r.json())["token"])
        async with http.get(f"{url}/api/messages") as r:
            etag = r.headers["ETag"]

        async def get_cold(_: int) -> bool:
            async with http.get(f"{url}/api/messages") as r:
                await r.read()
                return r.status == 200

        async def get_304(_: int) -> bool:
            async with http.get(f"{url}/api/messages", headers={"If-None-Match": etag}) as r:
                await r.read()
                return r.status == 304

        async def post(i: int) -> bool:
            async with http.post(f"{url}/api/messages", json={"text": f"bench message {i}"},
                                 headers={"Authorization": f"Bearer {tokens[i % c]}"}) as r:
                await r.read()
                return r.status == 201

        async def login(i: int) -> bool:
            async with http.post(f"{url}/api/login", json={"nickname": f"bench{i % c}",
                                                           "password": "bench-password"}) as r:
                await r.read()
                return r.status == 200

        results = []
        for name, total, fn in (("GET /api/messages (200, 50 msgs)", n(6000), get_cold),
                                ("GET /api/messages (If-None-Match, 304)", n(10000), get_304),
                                ("POST /api/messages (201)", n(4000), post),
                                ("POST /api/login (argon2id default cost)", n(300), login)):
            await run_scenario("warm-up", max(c, min(200, total // 10)), c, 10, fn)
            results.append(await run_scenario(name, total, c, args.max_seconds, fn))
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply request counts")
    parser.add_argument("--max-seconds", type=float, default=30, help="per scenario")
    parser.add_argument("--json", action="store_true", help="print JSON rows")
    args = parser.parse_args()

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
               "REGISTER_RATE_LIMIT_PER_ADDRESS": "1000000"}
        subprocess.run([sys.executable, "-m", "chat_service", "migrate"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        proc = start_service(env, port)
        url = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(urllib.request.Request(  # noqa: S310
            f"{url}/api/register", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"nickname": "preloader", "password": "preload-pw"}).encode()),
            timeout=10).read()
        pg.psql(pg.database, "INSERT INTO chat_message (user_id, text) "  # noqa: S608
                             "SELECT 1, 'preloaded message ' || g "
                             f"FROM generate_series(1, {int(PRELOAD)}) g; "
                             # As autovacuum would soon: plans see the real table size.
                             "ANALYZE")
        results = asyncio.run(bench(url, args))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        pg.close()
        rd.close()

    rows = [r.row() for r in results]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"chat service, 1 process, concurrency {args.concurrency}, "
              f"{PRELOAD} preloaded messages, {os.cpu_count()} CPUs")
        print(f"{'scenario':<42} {'requests':>8} {'errors':>6} {'req/s':>8} "
              f"{'p50 ms':>8} {'p99 ms':>8}")
        for row in rows:
            print(f"{row['scenario']:<42} {row['requests']:>8} {row['errors']:>6} "
                  f"{row['rps']:>8} {row['p50_ms']:>8} {row['p99_ms']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
