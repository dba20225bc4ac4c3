"""Metrics, OTLP trace export to a real HTTP receiver, and logs free of secrets."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable

import aiohttp
from aiohttp import web
from chathelpers import ServerProcess, Service, wait_for
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from servers import free_port

from chat_service.state import CONFIG


async def test_metrics_content(service: Service) -> None:
    token = (await service.register("metric"))["token"]
    await service.post(token, "counted")
    await service.call("GET", "/api/messages")
    await service.call("GET", "/api/nope")
    metrics_url = f"http://127.0.0.1:{service.app[CONFIG].metrics_port}/metrics"
    async with service.http.get(metrics_url) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        assert reply.headers["Server"] == "chat"
        text = await reply.text()
    # Not on the API's port, which the Ingress routes.
    assert (await service.call("GET", "/metrics")).status == 404
    assert 'chat_http_requests_total{method="POST",route="/api/register",status="201"} 1.0' in text
    assert 'chat_http_requests_total{method="POST",route="/api/messages",status="201"} 1.0' in text
    assert 'chat_http_requests_total{method="GET",route="/api/messages",status="200"} 1.0' in text
    assert 'route="unmatched",status="404"' in text
    assert 'chat_http_request_duration_seconds_bucket{le="0.1",method="GET",' \
           'route="/api/messages"}' in text
    assert "chat_http_request_duration_seconds_count" in text
    assert "chat_messages_created_total 1.0" in text
    assert "chat_live_clients 0.0" in text
    size = next(line for line in text.splitlines() if line.startswith("chat_db_pool_size "))
    free = next(line for line in text.splitlines() if line.startswith("chat_db_pool_free "))
    assert float(size.split()[1]) >= 1
    assert 0 <= float(free.split()[1]) <= float(size.split()[1])


async def test_spans_exported_with_incoming_trace_id(
        server_process: Callable[..., ServerProcess]) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def collect(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(body=b"", content_type="application/x-protobuf")

    receiver = web.Application()
    receiver.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(receiver)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        server = server_process(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
                                OTEL_SERVICE_NAME="chat-under-test", OTEL_BSP_SCHEDULE_DELAY="100")
        trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
        headers = {"traceparent": f"00-{trace_id}-{parent_id}-01"}
        async with aiohttp.ClientSession() as http:
            async with http.post(server.url + "/api/register", headers=headers,
                                 json={"nickname": "traced", "password": "tracing-1"}) as r:
                token = (await r.json())["token"]
            async with http.post(server.url + "/api/messages", json={"text": "t"},
                                 headers={**headers, "Authorization": f"Bearer {token}"}) as r:
                assert r.status == 201

        def spans() -> list[tuple[str, str, str, int, str]]:
            found = []
            for message in received:
                for resource_spans in message.resource_spans:
                    service = next(a.value.string_value for a in resource_spans.resource.attributes
                                   if a.key == "service.name")
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            found.append((span.name, span.trace_id.hex(),
                                          span.parent_span_id.hex(), span.kind, service))
            return found

        await wait_for(lambda: any(s[0] == "INSERT chat_message" for s in spans()), seconds=15)
        mine = [s for s in spans() if s[1] == trace_id]
        names = {s[0] for s in mine}
        assert {"POST /api/register", "POST /api/messages", "INSERT chat_user",
                "INSERT chat_message", "redis EVALSHA", "redis GETEX", "redis PUBLISH"} <= names
        servers = [s for s in mine if s[0].startswith("POST ")]
        assert all(s[2] == parent_id and s[3] == 2 for s in servers)  # SERVER, child of caller
        assert all(s[4] == "chat-under-test" for s in mine)
    finally:
        await runner.cleanup()


async def test_logs_are_json_with_trace_ids_and_no_secrets(
        server_process: Callable[..., ServerProcess]) -> None:
    server = server_process(LOG_LEVEL="DEBUG")
    password = "Sup3r-Secret-" + secrets.token_hex(4)
    async with aiohttp.ClientSession() as http:
        async with http.post(server.url + "/api/register",
                             json={"nickname": "logged", "password": password}) as r:
            token = (await r.json())["token"]
        async with http.post(server.url + "/api/login",
                             json={"nickname": "logged", "password": password}) as r:
            token2 = (await r.json())["token"]
        async with http.post(server.url + "/api/login",
                             json={"nickname": "logged", "password": password + "x"}) as r:
            assert r.status == 401
        for tok in (token, token2, "garbage-token"):
            async with http.post(server.url + "/api/messages", json={"text": "hi"},
                                 headers={"Authorization": f"Bearer {tok}"}) as r:
                assert r.status in (201, 401)
        async with http.post(server.url + "/api/logout",
                             headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 204
    await asyncio.sleep(0.2)
    server.stop()
    output = server.output()
    for secret in (password, token, token2, "garbage-token", server.env["POSTGRES_PASSWORD"],
                   server.env["REDIS_PASSWORD"]):
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    access = [e for e in lines if e["logger"] == "chat_service.access"]
    assert len(access) >= 7
    assert all(len(e["trace_id"]) == 32 and e["route"] and e["status"] for e in access)
    assert {e["status"] for e in access} >= {201, 200, 401, 204}
