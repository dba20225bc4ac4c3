"""The passwords the operator generated, held: each generated Secret (PostgreSQL's, Redis's,
any a plan makes ``once``) is made from a copy the operator keeps in its own namespace.

PostgreSQL keeps the password it was first started with in its data directory. A Secret
deleted (by hand, by a script gone wrong) and made again with a new password would lock the
chat service out of its own data; made again from the copy, it has the same password, and
the pods that restart find what they had. The copy is made first, then the Secret from it,
so a crash between the two repeats the same content. Secrets are not watched (the operator
may not read them outside its namespace): a pass looks again whenever the environment stops
being Ready, which is what a deleted Secret does to the next pod that starts.

An environment made before the copies existed has Secrets the operator cannot read: their
copies are made by `python -m chatenv_operator hold-secrets` (an administrator's one-off,
docs/operations.md). Until then such a Secret is left alone, never made again with a new
password.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from .builders.held import held_name, held_secret, restored
from .builders.plan import plan
from .config import ProjectConfig
from .environment import Environment, InvalidSpec, resolve
from .kinds import CHATENV, SECRET, key_of
from .kube import Kube
from .passes import Manifest, Once, Pass

log = logging.getLogger(__name__)


def ensure(p: Pass, env: Environment, who: Once, secrets: Sequence[Manifest],
           home: str | None) -> None:
    """Each of ``secrets`` exists, with the content of its held copy (made now, from the
    given generated content, when there is none). Remembered per process (``who``)."""
    fresh = [m for m in secrets if not p.memo.known(*who.fact(m))]
    if not fresh:
        return
    if home is None:  # no namespace of its own (CHATENV_NAMESPACE unset): nowhere to hold
        p.ensure_all([], once=[(who, m) for m in fresh])
        return
    p.run_all([functools.partial(_ensure_one, p, env, m, home) for m in fresh])
    for m in fresh:
        p.memo.learn(*who.fact(m))


def _ensure_one(p: Pass, env: Environment, secret: Manifest, home: str) -> None:
    name = held_name(env, secret["metadata"]["name"])
    held = p.api.get(SECRET, name, home)
    if held is None:
        if p.api.create(secret, dry_run=True) is None:
            log.warning("%s was made before the operator held copies of what it generates: "
                        "it is left as it is; run `python -m chatenv_operator hold-secrets` "
                        "once so that a deleted one comes back with its password",
                        key_of(secret))
            return
        held = p.api.create(held_secret(env, secret, home)) or p.api.get(SECRET, name, home)
        if held is None:
            return  # made and deleted meanwhile: the next pass looks again
    if p.api.create(restored(secret, held)) is not None:
        p.writes.append(key_of(secret))


def hold_existing(kube: Kube, config: ProjectConfig, home: str) -> list[str]:
    """Copy into ``home`` every generated Secret of every environment that has none held
    yet (environments made before copies were held). Run once by an administrator, who
    may read them: the operator may not. Returns what it copied."""
    copied = []
    for body in kube.list(CHATENV):
        try:
            env = resolve(body, config, operator_namespace=home)
        except InvalidSpec:
            continue
        for make in (m for step in plan(env).steps for m in step.once):
            name = make("")["metadata"]["name"]
            live = kube.get(SECRET, name, env.namespace)
            if live is None or kube.get(SECRET, held_name(env, name), home) is not None:
                continue
            kube.create(held_secret(env, live, home))
            copied.append(f"{env.namespace}/{name}")
    return copied
