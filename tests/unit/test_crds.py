"""The CRDs as files: every field described (what `kubectl explain` shows), the reference in
docs/ generated from them, enums offering only what works, quantities as a Pod spec takes
them, examples in the docs that apply as written."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatenv_operator.config import STAGES
from chatenv_operator.diffing import quantity

ROOT = Path(__file__).resolve().parents[2]
CRDS = {"ChatEnvironment": ROOT / "crds" / "chatenvironments.yaml",
        "DevSlot": ROOT / "crds" / "devslots.yaml"}


def crd(kind: str) -> dict[str, Any]:
    return yaml.safe_load(CRDS[kind].read_text())  # type: ignore[no-any-return]


def schema(kind: str) -> dict[str, Any]:
    return crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def nodes(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from nodes(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), Mapping) and node[key].get("type") == "object":
            yield from nodes(node[key], f"{path}[]")


@pytest.mark.parametrize("kind", list(CRDS))
def test_every_field_has_a_description(kind: str) -> None:
    # metadata is the API server's ObjectMeta (described by kubectl; the schema may not).
    missing = [path for path, node in nodes(schema(kind), kind)
               if not str(node.get("description", "")).strip() and path != f"{kind}.metadata"]
    assert not missing, f"fields without a description (kubectl explain): {missing}"


def test_the_crd_reference_is_generated_from_the_schemas() -> None:
    spec = importlib.util.spec_from_file_location("crd_reference",
                                                  ROOT / "docs" / "crd_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    doc = (ROOT / "docs" / "crds.md").read_text()
    assert doc.count("<!-- generated:") == 6
    assert module.render(doc) == doc, "docs/crds.md is stale: run python docs/crd_reference.py"
    for kind in CRDS:  # every field of the schema appears in the reference
        for path, _ in module.fields(schema(kind)["properties"]["spec"], "spec"):
            assert f"`{path}`" in doc, path


def test_the_stage_enum_offers_only_stages_an_environment_can_have() -> None:
    stage = schema("ChatEnvironment")["properties"]["spec"]["properties"]["stage"]
    assert stage["enum"] == list(STAGES)


def resource_fields(kind: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for path, node in nodes(schema(kind), kind):
        if node.get("x-kubernetes-int-or-string"):
            yield path, node


QUANTITIES_OK = ["1", "100m", "0.5", ".5", "1.5Gi", "512M", "128Mi", "2e3", "1k", "1Ti"]
QUANTITIES_BAD = ["many", "-1", "1.5.5", "1 Gi", "Gi", "1gi", ""]


def test_quantities_are_int_or_string_with_the_quantity_format() -> None:
    fields = dict(resource_fields("ChatEnvironment"))
    assert {p.rsplit(".", 1)[-1] for p in fields} == {"cpu", "memory", "size"}
    assert len(fields) == 17  # cpu and memory of 4 components x 2 lists, and the volume size
    for path, node in fields.items():
        assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        pattern = re.compile(node["pattern"])
        for text in QUANTITIES_OK:
            assert pattern.match(text), (path, text)
            assert quantity(text) is not None, text
        for text in QUANTITIES_BAD:
            assert not pattern.match(text), (path, text)


def test_scale_subresource_points_at_the_chat_replicas() -> None:
    scale = crd("ChatEnvironment")["spec"]["versions"][0]["subresources"]["scale"]
    assert scale == {"specReplicasPath": ".spec.chat.replicas",
                     "statusReplicasPath": ".status.replicas",
                     "labelSelectorPath": ".status.selector"}
    status = schema("ChatEnvironment")["properties"]["status"]["properties"]
    assert status["replicas"]["type"] == "integer"
    assert status["selector"]["type"] == "string"


# Short names and plurals of the built-in kinds a cluster serves: ours must not shadow any.
BUILT_IN_SHORT_NAMES = {"cm", "cs", "csr", "ds", "deploy", "ep", "ev", "hpa", "ing", "limits",
                        "netpol", "no", "ns", "pdb", "po", "psp", "pv", "pvc", "quota", "rc",
                        "rs", "sa", "sc", "sts", "svc", "crd", "crds", "pc", "ingclass", "rq",
                        "cronjob", "cj", "job", "vac", "sched"}


def test_short_names_collide_with_nothing_built_in() -> None:
    for kind in CRDS:
        names = crd(kind)["spec"]["names"]
        assert not set(names.get("shortNames", ())) & BUILT_IN_SHORT_NAMES, kind


def yaml_blocks(path: Path) -> Iterator[dict[str, Any]]:
    for block in re.findall(r"```yaml\n(.*?)```", path.read_text(), re.DOTALL):
        for doc in yaml.safe_load_all(block):
            if isinstance(doc, dict) and doc.get("apiVersion", "").startswith("chatenv.dev/"):
                yield doc


def test_doc_examples_are_complete_and_do_not_clash_with_the_shipped_example() -> None:
    shipped = yaml.safe_load((ROOT / "deploy" / "examples" / "dev.yaml").read_text())
    examples = [d for p in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
                for d in yaml_blocks(p)]
    assert {d["kind"] for d in examples} == {"ChatEnvironment", "DevSlot"}
    for doc in examples:
        text = yaml.safe_dump(doc)
        assert "..." not in text, f"a placeholder in {doc['metadata']['name']}: {text}"
        if doc["kind"] == "ChatEnvironment":
            assert doc["metadata"]["name"] != shipped["metadata"]["name"]
            assert doc["spec"].get("namespace") != "chat-dev"  # the shipped example's


def test_every_reason_is_in_the_one_vocabulary_with_its_meaning() -> None:
    from chatenv_operator.conditions import PROBLEMS, REASONS, WARNING, Reason

    assert set(REASONS) == set(Reason)
    assert all(REASONS[r].event == WARNING for r in PROBLEMS)
    doc = (ROOT / "docs" / "crds.md").read_text()
    for reason in Reason:
        assert f"| `{reason.value}` |" in doc, reason
