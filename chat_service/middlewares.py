"""Request middlewares: a server span, metrics and one log line, and the JSON error shape.

Order (outermost first): observing (span, metrics, log line) -> errors, so the span,
the metrics and the log line all see the final status of the response the errors
middleware built. No bodies or Authorization headers are ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from chat_service.errors import HTTP_CODES, ApiError, error_response
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


def make_observing_middleware() -> Middleware:
    """A server span per request (continuing the caller's W3C `traceparent`), request
    count and latency by route and status, and one log line per request. One middleware
    for the three: each layer costs every request a coroutine."""
    propagator = TraceContextTextMapPropagator()

    @web.middleware
    async def observing(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = route_template(request)
        method = request.method
        headers = request.headers
        parent = propagator.extract(headers) if _TRACEPARENT in headers else None
        status = 499  # stays so only if the client went away mid-request
        with request.app[TRACER].start_as_current_span(
            f"{method} {route}", context=parent, kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route,
                        "url.path": request.path, "url.scheme": request.scheme},
        ) as span:
            try:
                response = await handler(request)
                status = response.status
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                return response
            finally:
                elapsed = time.perf_counter() - started
                request.app[METRICS].request_done(route, method, status, elapsed)
                level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
                if log.isEnabledFor(level):
                    log.log(level, "%s %s %s", method, request.path, status,
                            extra={"method": method, "route": route, "path": request.path,
                                   "status": status, "duration_ms": round(elapsed * 1000, 2),
                                   "remote": request.remote})

    return observing


def make_error_middleware() -> Middleware:
    """Every error as `{"error": text, "code", "field"?}`; unexpected ones as a logged 500."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as e:
            response = error_response(e.status, e.code, e.message, field=e.field,
                                      headers=e.headers)
            if e.close_connection:
                response.force_close()
            return response
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return error_response(e.status, HTTP_CODES.get(e.status, "error"),
                                  _http_message(request, e), headers=_kept_headers(e))
        except asyncio.CancelledError:
            raise
        except Exception:
            # The last line of defence the API promises: a JSON 500, logged with its
            # trace id. Bad input never gets here; it is rejected above as a 4xx.
            errors_log.exception("unhandled error in %s %s", request.method,
                                 route_template(request))
            return error_response(500, "internal", "internal server error")

    return errors


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
