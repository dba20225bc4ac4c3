"""The OpenAPI document describes exactly the registered routes; schemathesis finds no 5xx."""

from __future__ import annotations

import re

from chathelpers import Service

from chat_service.app import create_app
from chat_service.config import Config
from chat_service.openapi import build_spec


def _registered(config: Config) -> set[tuple[str, str]]:
    app = create_app(config)
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        # `{id:\d+}` is documented as `{id}`.
        found.add((route.method.lower(), re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path)))
    return found


def _documented() -> set[tuple[str, str]]:
    return {(method, path) for path, ops in build_spec()["paths"].items() for method in ops}


def test_every_route_documented_and_every_documented_route_exists(config: Config) -> None:
    registered = _registered(config)
    documented = _documented()
    assert registered - documented == set(), "routes missing from the OpenAPI document"
    assert documented - registered == set(), "documented routes that do not exist"
    # Everything but /metrics, which is served on METRICS_PORT only.
    assert len(registered) >= 12
    assert ("get", "/metrics") not in registered


async def test_served_document(service: Service) -> None:
    reply = await service.call("GET", "/api/openapi.json")
    assert reply.status == 200
    assert reply.body["openapi"].startswith("3.1")
    assert reply.body == build_spec()
