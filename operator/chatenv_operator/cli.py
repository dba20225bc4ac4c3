"""`chatenv`: DevSlots from GitHub Actions or a terminal, through the Kubernetes API.

    chatenv ensure-slot  --issue N | --pr N [--mode dev|plan|repair] [--repository R]
    chatenv ensure-ready --issue N | --pr N [--timeout 20m] [--soft-fail]
    chatenv set          --slot S --pr N
    chatenv touch        --issue N | --pr N | --slot S
    chatenv cleanup      --issue N | --pr N
    chatenv list         [--json]
    chatenv comment      --issue N | --pr N [--lang en|ru]
    chatenv render       --issue N | --pr N            (offline: the DevSlot it would create)

Commands that a workflow reads print one JSON object on stdout, with the
original CLI's field names (slot, namespace, env, created, infraReady). Errors
go to stderr; the exit code says what happened (see EXIT_CODES).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from .builders.slots import repository_label
from .conditions import format_time, get_condition
from .config import parse_duration
from .constants import (
    ANNOTATION_REFRESHED_AT,
    API_VERSION,
    DEVSLOT_KIND,
    GROUP,
    LABEL_ISSUE,
    LABEL_MANAGED_BY,
    LABEL_MODE,
    LABEL_PART_OF,
    LABEL_PR,
    LABEL_REPOSITORY,
    PART_OF,
)
from .kube import ApiError, Kube, lookup

DEVSLOT = lookup(f"{GROUP}/v1alpha1", DEVSLOT_KIND)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_TIMEOUT = 4
EXIT_NO_CLUSTER = 5
EXIT_FORBIDDEN = 6
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_ERROR: "the API server refused the request, or another error",
    EXIT_USAGE: "wrong arguments",
    EXIT_NOT_FOUND: "no such DevSlot",
    EXIT_TIMEOUT: "not Ready within --timeout (ensure-ready without --soft-fail)",
    EXIT_NO_CLUSTER: "no cluster configuration, or the API server cannot be reached",
    EXIT_FORBIDDEN: "the credentials lack a permission",
}


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------- pure helpers


def slug(repository: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", repository.lower()).strip("-")[:40].strip("-")


def devslot_name(repository: str, *, issue: int | None, pr: int | None) -> str:
    """Deterministic: creating it twice is a 409, so ensure-slot cannot make duplicates."""
    suffix = f"issue-{issue}" if issue else f"pr-{pr}"
    return f"{slug(repository)}-{suffix}"


def devslot_manifest(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {"repository": args.repository, "mode": args.mode}
    labels = {LABEL_PART_OF: PART_OF, LABEL_REPOSITORY: repository_label(args.repository),
              LABEL_MODE: args.mode, LABEL_MANAGED_BY: "chatenv-cli"}
    if args.issue:
        spec["issue"] = args.issue
        labels[LABEL_ISSUE] = str(args.issue)
    if args.pr:
        spec["pr"] = args.pr
        labels[LABEL_PR] = str(args.pr)
    if args.ttl:
        spec["ttl"] = args.ttl
    if args.slot:
        spec["slot"] = args.slot
    if args.chat_image:
        spec["images"] = {"chat": args.chat_image}
    if args.agent_image:
        agent: dict[str, Any] = {"image": args.agent_image}
        if args.agent_secret:
            agent["secretRefs"] = list(args.agent_secret)
        spec["agent"] = agent
    return {"apiVersion": API_VERSION, "kind": DEVSLOT_KIND,
            "metadata": {"name": devslot_name(args.repository, issue=args.issue, pr=args.pr),
                         "labels": labels},
            "spec": spec}


def summary(devslot: Mapping[str, Any], *, created: bool | None = None) -> dict[str, Any]:
    """The JSON a workflow reads, with the original CLI's field names."""
    spec, status = devslot["spec"], devslot.get("status") or {}
    ready = get_condition(status, "Ready")
    out: dict[str, Any] = {
        "name": devslot["metadata"]["name"],
        "slot": status.get("slot"),
        "namespace": status.get("namespace"),
        "env": "ai-repair" if spec.get("mode") == "repair" else "ai",
        "environment": status.get("environment"),
        "url": status.get("url"),
        "issue": spec.get("issue"),
        "pr": spec.get("pr"),
        "mode": spec.get("mode", "dev"),
        "phase": status.get("phase", "Pending"),
        "queuePosition": status.get("queuePosition"),
        "expiresAt": status.get("expiresAt"),
        "infraReady": bool(ready and ready["status"] == "True"),
    }
    if created is not None:
        out["created"] = created
    return out


