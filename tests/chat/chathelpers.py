"""Helpers for the chat service tests: the service on a real port, an SSE client, the CLI
as a subprocess, fresh databases. Fixtures using them live in conftest.py.

(A module of its own, not conftest.py, so that importing it is unambiguous.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from servers import PostgresServer, free_port

from chat_service import listening
from chat_service.app import create_app
from chat_service.config import Config
from chat_service.state import CONFIG

ROOT = Path(__file__).resolve().parents[2]


# Cheap argon2 settings keep the suite fast; the production defaults are tested apart.
FAST_HASHING = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "8192", "ARGON2_PARALLELISM": "1"}


def run_cli(env: dict[str, str], *args: str, stdin: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m chat_service ARGS` with exactly `env` (plus PATH) as its environment."""
    return subprocess.run(
        [sys.executable, "-m", "chat_service", *args], cwd=ROOT, input=stdin,
        env=_cli_env(env), capture_output=True, text=True, timeout=timeout)


def start_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`run_cli`, started and not waited for (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "chat_service", *args], cwd=ROOT,
                            env=_cli_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _cli_env(env: dict[str, str]) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}


@contextlib.contextmanager
def relaying(port: int, target: int) -> Iterator[None]:
    """A server "starting" late: from now until the block ends, connections to
    127.0.0.1:`port` are relayed to 127.0.0.1:`target` (before, nothing listens there)."""
    listener = socket.create_server(("127.0.0.1", port))

    def relay(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed: the block ended
                return
            server = socket.create_connection(("127.0.0.1", target))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=relay, args=(a, b), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield
    finally:
        listener.close()


def create_database(server: PostgresServer, label: str) -> dict[str, str]:
    """A new empty database on `server`; returns the service env pointing at it."""
    name = re.sub(r"[^a-z0-9_]", "_", f"chat_{label}".lower())[:40] + "_" + secrets.token_hex(3)
    server.psql("postgres", f'CREATE DATABASE "{name}"')
    return {**server.env, "POSTGRES_DB": name}


def migrated_database(server: PostgresServer, label: str) -> dict[str, str]:
    """A new database with the service's migrations applied (through the CLI)."""
    env = create_database(server, label)
    result = run_cli(env, "migrate")
    assert result.returncode == 0, result.stderr
    return env


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any


@dataclass
class Service:
    """A running chat service and an HTTP client for it."""

    url: str
    app: web.Application
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, *, json_body: Any = None,
                   token: str | None = None, headers: dict[str, str] | None = None,
                   data: bytes | str | None = None) -> Reply:
        """Send a request; the body comes back parsed when it is JSON."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            data = json.dumps(json_body)
            sent.setdefault("Content-Type", "application/json")
        async with self.http.request(method, self.url + path, data=data, headers=sent) as resp:
            raw = await resp.read()
            body: Any = raw.decode("utf-8", "replace")
            if resp.content_type == "application/json" and raw:
                body = json.loads(raw)
            return Reply(resp.status, body, resp.headers)

    async def metrics(self) -> str:
        """The Prometheus text of the metrics port (METRICS_PORT)."""
        port = self.app[CONFIG].metrics_port
        async with self.http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
            return await resp.text()

    async def register(self, nickname: str,
                       password: str = "correct horse") -> dict[str, Any]:  # noqa: S107
        """Register (and so log in) a user; returns the 201 body."""
        reply = await self.call("POST", "/api/register",
                                json_body={"nickname": nickname, "password": password})
        assert reply.status == 201, reply.body
        return dict(reply.body)

    async def post(self, token: str, text: str) -> Reply:
        return await self.call("POST", "/api/messages", json_body={"text": text}, token=token)


@asynccontextmanager
async def running_service(config: Config, *,
                          customize: Callable[[web.Application], None] | None = None,
                          port: int | None = None) -> AsyncIterator[Service]:
    """The service on 127.0.0.1 (config's port unless given), until the block ends."""
    app = create_app(config)
    if customize is not None:
        customize(app)
    runner = listening.runner(app, config)
    await runner.setup()
    try:
        port = port or config.http_port
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            yield Service(f"http://127.0.0.1:{port}", app, http)
    finally:
        await runner.cleanup()


def with_port(config: Config) -> Config:
    """The same config on another free port (a second replica)."""
    return replace(config, http_port=free_port(), metrics_port=free_port(),
                   activity_port=free_port())


async def wait_for(predicate: Callable[[], Any], seconds: float = 10,
                   interval: float = 0.05) -> None:
    """Poll `predicate` (sync or async) until it is truthy."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_raw_reply(data: bytes) -> RawReply:
    """One HTTP/1.1 response as bytes (read to EOF, so `Connection: close`)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawReply(status, headers, body)


async def raw_request(url: str, request: bytes, read_seconds: float = 10) -> RawReply:
    """Send `request` as it is (any bytes) and read the answer until the server closes."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), read_seconds)
    finally:
        writer.close()
    return parse_raw_reply(data)


@dataclass
class SseEvent:
    event: str
    id: str | None
    data: Any


class SseStream:
    """A Server-Sent Events client reading in the background into a queue."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.events: asyncio.Queue[SseEvent | None] = asyncio.Queue()
        self.comments = 0
        self.retry: int | None = None
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            async for raw in self.response.content:
                line = raw.decode().rstrip("\r\n")
                if line == "":
                    if "data" in fields:
                        await self.events.put(SseEvent(
                            fields.get("event", "message"), fields.get("id"),
                            json.loads(fields["data"])))
                    fields = {}
                elif line.startswith(":"):
                    self.comments += 1
                else:
                    name, _, value = line.partition(":")
                    if name == "retry":
                        self.retry = int(value.strip())
                    else:
                        fields[name] = value.removeprefix(" ")
        except (aiohttp.ClientError, asyncio.CancelledError):
            pass
        finally:
            await self.events.put(None)

    async def next(self, seconds: float = 10) -> SseEvent:
        event = await asyncio.wait_for(self.events.get(), seconds)
        assert event is not None, "stream ended"
        return event

    async def ended(self, seconds: float = 10) -> bool:
        while True:
            if await asyncio.wait_for(self.events.get(), seconds) is None:
                return True

    async def close(self) -> None:
        self.response.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@asynccontextmanager
async def sse(service: Service, query: str = "",
              headers: dict[str, str] | None = None) -> AsyncIterator[SseStream]:
    """An open event stream of `service`."""
    response = await service.http.get(service.url + "/api/events" + query, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=None, sock_read=None))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    stream = SseStream(response)
    try:
        yield stream
    finally:
        await stream.close()


class ServerProcess:
    """`python -m chat_service serve` as a child process, its stdout kept in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.url = f"http://127.0.0.1:{env['HTTP_PORT']}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chat_service", "serve"], cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), **env}, stdout=self._log,
            stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/health/livez", timeout=1):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("server did not start")

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._log.close()
        return code
