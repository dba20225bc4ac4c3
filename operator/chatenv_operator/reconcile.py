"""One reconcile pass over one ChatEnvironment.

Reads the live objects, applies what differs (server-side apply, in plan
order, with a readiness gate between the data services and the app), creates
missing secrets once, and writes the status only when it changed. Safe to run
at any time and any number of times: a pass over an environment that is
already as specified sends no write requests at all.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import readiness, reporting
from .builders import data, render
from .builders.common import Manifest
from .config import ProjectConfig
from .constants import (
    CHAT_NAME,
    CHATENV_KIND,
    GROUP,
    INGRESS_NAME,
    JAEGER_NAME,
    LABEL_ENVIRONMENT,
    POSTGRES_NAME,
    POSTGRES_SECRET,
    REDIS_NAME,
    REDIS_SECRET,
)
from .environment import Environment, InvalidSpec, resolve
from .kube import ApiError, Kube, lookup

log = logging.getLogger(__name__)

CHATENV = lookup(f"{GROUP}/v1alpha1", CHATENV_KIND)
NAMESPACE = lookup("v1", "Namespace")
SECRET = lookup("v1", "Secret")
PVC = lookup("v1", "PersistentVolumeClaim")
PV = lookup("v1", "PersistentVolume")
DEPLOYMENT = lookup("apps/v1", "Deployment")
STATEFULSET = lookup("apps/v1", "StatefulSet")
INGRESS = lookup("networking.k8s.io/v1", "Ingress")
CONFIGMAP = lookup("v1", "ConfigMap")
SERVICE = lookup("v1", "Service")

RETAINED_LABEL = f"{GROUP}/retained-for"
POLL_WHILE_PROGRESSING = 5.0
POLL_ON_CONFLICT = 30.0


@dataclass
class Result:
    """What the controller should do next with this key."""

    requeue_after: float | None = None
    writes: list[str] = field(default_factory=list)
    gone: bool = False
    """The object no longer exists: the controller forgets its key."""


@dataclass
class Pass:
    """The state of one reconcile pass, threaded through the steps."""

    kube: Kube
    env: Environment
    live: dict[str, Manifest | None] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)

    def ensure(self, manifest: Manifest) -> Manifest:
        obj, written = self.kube.ensure(manifest)
        if written:
            self.writes.append(f"{manifest['kind']}/{manifest['metadata']['name']}")
        self.live[f"{manifest['kind']}/{manifest['metadata']['name']}"] = obj
        return obj


def reconcile_environment(kube: Kube, body: Mapping[str, Any], config: ProjectConfig, *,
                          operator_namespace: str | None = None,
                          password: Callable[[], str] = lambda: secrets.token_urlsafe(24),
                          now: datetime | None = None) -> Result:
    """Bring one environment to its spec and report its state in the status."""
    generation = body["metadata"].get("generation")
    old_status = dict(body.get("status") or {})
    try:
        env = resolve(body, config, operator_namespace=operator_namespace)
    except InvalidSpec as e:
        status = reporting.failed(old_status, generation, "InvalidSpec", str(e), now)
        reporting.publish(kube, body, old_status, status, now)
        return Result()  # nothing to retry until the spec changes

    ns = kube.get(NAMESPACE, env.namespace)
    if ns and ns["metadata"].get("deletionTimestamp"):
        # Whoever owned it, it is going away (a reused slot number's old namespace, say):
        # wait for it rather than report a conflict.
        message = f"waiting for the old namespace {env.namespace} to finish deleting"
        status = reporting.progressing(old_status, env, generation, {}, "NamespaceTerminating",
                                       message, now)
        reporting.publish(kube, body, old_status, status, now)
        return Result(requeue_after=2.0)
    conflict = _namespace_conflict(env, ns, namespace_given="namespace" in body.get("spec", {}))
    if conflict:
        status = reporting.failed(old_status, generation, "NamespaceConflict", conflict, now,
                                  namespace=None)
        reporting.publish(kube, body, old_status, status, now)
        return Result(requeue_after=POLL_ON_CONFLICT)

    p = Pass(kube, env)
    try:
        components = _apply(p, password)
    except ApiError as e:
        if e.namespace_terminating:  # deleted under our feet: the garbage collector's turn
            return Result(requeue_after=2.0, writes=p.writes)
        if e.transient:
            raise
        status = reporting.failed(old_status, generation, "ApplyFailed", e.message, now,
                                  namespace=env.namespace, url=env.url)
        reporting.publish(kube, body, old_status, status, now, writes=p.writes)
        raise

    status = reporting.summarize(old_status, env, generation, components, now)
    status.update(reporting.workloads(env, p.live, components, old_status.get("images") or {}))
    reporting.publish(kube, body, old_status, status, now, writes=p.writes)
    ready = status["conditions"][0]["status"] == "True"
    done = ready or (env.suspended and all(c.ready for c in components.values()))
    return Result(requeue_after=None if done else POLL_WHILE_PROGRESSING, writes=p.writes)


def _namespace_conflict(env: Environment, ns: Manifest | None, *,
                        namespace_given: bool) -> str | None:
    """Why an existing namespace cannot be this environment's, and what to do; None if it is."""
    if ns is None:
        return None
    owners = ns["metadata"].get("ownerReferences") or []
    if any(o.get("uid") == env.owner.uid for o in owners):
        return None
    holder = ns["metadata"].get("labels", {}).get(LABEL_ENVIRONMENT)
    who = f"ChatEnvironment {holder}" if holder else "something other than chatenv"
    free = f"delete ChatEnvironment {holder}" if holder else f"delete namespace {env.namespace}"
    where = ("spec.namespace cannot change: recreate this environment with another one"
             if namespace_given else
             "or recreate this environment with a spec.namespace of its own (it cannot be "
             "added later)")
    return (f"namespace {env.namespace} already exists and belongs to {who}; chatenv never "
            f"adopts a namespace: {free} (this environment then starts by itself), {where}")


