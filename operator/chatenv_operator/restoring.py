"""Starting data, decided in a pass: for a snapshot, which environment it is taken of and
whether its restore starts now (``prepare``), why a failed one failed (``failure``), and
what ``status.data`` says for every mode (``data_status``).

Reads the cache, plus two API reads that only happen once per restore: the operator's held
copy of the source's ``snapshot-reader`` password when the Job is about to be created (the
operator may read Secrets only in its own namespace, so never the source's), and the failed
pods' termination message when the Job has failed.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .builders.held import held_name_of
from .conditions import Type, get_condition
from .constants import (
    POSTGRES_NAME,
    RESTORE_NAME,
    SNAPSHOT_READER_SECRET,
    SNAPSHOT_STAGE,
)
from .environment import Environment, Snapshot
from .kinds import CHATENV, JOB, POD, SECRET, STATEFULSET
from .passes import Pass
from .readiness import JOB_FAILED, Readiness, statefulset

LOADED, LOADING, PENDING, FAILED = "Loaded", "Loading", "Pending", "Failed"
MESSAGE_LIMIT = 512


@dataclass(frozen=True)
class Restore:
    """What a pass found out about a snapshot's source."""

    source: str = ""
    """The source environment's name, once known."""
    waiting: str = ""
    """Why no restore can start yet ("" when none is waiting)."""


def loaded(old: Mapping[str, Any]) -> bool:
    return ((old.get("data") or {}).get("state")) == LOADED


def prepare(p: Pass, env: Environment, old: Mapping[str, Any],
            home: str | None) -> tuple[Environment, Restore]:
    """``env`` with what is left to do for its starting data: nothing (loaded, or the Job
    exists: it is never changed), or a restore to start now, from a ready source."""
    if env.data_mode != "snapshot":
        return env, Restore()
    known = str((old.get("data") or {}).get("source") or "")
    if loaded(old):
        return dataclasses.replace(env, data_loaded=True), Restore(known)
    if p.read(JOB, RESTORE_NAME, env.namespace) is not None:
        return env, Restore(known)
    source, why = find_source(p, env)
    if source is None:
        return env, Restore(env.data_source or "", why)
    name = source["metadata"]["name"]
    if not statefulset(p.read(STATEFULSET, POSTGRES_NAME, env.namespace)).ready:
        return env, Restore(name, "waiting for this environment's PostgreSQL")
    password, why = _reader_password(p, source, home)
    if password is None:
        return env, Restore(name, why)
    namespace = str((source.get("status") or {}).get("namespace"))
    return dataclasses.replace(env, snapshot=Snapshot(name, namespace, password)), \
        Restore(name)


def find_source(p: Pass, env: Environment) -> tuple[Mapping[str, Any] | None, str]:
    """The ready ChatEnvironment of stage ai-staging the snapshot is taken of, or why not."""
    live = [e for e in p.read_all(CHATENV) if not e["metadata"].get("deletionTimestamp")]
    if env.data_source:
        named = [e for e in live if e["metadata"]["name"] == env.data_source]
        if not named:
            return None, f"the snapshot's source ChatEnvironment {env.data_source} does not exist"
        source = named[0]
        stage = (source.get("spec") or {}).get("stage")
        if stage != SNAPSHOT_STAGE:
            return None, (f"the snapshot's source {env.data_source} is of stage {stage}, not "
                          f"{SNAPSHOT_STAGE}")
    else:
        staging = [e for e in live if (e.get("spec") or {}).get("stage") == SNAPSHOT_STAGE]
        if len(staging) != 1:
            return None, (f"a snapshot needs exactly one ChatEnvironment of stage "
                          f"{SNAPSHOT_STAGE} (or spec.data.source), found {len(staging)}")
        source = staging[0]
    ready = get_condition(source.get("status"), Type.READY)
    if not ready or ready.get("status") != "True" or not (source.get("status") or {}).get(
            "namespace"):
        why = f": {ready['reason']}" if ready else ""
        return None, f"the snapshot's source {source['metadata']['name']} is not ready{why}"
    return source, ""