def comment_markdown(devslot: Mapping[str, Any], lang: str) -> str:
    s = summary(devslot)
    url = s["url"] or ""
    what = f"#{s['pr']}" if s["pr"] else f"#{s['issue']}"
    if lang == "ru":
        lines = [f"### Слот {s['slot'] or '—'} для {what}", "",
                 f"- Чат: {url or 'ещё не готов'}", f"- Трейсы (Jaeger): {url}/jaeger" if url
                 else "- Трейсы (Jaeger): —", f"- Namespace: `{s['namespace'] or '—'}`",
                 f"- Режим: `{s['mode']}`, состояние: **{s['phase']}**",
                 f"- Истекает: {s['expiresAt'] or '—'} (продлить: `chatenv touch`)"]
    else:
        lines = [f"### Slot {s['slot'] or '-'} for {what}", "",
                 f"- Chat: {url or 'not ready yet'}", f"- Traces (Jaeger): {url}/jaeger" if url
                 else "- Traces (Jaeger): -", f"- Namespace: `{s['namespace'] or '-'}`",
                 f"- Mode: `{s['mode']}`, phase: **{s['phase']}**",
                 f"- Expires: {s['expiresAt'] or '-'} (extend with `chatenv touch`)"]
    return "\n".join(lines) + "\n"