def _apply(p: Pass, password: Callable[[], str]) -> dict[str, readiness.Readiness]:
    """Apply the plan in order; returns per-component readiness."""
    env = p.env
    steps = render.plan(env)
    components: dict[str, readiness.Readiness] = {}
    gated = False  # the app waits for its data services; the ingress waits for the app
    for step in steps:
        if step.component == "chat":
            waiting = [n for n in ("postgres", "redis") if not components[n].ready]
            gated = bool(waiting) and not env.suspended and p.kube.get(
                DEPLOYMENT, CHAT_NAME, env.namespace) is None
            if gated:
                components["chat"] = readiness.Readiness(
                    False, f"waiting for {' and '.join(waiting)}")
                components["ingress"] = readiness.Readiness(False, "waiting for chat")
        if gated and step.component in ("chat", "ingress"):
            continue
        for manifest in step.manifests:
            p.ensure(manifest)
        if step.component == "config":
            _ensure_secrets(p, password)
        elif step.component == "postgres":
            components["postgres"] = readiness.statefulset(p.live[f"StatefulSet/{POSTGRES_NAME}"])
            _retain_volume(p)
        elif step.component == "redis":
            components["redis"] = readiness.deployment(p.live[f"Deployment/{REDIS_NAME}"])
        elif step.component == "jaeger":
            components["jaeger"] = readiness.deployment(p.live[f"Deployment/{JAEGER_NAME}"])
        elif step.component == "chat":
            components["chat"] = readiness.deployment(p.live[f"Deployment/{CHAT_NAME}"])
        elif step.component == "ingress":
            components["ingress"] = readiness.ingress(p.live[f"Ingress/{INGRESS_NAME}"])
    if not env.jaeger_enabled:
        _prune_jaeger(p)
        components["jaeger"] = readiness.Readiness(True, "disabled")
    return components


def _ensure_secrets(p: Pass, password: Callable[[], str]) -> None:
    """Create each secret once; an existing secret is never rewritten (its password stays)."""
    for name, build in ((POSTGRES_SECRET, data.postgres_secret),
                        (REDIS_SECRET, data.redis_secret)):
        if p.kube.get(SECRET, name, p.env.namespace) is not None:
            continue
        if p.kube.create(build(p.env, password())) is not None:
            p.writes.append(f"Secret/{name}")


def _retain_volume(p: Pass) -> None:
    """keepOnDelete: the bound volume's reclaim policy is Retain, so it outlives the namespace."""
    env = p.env
    pvc = p.kube.get(PVC, f"data-{POSTGRES_NAME}-0", env.namespace)
    volume = (pvc or {}).get("spec", {}).get("volumeName")
    if not volume or (pvc or {}).get("status", {}).get("phase") != "Bound":
        return
    pv = p.kube.get(PV, volume)
    if pv is None:
        return
    policy = pv["spec"].get("persistentVolumeReclaimPolicy")
    ours = pv["metadata"].get("labels", {}).get(RETAINED_LABEL) == env.name
    if env.postgres_keep_on_delete and policy != "Retain":
        p.kube.merge_patch(PV, volume, {
            "metadata": {"labels": {RETAINED_LABEL: env.name}},
            "spec": {"persistentVolumeReclaimPolicy": "Retain"}})
        p.writes.append(f"PersistentVolume/{volume}")
    elif not env.postgres_keep_on_delete and ours:
        p.kube.merge_patch(PV, volume, {
            "metadata": {"labels": {RETAINED_LABEL: None}},
            "spec": {"persistentVolumeReclaimPolicy": "Delete"}})
        p.writes.append(f"PersistentVolume/{volume}")


def _prune_jaeger(p: Pass) -> None:
    for kind, name in ((DEPLOYMENT, JAEGER_NAME), (SERVICE, JAEGER_NAME),
                       (CONFIGMAP, f"{JAEGER_NAME}-config")):
        live = p.kube.get(kind, name, p.env.namespace)
        if live is not None and live["metadata"].get("labels", {}).get(
                LABEL_ENVIRONMENT) == p.env.name:
            p.kube.delete(kind, name, p.env.namespace, uid=live["metadata"]["uid"])
            p.writes.append(f"{kind.kind}/{name} (deleted)")
