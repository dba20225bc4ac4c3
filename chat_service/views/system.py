"""Probes, metrics, the OpenAPI document and the web UI."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

from aiohttp import web

from chat_service import queries
from chat_service.errors import Unavailable, error_body
from chat_service.metrics import CONTENT_TYPE
from chat_service.openapi import build_spec
from chat_service.state import CONFIG, DB, METRICS, REDIS

READY_TIMEOUT = 1.0
# The built UI loads only its own files and talks only to this origin.
_UI_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_UI_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chat</title></head>
<body><h1>Chat</h1><p>The web UI is not built. Build it with
<code>npm --prefix chat_service/web ci &amp;&amp; npm --prefix chat_service/web run build</code>.
The API is served under <a href="/api/openapi.json">/api</a>.</p></body></html>
"""


async def livez(request: web.Request) -> web.Response:
    """GET /health/livez: the process serves requests."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """GET /health/readyz: ready (200) when PostgreSQL answers within a second, since
    every read needs it and nothing else; 503 otherwise. Redis is checked too and
    reported in `checks` (200 with status `degraded` when only it is down: reading
    works, posting and logging in answer 503) and in `chat_dependency_up`. A Redis
    restart must not take every replica out of the Service at once."""
    async def probe(check: Awaitable[None]) -> str:
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await check
        except (Unavailable, TimeoutError):
            return "unavailable"
        return "ok"

    pg, redis = await asyncio.gather(probe(queries.ping(request.app[DB])),
                                     probe(request.app[REDIS].ping()))
    checks = {"postgresql": pg, "redis": redis}
    for name, state in checks.items():
        request.app[METRICS].dependency_up.labels(name).set(1 if state == "ok" else 0)
    if pg != "ok":
        return web.json_response(
            {**error_body("unavailable", "not ready: postgresql"), "checks": checks},
            status=503)
    return web.json_response({"status": "ok" if redis == "ok" else "degraded", "checks": checks})


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text format."""
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    """GET /api/openapi.json: the OpenAPI 3.1 description of this API."""
    return web.json_response(build_spec())


async def index(request: web.Request) -> web.StreamResponse:
    """GET /: the web UI's index.html, or a note that the UI is not built."""
    page = request.app[CONFIG].web_dist_dir / "index.html"
    if not page.is_file():
        return web.Response(text=_UI_MISSING, content_type="text/html", headers=_UI_HEADERS)
    return web.FileResponse(page, headers={"Cache-Control": "no-cache", **_UI_HEADERS})


async def asset(request: web.Request) -> web.StreamResponse:
    """GET /assets/{path}: a built UI file (content-hashed names, so cached for long)."""
    root = (request.app[CONFIG].web_dist_dir / "assets").resolve()
    wanted = Path(request.match_info["path"])
    try:
        target = (root / wanted).resolve()
        found = not wanted.is_absolute() and target.is_relative_to(root) and target.is_file()
    except (OSError, ValueError):
        # Names the file system refuses (too long, NUL bytes) name no file of ours.
        found = False
    if not found:
        raise web.HTTPNotFound()
    return web.FileResponse(target, headers={
        "Cache-Control": "public, max-age=31536000, immutable", **_UI_HEADERS})
