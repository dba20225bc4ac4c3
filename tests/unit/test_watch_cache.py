"""The watch-fed view: a reflector lists, watches, starts over after an error, and the
store keeps the newest version of each object. Kinds declared once, RBAC to match."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from chatenv_operator.builders.plan import plan
from chatenv_operator.cache import Store
from chatenv_operator.kinds import CONFIGMAP, WATCHED, Kind, Watch, kind_of
from chatenv_operator.watching import Reflector

ROOT = Path(__file__).resolve().parents[2]


def cm(name: str, version: int, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "n", "resourceVersion": str(version),
                         "labels": labels, "managedFields": [{"manager": "x"}]}}


class Script:
    """A watch source that answers from a script, then stops the reflector."""

    def __init__(self, listings: list[list[dict[str, Any]]],
                 watches: list[list[dict[str, Any]] | Exception]) -> None:
        self.listings = listings
        self.watches = watches
        self.reflector: Reflector | None = None
        self.calls: list[str] = []

    def list_with_version(self, kind: Kind, namespace: str | None = None, *,
                          label_selector: str | None = None) -> tuple[list[dict[str, Any]], str]:
        self.calls.append(f"list {label_selector}")
        return self.listings.pop(0), "10"

    def watch(self, kind: Kind, since: str, *,
              label_selector: str | None = None) -> Iterator[dict[str, Any]]:
        self.calls.append(f"watch {since}")
        if not self.watches:
            assert self.reflector is not None
            self.reflector.stop()
            return
        step = self.watches.pop(0)
        if isinstance(step, Exception):
            raise step
        yield from step


def test_a_reflector_lists_watches_and_lists_again_after_an_error() -> None:
    store = Store()
    seen: list[tuple[str, str]] = []
    script = Script(
        listings=[[cm("a", 1), cm("b", 2)], [cm("a", 7), cm("c", 8)], [cm("a", 7), cm("c", 8)]],
        watches=[
            [{"type": "MODIFIED", "object": cm("a", 5)},
             {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}},
             {"type": "ADDED", "object": cm("d", 6)}],
            [{"type": "ERROR", "object": {"code": 410, "message": "too old"}}],
            ConnectionResetError("dropped"),
        ])
    r = Reflector(script, Watch(CONFIGMAP), store,
                  lambda w, t, o: seen.append((t, o["metadata"]["name"])), min_backoff=0)
    script.reflector = r
    r.run()
    # Listed; watched from the list's version; resumed where the stream stopped; after
    # 410 Gone listed again; a dropped connection: listed again (and stopped there).
    listing = "list app.kubernetes.io/managed-by=chatenv-operator"
    assert script.calls == [listing, "watch 10", "watch 6", listing, "watch 10", listing,
                            "watch 10"]
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("ADDED", "d"),
                    # the second listing: b and d vanished meanwhile, a changed, c is new
                    ("DELETED", "b"), ("DELETED", "d"), ("ADDED", "a"), ("ADDED", "c")]
    assert sorted(o["metadata"]["name"] for o in store.list(CONFIGMAP)) == ["a", "c"]
    assert r.relists == 2
    assert r.synced.is_set()


def test_the_store_keeps_the_newest_version_and_drops_managed_fields() -> None:
    store = Store()
    assert store.put(CONFIGMAP, cm("a", 5))
    assert not store.put(CONFIGMAP, cm("a", 4))  # an event older than a write's answer
    held = store.get(CONFIGMAP, "a", "n")
    assert held is not None
    assert held["metadata"]["resourceVersion"] == "5"
    assert "managedFields" not in held["metadata"]
    store.put(CONFIGMAP, cm("b", 6, app="x"))
    assert [o["metadata"]["name"] for o in store.list(CONFIGMAP, "n", labels={"app": "x"})] == [
        "b"]
    assert store.get(CONFIGMAP, "a", "other") is None
    assert not store.synced(CONFIGMAP)


def _rules() -> list[dict[str, Any]]:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "chatenv-operator")
    return role["rules"]  # type: ignore[no-any-return]


def _granted(kind: Kind, verb: str) -> bool:
    return any(kind.group in r["apiGroups"] and kind.plural in r["resources"]
               and verb in r["verbs"] and "resourceNames" not in r for r in _rules())


def test_the_operator_may_watch_what_it_watches_and_apply_what_it_applies() -> None:
    from test_builders import AI

    for w in WATCHED:
        assert _granted(w.kind, "list"), w.kind
        assert _granted(w.kind, "watch"), w.kind
    p = plan(AI)
    for m in [p.namespace, *(o for s in p.steps for o in (*s.objects, *s.held))]:
        assert _granted(kind_of(m), "create"), m["kind"]
        assert _granted(kind_of(m), "patch"), m["kind"]
    for kind in p.step("jaeger").kinds:  # pruned when disabled
        assert _granted(kind, "delete"), kind
    for rule in _rules():
        assert "*" not in rule["verbs"], rule
        assert "*" not in rule["resources"], rule
