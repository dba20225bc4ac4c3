"""Resuming event streams: replays that do not pin memory, caps on replays and on open
streams, and replays that cannot starve requests of database connections."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace

import pytest
from chathelpers import ServerProcess, running_service, sse, wait_for
from servers import PostgresServer

from chat_service import events
from chat_service.config import Config
from chat_service.models import Message
from chat_service.state import HUB

MIB = 2**20


def _fill(pg: PostgresServer, db: str, count: int, text_sql: str) -> None:
    pg.psql(db, "INSERT INTO chat_user (nickname, nickname_key, password_hash) "
                "VALUES ('bulk', 'bulk', 'x')")
    pg.psql(db, "INSERT INTO chat_message (user_id, text) "  # noqa: S608
                f"SELECT 1, {text_sql} FROM generate_series(1, {count})")


def _rss(pid: int) -> int:
    status = open(f"/proc/{pid}/status").read()  # noqa: SIM115
    return int(next(line for line in status.splitlines()
                    if line.startswith("VmRSS:")).split()[1]) * 1024


def _metric(url: str, name: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
        text = resp.read().decode()
    return float(next(line.split()[1] for line in text.splitlines()
                      if line.startswith(name + " ")))


def _stalled_stream(port: int) -> socket.socket:
    """A client that asks to resume from the start and then never reads (the worst case:
    the server can only hold on to what it has not been able to send)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /api/events?after_id=0 HTTP/1.1\r\nHost: chat\r\n\r\n")
    return sock


@pytest.mark.parametrize(("kind", "text_sql"), [
    ("ascii", "repeat('x', 2000)"), ("4-byte", "repeat(chr(119070), 2000)")])
def test_resuming_streams_do_not_pin_memory(
        server_process: Callable[..., ServerProcess], chat_env: dict[str, str],
        postgres_server: PostgresServer, kind: str, text_sql: str) -> None:
    # The review: a resuming stream held its whole replay (up to 1,000 messages) until it
    # disconnected, 2.3 MB (ASCII) to 8 MB (4-byte characters) each; ~55 OOM-killed a pod.
    _fill(postgres_server, chat_env["POSTGRES_DB"], 1000, text_sql)
    # One process; the byte cap out of the way, so each replay is the whole 1,000 messages.
    server = server_process(HTTP_WORKERS="1", SSE_MAX_STREAMS_PER_ADDRESS="100",
                            SSE_REPLAY_MAX_BYTES=str(64 * MIB), LOG_LEVEL="WARNING")
    port = int(chat_env["HTTP_PORT"])
    metrics = f"http://127.0.0.1:{chat_env['METRICS_PORT']}/metrics"
    # Warm up: one whole replay, read to the end, so pools and code paths exist.
    with socket.create_connection(("127.0.0.1", port)) as warm:
        warm.sendall(b"GET /api/events?after_id=0 HTTP/1.1\r\nHost: chat\r\n\r\n")
        seen = b""
        while b"id: 1000\n" not in seen[-20000:]:
            seen += warm.recv(1 << 20)
    # Its stream ends at the next heartbeat (1 s here), when the server finds it closed.
    deadline = time.monotonic() + 30
    while _metric(metrics, "chat_live_clients") > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    before = _rss(server.proc.pid)
    streams = [_stalled_stream(port) for _ in range(40)]
    try:
        while _metric(metrics, "chat_live_clients") < 40 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _metric(metrics, "chat_live_clients") == 40
        # Let every stream run into its client's full socket, then take the high mark.
        peak, quiet_since = 0, time.monotonic()
        while time.monotonic() - quiet_since < 3 and time.monotonic() < deadline:
            now = _rss(server.proc.pid)
            if now > peak:
                peak, quiet_since = now, time.monotonic()
            time.sleep(0.2)
    finally:
        for sock in streams:
            sock.close()
    grown = (peak - before) / MIB
    print(f"\n40 stalled resuming streams, 1,000 x 2,000 {kind} characters: "
          f"RSS {before / MIB:.1f} MiB -> {peak / MIB:.1f} MiB (+{grown:.1f} MiB)")
    assert grown < 40, f"grew {grown:.1f} MiB"


