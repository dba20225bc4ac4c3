"""DevSlots that start with data, on real pods: fixtures, and a snapshot of the ai-staging
environment taken by a Job in the slot's namespace — each Ready only with its data in, its
users logging in with the placeholder password `chatenv credentials` prints, never with
their own; a failed restore is a clear condition, and a retry finishes the job."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2ehelpers import Kubectl, fetch, wait_ready, wait_until
from test_devslot import chatenv

from chat_service.seeding import read_fixture

STAGING = "ai-staging"
STAGING_PASSWORD = "staging users' own password"


def _post_json(url: str, path: str, body: dict[str, Any], token: str | None = None
               ) -> tuple[int, Any]:
    """POST through the Ingress the way a browser would (`*.localhost` is this machine)."""
    scheme, rest = url.split("://", 1)
    host = rest.split("/", 1)[0]
    port = host.partition(":")[2]
    target = f"{scheme}://127.0.0.1{':' + port if port else ''}{path}"
    headers = {"Host": host, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(target, data=json.dumps(body).encode(),  # noqa: S310
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - http
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def _messages(url: str) -> list[dict[str, Any]]:
    code, _, body = fetch(f"{url}/api/messages?limit=200")
    assert code == 200, body
    return list(json.loads(body))


def _slot(kubeconfig: Path, issue: int, data: str, timeout: str = "600") -> dict[str, Any]:
    res = chatenv(kubeconfig, "ensure-ready", "--issue", str(issue), "--data", data,
                  "--timeout", timeout, timeout=float(timeout) + 60)
    assert res.returncode == 0, res.stdout + res.stderr
    return dict(json.loads(res.stdout))


def _credentials(kubeconfig: Path, issue: int) -> str:
    res = chatenv(kubeconfig, "credentials", "--issue", str(issue))
    assert res.returncode == 0, res.stdout + res.stderr
    return str(json.loads(res.stdout)["password"])


@pytest.fixture
def issues(kubeconfig: Path) -> Iterator[list[int]]:
    opened: list[int] = []
    yield opened
    for issue in opened:
        chatenv(kubeconfig, "cleanup", "--issue", str(issue))


@pytest.mark.timeout(900)
def test_a_slot_with_fixtures_is_ready_with_them(kubeconfig: Path, issues: list[int]) -> None:
    issue = random.randint(100_000, 199_999)
    issues.append(issue)
    slot = _slot(kubeconfig, issue, "fixtures")
    assert slot["data"]["mode"] == "fixtures"
    assert slot["data"]["state"] == "Loaded"
    demo = read_fixture("demo")
    # Ready means the data is in: the first request after Ready already sees all of it.
    listed = _messages(slot["url"])
    assert [m["text"] for m in listed] == [m.text for m in demo.messages]
    password = _credentials(kubeconfig, issue)
    code, body = _post_json(slot["url"], "/api/login",
                            {"nickname": demo.nicknames[0], "password": password})
    assert code == 200, body


@pytest.fixture(scope="module")
def staging(kubectl: Kubectl) -> Iterator[dict[str, Any]]:
    """The ai-staging environment, with users (their own passwords) and messages."""
    kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
        "metadata": {"name": STAGING},
        "spec": {"stage": "ai-staging", "chat": {"replicas": 1},
                 "jaeger": {"enabled": False}}}))
    try:
        env = wait_ready(kubectl, STAGING, timeout=400)
        nicks, texts = [], []
        for i in range(3):
            nick = f"st{uuid.uuid4().hex[:6]}"
            code, body = _post_json(env["url"], "/api/register",
                                    {"nickname": nick, "password": STAGING_PASSWORD})
            assert code == 201, body
            for j in range(2):
                text = f"staging message {i}.{j} {uuid.uuid4().hex[:6]}"
                code, posted = _post_json(env["url"], "/api/messages", {"text": text},
                                          body["token"])
                assert code == 201, posted
                texts.append(text)
            nicks.append(nick)
        yield {**env, "nicknames": nicks, "texts": texts}
    finally:
        kubectl("delete", "chatenv", STAGING, "--wait=false", check=False)


@pytest.mark.timeout(900)
def test_a_slot_with_a_snapshot_of_staging_has_its_data_but_no_password(
        kubeconfig: Path, kubectl: Kubectl, staging: dict[str, Any], issues: list[int]) -> None:
    issue = random.randint(200_000, 299_999)
    issues.append(issue)
    started = time.monotonic()
    slot = _slot(kubeconfig, issue, "snapshot")
    print(f"\nsnapshot slot Ready {time.monotonic() - started:.1f} s after ensure-ready")
    assert slot["data"] == {"mode": "snapshot", "source": STAGING, "state": "Loaded",
                            "message": slot["data"].get("message", "")}
    texts = [m["text"] for m in _messages(slot["url"])]
    assert texts == [m["text"] for m in _messages(staging["url"])]
    assert set(staging["texts"]) <= set(texts)
    nick = staging["nicknames"][0]
    code, _ = _post_json(slot["url"], "/api/login", {"nickname": nick,
                                                     "password": STAGING_PASSWORD})
    assert code == 401
    code, body = _post_json(slot["url"], "/api/login",
                            {"nickname": nick, "password": _credentials(kubeconfig, issue)})
    assert code == 200, body
    # The Job ran in the slot's namespace, without an API token, and finished.
    ns = slot["namespace"]
    job = kubectl.json("get", "job", "data-restore", "-n", ns)
    assert job["status"].get("succeeded") == 1
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    # Its credentials: the reader role of staging and the slot's own, never staging's owner.
    source = kubectl.json("get", "secret", "data-source", "-n", ns)["data"]
    assert sorted(source) == ["SNAPSHOT_DB", "SNAPSHOT_HOST", "SNAPSHOT_NAME",
                              "SNAPSHOT_PASSWORD", "SNAPSHOT_PORT", "SNAPSHOT_USER"]


@pytest.mark.timeout(900)
def test_a_failed_restore_is_a_clear_condition_and_a_retry_finishes(
        kubeconfig: Path, kubectl: Kubectl, staging: dict[str, Any], issues: list[int]) -> None:
    staging_ns = staging["namespace"]

    def psql(sql: str) -> None:
        kubectl("exec", "-n", staging_ns, "postgres-0", "--", "psql", "-U", "chat", "-d",
                "chat", "-v", "ON_ERROR_STOP=1", "-c", sql)

    psql("REVOKE SELECT ON chat_message FROM chat_snapshot")
    issue = random.randint(300_000, 399_999)
    issues.append(issue)
    try:
        res = chatenv(kubeconfig, "ensure-ready", "--issue", str(issue), "--data", "snapshot",
                      "--timeout", "240", timeout=300)
        assert res.returncode == 4, res.stdout + res.stderr  # not Ready: the data is not in
        slot = json.loads(res.stdout)
        assert slot["reason"] == "DataRestoreFailed", slot
        assert "permission denied" in slot["message"]
        assert slot["data"]["state"] == "Failed"
        ns = slot["namespace"]
        # Nothing half-filled, and no chat pod started on it.
        count = kubectl("exec", "-n", ns, "postgres-0", "--", "psql", "-U", "chat", "-d",
                        "chat", "-tAc", "SELECT count(*) FROM chat_user").stdout.strip()
        assert count == "0"
        assert kubectl.json("get", "deployment", "chat", "-n", ns)["spec"]["replicas"] == 0
        env = kubectl.json("get", "chatenv", slot["environment"])
        degraded = [c for c in env["status"]["conditions"] if c["type"] == "Degraded"]
        assert degraded[0]["status"] == "True"
    finally:
        psql("GRANT SELECT (id, user_id, text, created_at, deleted_at) ON chat_message "
             "TO chat_snapshot")
    # Retrying is deleting the Job: the operator runs it again.
    kubectl("delete", "job", "data-restore", "-n", ns)
    wait_until("the slot to be Ready with its data",
               lambda: (s := json.loads(chatenv(kubeconfig, "ensure-ready", "--issue",
                                                str(issue), "--timeout", "10", "--soft-fail"
                                                ).stdout))["infraReady"] and s, 400, 5)
    assert len(_messages(slot["url"])) == len(_messages(staging["url"]))
