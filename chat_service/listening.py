"""How the service's sockets are served: slow clients cut off, no version in `Server`.

aiohttp waits for a request's headers as long as the keep-alive timeout allows (an
hour by default), so a client sending its head a byte at a time holds a connection
as long as it likes. `GuardedRunner` serves an application with connections that:

- must deliver a whole request head (line and headers) within HTTP_HEADER_TIMEOUT_SECONDS
  of its first byte, else they are closed without an answer;
- are closed after HTTP_KEEPALIVE_SECONDS idle (above the ingress' own idle timeout,
  so the proxy never reuses a connection we are closing);
- linger at most LINGER_SECONDS reading a body the handler did not want.

(The body's own deadline, HTTP_BODY_TIMEOUT_SECONDS, is `inputs.json_object`'s.)
The service's request middleware (or `make_head_middleware`, on the metrics port) tells
the connection when a request has started and ended, so the head timer runs only between
requests. `hide_server_version` replaces
aiohttp's `Server: Python/3.x aiohttp/3.x` with `Server: chat`, on application
responses and on the HTTP server's own error answers alike.

This module does I/O (sockets) only through aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from aiohttp.web_protocol import RequestHandler

from chat_service.config import Config

log = logging.getLogger(__name__)

SERVER = "chat"
LINGER_SECONDS = 2.0


class GuardedConnection(RequestHandler):
    """One HTTP connection, closed when a request head takes too long to arrive."""

    def __init__(self, manager: web.Server, *, loop: asyncio.AbstractEventLoop,
                 header_timeout: float, on_slow_client: Callable[[], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._guard_loop = loop
        self._header_timeout = header_timeout
        self._on_slow_client = on_slow_client
        # When the pending request head's first byte arrived (None: no head pending).
        self._head_since: float | None = None
        # Checks the pending head; rescheduled while heads keep arriving, so a busy
        # connection costs a timer every HTTP_HEADER_TIMEOUT_SECONDS, not one per request.
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_request = False

    def data_received(self, data: bytes) -> None:
        """Feed the parser; bytes arriving between requests start the head's clock."""
        super().data_received(data)
        if not self._in_request and self._head_since is None:
            self._head_since = self._guard_loop.time()
            if self._head_timer is None:
                self._head_timer = self._guard_loop.call_later(self._header_timeout,
                                                               self._check_head)

    def request_started(self) -> None:
        """A whole head arrived and its handler runs: the clock stops."""
        self._in_request = True
        self._head_since = None

    def request_finished(self) -> None:
        """The handler is done; the next request's first byte starts the clock again."""
        self._in_request = False

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection is gone: so is its clock."""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """aiohttp's own answer to a request it could not parse, without its version."""
        response = super().handle_error(request, status, exc, message)
        response.headers[hdrs.SERVER] = SERVER
        return response

    def _check_head(self) -> None:
        self._head_timer = None
        if self._head_since is None or self._in_request:
            return  # no head pending: the next one starts a timer again
        left = self._head_since + self._header_timeout - self._guard_loop.time()
        if left > 0:  # a later head than the one that set this timer
            self._head_timer = self._guard_loop.call_later(left, self._check_head)
            return
        log.debug("closing a connection whose request head took over %g s",
                  self._header_timeout)
        if self._on_slow_client is not None:
            self._on_slow_client()
        self.force_close()


class _GuardedServer(web.Server):
    """aiohttp's server, making `GuardedConnection`s."""

    def __call__(self) -> RequestHandler:
        return GuardedConnection(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An `AppRunner` whose connections are `GuardedConnection`s."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The same server, making guarded connections: only __call__ differs.
        server.__class__ = _GuardedServer
        return server


def runner(app: web.Application, config: Config, *,
           on_slow_client: Callable[[], None] | None = None) -> GuardedRunner:
    """A runner for `app` with the configured connection limits."""
    return GuardedRunner(app, access_log=None, shutdown_timeout=config.shutdown_timeout,
                         keepalive_timeout=config.http_keepalive,
                         lingering_time=min(LINGER_SECONDS, config.http_body_timeout),
                         header_timeout=config.http_header_timeout,
                         on_slow_client=on_slow_client)


def make_head_middleware() -> Middleware:
    """Tells a `GuardedConnection` when a request starts and ends (outermost middleware)."""

    @web.middleware
    async def head(request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = request.protocol
        if not isinstance(connection, GuardedConnection):
            return await handler(request)
        connection.request_started()
        try:
            return await handler(request)
        finally:
            connection.request_finished()

    return head


async def hide_server_version(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: `Server: chat`, not aiohttp's name and version."""
    response.headers[hdrs.SERVER] = SERVER
