"""The OpenAPI 3.1 description of the API, as a plain dict (pure; no I/O).

A test checks that every registered route appears here and every path here is
registered, so this document stays true.
"""

from __future__ import annotations

from typing import Any

from chat_service.validation import (
    LIMIT_DEFAULT,
    LIMIT_MAX,
    NICKNAME_MAX,
    PASSWORD_MAX,
    PASSWORD_MIN,
    TEXT_MAX,
)

_JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_BODY_ERRORS = {
    "400": _error("Malformed JSON, not an object, or a field breaks its rules"),
    "408": _error("The body did not arrive within HTTP_BODY_TIMEOUT_SECONDS"),
    "413": _error("Body larger than MAX_BODY_BYTES"),
    "415": _error("Content-Type given and not JSON (a body without one is read as JSON)"),
}
_UNAVAILABLE = {"503": _error("PostgreSQL or Redis unavailable, or a statement over the "
                              "statement timeout; see Retry-After")}
_AUTH = {"401": _error("Missing, unknown, expired or logged-out token")}
_ID_PARAM = {"name": "id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 0}}


def _cursor(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "minimum": 0}}


def _schemas() -> dict[str, Any]:
    return {
        "Error": {
            "type": "object", "required": ["error", "code"],
            "description": "`error` is the human-readable text (a string, as the original "
                           "backend sent it); `code` is stable for programs; `field` names "
                           "the input at fault, when there is one.",
            "properties": {"error": {"type": "string"}, "code": {"type": "string"},
                           "field": {"type": "string"},
                           "checks": {"type": "object"}}},
        "Credentials": {
            "type": "object", "required": ["nickname", "password"],
            "description": "Unknown fields are ignored.",
            "properties": {
                "nickname": {"type": "string", "minLength": 1, "maxLength": NICKNAME_MAX,
                             "description": "Trimmed; Unicode letters, marks, digits, "
                                            "'_', '-', '.', single inner spaces. "
                                            "Unique regardless of case."},
                "password": {"type": "string", "minLength": PASSWORD_MIN,
                             "maxLength": PASSWORD_MAX}}},
        "Registered": {
            "type": "object", "required": ["id", "userId", "nickname", "token"],
            "properties": {"id": {"type": "integer"}, "userId": {"type": "integer"},
                           "nickname": {"type": "string"}, "token": {"type": "string"}}},
        "Session": {
            "type": "object", "required": ["token", "userId", "nickname"],
            "properties": {"token": {"type": "string"}, "userId": {"type": "integer"},
                           "nickname": {"type": "string"}}},
        "NewMessage": {
            "type": "object", "required": ["text"],
            "properties": {"text": {"type": "string", "minLength": 1, "maxLength": TEXT_MAX,
                                    "description": "Trimmed; 1-2000 characters after that."}}},
        "Message": {
            "type": "object", "required": ["id", "userId", "nickname", "text", "createdAt"],
            "properties": {"id": {"type": "integer"}, "userId": {"type": "integer"},
                           "nickname": {"type": "string"}, "text": {"type": "string"},
                           "createdAt": {"type": "string", "format": "date-time"}}},
        "Health": {"type": "object", "required": ["status"],
                   "properties": {"status": {"type": "string"},
                                  "checks": {"type": "object"}}},
    }


