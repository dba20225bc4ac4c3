"""The waker's rights, as deploy/ installs them: it may read environments and set one
annotation on them, and nothing else — whatever request a compromised waker sends."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
WAKER = "system:serviceaccount:chatenv-system:chatenv-waker"
KEY = "chatenv.dev/wake-requested-at"


@pytest.fixture
def environment(installed: None, kubectl: Kubectl) -> Iterator[str]:
    name = f"wake-{uuid.uuid4().hex[:6]}"
    kubectl("create", "-f", "-", stdin=json.dumps({
        "apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
        "metadata": {"name": name, "labels": {"team": "a"},
                     "annotations": {"note": "kept"}},
        "spec": {"stage": "dev", "namespace": f"chat-{name}", "suspended": False}}))
    yield name
    kubectl("delete", "chatenv", name, "--wait=false", check=False)


def as_waker(kubectl: Kubectl, *args: str) -> subprocess.CompletedProcess[str]:
    return kubectl(*args, f"--as={WAKER}", check=False)


def _merge(kubectl: Kubectl, name: str, patch: object) -> subprocess.CompletedProcess[str]:
    return as_waker(kubectl, "patch", "chatenv", name, "--type=merge", "-p", json.dumps(patch))


def test_the_waker_may_ask_for_a_wake(kubectl: Kubectl, environment: str) -> None:
    # The policy binding may take a moment to reach the API server's admission.
    deadline = time.monotonic() + 30
    while True:
        done = _merge(kubectl, environment,
                      {"metadata": {"annotations": {KEY: "2026-11-27T10:00:00Z"}}})
        if done.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert done.returncode == 0, done.stderr
    env = json.loads(kubectl("get", "chatenv", environment, "-o", "json").stdout)
    assert env["metadata"]["annotations"] == {KEY: "2026-11-27T10:00:00Z", "note": "kept"}
    listed = as_waker(kubectl, "get", "chatenv", "-o", "name")
    assert f"chatenvironment.chatenv.dev/{environment}" in listed.stdout


@pytest.mark.parametrize(("patch", "message"), [
    ({"spec": {"suspended": True}}, "the waker may not change spec"),
    ({"spec": {"chat": {"image": "attacker/image:1"}}}, "the waker may not change spec"),
    ({"metadata": {"labels": {"team": "b"}}}, "may not change labels, finalizers or owners"),
    ({"metadata": {"finalizers": ["x.example/hold"]}},
     "may not change labels, finalizers or owners"),
    ({"metadata": {"annotations": {"note": None}}}, "may only set the chatenv.dev/wake"),
    ({"metadata": {"annotations": {"other": "x"}}}, "may only set the chatenv.dev/wake"),
    ({"metadata": {"annotations": {KEY: "2099"}}}, "must be a time like"),
])
def test_the_waker_may_change_nothing_else(kubectl: Kubectl, environment: str,
                                            patch: object, message: str) -> None:
    refused = _merge(kubectl, environment, patch)
    assert refused.returncode != 0
    assert message in refused.stderr, refused.stderr
    env = json.loads(kubectl("get", "chatenv", environment, "-o", "json").stdout)
    assert env["spec"]["suspended"] is False
    assert env["metadata"]["labels"] == {"team": "a"}


def test_the_waker_has_no_other_rights(kubectl: Kubectl, environment: str) -> None:
    for args in (("delete", "chatenv", environment),
                 ("patch", "chatenv", environment, "--subresource=status", "--type=merge",
                  "-p", '{"status":{"phase":"Ready"}}'),
                 ("get", "secrets", "-A"), ("get", "devslots"),
                 ("create", "namespace", "waker-was-here")):
        refused = as_waker(kubectl, *args)
        assert refused.returncode != 0, args
        assert "forbidden" in refused.stderr.lower(), refused.stderr
    # The policy binds the waker only: an administrator still changes what they like.
    assert kubectl("patch", "chatenv", environment, "--type=merge",
                   "-p", '{"spec":{"suspended":true}}').returncode == 0