def _reader_password(p: Pass, source: Mapping[str, Any],
                     home: str | None) -> tuple[str | None, str]:
    name = source["metadata"]["name"]
    if home is None:
        return None, "the operator has no namespace of its own to hold the source's password in"
    held = p.api.get(SECRET, held_name_of(source, SNAPSHOT_READER_SECRET), home)
    encoded = ((held or {}).get("data") or {}).get("password")
    given = ((held or {}).get("stringData") or {}).get("password")  # as made, not yet stored
    if given:
        return str(given), ""
    if not encoded:
        return None, (f"the operator holds no {SNAPSHOT_READER_SECRET} password of {name} "
                      "yet (made by its next pass; for an environment older than the copies, "
                      "run `python -m chatenv_operator hold-secrets`)")
    return base64.b64decode(encoded).decode(), ""


def explained(env: Environment, components: Mapping[str, Readiness],
              restore: Restore) -> dict[str, Readiness]:
    """``components`` with the data step's readiness saying why it waits, when its restore
    cannot start yet (rather than "not created yet"); a snapshot loaded is still reported."""
    data = components.get("data")
    if env.data_loaded or (data is not None and data.ready):
        return {**components, "data": Readiness(True, f"snapshot {restore.source} loaded")}
    if data is None or not restore.waiting:
        return dict(components)
    return {**components, "data": Readiness(False, restore.waiting)}


def failure(p: Pass, env: Environment, data: Readiness | None,
            old: Mapping[str, Any]) -> str | None:
    """Why the restore failed for good, in its own last words (its pods' termination
    message), or None while it has not. Read once: the status keeps it."""
    if data is None or data.ready or not data.message.startswith(JOB_FAILED):
        return None
    previous = old.get("data") or {}
    if previous.get("state") == FAILED and previous.get("message"):
        return str(previous["message"])
    pods = p.api.list(POD, env.namespace, label_selector=f"job-name={RESTORE_NAME}")
    pods.sort(key=lambda pod: pod["metadata"].get("creationTimestamp") or "")
    for pod in reversed(pods):
        words = last_words(pod)
        if words:
            return words
    return data.message


def last_words(pod: Mapping[str, Any]) -> str:
    """The termination message of a pod's failed container: its last line that says what
    went wrong (chat_service prefixes its errors), shortened."""
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        text = str(((status.get("state") or {}).get("terminated") or {}).get("message") or "")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            said = [line for line in lines if line.startswith("chat_service:")]
            return (said or lines)[-1][:MESSAGE_LIMIT]
    return ""


def data_status(env: Environment, components: Mapping[str, Readiness],
                old: Mapping[str, Any], restore: Restore,
                failed: str | None) -> dict[str, Any]:
    """``status.data``: the mode, the data set or source, and whether it is in. Pure."""
    if env.data_mode == "fixtures":
        return _state(env, old, env.data_fixtures, components.get("chat"),
                      "the chat pods' migrate container loads it")
    if env.data_mode == "snapshot":
        source = restore.source or str((old.get("data") or {}).get("source") or "")
        if failed:
            return {"mode": env.data_mode, "source": source, "state": FAILED,
                    "message": failed}
        if restore.waiting:
            return {"mode": env.data_mode, "source": source, "state": PENDING,
                    "message": restore.waiting}
        return _state(env, old, source, components.get("data"), "restoring")
    return {"mode": "empty", "source": "", "state": LOADED, "message": "an empty database"}


def _state(env: Environment, old: Mapping[str, Any], source: str,
           done: Readiness | None, loading: str) -> dict[str, Any]:
    if loaded(old) or (done is not None and done.ready):
        return {"mode": env.data_mode, "source": source, "state": LOADED,
                "message": f"{env.data_mode} {source} loaded"}
    return {"mode": env.data_mode, "source": source, "state": LOADING,
            "message": f"{loading}: {done.message}" if done else loading}
