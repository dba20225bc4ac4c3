"""The CRDs as the API server and kubectl serve them to a cluster admin: quantities as a Pod
spec takes them, short names that shadow nothing, `kubectl explain`, `kubectl scale`, and the
docs' examples applied as written next to the shipped one."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubehelpers import GROUP, VERSION, wait_until
from kubernetes import client

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture
def environment(custom: client.CustomObjectsApi) -> Iterator[Callable[..., dict[str, Any]]]:
    made: list[str] = []

    def create(spec: dict[str, Any]) -> dict[str, Any]:
        name = f"t-{uuid.uuid4().hex[:8]}"
        made.append(name)
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ChatEnvironment",
                "metadata": {"name": name},
                "spec": {"stage": "dev", "namespace": f"{name}-ns", **spec}}
        return custom.create_cluster_custom_object(  # type: ignore[no-any-return]
            GROUP, VERSION, "chatenvironments", body)

    yield create
    for name in made:
        custom.delete_cluster_custom_object(GROUP, VERSION, "chatenvironments", name)


def test_quantities_are_taken_as_a_pod_spec_takes_them(
        kubectl: Kubectl, environment: Callable[..., dict[str, Any]],
        apps: client.AppsV1Api, core: client.CoreV1Api) -> None:
    manifest = """
apiVersion: chatenv.dev/v1alpha1
kind: ChatEnvironment
metadata: {name: NAME}
spec:
  stage: dev
  namespace: NAME-ns
  chat:
    resources:
      requests: {cpu: 1, memory: 1.5Gi}
      limits: {cpu: 2, memory: 2048M}
  postgres: {storage: {size: 2}}
"""
    name = f"t-{uuid.uuid4().hex[:8]}"
    applied = kubectl("apply", "-f", "-", stdin=manifest.replace("NAME", name), check=False)
    try:
        assert applied.returncode == 0, applied.stderr  # before: cpu "must be of type string"
        kubectl("wait", "--for=condition=Ready", f"chatenv/{name}", "--timeout=90s")
        container = apps.read_namespaced_deployment("chat", f"{name}-ns").spec.template.spec \
            .containers[0]
        assert container.resources.requests == {"cpu": "1", "memory": "1536Mi"}
        assert container.resources.limits == {"cpu": "2", "memory": "2048M"}
        claim = core.read_namespaced_persistent_volume_claim("data-postgres-0", f"{name}-ns")
        assert claim.spec.resources.requests["storage"] == "2"
    finally:
        kubectl("delete", "chatenv", name, "--ignore-not-found", "--wait=false")


def test_short_names_shadow_nothing_the_cluster_serves(kubectl: Kubectl) -> None:
    theirs: dict[str, str] = {}
    groups = json.loads(kubectl("get", "--raw", "/apis").stdout)["groups"]
    paths = ["/api/v1"] + [f"/apis/{g['preferredVersion']['groupVersion']}" for g in groups]
    for path in paths:
        for r in json.loads(kubectl("get", "--raw", path).stdout)["resources"]:
            if "/" in r["name"] or path.startswith(f"/apis/{GROUP}/"):
                continue
            for word in [r["name"], r.get("singularName") or "", *r.get("shortNames", [])]:
                if word:
                    theirs[word] = f"{path} {r['name']}"
    for crd in ("chatenvironments", "devslots"):
        names = json.loads(kubectl("get", "crd", f"{crd}.{GROUP}", "-o", "json").stdout)[
            "spec"]["names"]
        for word in [names["plural"], names["singular"], *names.get("shortNames", [])]:
            assert word not in theirs, f"{crd}: {word!r} is already {theirs[word]}"
    assert kubectl("get", "dslot", check=False).returncode == 0


def test_kubectl_explain_describes_the_fields(kubectl: Kubectl) -> None:
    for path, text in (("devslot.spec.agent.secretRefs", "AgentSecretMissing"),
                       ("chatenv.spec.chat.resources.limits.memory", "quantity of memory"),
                       ("chatenv.status.images", "images that run"),
                       ("devslot.status.queuePosition", "place in the queue")):
        out = kubectl("explain", path).stdout
        assert text in out, out
        assert "<no description>" not in out
    stage = kubectl("explain", "chatenv.spec.stage").stdout
    assert "ai-repair" not in re.sub(r"\s+", " ", stage).split("ENUM:")[-1]


def test_kubectl_scale_sets_the_chat_replicas(kubectl: Kubectl, apps: client.AppsV1Api,
                                              environment: Callable[..., dict[str, Any]]
                                              ) -> None:
    env = environment({})
    name, ns = env["metadata"]["name"], env["spec"]["namespace"]
    kubectl("wait", "--for=condition=Ready", f"chatenv/{name}", "--timeout=90s")
    scaled = kubectl("scale", f"chatenv/{name}", "--replicas=3", check=False)
    assert scaled.returncode == 0, scaled.stderr  # before: the server could not find it
    wait_until(lambda: apps.read_namespaced_deployment("chat", ns).spec.replicas == 3, 20,
               "the chat Deployment at 3 replicas")
    kubectl("wait", "--for=condition=Ready", f"chatenv/{name}", "--timeout=60s")

    def scale() -> dict[str, Any]:
        return json.loads(kubectl("get", "--raw",
                                  f"/apis/{GROUP}/{VERSION}/chatenvironments/{name}/scale").stdout)

    wait_until(lambda: scale()["status"].get("replicas") == 3, 30, "status.replicas 3")
    assert scale()["spec"]["replicas"] == 3
    assert scale()["status"]["selector"] == (
        f"app.kubernetes.io/instance={name},app.kubernetes.io/name=chat")


def doc_examples() -> list[dict[str, Any]]:
    out = []
    for path in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        for block in re.findall(r"```yaml\n(.*?)```", path.read_text(), re.DOTALL):
            out += [d for d in yaml.safe_load_all(block)
                    if isinstance(d, dict) and d.get("apiVersion", "").startswith(GROUP)]
    return out


def test_doc_examples_apply_as_written_next_to_the_shipped_one(
        kubectl: Kubectl, core: client.CoreV1Api) -> None:
    shipped = ROOT / "deploy" / "examples" / "dev.yaml"
    kubectl("apply", "-f", str(shipped))
    try:
        examples = doc_examples()
        assert {e["kind"] for e in examples} == {"ChatEnvironment", "DevSlot"}
        for example in examples:
            # Strict field validation: a field the schema does not know is an error, not a
            # silent drop; server-side dry run: admission runs, nothing is stored.
            res = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                          stdin=yaml.safe_dump(example), check=False)
            assert res.returncode == 0, f"{example['metadata']['name']}: {res.stderr}"
    finally:
        kubectl("delete", "-f", str(shipped), "--timeout=60s")
        # The shipped example keeps its volume on delete: release it.
        for pv in core.list_persistent_volume(
                label_selector="chatenv.dev/retained-for=dev").items:
            core.delete_persistent_volume(pv.metadata.name)
