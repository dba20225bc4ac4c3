"""What an environment consists of, as data: its namespace, then named steps.

Each ``Step`` names its objects (built here, pure), the readiness check that tells
when it is ready, and the steps that follow it: a step listed in another's ``then``
runs its pods only once every step before it is ready (until then it is applied
*held*: its workloads at zero replicas, so every object exists from the first pass).
A disabled step's objects are not applied and are deleted by their labels. Secrets
are made once, with generated passwords, and never re-applied (``once``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from .. import kinds, readiness
from ..constants import (
    CHAT_NAME,
    INGRESS_NAME,
    JAEGER_NAME,
    POSTGRES_NAME,
    REDIS_NAME,
    RESTORE_NAME,
    SNAPSHOT_STAGE,
)
from ..environment import Environment
from . import chat, data, ingress, jaeger, namespace, postgres, redis, restore
from .common import Manifest

Check = Callable[[Manifest | None], readiness.Readiness]


@dataclass(frozen=True)
class ReadyWhen:
    """A step is ready when this object of it is, as ``check`` judges it."""

    kind: kinds.Kind
    name: str
    check: Check

    @property
    def key(self) -> str:
        return f"{self.kind.kind}/{self.name}"


@dataclass(frozen=True)
class Step:
    """One part of an environment."""

    name: str
    objects: tuple[Manifest, ...]
    """Applied together, concurrently with the other steps' objects."""
    ready: ReadyWhen | None = None
    """How to tell the step is ready; None: it has nothing to wait for."""
    then: tuple[str, ...] = ()
    """Steps that wait for this one to be ready before their pods run."""
    held: tuple[Manifest, ...] = ()
    """``objects`` as applied while a step it follows is not ready: no pods (a Deployment
    at zero replicas, paused)."""
    once: tuple[Callable[[str], Manifest], ...] = ()
    """Objects created once, given a generated password: the Secrets."""
    enabled: bool = True
    """False: nothing applied, and the objects labelled ``app.kubernetes.io/component:
    <name>`` of the environment deleted."""
    created: tuple[Manifest, ...] = ()
    """Objects created when missing and never changed (the operator may create Secrets,
    not patch them): a Secret whose content is given, not generated."""

    @property
    def kinds(self) -> frozenset[kinds.Kind]:
        return frozenset(kinds.kind_of(m) for m in self.objects)


@dataclass(frozen=True)
class Plan:
    namespace: Manifest
    """Applied first: every other object lives in it."""
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def after(self, name: str) -> tuple[Step, ...]:
        """The steps ``name`` waits for."""
        return tuple(s for s in self.steps if name in s.then)

    @property
    def components(self) -> tuple[str, ...]:
        """The steps with a readiness of their own, in order: the status' components."""
        return tuple(s.name for s in self.steps if s.ready is not None)


def _held(env: Environment, build: Callable[[Environment], Manifest]) -> Manifest:
    """A workload that runs no pods yet: no replicas, and paused, so the Deployment
    controller does not even make its ReplicaSet until it is released."""
    manifest = build(dataclasses.replace(env, suspended=True))
    return {**manifest, "spec": {**manifest["spec"], "paused": True}}


def _waker(env: Environment) -> tuple[Manifest, ...]:
    """The waker's name in the namespace, where the operator (and so the waker) has one."""
    return (ingress.waker_service(env, env.operator_namespace),) if env.operator_namespace \
        else ()


def _data_secrets(env: Environment) -> tuple[Callable[[str], Manifest], ...]:
    """The placeholder password of loaded data's users; on a snapshot source (stage
    ai-staging), the password of the read-only role snapshots read through."""
    out: list[Callable[[str], Manifest]] = []
    if env.data_mode != "empty":
        out.append(lambda pw: data.data_credentials_secret(env, pw))
    if env.stage == SNAPSHOT_STAGE:
        out.append(lambda pw: data.snapshot_reader_secret(env, pw))
    return tuple(out)


def _data(env: Environment) -> tuple[Step, ...]:
    """Mode snapshot: the restore, which the chat pods wait for. Its Job and Secret are
    in the plan only while one is to be started (``env.snapshot``, decided by the pass):
    a Job's pod template cannot change, and a restore runs once."""
    if env.data_mode != "snapshot" or env.data_loaded:
        return ()
    snapshot = env.snapshot
    return (Step("data", (restore.restore_job(env),) if snapshot else (),
                 ready=ReadyWhen(kinds.JOB, RESTORE_NAME, readiness.job), then=("chat",),
                 created=(restore.data_source_secret(env, snapshot),) if snapshot else ()),)


def plan(env: Environment) -> Plan:
    """Everything applied for ``env``, step by step."""
    return Plan(namespace=namespace.namespace(env), steps=(
        Step("config", (data.configmap(env),),
             once=(lambda pw: data.postgres_secret(env, pw),
                   lambda pw: data.redis_secret(env, pw), *_data_secrets(env))),
        # The chat pods start beside their data services: their `migrate` init container
        # waits for PostgreSQL, and the service runs (degraded) until Redis answers.
        Step("postgres", (postgres.postgres_service(env), postgres.postgres_client_service(env),
                          postgres.postgres_statefulset(env)),
             ready=ReadyWhen(kinds.STATEFULSET, POSTGRES_NAME, readiness.statefulset)),
        Step("redis", (redis.redis_service(env), redis.redis_volume_claim(env),
                       redis.redis_deployment(env)),
             ready=ReadyWhen(kinds.DEPLOYMENT, REDIS_NAME, readiness.deployment)),
        Step("jaeger", (jaeger.jaeger_configmap(env), jaeger.jaeger_service(env),
                        jaeger.jaeger_deployment(env)),
             ready=ReadyWhen(kinds.DEPLOYMENT, JAEGER_NAME, readiness.deployment),
             enabled=env.jaeger_enabled),
        Step("chat", (chat.chat_deployment(env), chat.chat_service(env)),
             ready=ReadyWhen(kinds.DEPLOYMENT, CHAT_NAME, readiness.deployment),
             # Held only behind a step that lists it in its `then` (a slot's data restore).
             held=(_held(env, chat.chat_deployment), chat.chat_service(env))),
        *_data(env),
        Step("ingress", (ingress.ingress(env), *_waker(env)),
             ready=ReadyWhen(kinds.INGRESS, INGRESS_NAME, readiness.ingress)),
        Step("policy", (namespace.network_policy(env), namespace.egress_policy(env),
                        namespace.agent_egress_policy(env), namespace.resource_quota(env),
                        namespace.limit_range(env))),
    ))

