"""Pure logic of the operator: diffing, conditions, readiness, the work queue."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatenv_operator import readiness
from chatenv_operator.conditions import get_condition, set_condition
from chatenv_operator.controller import Controller
from chatenv_operator.kube import is_subset, quantity, up_to_date, with_hash


@pytest.mark.parametrize(("desired", "live", "expected"), [
    ({"a": 1}, {"a": 1, "b": 2}, True),
    ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2], "c": 3}}, True),
    ({"a": [{"x": 1}]}, {"a": [{"x": 1, "protocol": "TCP"}]}, True),
    ({"a": [1, 2]}, {"a": [1, 2, 3]}, False),
    ({"a": 1}, {"a": 2}, False),
    ({"a": 1}, {}, False),
    ({"cpu": "0.5"}, {"cpu": "500m"}, True),
    ({"memory": "1024Mi"}, {"memory": "1Gi"}, True),
    ({"memory": "1Gi"}, {"memory": "1G"}, False),
    ({"name": "abc"}, {"name": "abd"}, False),
])
def test_is_subset(desired: Any, live: Any, expected: bool) -> None:
    assert is_subset(desired, live) is expected


def test_quantity() -> None:
    assert quantity("100m") == quantity("0.1")
    assert quantity("2Ki") == 2048
    assert quantity("redis") is None
    assert quantity(5) is None


def test_up_to_date_needs_both_the_hash_and_the_fields() -> None:
    desired = with_hash({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "c", "namespace": "n"}, "data": {"a": "1"}})
    live = {**desired, "metadata": {**desired["metadata"], "uid": "x", "resourceVersion": "5"}}
    assert up_to_date(desired, live)
    edited = {**live, "data": {"a": "2"}}
    assert not up_to_date(desired, edited)  # a hand edit of our field
    older = {**live, "metadata": {**live["metadata"], "annotations": {
        "chatenv.dev/applied-hash": "0000"}}}
    assert not up_to_date(desired, older)  # a field we dropped must be removed by an apply
    assert not up_to_date(desired, None)


def test_condition_transition_time_moves_only_on_status_change() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    conds = set_condition([], type="Ready", status=False, reason="Waiting", message="a",
                          generation=1, now=t0)
    conds = set_condition(conds, type="Ready", status=False, reason="Other", message="b",
                          generation=2, now=t0 + timedelta(minutes=1))
    c = get_condition({"conditions": conds}, "Ready")
    assert c is not None
    assert (c["reason"], c["lastTransitionTime"], c["observedGeneration"]) == (
        "Other", "2026-01-01T00:00:00Z", 2)
    conds = set_condition(conds, type="Ready", status=True, reason="Ready", message="ok",
                          generation=2, now=t0 + timedelta(minutes=2))
    assert conds[0]["lastTransitionTime"] == "2026-01-01T00:02:00Z"
    assert conds[0]["status"] == "True"


def deployment(replicas: int, **status: int) -> dict[str, Any]:
    return {"metadata": {"generation": 2}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": status.pop("observed", 2), **{
                {"total": "replicas", "updated": "updatedReplicas",
                 "available": "availableReplicas"}[k]: v for k, v in status.items()}}}


@pytest.mark.parametrize(("obj", "ready", "message"), [
    (None, False, "not created yet"),
    (deployment(2, total=2, updated=2, available=2), True, "2/2 available"),
    (deployment(2, total=3, updated=2, available=2), False, "rolling out: 2/2 updated"),
    (deployment(2, total=2, updated=1, available=2), False, "rolling out: 1/2 updated"),
    (deployment(2, total=2, updated=2, available=1), False, "1/2 available"),
    (deployment(2, total=2, updated=2, available=2, observed=1), False, "not observed"),
    (deployment(0, total=0), True, "scaled to zero"),
    (deployment(0, total=1), False, "1 pods stopping"),
])
def test_deployment_readiness(obj: Any, ready: bool, message: str) -> None:
    r = readiness.deployment(obj)
    assert r.ready is ready
    assert message in r.message


def test_statefulset_readiness_waits_for_the_new_revision() -> None:
    sts = {"metadata": {"generation": 1}, "spec": {"replicas": 1},
           "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                      "currentRevision": "a", "updateRevision": "b"}}
    assert not readiness.statefulset(sts).ready
    sts["status"]["currentRevision"] = "b"
    assert readiness.statefulset(sts).ready


def test_ingress_is_ready_only_once_a_controller_admitted_it() -> None:
    ing: dict[str, Any] = {"metadata": {"generation": 1}, "spec": {}}
    assert not readiness.ingress(None).ready
    stored = readiness.ingress(ing)
    assert not stored.ready
    assert "waiting for the ingress controller" in stored.message
    ing["status"] = {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}
    admitted = readiness.ingress(ing)
    assert admitted.ready
    assert admitted.message == "serving at 127.0.0.1"


class Recorder:
    """A reconcile function that records calls and can fail or ask for a requeue."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: set[str] = set()
        self.requeue: dict[str, float] = {}
        self.gone: set[str] = set()
        self.running: set[str] = set()
        self.overlap = False
        self.lock = threading.Lock()

    def __call__(self, key: str) -> Any:
        with self.lock:
            if key in self.running:
                self.overlap = True
            self.running.add(key)
            self.calls.append(key)
        try:
            import time

            time.sleep(0.02)
            if key in self.fail:
                raise RuntimeError("boom")

            class R:
                requeue_after = self.requeue.pop(key, None)
                gone = key in self.gone

            return R()
        finally:
            with self.lock:
                self.running.discard(key)


