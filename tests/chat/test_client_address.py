"""Who the client is: X-Forwarded-For counts only from trusted proxies, and header bytes
that are not UTF-8 are a 4xx, never a 500."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from dataclasses import replace

import pytest
from chathelpers import Service, raw_request, running_service

from chat_service.config import Config


def _trusting(config: Config, *ranges: str) -> Config:
    return replace(config, trusted_proxies=tuple(ipaddress.ip_network(r) for r in ranges))


async def _logins(svc: Service, forwarded: list[str]) -> list[int]:
    return [(await svc.call("POST", "/api/login", json_body={"nickname": f"n{i}", "password": "x"},
                            headers={"X-Forwarded-For": hop})).status
            for i, hop in enumerate(forwarded)]


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(config: Config) -> None:
    # The attack: anyone who reaches the pod sends a fresh X-Forwarded-For each time, and
    # so a fresh per-address bucket. The peer (127.0.0.1) is not a trusted proxy here.
    limited = replace(_trusting(config, "10.0.0.0/8"), login_limit_per_address=3)
    async with running_service(limited) as svc:
        statuses = await _logins(svc, [f"203.0.113.{i}" for i in range(5)])
    assert statuses == [401, 401, 401, 429, 429]


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(config: Config) -> None:
    limited = replace(_trusting(config, "127.0.0.0/8", "10.0.0.0/8"), login_limit_per_address=2)
    async with running_service(limited) as svc:
        # The ingress (127.0.0.1, trusted) appended the address it saw, after an internal
        # hop (10.0.0.5, trusted): the client is 203.0.113.7, whatever it claimed before.
        hops = ["198.51.100.1, 203.0.113.7, 10.0.0.5", "1.1.1.1, 203.0.113.7",
                "203.0.113.7"]
        assert await _logins(svc, hops) == [401, 401, 429]
        # Another client behind the same proxy has its own bucket.
        assert await _logins(svc, ["203.0.113.8"]) == [401]
        # Garbage left of a trusted hop ends the walk at the address that hop vouched for.
        assert await _logins(svc, ["not-an-address, 203.0.113.9"]) == [401]


async def test_non_utf8_bearer_token_is_401(service: Service) -> None:
    for raw in (b"Bearer \xff\xfe\xfd", b"Bearer abc\xc3(", b"\xff\xff abc"):
        body = b'{"text": "x"}'
        reply = await raw_request(service.url, b"POST /api/messages HTTP/1.1\r\n"
                                  b"Host: chat\r\nConnection: close\r\n"
                                  b"Content-Type: application/json\r\n"
                                  b"Authorization: " + raw + b"\r\n"
                                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                                  + body)
        assert reply.status == 401, (raw, reply.body)
        assert reply.json()["code"] == "unauthorized"
        assert reply.headers["www-authenticate"] == "Bearer"
        logout = await raw_request(service.url, b"POST /api/logout HTTP/1.1\r\nHost: chat\r\n"
                                   b"Connection: close\r\nAuthorization: " + raw + b"\r\n\r\n")
        assert logout.status == 401, (raw, logout.body)


async def test_non_utf8_forwarding_header_is_no_500(config: Config,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps({"nickname": "someone", "password": "wrong one"}).encode()
    async with running_service(_trusting(config, "127.0.0.0/8")) as svc:
        with caplog.at_level(logging.WARNING):
            for raw in (b"\xff\xfe", b"203.0.113.1, \xc3(", b"\xe2\x82"):
                reply = await raw_request(svc.url, b"POST /api/login HTTP/1.1\r\nHost: chat\r\n"
                                          b"Connection: close\r\nX-Forwarded-For: " + raw +
                                          b"\r\nContent-Length: " + str(len(body)).encode()
                                          + b"\r\n\r\n" + body)
                assert reply.status == 401, (raw, reply.body)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_non_utf8_stream_headers_start_a_live_stream(config: Config) -> None:
    async with running_service(_trusting(config, "127.0.0.0/8")) as svc:
        host, port = svc.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(b"GET /api/events HTTP/1.1\r\nHost: chat\r\nLast-Event-ID: \xff\xfe\r\n"
                         b"X-Forwarded-For: \xc3(\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"retry: 3000" in await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
        finally:
            writer.close()
