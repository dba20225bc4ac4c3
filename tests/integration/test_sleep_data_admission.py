"""spec.idle and spec.data at admission: the API server takes what the CRDs allow and
refuses the rest with a message naming the field (no operator needed)."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def made(crds: None, kubectl: Kubectl) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for kind_name in names:
        kubectl("delete", kind_name, "--wait=false", check=False)


def _create(kubectl: Kubectl, made: list[str], kind: str, spec: dict[str, Any]
            ) -> subprocess.CompletedProcess[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": "chatenv.dev/v1alpha1", "kind": kind, "metadata": {"name": name},
            "spec": spec}
    done = kubectl("create", "-f", "-", stdin=json.dumps(body), check=False)
    if done.returncode == 0:
        made.append(f"{kind.lower()}/{name}")
    return done


ENV = {"stage": "dev"}
SLOT = {"repository": "acme/chat", "issue": 7}


@pytest.mark.parametrize("spec", [
    {"idle": "30m"}, {"idle": "10s"}, {"idle": "1h30m"}, {"idle": "never"},
    {"data": {"mode": "empty"}}, {"data": {"mode": "fixtures", "fixtures": "demo"}},
    {"data": {"mode": "snapshot", "source": "ai-staging"}},
])
def test_environments_take(kubectl: Kubectl, made: list[str], spec: dict[str, Any]) -> None:
    done = _create(kubectl, made, "ChatEnvironment", {**ENV, **spec})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("spec", "message"), [
    ({"idle": "5s"}, "spec.idle must be between 10s and 720h, or never"),
    ({"idle": "31d"}, "spec.idle"),
    ({"idle": ""}, "spec.idle must be between 10s and 720h, or never"),
    ({"idle": "soon"}, "spec.idle"),
    ({"data": {"mode": "backup"}}, 'spec.data.mode: Unsupported value: "backup"'),
    ({"data": {"mode": "empty", "fixtures": "demo"}},
     "spec.data.fixtures is only allowed with mode fixtures"),
    ({"data": {"mode": "fixtures", "source": "ai-staging"}},
     "spec.data.source is only allowed with mode snapshot"),
    ({"data": {}}, "spec.data.mode: Required value"),
])
def test_environments_refuse(kubectl: Kubectl, made: list[str], spec: dict[str, Any],
                             message: str) -> None:
    done = _create(kubectl, made, "ChatEnvironment", {**ENV, **spec})
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


def test_data_is_fixed_at_creation(kubectl: Kubectl, made: list[str]) -> None:
    assert _create(kubectl, made, "ChatEnvironment",
                   {**ENV, "data": {"mode": "fixtures"}}).returncode == 0
    assert _create(kubectl, made, "ChatEnvironment", ENV).returncode == 0
    with_data, without = made[-2], made[-1]
    for target, patch, message in (
            (with_data, {"spec": {"data": {"mode": "empty"}}}, "spec.data is immutable"),
            (with_data, {"spec": {"data": None}}, "spec.data cannot be added or removed"),
            (without, {"spec": {"data": {"mode": "fixtures"}}},
             "spec.data cannot be added or removed")):
        refused = kubectl("patch", target, "--type=merge", "-p", json.dumps(patch),
                          check=False)
        assert refused.returncode != 0
        assert message in refused.stderr, refused.stderr
    # spec.idle may change at any time.
    assert kubectl("patch", without, "--type=merge", "-p",
                   '{"spec":{"idle":"45m"}}').returncode == 0


def test_devslots_take_and_refuse(kubectl: Kubectl, made: list[str]) -> None:
    for data in ("empty", "fixtures", "snapshot"):
        done = _create(kubectl, made, "DevSlot", {**SLOT, "data": data})
        assert done.returncode == 0, done.stderr
    refused = _create(kubectl, made, "DevSlot", {**SLOT, "data": "staging"})
    assert 'spec.data: Unsupported value: "staging"' in refused.stderr
    repair = _create(kubectl, made, "DevSlot", {**SLOT, "mode": "repair", "data": "snapshot"})
    assert "spec.data snapshot needs a slot of its own" in repair.stderr
    changed = kubectl("patch", made[0], "--type=merge", "-p", '{"spec":{"data":"fixtures"}}',
                      check=False)
    assert "spec.data is immutable" in changed.stderr
