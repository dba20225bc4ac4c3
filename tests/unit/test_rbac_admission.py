"""deploy/'s RBAC and admission policies, read as data: what the operator may read, and the
staging deployer's policy naming every field of a ChatEnvironment's spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ROOT / "deploy" / name).read_text()) if d]


def test_the_operator_reads_no_secret_outside_its_own_namespace() -> None:
    role = next(d for d in docs("rbac.yaml") if d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "chatenv-operator")
    for rule in role["rules"]:
        if "secrets" in rule["resources"]:
            assert rule["verbs"] == ["create"], rule
    own = next(d for d in docs("rbac.yaml") if d["kind"] == "Role"
               and d["metadata"]["name"] == "chatenv-operator")
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]} in own[
        "rules"]


def test_every_policy_has_a_binding_that_denies() -> None:
    policies = {d["metadata"]["name"] for d in docs("admission.yaml")
                if d["kind"] == "ValidatingAdmissionPolicy"}
    bindings = {d["spec"]["policyName"]: d["spec"]["validationActions"]
                for d in docs("admission.yaml") if d["kind"] == "ValidatingAdmissionPolicyBinding"}
    assert policies == set(bindings) == {"chatenv-operator", "chatenv-ingress-host",
                                         "chatenv-staging-deployer"}
    assert all(actions == ["Deny"] for actions in bindings.values())
    kustomization = yaml.safe_load((ROOT / "deploy" / "kustomization.yaml").read_text())
    assert "admission.yaml" in kustomization["resources"]


def test_the_staging_deployers_policy_names_every_field_of_the_spec() -> None:
    """A field the CRD gains and the policy does not compare would be the deployer's to
    change."""
    crd = yaml.safe_load((ROOT / "crds" / "chatenvironments.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    policy = next(d for d in docs("admission.yaml") if d["metadata"]["name"]
                  == "chatenv-staging-deployer" and d["kind"] == "ValidatingAdmissionPolicy")
    text = policy["spec"]["validations"][0]["expression"]
    for field in spec["properties"]:
        if field != "chat":
            assert f"object.spec.?{field} == oldObject.spec.?{field}" in text, field
    for field in spec["properties"]["chat"]["properties"]:
        if field != "image":
            assert f"object.spec.?chat.?{field} == oldObject.spec.?chat.?{field}" in text, field
