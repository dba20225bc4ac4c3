"""Pure logic of the operator: diffing, conditions, readiness. (The work queue: test_queue.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chatenv_operator import readiness
from chatenv_operator.conditions import get_condition, set_condition
from chatenv_operator.diffing import is_subset, quantity, up_to_date, with_hash


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
