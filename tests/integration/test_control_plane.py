"""The control plane is real: garbage collection, namespace deletion, kwok pods, CRD schemas."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable

import pytest
from kubehelpers import not_found, wait_until
from kubernetes import client

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def test_version_is_reported(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    assert info.git_version.startswith("v1.")
    assert int(info.minor.rstrip("+")) >= 30


def test_owner_reference_garbage_collection(core: client.CoreV1Api, namespace: str) -> None:
    owner = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="owner"), data={"k": "v"}))
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="dependent", owner_references=[client.V1OwnerReference(
            api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)]),
        data={"k": "v"}))
    core.delete_namespaced_config_map("owner", namespace)
    wait_until(lambda: not_found(lambda: core.read_namespaced_config_map(
        "dependent", namespace)), 60, "the garbage collector to delete the dependent ConfigMap")


def test_namespace_with_objects_is_deleted_completely(core: client.CoreV1Api) -> None:
    name = f"t-del-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    for i in range(3):
        core.create_namespaced_config_map(name, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"cm-{i}"), data={"i": str(i)}))
    core.create_namespaced_secret(name, client.V1Secret(
        metadata=client.V1ObjectMeta(name="s"), string_data={"a": "b"}))
    core.delete_namespace(name)
    assert core.read_namespace(name).status.phase == "Terminating"
    wait_until(lambda: not_found(lambda: core.read_namespace(name)), 90,
               "the namespace controller to empty and remove the namespace")


def test_deployment_becomes_available_on_kwok_nodes(apps: client.AppsV1Api, core: client.CoreV1Api,
                                                   namespace: str) -> None:
    labels = {"app": "probe"}
    apps.create_namespaced_deployment(namespace, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="probe"),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="c", image="registry.example.com/probe:1")])))))

    def available() -> bool:
        dep = apps.read_namespaced_deployment("probe", namespace)
        conds = {c.type: c.status for c in dep.status.conditions or []}
        return dep.status.available_replicas == 2 and conds.get("Available") == "True"

    wait_until(available, 90, "the Deployment to report 2 available replicas")
    pods = core.list_namespaced_pod(namespace, label_selector="app=probe").items
    assert len(pods) == 2
    assert all(p.spec.node_name and p.status.phase == "Running" for p in pods)


def test_persistent_volume_claim_binds(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_persistent_volume_claim(namespace, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="data"),
        spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"],
            resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}))))
    wait_until(lambda: core.read_namespaced_persistent_volume_claim(
        "data", namespace).status.phase == "Bound", 60, "the claim to bind to a provisioned volume")


@pytest.mark.usefixtures("crds")
def test_crd_is_served(custom: client.CustomObjectsApi) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
            "metadata": {"name": name}, "spec": {"stage": "dev"}}
    created = custom.create_cluster_custom_object("chatenv.dev", "v1alpha1", "chatenvironments",
                                                 body)
    try:
        assert created["spec"]["suspended"] is False  # a schema default was applied
    finally:
        custom.delete_cluster_custom_object("chatenv.dev", "v1alpha1", "chatenvironments", name)


@pytest.mark.usefixtures("crds")
def test_crd_rejects_invalid_object_with_message(kubectl: Kubectl) -> None:
    body = {"apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
            "metadata": {"name": "t-invalid"}, "spec": {"stage": "production"}}
    res = kubectl("apply", "-f", "-", stdin=json.dumps(body), check=False)
    assert res.returncode != 0
    assert 'spec.stage: Unsupported value: "production"' in res.stderr
    body["spec"] = {"stage": "ai"}
    res = kubectl("apply", "-f", "-", stdin=json.dumps(body), check=False)
    assert res.returncode != 0
    assert "spec.slot is required for stage ai" in res.stderr