async def test_replay_stops_at_its_byte_cap(config: Config, chat_env: dict[str, str],
                                            postgres_server: PostgresServer) -> None:
    _fill(postgres_server, chat_env["POSTGRES_DB"], 100, "repeat('y', 2000)")
    async with running_service(replace(config, sse_replay_max_bytes=65536)) as svc, \
            sse(svc, "?after_id=0") as stream:
        replayed = []
        while (event := await stream.next()).event == "message.created":
            replayed.append(event)
        assert event.event == "resync"
        # As many whole frames as fit in 64 KiB (2,000-character messages: about 30).
        frame = len(events.sse_frame(events.created_event(Message.from_json(replayed[0].data))))
        assert len(replayed) == 65536 // frame
        assert 25 < len(replayed) < 35
        assert [int(e.id or 0) for e in replayed] == list(range(1, len(replayed) + 1))


async def test_open_streams_are_capped_per_address_and_process(config: Config) -> None:
    behind_proxy = replace(config, trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),),
                           sse_max_streams_per_address=2, sse_max_streams=3)
    async with running_service(behind_proxy) as svc:
        one = {"X-Forwarded-For": "203.0.113.1"}
        async with sse(svc, headers=one), sse(svc, headers=one):
            refused = await svc.call("GET", "/api/events", headers=one)
            assert refused.status == 429
            assert refused.body == {"error": "too many open event streams from your address",
                                    "code": "rate_limited"}
            assert refused.headers["Retry-After"] == "10"
            async with sse(svc, headers={"X-Forwarded-For": "203.0.113.2"}):
                full = await svc.call("GET", "/api/events",
                                      headers={"X-Forwarded-For": "203.0.113.3"})
                assert full.status == 503
                assert full.body["code"] == "unavailable"
                assert full.headers["Retry-After"] == "10"
        # Closed streams free their places.
        await wait_for(lambda: svc.app[HUB].client_count == 0)
        async with sse(svc, headers=one), sse(svc, headers=one):
            assert svc.app[HUB].client_count == 2


async def test_replays_leave_requests_their_connections(
        config: Config, chat_env: dict[str, str], postgres_server: PostgresServer) -> None:
    # The review: 300 concurrent replays took the whole pool (202 x 503, writers 2.45 s).
    # Here a request that waits 0.5 s for a connection is a 503: writers (one insert at a
    # time, so one connection) must never queue behind the replays, which may use one of
    # the two connections, however many of them run.
    _fill(postgres_server, chat_env["POSTGRES_DB"], 1000, "repeat('z', 2000)")
    small_pool = replace(config, postgres_pool_min=1, postgres_pool_max=2,
                         postgres_pool_wait=0.5, sse_replay_connections=1,
                         sse_max_streams_per_address=1000, sse_replay_max_bytes=4 * MIB)
    async with running_service(small_pool) as svc:
        tokens = [(await svc.register(f"writer{i}"))["token"] for i in range(4)]
        port = int(svc.url.rsplit(":", 1)[1])

        async def replay_to_the_end() -> int:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /api/events?after_id=0 HTTP/1.1\r\nHost: chat\r\n\r\n")
            marker = b"event: message.created"
            seen, tail = 0, b""
            try:
                while seen < 1000:
                    data = await reader.read(1 << 16)
                    assert data, "stream ended early"
                    # Count each marker once, also when a read splits it.
                    window = tail + data
                    seen += window.count(marker)
                    tail = window[-(len(marker) - 1):]
                return seen
            finally:
                writer.close()

        latencies: list[float] = []

        async def write(token: str) -> list[int]:
            statuses = []
            for i in range(25):
                started = time.monotonic()
                statuses.append((await svc.post(token, f"during replays {i}")).status)
                latencies.append(time.monotonic() - started)
            return statuses

        replays = [asyncio.create_task(replay_to_the_end()) for _ in range(100)]
        written = await asyncio.gather(*(write(t) for t in tokens))
        print(f"\nwriters during 100 replays: worst {max(latencies) * 1000:.0f} ms")
        assert [s for statuses in written for s in statuses] == [201] * 100
        assert await asyncio.gather(*replays) == [1000] * 100
