"""The URL map: which handler serves which method and path. No logic here."""

from __future__ import annotations

from aiohttp import web

from chat_service.views import auth, events, messages, system


def setup_routes(app: web.Application) -> None:
    """Register every route of the service on `app`."""
    app.router.add_post("/api/register", auth.register)
    app.router.add_post("/api/login", auth.login)
    app.router.add_post("/api/logout", auth.logout)
    app.router.add_get("/api/messages", messages.list_messages, allow_head=False)
    app.router.add_post("/api/messages", messages.create_message)
    # ASCII digits only: \d would also match other scripts' digits, which int() accepts.
    app.router.add_delete("/api/messages/{id:[0-9]+}", messages.delete_message)
    app.router.add_get("/api/events", events.stream, allow_head=False)
    app.router.add_get("/api/openapi.json", system.openapi, allow_head=False)
    app.router.add_get("/health/livez", system.livez, allow_head=False)
    app.router.add_get("/health/readyz", system.readyz, allow_head=False)
    app.router.add_get("/", system.index, allow_head=False)
    app.router.add_get("/assets/{path:.+}", system.asset, allow_head=False)


def setup_metrics_routes(app: web.Application) -> None:
    """The routes of the metrics port (METRICS_PORT), apart from the API's."""
    app.router.add_get("/metrics", system.metrics, allow_head=False)
