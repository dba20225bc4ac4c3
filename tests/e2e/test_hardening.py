"""The security review's findings, reproduced on a real node against the dev environment:
sessions survive a Redis restart, a deleted generated Secret comes back with its password,
the metrics port is reachable from nowhere but the pod's own namespace, pods reach nothing
outside their namespace but DNS (an agent: not link-local), and two operator replicas
elect one leader."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from conftest import Node
from e2ehelpers import ROOT, Kubectl, client, fetch, wait_ready, wait_until
from test_network_policy import RESTRICTED_POD, Connected, _connects, _probe_image


async def _session(url: str) -> tuple[str, str]:
    nickname = f"hard{uuid.uuid4().hex[:8]}"
    async with client(timeout=30) as http, http.post(
            f"{url}/api/register", json={"nickname": nickname, "password": "correct horse"}) as r:
        assert r.status == 201, await r.text()
        return nickname, str((await r.json())["token"])


async def _post(url: str, token: str, text: str) -> int:
    async with client(timeout=30) as http, http.post(
            f"{url}/api/messages", json={"text": text},
            headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status


async def test_a_session_survives_a_redis_restart(dev_env: dict[str, str],
                                                  kubectl: Kubectl) -> None:
    url, ns = dev_env["url"], dev_env["namespace"]
    _, token = await _session(url)
    assert await _post(url, token, "before Redis restarts") == 201
    config = kubectl("exec", "-n", ns, "deploy/redis", "--", "redis-cli", "-h", "127.0.0.1",
                     "config", "get", "maxmemory*").stdout.split()
    assert config[config.index("maxmemory") + 1] == str(256 * 2**20 * 8 // 10)
    assert config[config.index("maxmemory-policy") + 1] == "volatile-ttl"
    old = kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=redis", "-o",
                  "jsonpath={.items[0].metadata.name}").stdout
    kubectl("delete", "pod", old, "-n", ns, "--wait=true")
    kubectl("rollout", "status", "deployment/redis", "-n", ns, "--timeout=180s")
    status = 0
    for _ in range(60):  # the chat pods reconnect to the new Redis within moments
        status = await _post(url, token, "after Redis restarted")
        if status == 201:
            break
        await asyncio.sleep(1)
    assert status == 201, "the session was lost with Redis's restart"


def test_a_deleted_secret_comes_back_with_its_password(dev_env: dict[str, str],
                                                       kubectl: Kubectl) -> None:
    ns = dev_env["namespace"]
    before = kubectl("get", "secret", "postgres-credentials", "-n", ns, "-o",
                     "jsonpath={.data.password}").stdout
    # The operator holds a copy (an environment made before copies were held, on a node
    # left running, gets one from the administrator's one-off, which changes nothing else).
    held = f"dev.{kubectl.json('get', 'chatenv', 'dev')['metadata']['uid']}.postgres-credentials"
    once = subprocess.run([sys.executable, "-m", "chatenv_operator", "--config",
                           str(ROOT / "services.yaml"), "hold-secrets"], capture_output=True,
                          text=True, env={**os.environ, "KUBECONFIG": str(kubectl.kubeconfig)},
                          timeout=120)
    assert once.returncode == 0, once.stderr
    assert kubectl("get", "secret", held, "-n", "chatenv-system", "-o",
                   "jsonpath={.data.password}").stdout == before
    kubectl("delete", "secret", "postgres-credentials", "-n", ns)
    # The next pod to start needs it: PostgreSQL's, now. Without the operator's copy the
    # Secret would come back with a new password, and the chat service be locked out.
    kubectl("delete", "pod", "postgres-0", "-n", ns, "--wait=true")
    wait_until("the Secret made again", lambda: kubectl(
        "get", "secret", "postgres-credentials", "-n", ns, check=False).returncode == 0,
        timeout=120, interval=1)
    after = kubectl("get", "secret", "postgres-credentials", "-n", ns, "-o",
                    "jsonpath={.data.password}").stdout
    assert after == before
    kubectl("wait", "--for=condition=Ready", "pod/postgres-0", "-n", ns, "--timeout=180s",
            timeout=200)
    wait_ready(kubectl, "dev")
    wait_until("the chat service to read its database again",
               lambda: fetch(f"{dev_env['url']}/api/messages?limit=1")[0] == 200, timeout=60)


def test_the_chat_service_trusts_the_ingress_controllers_range(dev_env: dict[str, str],
                                                               kubectl: Kubectl) -> None:
    value = kubectl("exec", "-n", dev_env["namespace"], "deploy/chat", "-c", "chat", "--",
                    "printenv", "TRUSTED_PROXY_CIDRS").stdout.strip()
    assert value == "10.244.0.0/16"


@pytest.fixture
def probes(kubectl: Kubectl, node: Node, dev_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Probe pods: one in another namespace; in the environment's namespace, a plain one
    and one labelled as an agent."""
    image = _probe_image(kubectl, node)
    # Names of their own: a probe of the test before may still be terminating, and
    # applying over it would hand this test a pod that is about to go.
    suffix = uuid.uuid4().hex[:6]
    other = f"hard-outsider-{suffix}"
    ns = dev_env["namespace"]
    kubectl("create", "namespace", other)
    pods = {"outsider": (other, "probe"), "plain": (ns, f"hard-plain-{suffix}"),
            "agent": (ns, f"hard-agent-{suffix}")}
    try:
        for role, (namespace, name) in pods.items():
            manifest = RESTRICTED_POD % {"name": name, "namespace": namespace, "image": image}
            if role == "agent":
                manifest = manifest.replace(
                    "metadata: {", "metadata: {labels: {app.kubernetes.io/name: agent}, ")
            kubectl("apply", "-f", "-", stdin=manifest)
        for namespace, name in pods.values():
            kubectl("wait", "--for=condition=Ready", f"pod/{name}", "-n", namespace,
                    "--timeout=120s")
        yield {role: f"{namespace}/{name}" for role, (namespace, name) in pods.items()}
    finally:
        for namespace, name in pods.values():
            kubectl("delete", "pod", name, "-n", namespace, "--wait=false", check=False)
        kubectl("delete", "namespace", other, "--wait=false", check=False)


