"""The waker: which state a host is in, what it answers, when it asks for a wake."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from chatenv_operator.constants import ANNOTATION_WAKE_REQUESTED
from chatenv_operator.waker import pages
from chatenv_operator.waker.directory import Directory
from chatenv_operator.waker.pages import State, answer, view
from chatenv_operator.waker.serving import create_app, create_health_app

SLEPT = "2026-11-27T10:00:00Z"


def env(name: str = "slot-3", *, host: str | None = None, suspended: bool = False,
        sleeping: str | None = SLEPT, wake: str | None = None,
        message: str = "asleep since 10:00") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if wake:
        meta["annotations"] = {ANNOTATION_WAKE_REQUESTED: wake}
    spec: dict[str, Any] = {"stage": "ai", "suspended": suspended}
    if host:
        spec["host"] = host
    status: dict[str, Any] = {"url": f"http://{name}.chat.localhost:8480",
                              "conditions": [{"type": "Ready", "status": "False",
                                              "message": message}]}
    if sleeping:
        status["sleepingSince"] = sleeping
    return {"metadata": meta, "spec": spec, "status": status}


def test_view_takes_the_host_from_spec_or_from_the_status_url() -> None:
    assert view(env()) is not None
    assert view(env()).host == "slot-3.chat.localhost"  # type: ignore[union-attr]
    assert view(env(host="Preview.Example.COM")).host == "preview.example.com"  # type: ignore[union-attr]
    unreconciled = env()
    del unreconciled["status"]["url"]
    assert view(unreconciled) is None


@pytest.mark.parametrize(("body", "state"), [
    (env(), State.SLEEPING),
    (env(wake="2026-11-27T10:05:00Z"), State.WAKING),
    (env(wake="2026-11-27T09:00:00Z"), State.SLEEPING),  # asked before this sleep began
    (env(wake="not a time"), State.SLEEPING),
    (env(sleeping=None), State.WAKING),  # awake, its pods not there yet
    (env(suspended=True), State.SUSPENDED),
    (env(suspended=True, wake="2026-11-27T10:05:00Z"), State.SUSPENDED),  # a person wins
])
def test_states(body: dict[str, Any], state: State) -> None:
    seen = view(body)
    assert seen is not None
    assert seen.state is state


def test_a_page_visit_wakes_a_sleeping_environment() -> None:
    reply = answer(view(env()), "/", {})
    assert reply.wake
    assert reply.status == 503
    assert reply.content_type == "text/html"
    assert '<meta http-equiv="refresh" content="3">' in reply.body
    assert "slot-3</strong> was asleep" in reply.body
    assert reply.headers["Retry-After"] == "3"
    assert reply.headers["Cache-Control"] == "no-store"


def test_the_api_gets_json_and_retry_after() -> None:
    reply = answer(view(env()), "/api/messages", {})
    assert reply.wake
    assert reply.content_type == "application/json"
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "3"
    assert '"code": "sleeping"' in reply.body


def test_background_requests_do_not_wake() -> None:
    stream = answer(view(env()), "/api/events", {})
    assert not stream.wake
    assert "does not wake it" in stream.body
    poll = answer(view(env()), "/api/messages", {pages.BACKGROUND_HEADER: "1"})
    assert not poll.wake
    page = answer(view(env()), "/", {pages.BACKGROUND_HEADER: "1"})
    assert not page.wake
    assert "open this page to wake it" in page.body


def test_waking_asks_no_more_and_suspended_never() -> None:
    assert not answer(view(env(wake="2026-11-27T10:05:00Z")), "/", {}).wake
    suspended = answer(view(env(suspended=True)), "/", {})
    assert not suspended.wake
    assert suspended.status == 503
    assert "a visit does not wake it" in suspended.body
    assert "refresh" not in suspended.body
    assert suspended.headers["Retry-After"] == "60"
    api = answer(view(env(suspended=True)), "/api/messages", {})
    assert '"code": "suspended"' in api.body


def test_unknown_hosts_are_404_and_text_is_escaped() -> None:
    reply = answer(None, "/", {})
    assert reply.status == 404
    assert not reply.wake
    assert "Retry-After" not in reply.headers
    marked = answer(view(env(sleeping=None, message="<script>x</script>")), "/", {})
    assert "<script>x" not in marked.body
    assert "&lt;script&gt;x" in marked.body


class FakeApi:
    def __init__(self, items: list[dict[str, Any]], events: list[tuple[str, dict[str, Any]]],
                 fail: bool = False) -> None:
        self.items, self.events, self.fail = items, events, fail
        self.annotated: list[tuple[str, str, str]] = []
        self.lists = 0

    def list(self) -> tuple[list[dict[str, Any]], str]:
        self.lists += 1
        return self.items, "1"

    def watch(self, resource_version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from self.events
        self.events = []

    def annotate(self, name: str, key: str, value: str) -> None:
        if self.fail:
            raise RuntimeError("forbidden")
        self.annotated.append((name, key, value))


async def test_the_directory_wakes_once_per_sleep() -> None:
    api = FakeApi([env(), env("dev", host="dev.chat.localhost", sleeping=None)], [])
    directory = Directory(api, clock=lambda: datetime(2026, 11, 27, 11, tzinfo=UTC).timestamp())
    directory.replace_all(api.items)
    sleeping = directory.lookup("SLOT-3.chat.localhost")
    assert sleeping is not None
    assert await directory.wake(sleeping)
    assert api.annotated == [("slot-3", ANNOTATION_WAKE_REQUESTED, "2026-11-27T11:00:00Z")]
    woken = directory.lookup("slot-3.chat.localhost")
    assert woken is not None
    assert woken.state is State.WAKING
    assert directory.lookup("nowhere.localhost") is None


async def test_a_clock_behind_the_operators_still_asks_after_the_sleep() -> None:
    api = FakeApi([env()], [])
    behind = datetime(2026, 11, 27, 9, 59, tzinfo=UTC).timestamp()  # before SLEPT
    directory = Directory(api, clock=lambda: behind)
    directory.replace_all(api.items)
    sleeping = directory.lookup("slot-3.chat.localhost")
    assert sleeping is not None
    assert await directory.wake(sleeping)
    assert api.annotated[0][2] == "2026-11-27T10:00:01Z"


async def test_a_failed_wake_request_changes_nothing() -> None:
    api = FakeApi([env()], [], fail=True)
    directory = Directory(api)
    directory.replace_all(api.items)
    sleeping = directory.lookup("slot-3.chat.localhost")
    assert sleeping is not None
    assert not await directory.wake(sleeping)
    assert directory.lookup("slot-3.chat.localhost").state is State.SLEEPING  # type: ignore[union-attr]


def test_the_watch_keeps_the_directory_current_and_lists_again_after_an_error() -> None:
    stop = threading.Event()
    api = FakeApi([env()], [("MODIFIED", env(wake="2026-11-27T10:05:00Z")),
                            ("ADDED", env("slot-4")), ("DELETED", env()),
                            ("BOOKMARK", {"metadata": {}})])
    directory = Directory(api)
    calls = {"n": 0}
    real_watch = api.watch

    def watch_then_stop(rv: str) -> Iterator[tuple[str, dict[str, Any]]]:
        calls["n"] += 1
        yield from real_watch(rv)
        if calls["n"] == 1:
            yield ("ERROR", {"code": 410})
        else:
            stop.set()
            yield ("MODIFIED", env("slot-4", suspended=True))

    api.watch = watch_then_stop  # type: ignore[method-assign]
    directory.run(stop)
    assert api.lists == 2  # the ERROR event made it list again
    assert directory.synced.is_set()
    # The second list brought slot-3 back; the event after stop was still applied.
    assert directory.lookup("slot-3.chat.localhost") is not None
    assert directory.lookup("slot-4.chat.localhost").state is State.SUSPENDED  # type: ignore[union-attr]


async def test_the_server_answers_by_host_and_reports_ready() -> None:
    api = FakeApi([env()], [])
    directory = Directory(api)
    health = TestClient(TestServer(create_health_app(directory)))
    async with health:
        assert (await health.get("/healthz")).status == 503
        directory.replace_all(api.items)
        directory.synced.set()
        assert (await health.get("/healthz")).status == 200
    client = TestClient(TestServer(create_app(directory)))
    async with client:
        other = await client.get("/", headers={"Host": "elsewhere.localhost"})
        assert other.status == 404
        first = await client.get("/some/page?x=1", headers={"Host": "slot-3.chat.localhost:8480"})
        assert first.status == 503
        assert "Server" not in first.headers
        assert first.headers["X-Chatenv-State"] == "sleeping"
        again = await client.get("/api/messages", headers={"Host": "slot-3.chat.localhost"})
        assert again.headers["X-Chatenv-State"] == "waking"
        assert (await again.json())["code"] == "waking"
    assert [a[0] for a in api.annotated] == ["slot-3"]


def test_its_settings_leave_the_variables_of_kubernetes_service_links_alone() -> None:
    from chatenv_operator.waker.__main__ import ports

    links = {"CHATENV_WAKER_PORT": "tcp://10.96.113.17:80",
             "CHATENV_WAKER_SERVICE_PORT": "80", "CHATENV_WAKER_PORT_80_TCP_PORT": "80"}
    assert ports(links) == (8080, 8081)
    assert ports({"CHATENV_WAKER_HTTP_PORT": "9000"}) == (9000, 8081)
    with pytest.raises(SystemExit, match="CHATENV_WAKER_HEALTH_PORT must be a port"):
        ports({"CHATENV_WAKER_HEALTH_PORT": "0"})
