"""Data and service survive the failures a real node sees: a database pod deleted, a chat
replica killed, the operator killed in the middle of a reconcile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp
from e2ehelpers import Kubectl, client, register_and_post, wait_ready, wait_until

SECRETS = ("postgres-credentials", "redis-credentials")


def _secret_uids(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    return {s: kubectl("get", "secret", s, "-n", namespace, "-o",
                       "jsonpath={.metadata.uid}").stdout for s in SECRETS}


async def _has_message(url: str, message_id: int) -> bool:
    try:
        async with client(timeout=5) as http, http.get(
                f"{url}/api/messages", params={"after_id": str(message_id - 1),
                                               "limit": "1"}) as r:
            return r.status == 200 and [m["id"] for m in await r.json()] == [message_id]
    except (TimeoutError, aiohttp.ClientError):
        return False


async def test_postgres_comes_back_on_its_volume_with_the_messages(
        dev_env: dict[str, str], kubectl: Kubectl) -> None:
    url, ns = dev_env["url"], dev_env["namespace"]
    _, message_id = await register_and_post(url, "written before PostgreSQL's pod was deleted",
                                            "res")
    volume = kubectl("get", "pvc", "data-postgres-0", "-n", ns, "-o",
                     "jsonpath={.spec.volumeName}").stdout
    old_uid = kubectl("get", "pod", "postgres-0", "-n", ns, "-o",
                      "jsonpath={.metadata.uid}").stdout
    kubectl("delete", "pod", "postgres-0", "-n", ns, "--wait=true")
    # The StatefulSet controller makes it again, under the same name.
    wait_until("postgres-0 to be made again", lambda: kubectl(
        "get", "pod", "postgres-0", "-n", ns, "-o", "jsonpath={.metadata.uid}",
        check=False).stdout not in ("", old_uid), timeout=60)
    kubectl("wait", "--for=condition=Ready", "pod/postgres-0", "-n", ns, "--timeout=180s",
            timeout=200)
    assert kubectl("get", "pvc", "data-postgres-0", "-n", ns, "-o",
                   "jsonpath={.spec.volumeName}").stdout == volume
    deadline = time.monotonic() + 60
    while not await _has_message(url, message_id):
        assert time.monotonic() < deadline, "the message did not come back with PostgreSQL"
        await asyncio.sleep(1)


async def test_requests_keep_succeeding_while_a_chat_replica_is_killed(
        dev_env: dict[str, str], kubectl: Kubectl) -> None:
    url, ns = dev_env["url"], dev_env["namespace"]
    kubectl("rollout", "status", "deployment/chat", "-n", ns, "--timeout=120s")
    pods = kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=chat", "-o",
                   "jsonpath={.items[*].metadata.name}").stdout.split()
    assert len(pods) == 2, pods
    results: list[int | str] = []
    stop = asyncio.Event()

    async def load() -> None:
        async with client(timeout=10) as http:
            while not stop.is_set():
                try:
                    async with http.get(f"{url}/api/messages", params={"limit": "5"}) as r:
                        results.append(r.status)
                except (TimeoutError, aiohttp.ClientError) as e:
                    results.append(repr(e))
                await asyncio.sleep(0.05)

    task = asyncio.create_task(load())
    await asyncio.sleep(2)
    before = len(results)
    await asyncio.to_thread(kubectl, "delete", "pod", pods[0], "-n", ns, "--wait=true")
    await asyncio.to_thread(kubectl, "rollout", "status", "deployment/chat", "-n", ns,
                            "--timeout=180s")
    await asyncio.sleep(2)
    stop.set()
    await task
    failures = [r for r in results if r != 200]
    assert len(results) - before > 50, "too few requests to prove anything"
    assert failures == [], f"{len(failures)} of {len(results)} requests failed: {failures[:5]}"


def test_operator_killed_mid_reconcile_converges_without_duplicates(
        kubectl: Kubectl, unique: Callable[[str], str]) -> None:
    name = unique("e2e-kill")
    manifest = f"""
apiVersion: chatenv.dev/v1alpha1
kind: ChatEnvironment
metadata: {{name: {name}}}
spec:
  stage: dev
  namespace: {name}
  host: {name}.dev.chat.localhost
  chat: {{replicas: 1}}
"""
    kubectl("apply", "-f", "-", stdin=manifest)
    try:
        # The pass is under way once its namespace and secrets exist; the app is not yet.
        wait_until("the reconcile to be under way",
                   lambda: kubectl("get", "secret", SECRETS[0], "-n", name, check=False)
                   .returncode == 0, timeout=60, interval=0.2)
        secrets = _secret_uids(kubectl, name)
        kubectl("delete", "pod", "-n", "chatenv-system", "-l",
                "app.kubernetes.io/name=chatenv-operator", "--grace-period=0", "--force")
        kubectl("rollout", "status", "deployment/chatenv-operator", "-n", "chatenv-system",
                "--timeout=180s")
        wait_ready(kubectl, name)
        for kind, expected in (("deployments", {"chat", "redis", "jaeger"}),
                               ("statefulsets", {"postgres"}),
                               ("ingresses", {"chat"}),
                               ("secrets", set(SECRETS))):
            names = kubectl("get", kind, "-n", name, "-o",
                            "jsonpath={.items[*].metadata.name}").stdout.split()
            assert sorted(names) == sorted(expected), f"{kind}: {names}"
        # Made once: had they been made again, the generated passwords would have changed.
        assert _secret_uids(kubectl, name) == secrets
        pods = kubectl("get", "pods", "-n", name, "-o", "jsonpath={.items[*].metadata.name}")
        assert len(pods.stdout.split()) == 4, pods.stdout  # chat, postgres, redis, jaeger
    finally:
        kubectl("delete", "chatenv", name, "--wait=false", check=False)
