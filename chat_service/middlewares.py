"""The request middleware: head clock, activity, a server span, metrics, one log line
and the JSON error shape, in one layer. No bodies or Authorization headers are logged.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from chat_service.activity import note_request
from chat_service.errors import HTTP_CODES, ApiError, error_response
from chat_service.listening import GuardedConnection
from chat_service.state import CONFIG, METRICS, TRACER

log = logging.getLogger("chat_service.access")
errors_log = logging.getLogger("chat_service.errors")

# Probes and scrapes are frequent and boring: logged at DEBUG only.
_QUIET_ROUTES = frozenset({"/health/livez", "/health/readyz", "/metrics"})
_TRACEPARENT = "traceparent"


def route_template(request: web.Request) -> str:
    """The matched route's template (`/api/messages/{id}`), bounded for metric labels."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def make_request_middleware() -> Middleware:
    """Everything done around every request, in one layer (each layer costs every request
    a coroutine and a frame):

    - the connection's head clock stops while the request runs (`GuardedConnection`);
    - the request counts as activity, unless it is a probe or a scrape (`activity`);
    - a server span continuing the caller's W3C `traceparent`, request count and latency
      by route and status, and one log line;
    - errors become the JSON error shape: `ApiError` as it says, aiohttp's own 4xx/5xx
      with their status, anything else a logged 500 (inside the span, so the log line
      carries its trace id). The span, metrics and log line see that final status.
    """
    propagator = TraceContextTextMapPropagator()

    @web.middleware
    async def per_request(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        connection = request.protocol
        guarded = connection if isinstance(connection, GuardedConnection) else None
        if guarded is not None:
            guarded.request_started()
        note_request(request)
        route = route_template(request)
        method = request.method
        headers = request.headers
        parent = propagator.extract(headers) if _TRACEPARENT in headers else None
        status = 499  # stays so only if the client went away mid-request
        try:
            with request.app[TRACER].start_as_current_span(
                f"{method} {route}", context=parent, kind=SpanKind.SERVER,
                attributes={"http.request.method": method, "http.route": route,
                            "url.path": request.path, "url.scheme": request.scheme},
            ) as span:
                try:
                    response = await _answer(request, handler, method, route)
                    status = response.status
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                    return response
                except web.HTTPException as e:  # a redirect or 304 raised by aiohttp
                    status = e.status
                    raise
                finally:  # in the span: the log line carries its ids
                    _record(request, method, route, status, time.perf_counter() - started)
        finally:
            if guarded is not None:
                guarded.request_finished()

    return per_request


def _record(request: web.Request, method: str, route: str, status: int,
            elapsed: float) -> None:
    """Count the request, time it, and log it (probes and scrapes at DEBUG)."""
    request.app[METRICS].request_done(route, method, status, elapsed)
    level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
    if log.isEnabledFor(level):
        log.log(level, "%s %s %s", method, request.path, status,
                extra={"method": method, "route": route, "path": request.path,
                       "status": status, "duration_ms": round(elapsed * 1000, 2),
                       "remote": request.remote})


async def _answer(request: web.Request, handler: Handler, method: str,
                  route: str) -> web.StreamResponse:
    """The handler's response, or the JSON error that stands for what it raised."""
    try:
        return await handler(request)
    except ApiError as e:
        return _api_error(e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error_response(e.status, HTTP_CODES.get(e.status, "error"),
                              _http_message(request, e), headers=_kept_headers(e))
    except Exception:
        # The last line of defence the API promises: a JSON 500, logged with its trace
        # id. Bad input never gets here; it is a 4xx above.
        errors_log.exception("unhandled error in %s %s", method, route)
        return error_response(500, "internal", "internal server error")


def _api_error(e: ApiError) -> web.Response:
    response = error_response(e.status, e.code, e.message, field=e.field, headers=e.headers)
    if e.close_connection:
        response.force_close()
    return response


def _http_message(request: web.Request, e: web.HTTPException) -> str:
    if e.status == 413:
        return f"request body is larger than {request.app[CONFIG].max_body_bytes} bytes"
    if e.status == 405:
        return f"method {request.method} is not allowed here"
    if e.status == 404:
        return "not found"
    return e.reason


def _kept_headers(e: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in e.headers.items() if k in ("Allow", "Retry-After")}
