"""One reconcile pass over one ChatEnvironment: its plan (``builders.plan``), step by step.

The namespace first (never adopted: a namespace of that name that is not this
environment's is a conflict to report; one still being deleted is waited for), then
every step's objects at once, each applied only when the cache shows it differs. A
step that follows others (the chat service follows PostgreSQL and Redis) is applied
held — no pods — until they are ready; a disabled step's objects are deleted by
label. Secrets are created once. Safe to run at any time and any number of times:
a pass over an environment that is already as specified sends no request at all.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from . import holding, reporting, restoring, sleeping
from .activity import last_request
from .builders.plan import Plan, Step, plan
from .conditions import Reason, Type, get_condition, now_rfc3339
from .config import ProjectConfig
from .constants import (
    CHAT_NAME,
    INGRESS_NAME,
    LABEL_COMPONENT,
    LABEL_ENVIRONMENT,
    POSTGRES_NAME,
    REDIS_NAME,
)
from .diffing import with_hash
from .environment import Environment, InvalidSpec, resolve
from .kinds import DEPLOYMENT, INGRESS, NAMESPACE, PV, PVC, key_of, kind_of
from .kube import ApiError
from .passes import Once, Pass, Result
from .readiness import Readiness

RETAINED_LABEL = "chatenv.dev/retained-for"
POLL_WHILE_PROGRESSING = 5.0
POLL_ON_CONFLICT = 30.0
POLL_WHILE_TERMINATING = 2.0
ROUTES_SETTLE = 3.0
"""Seconds an ingress controller is given to load an Ingress the operator changed."""

Password = Callable[[], str]
Activity = Callable[[str], datetime | None]
"""The last request an environment's chat service recorded (by namespace); raises
``sleeping.ActivityUnknown`` when it cannot say."""


def reconcile_environment(p: Pass, body: Mapping[str, Any], config: ProjectConfig, *,
                          operator_namespace: str | None = None,
                          password: Password = lambda: secrets.token_urlsafe(24),
                          activity: Activity = last_request) -> Result:
    """Bring one environment to its spec and report its state in the status."""
    generation = body["metadata"].get("generation")
    old = dict(body.get("status") or {})
    try:
        env = resolve(body, config, operator_namespace=operator_namespace)
    except InvalidSpec as e:
        reporting.publish(p, body, reporting.failed(old, generation, Reason.INVALID_SPEC,
                                                    str(e), p.now))
        return Result()  # nothing to retry until the spec changes

    ns = p.read(NAMESPACE, env.namespace)
    if ns and ns["metadata"].get("deletionTimestamp"):
        # Whoever owned it, it is going away (a reused slot number's old namespace, say):
        # wait for it rather than report a conflict.
        message = f"waiting for the old namespace {env.namespace} to finish deleting"
        reporting.publish(p, body, reporting.progressing(
            old, env, generation, {}, Reason.NAMESPACE_TERMINATING, message, p.now))
        return Result(requeue_after=POLL_WHILE_TERMINATING)
    conflict = _namespace_conflict(env, ns, namespace_given="namespace" in body.get("spec", {}))
    if conflict:
        reporting.publish(p, body, reporting.failed(old, generation, Reason.NAMESPACE_CONFLICT,
                                                    conflict, p.now, namespace=None))
        return Result(requeue_after=POLL_ON_CONFLICT)

    env, verdict = _sleep(p, body, env, activity)
    env, restore = restoring.prepare(p, env, old, operator_namespace)
    try:
        components = apply_plan(p, env, plan(env), password, home=operator_namespace)
    except ApiError as e:
        if e.namespace_terminating:  # deleted under our feet: the garbage collector's turn
            return Result(requeue_after=POLL_WHILE_TERMINATING)
        if e.transient:
            raise
        reporting.publish(p, body, reporting.failed(old, generation, Reason.APPLY_FAILED,
                                                    e.message, p.now, namespace=env.namespace,
                                                    url=env.url))
        raise

    components = restoring.explained(env, components, restore)
    settling = _routes_settling(p, env, old, components)
    status = reporting.summarize(old, env, generation, components, p.now)
    status.update(reporting.workloads(env, p.live, components, old.get("images") or {}))
    status.update(reporting.sleep(old, env, verdict))
    if settling.changed_at is not None:
        status["routesChangedAt"] = now_rfc3339(settling.changed_at)
    status = _data(p, env, old, status, components, restore)
    reporting.publish(p, body, status)
    ready = (get_condition(status, Type.READY) or {}).get("status") == "True"
    if not ready and (get_condition(old, Type.READY) or {}).get("status") == "True":
        # What stops a Ready environment may be a Secret deleted under it (Secrets are not
        # watched): the next pass makes what it generated again, from the copies held.
        p.memo.forget(env.owner.uid)
    done = ready or (env.scaled_down and all(c.ready for c in components.values()))
    return Result(requeue_after=_sooner(None if done else POLL_WHILE_PROGRESSING,
                                        _recheck(body, env, status, verdict, p.now),
                                        settling.remaining))


def _recheck(body: Mapping[str, Any], env: Environment, status: Mapping[str, Any],
             verdict: sleeping.Verdict, now: datetime) -> float | None:
    """When to look at its idleness again: the verdict's time, or — for a pass that just
    made it Ready, which starts its window — the window's end. Nothing else calls the
    pass back: the status it writes itself is no event for it."""
    if verdict.asleep or verdict.recheck_after is not None or env.idle is None:
        return verdict.recheck_after
    after = sleeping.clocks({**body, "status": status}, idle=env.idle, suspended=env.suspended)
    return sleeping.decide(after, now, lambda: None).recheck_after


@dataclasses.dataclass(frozen=True)
class Settling:
    changed_at: datetime | None
    remaining: float | None
    """Seconds until the routes count as loaded; None: they do."""


def _routes_settling(p: Pass, env: Environment, old: Mapping[str, Any],
                     components: dict[str, Readiness]) -> Settling:
    """A changed Ingress (to the chat pods, or to the waker) serves once the ingress
    controller has loaded it: until ROUTES_SETTLE seconds after the change (recorded in the
    status, so a restart keeps it) the ingress is not ready."""
    if f"{INGRESS.kind}/{INGRESS_NAME}" in p.writes:
        changed_at: datetime | None = p.now
    else:
        changed_at = sleeping.parse_time(old.get("routesChangedAt"))
    if changed_at is None:
        return Settling(None, None)
    remaining = ROUTES_SETTLE - (p.now - changed_at).total_seconds()
    ingress = components.get("ingress")
    if remaining <= 0 or ingress is None or not ingress.ready:
        return Settling(changed_at, None)
    components["ingress"] = Readiness(False, "routes changed: the ingress controller is "
                                      "loading them")
    return Settling(changed_at, remaining)


def _sooner(*delays: float | None) -> float | None:
    known = [d for d in delays if d is not None]
    return min(known) if known else None


def _sleep(p: Pass, body: Mapping[str, Any], env: Environment,
           activity: Activity) -> tuple[Environment, sleeping.Verdict]:
    """Whether ``env`` sleeps now (``sleeping.decide``, asking its chat service only when
    the record says the window may have passed), and where its Ingress sends the host:
    the waker while no chat pod serves."""
    clocks = sleeping.clocks(body, idle=env.idle, suspended=env.suspended)
    verdict = sleeping.decide(clocks, p.now, lambda: activity(env.namespace))
    env = dataclasses.replace(env, sleeping=verdict.asleep)
    # The host goes (back) to the chat pods once they and Redis (sessions: logging in,
    # posting) run; once there, it stays while a chat pod runs (without Redis the chat
    # serves what it can: reading).
    needed = (CHAT_NAME,) if _routed_to_chat(p, env) else (CHAT_NAME, REDIS_NAME)
    serving = not env.scaled_down and all(
        _available(p.read(DEPLOYMENT, name, env.namespace)) for name in needed)
    return dataclasses.replace(env, to_waker=bool(env.operator_namespace) and not serving), \
        verdict


def _routed_to_chat(p: Pass, env: Environment) -> bool:
    live = p.read(INGRESS, INGRESS_NAME, env.namespace)
    paths = [path for rule in ((live or {}).get("spec") or {}).get("rules") or ()
             for path in (rule.get("http") or {}).get("paths") or ()]
    return any(path["backend"].get("service", {}).get("name") == CHAT_NAME for path in paths)


def _available(deployment: Mapping[str, Any] | None) -> bool:
    """A Deployment with replicas wanted and at least one of them available."""
    if deployment is None:
        return False
    return int((deployment.get("spec") or {}).get("replicas") or 0) > 0 and int(
        (deployment.get("status") or {}).get("availableReplicas") or 0) > 0


def _data(p: Pass, env: Environment, old: Mapping[str, Any], status: dict[str, Any],
          components: Mapping[str, Readiness], restore: restoring.Restore) -> dict[str, Any]:
    """``status`` with ``status.data``; a restore that failed for good stops the
    environment (DataRestoreFailed: Degraded, the restore's own words)."""
    failed = restoring.failure(p, env, components.get("data"), old)
    status = {**status, "data": restoring.data_status(env, components, old, restore, failed)}
    if failed is None:
        return status
    # Judged against the conditions as they were, so that a failure that stays says so
    # without moving their lastTransitionTime.
    status["conditions"] = old.get("conditions") or []
    return reporting.failed(status, env.generation, Reason.DATA_RESTORE_FAILED,
                            f"the snapshot's restore failed: {failed}", p.now,
                            namespace=env.namespace, url=env.url)


def _namespace_conflict(env: Environment, ns: Mapping[str, Any] | None, *,
                        namespace_given: bool) -> str | None:
    """Why an existing namespace cannot be this environment's, and what to do; None if it is."""
    if ns is None:
        return None
    owners = ns["metadata"].get("ownerReferences") or []
    if any(o.get("uid") == env.owner.uid for o in owners):
        return None
    holder = (ns["metadata"].get("labels") or {}).get(LABEL_ENVIRONMENT)
    who = f"ChatEnvironment {holder}" if holder else "something other than chatenv"
    free = f"delete ChatEnvironment {holder}" if holder else f"delete namespace {env.namespace}"
    where = ("spec.namespace cannot change: recreate this environment with another one"
             if namespace_given else
             "or recreate this environment with a spec.namespace of its own (it cannot be "
             "added later)")
    return (f"namespace {env.namespace} already exists and belongs to {who}; chatenv never "
            f"adopts a namespace: {free} (this environment then starts by itself), {where}")


def apply_plan(p: Pass, env: Environment, the_plan: Plan, password: Password, *,
               home: str | None = None) -> dict[str, Readiness]:
    """Apply every step; returns each component's readiness, in plan order. The generated
    Secrets first, each from the copy held in ``home`` (``holding``), so that no pod
    starts before them."""
    namespace = p.ensure(the_plan.namespace)
    ready = {s.name: _readiness(p, env, s) for s in the_plan.steps if s.ready}
    held = {s.name for s in the_plan.steps if _held(p, env, the_plan, s, ready)}
    enabled = [s for s in the_plan.steps if s.enabled]
    who = Once(env.owner.uid, namespace["metadata"].get("uid", ""))
    holding.ensure(p, env, who, [make(password()) for s in enabled for make in s.once], home)
    p.ensure_all([m for s in enabled for m in (s.held if s.name in held else s.objects)],
                 once=[(who, m) for s in enabled for m in s.created])
    for step in the_plan.steps:
        if not step.enabled:
            _prune(p, env, step)

    components: dict[str, Readiness] = {}
    for step in the_plan.steps:
        if step.ready is None:
            continue
        if not step.enabled:
            components[step.name] = Readiness(True, "disabled")
        elif step.name in held:
            waiting = [s.name for s in the_plan.after(step.name) if not ready[s.name].ready]
            components[step.name] = Readiness(False, f"waiting for {' and '.join(waiting)}")
        else:
            components[step.name] = step.ready.check(p.live.get(step.ready.key) or p.read(
                step.ready.kind, step.ready.name, env.namespace))
    if components.get("postgres", Readiness(False, "")).ready:
        _retain_volume(p, env)
    return components


def _readiness(p: Pass, env: Environment, step: Step) -> Readiness:
    """The step's readiness as the cache shows it, before this pass: only an object that
    already says what this pass would apply counts (scaled to zero while suspended is
    not ready for a resumed environment)."""
    assert step.ready is not None
    live = p.read(step.ready.kind, step.ready.name, env.namespace)
    desired = next((m for m in step.objects if key_of(m) == step.ready.key), None)
    if desired is not None and not p.says(with_hash(desired), live):
        return Readiness(False, "about to change")
    return step.ready.check(live)


def _held(p: Pass, env: Environment, the_plan: Plan, step: Step,
          ready: Mapping[str, Readiness]) -> bool:
    """Held: a step it follows is not ready, and its workloads do not run pods yet (once
    they do, they are kept running and updated whatever happens to the others)."""
    if not step.held or all(ready[s.name].ready for s in the_plan.after(step.name)):
        return False
    for manifest in step.objects:
        live = p.read(kind_of(manifest), manifest["metadata"]["name"], env.namespace)
        if live is not None and int((live.get("spec") or {}).get("replicas") or 0) > 0:
            return False
    return True


def _prune(p: Pass, env: Environment, step: Step) -> None:
    """A disabled step: delete the environment's objects labelled with its component."""
    labels = {LABEL_ENVIRONMENT: env.name, LABEL_COMPONENT: step.name}
    for kind in step.kinds:
        for obj in p.read_all(kind, env.namespace, labels=labels):
            p.delete(obj)


def _retain_volume(p: Pass, env: Environment) -> None:
    """keepOnDelete: the bound volume's reclaim policy is Retain, so it outlives the namespace.

    Volumes are not watched: this reads them, once per spec generation and process once
    the database is ready (a first generation without keepOnDelete has nothing to undo).
    """
    generation = str(env.generation)
    if (not env.postgres_keep_on_delete and env.generation <= 1) or p.memo.known(
            env.owner.uid, "volume", generation):
        return
    pvc = p.api.get(PVC, f"data-{POSTGRES_NAME}-0", env.namespace)
    volume = (pvc or {}).get("spec", {}).get("volumeName")
    if not volume or (pvc or {}).get("status", {}).get("phase") != "Bound":
        return
    pv = p.api.get(PV, volume)
    if pv is None:
        return
    policy = pv["spec"].get("persistentVolumeReclaimPolicy")
    ours = (pv["metadata"].get("labels") or {}).get(RETAINED_LABEL) == env.name
    if env.postgres_keep_on_delete and policy != "Retain":
        p.api.merge_patch(PV, volume, {
            "metadata": {"labels": {RETAINED_LABEL: env.name}},
            "spec": {"persistentVolumeReclaimPolicy": "Retain"}})
        p.writes.append(f"{PV.kind}/{volume}")
    elif not env.postgres_keep_on_delete and ours:
        p.api.merge_patch(PV, volume, {
            "metadata": {"labels": {RETAINED_LABEL: None}},
            "spec": {"persistentVolumeReclaimPolicy": "Delete"}})
        p.writes.append(f"{PV.kind}/{volume}")
    p.memo.learn(env.owner.uid, "volume", generation)
