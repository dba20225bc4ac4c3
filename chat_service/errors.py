"""API errors and their one JSON shape, the original backend's contract extended:
`{"error": "<human-readable text>", "code": "<stable code>", "field": "<input field>"}`.

`error` stays a string, as the original's clients read it; `code` is always present;
`field` only when one input field is at fault. Pure: exceptions and a response
builder, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web


class ApiError(Exception):
    """An error the client should see as-is, with an HTTP status and a stable code."""

    status = 400
    code = "bad_request"
    close_connection = False
    """Whether the connection must close after the answer (the request was not read whole)."""

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field
        self.headers = dict(headers or {})


class ValidationFailed(ApiError):
    """A field is missing or has a value outside its rules."""

    code = "validation_failed"


class Unauthorized(ApiError):
    """No, an unknown or an expired credential."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str = "missing or invalid token") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class InvalidCredentials(ApiError):
    """Login failed; the same message for an unknown nickname and a wrong password."""

    status = 401
    code = "invalid_credentials"

    def __init__(self) -> None:
        super().__init__("invalid credentials")


class Forbidden(ApiError):
    """Authenticated, but not allowed (e.g. over a quota)."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """The resource does not exist (or is not the caller's)."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """The request clashes with existing data."""

    status = 409
    code = "conflict"


class RateLimited(ApiError):
    """Too many attempts; Retry-After tells when to try again."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int,
                 message: str = "too many attempts, try again later") -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class RequestTimeout(ApiError):
    """The request body did not arrive in time."""

    status = 408
    code = "request_timeout"
    close_connection = True

    def __init__(self) -> None:
        super().__init__("the request body did not arrive in time")


class ClientGone(ApiError):
    """The client closed the connection before its request was read: nobody hears the
    answer, which only goes to the access log and metrics (as nginx's 499)."""

    status = 499
    code = "client_closed_request"
    close_connection = True

    def __init__(self) -> None:
        super().__init__("the client closed the connection")


class Unavailable(ApiError):
    """A dependency (PostgreSQL or Redis) did not answer in time."""

    status = 503
    code = "unavailable"

    def __init__(self, dependency: str) -> None:
        super().__init__(f"{dependency} is unavailable, try again shortly",
                         headers={"Retry-After": "1"})
        self.dependency = dependency


class DatabaseUnavailable(Unavailable):
    """PostgreSQL could not be reached or did not answer in time."""

    def __init__(self) -> None:
        super().__init__("postgresql")


class Busy(ApiError):
    """This process is at a capacity limit; another replica (or a later try) may serve."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})


class RedisUnavailable(Unavailable):
    """Redis could not be reached or did not answer in time."""

    def __init__(self) -> None:
        super().__init__("redis")


# Codes for the errors aiohttp itself raises (routing, body size), by status.
HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 408: "request_timeout", 409: "conflict",
    413: "payload_too_large", 415: "unsupported_media_type", 429: "rate_limited",
    500: "internal", 503: "unavailable",
}


def error_body(code: str, message: str, *, field: str | None = None) -> dict[str, str]:
    """`{"error": message, "code": code[, "field": field]}`."""
    body = {"error": message, "code": code}
    if field is not None:
        body["field"] = field
    return body


def error_response(status: int, code: str, message: str, *, field: str | None = None,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    """The JSON error response every failing endpoint returns."""
    return web.json_response(error_body(code, message, field=field), status=status,
                             headers=headers)