def table(devslots: Sequence[Mapping[str, Any]]) -> str:
    rows = [("NAME", "SLOT", "ISSUE", "PR", "MODE", "PHASE", "READY", "EXPIRES", "URL")]
    for d in sorted(devslots, key=lambda d: (d.get("status") or {}).get("slot") or 10**6):
        s = summary(d)
        rows.append((s["name"], str(s["slot"] or "-"), str(s["issue"] or "-"),
                     str(s["pr"] or "-"), s["mode"], s["phase"], str(s["infraReady"]).lower(),
                     s["expiresAt"] or "-", s["url"] or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows) + "\n"


# ---------------------------------------------------------------------- cluster actions


def find(kube: Kube, args: argparse.Namespace) -> list[dict[str, Any]]:
    """DevSlots for --issue / --pr (of --repository when given) or --slot.

    Matched on the spec, not on labels, so DevSlots made with kubectl are found too.
    """
    def matches(d: Mapping[str, Any]) -> bool:
        spec = d.get("spec") or {}
        if getattr(args, "slot_number", None):
            return bool((d.get("status") or {}).get("slot") == args.slot_number)
        if args.repository and spec.get("repository") != args.repository:
            return False
        return bool(spec.get("issue") == args.issue if args.issue else spec.get("pr") == args.pr)

    return [d for d in kube.list(DEVSLOT) if matches(d)
            and not d["metadata"].get("deletionTimestamp")]


def find_one(kube: Kube, args: argparse.Namespace) -> dict[str, Any]:
    found = find(kube, args)
    if not found:
        raise CliError("no DevSlot found for " + describe(args), EXIT_NOT_FOUND)
    if len(found) > 1:
        names = ", ".join(d["metadata"]["name"] for d in found)
        raise CliError(f"several DevSlots match {describe(args)}: {names}; pass --repository")
    return found[0]


def describe(args: argparse.Namespace) -> str:
    if getattr(args, "slot_number", None):
        return f"slot {args.slot_number}"
    return f"issue {args.issue}" if args.issue else f"PR {args.pr}"


def ensure_slot(kube: Kube, args: argparse.Namespace,
                sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    if not args.repository:
        raise CliError("--repository (or $GITHUB_REPOSITORY) is required", EXIT_USAGE)
    existing = find(kube, args)
    created = False
    if existing:
        devslot = existing[0]
    else:
        manifest = devslot_manifest(args)
        devslot = kube.create(manifest) or {}
        created = bool(devslot)
        if not devslot:  # a concurrent ensure-slot created it first
            devslot = kube.get(DEVSLOT, manifest["metadata"]["name"]) or manifest
    # The operator allocates within moments; report the number when it is known.
    deadline = time.monotonic() + args.allocation_wait
    while not _settled(devslot) and time.monotonic() < deadline:
        sleep(0.5)
        devslot = kube.get(DEVSLOT, devslot["metadata"]["name"]) or devslot
    return summary(devslot, created=created)


def _settled(devslot: Mapping[str, Any]) -> bool:
    status = devslot.get("status") or {}
    return bool(status.get("slot") or status.get("namespace") or status.get("phase") == "Queued")


def ensure_ready(kube: Kube, args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    first = ensure_slot(kube, args)
    deadline = time.monotonic() + parse_duration(args.timeout)
    devslot: dict[str, Any] | None = None
    while True:
        devslot = kube.get(DEVSLOT, first["name"])
        if devslot is None:
            raise CliError(f"DevSlot {first['name']} was deleted while waiting", EXIT_NOT_FOUND)
        out = summary(devslot, created=first["created"])
        if out["infraReady"]:
            return out, EXIT_OK
        if time.monotonic() >= deadline:
            print(f"chatenv: {first['name']} not Ready within {args.timeout} "
                  f"(phase {out['phase']})", file=sys.stderr)
            return out, EXIT_OK if args.soft_fail else EXIT_TIMEOUT
        time.sleep(2)


def set_pr(kube: Kube, args: argparse.Namespace) -> dict[str, Any]:
    devslot = find_one(kube, args)
    current = devslot["spec"].get("pr")
    if current and current != args.pr:
        raise CliError(f"{devslot['metadata']['name']} already belongs to PR {current}")
    patched = kube.merge_patch(DEVSLOT, devslot["metadata"]["name"], {
        "metadata": {"labels": {LABEL_PR: str(args.pr)}}, "spec": {"pr": args.pr}})
    return summary(patched)


def touch(kube: Kube, args: argparse.Namespace, now: datetime | None = None) -> dict[str, Any]:
    devslot = find_one(kube, args)
    moment = now or datetime.now(UTC)
    when = format_time(moment)
    patched = kube.merge_patch(DEVSLOT, devslot["metadata"]["name"], {
        "metadata": {"annotations": {ANNOTATION_REFRESHED_AT: when}}})
    out = summary(patched)
    ttl = patched["spec"].get("ttl")
    if ttl:  # without spec.ttl the operator's default applies; it reports expiresAt itself
        expiry = moment + timedelta(seconds=parse_duration(ttl))
        out["expiresAt"] = format_time(expiry)
    out["refreshedAt"] = when
    return out


def cleanup(kube: Kube, args: argparse.Namespace) -> dict[str, Any]:
    deleted = []
    for devslot in find(kube, args):
        meta = devslot["metadata"]
        if kube.delete(DEVSLOT, meta["name"], uid=meta["uid"], propagation="Background"):
            deleted.append(meta["name"])
    return {"deleted": deleted}


# ---------------------------------------------------------------------- entry point


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chatenv", description="DevSlots: per-issue chat environments",
                                epilog="exit codes: " + "; ".join(
                                    f"{k} {v}" for k, v in EXIT_CODES.items()))
    p.add_argument("--kubeconfig", help="default: in-cluster credentials, else $KUBECONFIG")
    sub = p.add_subparsers(dest="command", required=True)

    def target(cmd: argparse.ArgumentParser, slot: bool = False) -> None:
        group = cmd.add_mutually_exclusive_group(required=True)
        group.add_argument("--issue", type=int)
        group.add_argument("--pr", type=int)
        if slot:
            group.add_argument("--slot", type=int, dest="slot_number")
        cmd.add_argument("--repository", default=os.environ.get("GITHUB_REPOSITORY"),
                         help="owner/name (default: $GITHUB_REPOSITORY)")

    for name in ("ensure-slot", "ensure-ready", "render"):
        cmd = sub.add_parser(name)
        target(cmd)
        cmd.add_argument("--mode", choices=["dev", "plan", "repair"], default="dev")
        cmd.add_argument("--ttl", help="e.g. 24h (default from services.yaml)")
        cmd.add_argument("--slot", type=int, help="preferred slot number")
        cmd.add_argument("--chat-image", help="the chat image to run (e.g. built for the PR)")
        cmd.add_argument("--agent-image", help="run an agent with this image in the slot")
        cmd.add_argument("--agent-secret", action="append",
                         help="a Secret of the operator's namespace for the agent (repeatable)")
        cmd.add_argument("--allocation-wait", type=float, default=30,
                         help="seconds to wait for a slot number (default 30)")
        if name == "ensure-ready":
            cmd.add_argument("--timeout", default="20m", help="e.g. 20m (default)")
            cmd.add_argument("--soft-fail", action="store_true",
                             help="exit 0 on timeout, with infraReady false")
    cmd = sub.add_parser("set", help="attach a PR to the DevSlot holding --slot")
    cmd.add_argument("--slot", type=int, dest="slot_number", required=True)
    cmd.add_argument("--pr", type=int, required=True)
    cmd.add_argument("--issue", type=int, help=argparse.SUPPRESS)
    cmd.add_argument("--repository", default=None, help=argparse.SUPPRESS)
    for name in ("touch", "comment"):
        cmd = sub.add_parser(name)
        target(cmd, slot=True)
        if name == "comment":
            cmd.add_argument("--lang", choices=["en", "ru"], default="en")
    cmd = sub.add_parser("cleanup")
    target(cmd)
    cmd = sub.add_parser("list")
    cmd.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    if args.command == "render":
        if not args.repository:
            raise CliError("--repository (or $GITHUB_REPOSITORY) is required", EXIT_USAGE)
        sys.stdout.write(yaml.safe_dump(devslot_manifest(args), sort_keys=False))
        return EXIT_OK
    if getattr(args, "ttl", None):
        try:
            parse_duration(args.ttl)
        except ValueError as e:
            raise CliError(f"--ttl: {e}", EXIT_USAGE) from None
    kube = connect(args.kubeconfig)
    code = EXIT_OK
    if args.command == "ensure-slot":
        out: Any = ensure_slot(kube, args)
    elif args.command == "ensure-ready":
        out, code = ensure_ready(kube, args)
    elif args.command == "set":
        out = set_pr(kube, args)
    elif args.command == "touch":
        out = touch(kube, args)
    elif args.command == "cleanup":
        out = cleanup(kube, args)
    elif args.command == "comment":
        sys.stdout.write(comment_markdown(find_one(kube, args), args.lang))
        return EXIT_OK
    else:
        devslots = kube.list(DEVSLOT)
        if not args.json:
            sys.stdout.write(table(devslots))
            return EXIT_OK
        out = [summary(d) for d in devslots]
    print(json.dumps(out, indent=2))
    return code


def connect(kubeconfig: str | None) -> Kube:
    from kubernetes.config import ConfigException

    try:
        return Kube.from_environment(kubeconfig)
    except (ConfigException, OSError) as e:
        raise CliError(f"no cluster configuration: {e}", EXIT_NO_CLUSTER) from None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run(args)
    except CliError as e:
        print(f"chatenv: {e}", file=sys.stderr)
        return e.code
    except ApiError as e:
        code = {0: EXIT_NO_CLUSTER, 401: EXIT_FORBIDDEN, 403: EXIT_FORBIDDEN,
                404: EXIT_NOT_FOUND}.get(e.status, EXIT_ERROR)
        what = "cannot reach the API server" if e.status == 0 else "the API server said"
        print(f"chatenv: {what}: {e.message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
