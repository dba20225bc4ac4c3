"""The field tables of docs/crds.md, generated from the CRDs' schemas in crds/, and the
reason tables, generated from the operator's vocabulary (chatenv_operator.conditions).

    python docs/crd_reference.py           # rewrite the generated tables in docs/crds.md
    python docs/crd_reference.py --check   # exit 1 when they differ from the schemas

The schemas' descriptions are what `kubectl explain` shows; this puts the same
text, with the types, defaults and rules, into the reference. A unit test runs
the check.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "crds.md"
CRDS = {"ChatEnvironment": ROOT / "crds" / "chatenvironments.yaml",
        "DevSlot": ROOT / "crds" / "devslots.yaml"}
BLOCK = re.compile(r"(<!-- generated: (\w+) (spec|status|reasons) -->\n)(.*?)"
                   r"(<!-- end generated -->)", re.DOTALL)


def schema(kind: str) -> dict[str, Any]:
    crd = yaml.safe_load(CRDS[kind].read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def fields(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every field below ``node``, depth first, with its dotted path."""
    for name, child in (node.get("properties") or {}).items():
        yield f"{path}.{name}", child
        yield from fields(child, f"{path}.{name}")
    if isinstance(node.get("items"), Mapping):
        yield from fields(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from fields(node["additionalProperties"], f"{path}.<name>")


def kind_of(node: Mapping[str, Any]) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "quantity (int or string)"
    kind = str(node.get("type", ""))
    if kind == "array":
        items = node.get("items") or {}
        return f"list of {items.get('type', 'object')}"
    if kind == "object" and isinstance(node.get("additionalProperties"), Mapping):
        return f"map of {node['additionalProperties'].get('type', 'object')}"
    if node.get("format") == "date-time":
        return "timestamp"
    return kind


def rules(node: Mapping[str, Any]) -> str:
    out = []
    if "enum" in node:
        out.append(" \\| ".join(f"`{v}`" for v in node["enum"]))
    if "default" in node:
        out.append(f"default `{str(node['default']).lower()}`"
                   if isinstance(node["default"], bool) else f"default `{node['default']}`")
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None and high is not None:
        out.append(f"{low} to {high}")
    elif low is not None or high is not None:
        out.append(f"≥ {low}" if low is not None else f"≤ {high}")
    for key, what in (("maxLength", "characters"), ("maxItems", "items")):
        if key in node:
            out.append(f"≤ {node[key]} {what}")
    for rule in node.get("x-kubernetes-validations") or ():
        out.append("immutable" if rule["rule"] == "self == oldSelf" else rule["message"])
    return "; ".join(out)


def table(kind: str, part: str) -> str:
    root = schema(kind)["properties"][part]
    lines = ["| field | type | rules | description |", "|---|---|---|---|"]
    for path, node in fields(root, part):
        text = " ".join(str(node.get("description", "")).split())
        text = text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"| `{path}` | {kind_of(node)} | {rules(node)} | {text} |")
    return "\n".join(lines) + "\n"


def reasons(kind: str) -> str:
    """Every reason ``kind``'s status or Events use, from the operator's one vocabulary."""
    sys.path.insert(0, str(ROOT / "operator"))
    from chatenv_operator.conditions import REASONS

    lines = ["| reason | Event | meaning |", "|---|---|---|"]
    for reason, meaning in REASONS.items():
        if kind in meaning.kinds:
            event = meaning.event or "—"
            text = meaning.text.replace("|", "\\|")
            lines.append(f"| `{reason.value}` | {event} | {text} |")
    return "\n".join(lines) + "\n"


def render(doc: str) -> str:
    """The document with every generated block rewritten from the schemas."""
    def block(m: re.Match[str]) -> str:
        body = reasons(m.group(2)) if m.group(3) == "reasons" else table(m.group(2), m.group(3))
        return m.group(1) + body + m.group(5)
    return BLOCK.sub(block, doc)


def main(argv: list[str]) -> int:
    current = DOC.read_text()
    wanted = render(current)
    if "--check" in argv:
        if current != wanted:
            print(f"{DOC} is out of date: run python docs/crd_reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