async def test_queue_deduplicates_and_never_runs_one_key_twice_at_once() -> None:
    rec = Recorder()
    c = Controller("t", rec, workers=4, base_backoff=0.05)
    c.start()
    for _ in range(10):
        c.enqueue("a")
        c.enqueue("b")
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.3)
    await c.wait_idle()
    await c.stop()
    assert not rec.overlap
    assert 2 <= rec.calls.count("a") <= 10
    assert rec.calls.count("a") < 10  # events that arrive while queued are merged


async def test_failures_back_off_exponentially_then_recover() -> None:
    rec = Recorder()
    rec.fail.add("x")
    c = Controller("t", rec, workers=1, base_backoff=0.05, max_backoff=0.2)
    c.start()
    c.enqueue("x")
    await asyncio.sleep(0.5)
    failures = rec.calls.count("x")
    assert 3 <= failures <= 6  # 0.05, 0.1, 0.2, 0.2... not a hot loop
    rec.fail.clear()
    await asyncio.sleep(0.3)
    settled = rec.calls.count("x")
    await asyncio.sleep(0.3)
    await c.stop()
    assert rec.calls.count("x") == settled  # success: no more retries
    assert c.stats.failures == failures


async def test_requeue_after_runs_again_and_forget_cancels() -> None:
    rec = Recorder()
    rec.requeue["y"] = 0.1
    c = Controller("t", rec, workers=1)
    c.start()
    c.enqueue("y")
    await asyncio.sleep(0.3)
    assert rec.calls.count("y") == 2
    c.enqueue("z", delay=0.2)
    c.forget("z")
    await asyncio.sleep(0.4)
    await c.stop()
    assert "z" not in rec.calls


async def test_a_failing_key_waits_for_its_backoff_whatever_its_children_do() -> None:
    rec = Recorder()
    rec.fail.add("x")
    c = Controller("t", rec, workers=1, base_backoff=5.0)
    c.start()
    c.enqueue("x")
    await asyncio.sleep(0.1)
    for _ in range(20):  # child events: status changes of its environment, say
        c.enqueue("x", nudge=True)
        await asyncio.sleep(0.01)
    assert rec.calls.count("x") == 1  # "retrying in 5s" means it
    c.enqueue("x")  # a change of the object itself is worth a try at once
    await asyncio.sleep(0.1)
    await c.stop()
    assert rec.calls.count("x") == 2


async def test_a_deleted_object_leaves_no_statistics_behind() -> None:
    rec = Recorder()
    rec.gone.add("old")
    seen: list[tuple[str, str]] = []

    class Observer:
        def reconciled(self, controller: str, key: str, seconds: float, ok: bool) -> None:
            seen.append(("reconciled", key))

        def forgotten(self, controller: str, key: str) -> None:
            seen.append(("forgotten", key))

    c = Controller("t", rec, workers=1, resync_interval=0.1, observer=Observer())
    c.start()
    c.enqueue("old")
    c.enqueue("live")
    await asyncio.sleep(0.35)  # a few resyncs
    await c.stop()
    assert rec.calls.count("old") == 1  # forgotten: the resync no longer visits it
    assert rec.calls.count("live") >= 2
    assert "old" not in c.stats.by_key
    assert seen[:2] == [("reconciled", "old"), ("forgotten", "old")]


async def test_oldest_age_is_the_longest_wait_in_the_queue() -> None:
    rec = Recorder()
    c = Controller("t", rec, workers=1)
    assert c.oldest_age == 0.0
    c.enqueue("a")  # no workers yet: it waits
    await asyncio.sleep(0.1)
    c.enqueue("b")
    assert 0.1 <= c.oldest_age < 5
    c.start()
    await asyncio.sleep(0.1)
    await c.wait_idle()
    await c.stop()
    assert c.oldest_age == 0.0
