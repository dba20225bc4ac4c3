"""The waker's HTTP servers: every path on the main port, ``/healthz`` on its own.

I/O at the edge: the handler finds the environment by Host, lets ``pages`` decide,
asks ``directory`` to wake it when ``pages`` says so, and answers.
"""

from __future__ import annotations

from aiohttp import web

from . import pages
from .directory import Directory

DIRECTORY = web.AppKey("directory", Directory)


def host_of(request: web.Request) -> str:
    """The Host header without its port (IPv6 literals keep their brackets)."""
    host = request.headers.get("Host", "")
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0].lower()


async def handle(request: web.Request) -> web.Response:
    directory = request.app[DIRECTORY]
    env = directory.lookup(host_of(request))
    reply = pages.answer(env, request.path, request.headers)
    if reply.wake and env is not None:
        await directory.wake(env)
    return web.Response(status=reply.status, headers=reply.headers,
                        text="" if request.method == "HEAD" else reply.body,
                        content_type=reply.content_type)


async def healthz(request: web.Request) -> web.Response:
    """Ready once the first list of environments arrived."""
    if request.app[DIRECTORY].synced.is_set():
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "starting"}, status=503)


async def _no_server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.pop("Server", None)


def create_app(directory: Directory) -> web.Application:
    """The main port: every method and path of every host it is sent."""
    app = web.Application(client_max_size=64 * 1024)
    app[DIRECTORY] = directory
    app.router.add_route("*", "/{path:.*}", handle)
    app.on_response_prepare.append(_no_server_header)
    return app


def create_health_app(directory: Directory) -> web.Application:
    """The probes' port."""
    app = web.Application()
    app[DIRECTORY] = directory
    app.router.add_get("/healthz", healthz)
    return app