def _from(kubectl: Kubectl, probe: str, target: str) -> Connected:
    namespace, pod = probe.split("/")
    return _connects(kubectl, namespace, pod, target)


def test_metrics_are_reached_from_the_pods_namespace_only(
        dev_env: dict[str, str], kubectl: Kubectl, probes: dict[str, str]) -> None:
    status, _, _ = fetch(f"{dev_env['url']}/metrics")
    assert status == 404  # the Ingress routes the API's port only
    pod = kubectl.json("get", "pods", "-n", dev_env["namespace"], "-l",
                       "app.kubernetes.io/name=chat")["items"][0]["status"]["podIP"]
    assert _from(kubectl, probes["plain"], f"{pod}/9090")
    assert not _from(kubectl, probes["outsider"], f"{pod}/9090")


def test_egress_is_the_namespace_and_dns_and_agents_reach_out(
        dev_env: dict[str, str], kubectl: Kubectl, probes: dict[str, str]) -> None:
    ns = dev_env["namespace"]
    api = "kubernetes.default.svc.cluster.local/443"

    def reaches(probe: str, target: str) -> None:
        # The network policy controller programs a new pod's rules a moment after the pod
        # is Ready, and rebuilds them when other namespaces come and go: what is allowed
        # must connect within a short while; what is refused, never.
        wait_until(f"{probe} to reach {target}",
                   lambda: _from(kubectl, probes[probe], target), 60, 1)

    # DNS and the environment's own services: what the chat service needs.
    reaches("plain", f"postgres.{ns}.svc.cluster.local/5432")
    # An agent works with the API server (and the world), never with link-local addresses.
    reaches("agent", api)
    # Nothing else: not the API server, not another namespace's service (the waker's).
    waker = "chatenv-waker.chatenv-system.svc.cluster.local/80"
    reaches("outsider", waker)  # it answers, where nothing stops it
    reaches("agent", waker)
    assert not _from(kubectl, probes["plain"], api)
    assert not _from(kubectl, probes["plain"], waker)
    policy = kubectl.json("get", "networkpolicy", "agent-egress", "-n", ns)
    assert "169.254.0.0/16" in json.dumps(policy["spec"])


def test_two_operator_replicas_elect_one_leader(kubectl: Kubectl, dev_env: dict[str, str]
                                                ) -> None:
    kubectl("rollout", "status", "deployment/chatenv-operator", "-n", "chatenv-system",
            "--timeout=180s")
    pods = kubectl("get", "pods", "-n", "chatenv-system", "-l",
                   "app.kubernetes.io/name=chatenv-operator", "-o",
                   "jsonpath={.items[*].metadata.name}").stdout.split()
    assert len(pods) == 2
    holder = kubectl("get", "lease", "chatenv-operator", "-n", "chatenv-system", "-o",
                     "jsonpath={.spec.holderIdentity}").stdout
    assert holder.split("_")[0] in pods
