"""Slow and vanishing clients: header and body deadlines, quiet disconnects; and what the
HTTP server says about itself (no version) and where the metrics are (not on the API)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

import pytest
from chathelpers import Service, parse_raw_reply, raw_request, running_service

from chat_service.config import Config


async def _connect(svc: Service) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = svc.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def test_a_head_sent_a_byte_at_a_time_is_cut_off(config: Config) -> None:
    # The review: 200 sockets sending their headers slowly stayed open for 60 s.
    async with running_service(replace(config, http_header_timeout=1.0)) as svc:
        reader, writer = await _connect(svc)
        started = time.monotonic()
        head = b"GET /api/messages HTTP/1.1\r\nHost: chat\r\nX-Slow: " + b"a" * 40
        closed_after = None
        for byte in head:
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            try:
                if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
        writer.close()
        assert closed_after is not None, "the slow head was let through"
        assert 0.9 < closed_after < 3


async def test_idle_keep_alive_outlives_the_head_deadline(config: Config) -> None:
    # The deadline counts from a head's first byte: an idle connection between requests is
    # the keep-alive timeout's business (longer than the ingress' idle timeout).
    async with running_service(replace(config, http_header_timeout=0.5)) as svc:
        reader, writer = await _connect(svc)
        request = b"GET /api/messages HTTP/1.1\r\nHost: chat\r\n\r\n"
        for _ in range(2):
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            assert head.startswith(b"HTTP/1.1 200")
            await asyncio.sleep(1.2)  # idle, longer than the head deadline
        writer.close()


async def test_a_body_that_does_not_arrive_is_408(config: Config) -> None:
    async with running_service(replace(config, http_body_timeout=1.0)) as svc:
        reader, writer = await _connect(svc)
        started = time.monotonic()
        writer.write(b"POST /api/login HTTP/1.1\r\nHost: chat\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 100\r\n\r\n{\"nickname\":")
        await writer.drain()
        reply = parse_raw_reply(await asyncio.wait_for(reader.read(), 10))
        elapsed = time.monotonic() - started
        writer.close()
        assert reply.status == 408
        assert reply.json() == {"error": "the request body did not arrive in time",
                                "code": "request_timeout"}
        assert reply.headers["connection"] == "close"
        assert 0.9 < elapsed < 4


async def test_a_client_gone_mid_body_is_logged_quietly(
        service: Service, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        for path in ("/api/register", "/api/login"):
            _reader, writer = await _connect(service)
            writer.write(f"POST {path} HTTP/1.1\r\nHost: chat\r\nContent-Type: application/json"
                         "\r\nContent-Length: 1000\r\n\r\n{\"nickname\": \"gone".encode())
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.close()
        await asyncio.sleep(0.5)
        # The service goes on.
        assert (await service.call("GET", "/api/messages")).status == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]
    gone = [r for r in caplog.records if getattr(r, "status", None) == 499]
    assert len(gone) == 2
    assert all(r.levelno == logging.INFO for r in gone)


async def test_server_header_names_no_version(service: Service) -> None:
    for path in ("/api/messages", "/api/nope", "/health/livez"):
        reply = await service.call("GET", path)
        assert reply.headers["Server"] == "chat", path
    # The HTTP server's own answer to a request it cannot parse, too.
    bad = await raw_request(service.url, b"GET /\x00 HTTP/1.1\r\nHost: chat\r\n\r\n")
    assert bad.status == 400
    assert bad.headers["server"] == "chat"
    assert "aiohttp" not in str(bad.headers)
    metrics = await service.metrics()
    assert "chat_http_requests_total" in metrics


async def test_metrics_are_not_on_the_api_port(service: Service) -> None:
    reply = await service.call("GET", "/metrics")
    assert reply.status == 404
    assert reply.body["code"] == "not_found"
