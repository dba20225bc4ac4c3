"""Sleeping when idle, one ChatEnvironment pass at a time on a fake clock: it sleeps after
its window without a request (workloads at zero, the host to the waker, data kept), a wake
request or a DevSlot's touch wakes it, a suspended one is never woken, and an environment
whose chat service cannot say when it was last used stays awake."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from test_environment_pass import NS, T0, World, _backend

from chatenv_operator.conditions import get_condition
from chatenv_operator.constants import ANNOTATION_TOUCHED_AT, ANNOTATION_WAKE_REQUESTED
from chatenv_operator.kinds import CHATENV, DEPLOYMENT, STATEFULSET
from chatenv_operator.sleeping import ActivityUnknown, parse_time

READY = T0
"""When the environment under test became Ready: its window starts then."""


def _at(minutes: float) -> datetime:
    return READY + timedelta(minutes=minutes)


def _stamp(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _replicas(world: World) -> set[int]:
    found = [world.api.find(DEPLOYMENT, name, NS) for name in ("chat", "redis", "jaeger")]
    found.append(world.api.find(STATEFULSET, "postgres", NS))
    return {int(obj["spec"]["replicas"]) for obj in found if obj is not None}


def _annotate(world: World, key: str, when: datetime) -> None:
    world.api.edit(CHATENV, "dev", None, {"metadata": {"annotations": {key: _stamp(when)}}})


def _asleep_then_asked(world: World, key: str) -> None:
    """Asleep at 40 minutes (settled), then woken at 45 by the annotation ``key``."""
    world.now = _at(40)
    world.run()
    world.api.settle_workloads()
    _annotate(world, key, _at(45))
    world.now = _at(45)
    world.run()


@pytest.fixture
def world() -> World:
    w = World()
    w.create(idle="30m")
    w.settle()
    ready = get_condition(w.status(), "Ready")
    assert ready is not None
    global READY
    READY = parse_time(ready["lastTransitionTime"]) or T0
    return w


def test_it_sleeps_after_its_window_and_a_wake_request_wakes_it(world: World) -> None:
    assert world.status()["idle"] == "30m"
    world.now = _at(29)
    assert world.run().requeue_after == pytest.approx(60)
    assert world.asked == []  # the record alone says the window has not passed

    # The chat service was used at 10 minutes: the window counts from then.
    world.now, world.last_request = _at(31), _at(10)
    assert world.run().requeue_after == pytest.approx(9 * 60)
    assert world.asked == [NS]
    assert world.status()["lastRequestAt"] == _stamp(_at(10))
    assert world.status()["phase"] == "Ready"

    world.now = _at(41)
    world.run()
    assert _replicas(world) == {0}
    assert _backend(world) == "waker"
    status = world.status()
    assert (status["phase"], status["sleepingSince"]) == ("Sleeping", _stamp(_at(41)))
    assert world.ready() == ("False", "Sleeping")
    world.api.settle_workloads()
    world.now = _at(41.1)  # the ingress controller has loaded the waker's route
    world.run()
    assert world.run().requeue_after is None
    assert world.sent == []  # asleep and settled: nothing to do, nothing asked
    world.now = _at(600)
    world.run()
    assert world.status()["phase"] == "Sleeping"

    # The waker asks: it wakes, and the host goes back to the chat pods once they serve.
    _annotate(world, ANNOTATION_WAKE_REQUESTED, _at(601))
    world.now = _at(601)
    world.run()
    assert "sleepingSince" not in world.status()
    assert _replicas(world) == {1, 2}
    assert _backend(world) == "waker"
    world.settle()
    assert _backend(world) == "chat"
    assert world.status()["phase"] == "Ready"


def test_the_pass_that_makes_it_ready_calls_itself_back_when_its_window_ends() -> None:
    world = World()
    world.create(idle="30m")
    results = []
    for _ in range(4):
        world.api.settle_workloads()
        results.append(world.run())
        world.now += timedelta(seconds=5)
    ready = [r for r in results if r.requeue_after and r.requeue_after > 60]
    assert [r.requeue_after for r in ready][:1] == [30 * 60]


def test_a_wake_request_from_before_the_sleep_does_not_wake_it(world: World) -> None:
    _annotate(world, ANNOTATION_WAKE_REQUESTED, _at(5))
    world.now = _at(40)
    world.run()
    assert world.status()["phase"] == "Sleeping"
    world.api.settle_workloads()
    world.run()
    assert world.status()["phase"] == "Sleeping"
    assert _replicas(world) == {0}


def test_a_devslot_touch_wakes_it_too(world: World) -> None:
    _asleep_then_asked(world, ANNOTATION_TOUCHED_AT)
    assert "sleepingSince" not in world.status()
    assert _replicas(world) == {1, 2}


def test_a_suspended_environment_is_never_woken_by_a_request() -> None:
    world = World()
    world.create(idle="30m", suspended=True)
    for _ in range(3):
        world.api.settle_workloads()
        world.run()
    _annotate(world, ANNOTATION_WAKE_REQUESTED, _at(1))
    world.now = _at(60)
    world.run()
    assert world.status()["phase"] == "Suspended"
    assert "sleepingSince" not in world.status()
    assert _replicas(world) == {0}
    assert _backend(world) == "waker"
    assert world.asked == []


def test_a_chat_service_that_cannot_say_keeps_it_awake(world: World) -> None:
    def unknown(namespace: str) -> datetime | None:
        raise ActivityUnknown("connection refused")

    world.activity = unknown  # type: ignore[method-assign]
    world.now = _at(45)
    assert world.run().requeue_after == pytest.approx(60)
    assert world.status()["phase"] == "Ready"
    assert _replicas(world) == {1, 2}


def test_never_means_never(world: World) -> None:
    world.change(idle="never")
    world.run()
    world.now = _at(10_000)
    assert world.run().requeue_after is None
    assert world.status()["idle"] == "never"
    assert world.asked == []


def test_woken_the_host_goes_back_to_the_chat_once_redis_runs_too(world: World) -> None:
    _asleep_then_asked(world, ANNOTATION_WAKE_REQUESTED)
    # The chat pods are up before Redis: logging in would fail, so the waker still answers.
    ready = {"replicas": 1, "availableReplicas": 1, "readyReplicas": 1, "updatedReplicas": 1}
    world.api.edit(DEPLOYMENT, "chat", NS, {"status": ready})
    world.run()
    assert _backend(world) == "waker"
    world.api.settle_workloads()
    world.run()
    assert _backend(world) == "chat"
