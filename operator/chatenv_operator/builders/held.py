"""The operator's copies of the Secrets it generated, and a Secret made again from one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..constants import (
    LABEL_COMPONENT,
    LABEL_ENVIRONMENT,
    LABEL_MANAGED_BY,
    LABEL_PART_OF,
    MANAGED_BY,
    PART_OF,
)
from ..environment import Environment
from ..kinds import SECRET
from .common import Manifest

HELD_COMPONENT = "held-secret"
ANNOTATION_HOLDS = "chatenv.dev/holds"
_CONTENT = ("type", "data", "stringData")


def held_name(env: Environment, name: str) -> str:
    """Unique per environment incarnation (its UID): a successor never finds the copy of a
    deleted environment of the same name."""
    return f"{env.name}.{env.owner.uid}.{name}"


def held_name_of(environment: Mapping[str, Any], name: str) -> str:
    """``held_name`` of another environment, known by its ChatEnvironment's body."""
    meta = environment["metadata"]
    return f"{meta['name']}.{meta['uid']}.{name}"


def held_secret(env: Environment, secret: Mapping[str, Any], namespace: str) -> Manifest:
    """A copy of ``secret`` in the operator's namespace, owned by the ChatEnvironment (the
    garbage collector deletes it with the environment)."""
    meta = secret["metadata"]
    return SECRET.new({
        "name": held_name(env, meta["name"]),
        "namespace": namespace,
        "labels": {LABEL_PART_OF: PART_OF, LABEL_MANAGED_BY: MANAGED_BY,
                   LABEL_ENVIRONMENT: env.name, LABEL_COMPONENT: HELD_COMPONENT},
        "annotations": {ANNOTATION_HOLDS: f"{meta['namespace']}/{meta['name']}"},
        "ownerReferences": [env.owner.reference(controller=False)],
    }, **{k: secret[k] for k in _CONTENT if k in secret})


def restored(secret: Manifest, held: Mapping[str, Any]) -> Manifest:
    """``secret`` (its name, labels, namespace) with the content of the copy held."""
    return {**{k: v for k, v in secret.items() if k not in _CONTENT},
            **{k: held[k] for k in _CONTENT if k in held}}