def _paths() -> dict[str, Any]:
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "/api/register": {"post": {
            "summary": "Register a user and log in",
            "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("Credentials")}}},
            "responses": {"201": _json(_ref("Registered"), "Registered and logged in"),
                          **_BODY_ERRORS, "409": _error("Nickname taken"),
                          "429": _error("Too many registrations; see Retry-After"),
                          **_UNAVAILABLE}}},
        "/api/login": {"post": {
            "summary": "Log in",
            "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("Credentials")}}},
            "responses": {"200": _json(_ref("Session"), "Logged in"), **_BODY_ERRORS,
                          "401": _error("Invalid credentials"),
                          "429": _error("Too many attempts from this address, or it waits "
                                        "after failing on this nickname; see Retry-After"),
                          **_UNAVAILABLE}}},
        "/api/logout": {"post": {
            "summary": "End the session", "security": bearer,
            "responses": {"204": {"description": "Logged out"}, **_AUTH, **_UNAVAILABLE}}},
        "/api/messages": {
            "get": {
                "summary": "A page of messages, oldest first",
                "description": "With after_id: the next messages after it (polling). With "
                               "before_id: the older page before it. With neither: the latest.",
                "parameters": [
                    {"name": "after_id", "in": "query", "required": False,
                     "description": "Return messages with a greater id; 0 or less (or "
                                    "empty) means no cursor, as in the original",
                     "schema": {"type": "integer"}},
                    _cursor("before_id", "Return messages with a smaller id"),
                    {"name": "limit", "in": "query", "required": False,
                     "description": f"Page size; values above {LIMIT_MAX} count as {LIMIT_MAX}",
                     "schema": {"type": "integer", "minimum": 1, "default": LIMIT_DEFAULT}},
                    {"name": "If-None-Match", "in": "header", "required": False,
                     "schema": {"type": "string"}}],
                "responses": {
                    "200": _json({"type": "array", "items": _ref("Message")}, "Messages"),
                    "304": {"description": "Unchanged since the ETag sent"},
                    "400": _error("Bad parameter"), **_UNAVAILABLE}},
            "post": {
                "summary": "Post a message", "security": bearer,
                "requestBody": {"required": True,
                                "content": {_JSON: {"schema": _ref("NewMessage")}}},
                "responses": {"201": _json(_ref("Message"), "Stored (committed)"),
                              **_BODY_ERRORS, **_AUTH,
                              "403": _error("USER_STORAGE_MAX_BYTES reached (quota_exceeded)"),
                              "429": _error("Too many posts; see Retry-After"),
                              **_UNAVAILABLE}}},
        "/api/messages/{id}": {"delete": {
            "summary": "Soft-delete one of your messages", "security": bearer,
            "parameters": [_ID_PARAM],
            "responses": {"204": {"description": "Deleted"}, **_AUTH,
                          "404": _error("No such message of yours"), **_UNAVAILABLE}}},
        "/api/events": {"get": {
            "summary": "Live updates (Server-Sent Events)",
            "description": "Events `message.created` (id: message id) and `message.deleted`; "
                           "resumes after Last-Event-ID or ?after_id= by replaying first.",
            "parameters": [_cursor("after_id", "Replay messages after this id first"),
                           {"name": "Last-Event-ID", "in": "header", "required": False,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "An event stream",
                                  "content": {"text/event-stream": {"schema": {
                                      "type": "string"}}}},
                          "400": _error("Bad after_id"), **_UNAVAILABLE}}},
        "/api/openapi.json": {"get": {
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}},
        "/health/livez": {"get": {
            "summary": "Liveness", "responses": {"200": _json(_ref("Health"), "Alive")}}},
        "/health/readyz": {"get": {
            "summary": "Readiness: PostgreSQL answers (Redis is reported, not required)",
            "responses": {"200": _json(_ref("Health"), "Ready; status `degraded` when Redis "
                                                       "does not answer"),
                          "503": _error("Not ready: PostgreSQL does not answer")}}},
        "/": {"get": {
            "summary": "The web UI (or a note that it is not built)",
            "responses": {"200": {"description": "HTML",
                                  "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/assets/{path}": {"get": {
            "summary": "A file of the built web UI",
            "parameters": [{"name": "path", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The file"},
                          "404": _error("No such file")}}},
    }


def build_spec() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "chatenv chat service", "version": "1.0.0",
                 "description": "Errors are always {\"error\": \"<text>\", \"code\": \"<code>\"} "
                                "plus \"field\" when one input is at fault."},
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
