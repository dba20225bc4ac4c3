"""The one JSON error shape for every kind of bad request, and the catch-all 500.

The shape is the original backend's `{"error": "<text>"}` with `code` (and `field`, for a
bad input field) beside the text, so the original's clients still show a readable message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from chathelpers import Service, running_service

from chat_service.config import Config

POST_ROUTES = ("/api/register", "/api/login", "/api/messages")


def _assert_error(reply_body: object, code: str) -> None:
    assert isinstance(reply_body, dict)
    assert set(reply_body) - {"field"} == {"error", "code"}
    assert isinstance(reply_body["error"], str)
    assert reply_body["error"]
    assert reply_body["code"] == code


async def _token(service: Service) -> str:
    return str((await service.register("errs"))["token"])


async def test_wrong_method_405(service: Service) -> None:
    for method, path in (("PUT", "/api/messages"), ("GET", "/api/register"),
                         ("DELETE", "/api/login"), ("POST", "/health/livez"),
                         ("PATCH", "/api/messages/1"), ("POST", "/api/events")):
        reply = await service.call(method, path)
        assert reply.status == 405, (method, path)
        _assert_error(reply.body, "method_not_allowed")
        assert reply.headers.get("Allow")


async def test_unknown_path_404(service: Service) -> None:
    for path in ("/api/nope", "/api/messages/1/x", "/assets/missing.js", "/assets/../../etc/passwd",
                 "/assets/%2e%2e/%2e%2e/pyproject.toml", "/assets/" + "long" * 300,
                 "/assets/" + "x/" * 3000 + "y", "/assets/nul%00byte"):
        reply = await service.call("GET", path)
        assert reply.status == 404, path
        _assert_error(reply.body, "not_found")


async def test_oversized_body_413(service: Service) -> None:
    token = await _token(service)
    big = json.dumps({"text": "x" * 70_000})
    for path in POST_ROUTES:
        reply = await service.call("POST", path, data=big, token=token,
                                   headers={"Content-Type": "application/json"})
        assert reply.status == 413, path
        _assert_error(reply.body, "payload_too_large")


async def test_non_json_content_type_415(service: Service) -> None:
    token = await _token(service)
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                  "application/octet-stream", "text/json"):
        for path in POST_ROUTES:
            reply = await service.call("POST", path, data='{"text": "x"}', token=token,
                                       headers={"Content-Type": ctype})
            assert reply.status == 415, (ctype, path)
            _assert_error(reply.body, "unsupported_media_type")


async def _post_without_content_type(service: Service, path: str, body: bytes,
                                     token: str | None = None) -> tuple[int, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with service.http.post(service.url + path, data=body, headers=headers,
                                 skip_auto_headers=["Content-Type"]) as resp:
        assert "Content-Type" not in resp.request_info.headers
        return resp.status, await resp.json()


async def test_json_without_content_type_accepted(service: Service) -> None:
    # The original backend decoded any body as JSON; clients that send none keep working.
    creds = b'{"nickname": "noctype", "password": "no-content-type"}'
    status, body = await _post_without_content_type(service, "/api/register", creds)
    assert status == 201, body
    status, body = await _post_without_content_type(service, "/api/login", creds)
    assert status == 200, body
    assert isinstance(body, dict)
    token = body["token"]
    status, posted = await _post_without_content_type(service, "/api/messages",
                                                      b'{"text": "no header"}', token)
    assert status == 201, posted
    # Still JSON: malformed bodies are 400, not accepted as something else.
    status, error = await _post_without_content_type(service, "/api/messages", b"text=x", token)
    assert status == 400
    _assert_error(error, "invalid_json")


@pytest.mark.parametrize("raw", [
    "", " ", "{", "{\"text\": }", "not json", "[1, 2]", "\"text\"", "null", "42",
    "{\"text\": \"x\"", "\xff\xfe", "[" * 100_00, "{'text': 'single quotes'}",
])
async def test_malformed_json_400(service: Service, raw: str) -> None:
    token = await _token(service)
    for path in POST_ROUTES:
        reply = await service.call("POST", path, data=raw.encode("latin-1"), token=token,
                                   headers={"Content-Type": "application/json"})
        assert reply.status == 400, (raw[:20], path, reply.body)
        _assert_error(reply.body, "invalid_json")


async def test_json_charset_and_suffix_accepted(service: Service) -> None:
    body = '{"nickname":"cs","password":"12345678"}'
    reply = await service.call("POST", "/api/register", data=body,
                               headers={"Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 201
    reply = await service.call("POST", "/api/login", data=body,
                               headers={"Content-Type": "application/vnd.chat+json"})
    assert reply.status == 200


async def test_unexpected_exception_is_json_500_and_logged(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("kaboom")

    def add_route(app: web.Application) -> None:
        app.router.add_get("/test/boom", boom)

    async with running_service(config, customize=add_route) as svc:
        with caplog.at_level(logging.ERROR, logger="chat_service.errors"):
            reply = await svc.call("GET", "/test/boom")
    assert reply.status == 500
    _assert_error(reply.body, "internal")
    assert "kaboom" not in json.dumps(reply.body)
    assert any("unhandled error" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_ui_note_when_not_built(config: Config, tmp_path: Path) -> None:
    async with running_service(replace(config, web_dist_dir=tmp_path / "absent")) as svc:
        reply = await svc.call("GET", "/")
        assert reply.status == 200
        assert "not built" in reply.body
        assert reply.headers["Content-Type"].startswith("text/html")
        # The API works without the UI.
        assert (await svc.call("GET", "/api/messages")).status == 200
        assert (await svc.call("GET", "/assets/index.js")).status == 404


async def test_ui_served_with_security_headers(config: Config, tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>ui</title>")
    (tmp_path / "assets" / "app-1a2b.js").write_text("console.log('ui')")
    (tmp_path / "secret.txt").write_text("not an asset")
    async with running_service(replace(config, web_dist_dir=tmp_path)) as svc:
        index = await svc.call("GET", "/")
        assert index.body == "<!doctype html><title>ui</title>"
        assert "default-src 'self'" in index.headers["Content-Security-Policy"]
        assert index.headers["Cache-Control"] == "no-cache"
        asset = await svc.call("GET", "/assets/app-1a2b.js")
        assert asset.body == "console.log('ui')"
        assert "immutable" in asset.headers["Cache-Control"]
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        assert (await svc.call("GET", "/assets/../secret.txt")).status == 404
        assert (await svc.call("GET", "/assets/%2e%2e/secret.txt")).status == 404
