"""The entry point: parse, check, connect, run one command, print, exit with its code."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from ..kube import ApiError, Kube
from . import actions
from .args import parser, request, validate
from .errors import EXIT_ERROR, EXIT_FORBIDDEN, EXIT_NO_CLUSTER, EXIT_NOT_FOUND, EXIT_OK, CliError
from .output import comment_markdown, devslot_manifest, summary, table


def target(args: argparse.Namespace) -> actions.Target:
    return actions.Target(args.repository, issue=args.issue, pr=args.pr,
                          slot=getattr(args, "slot_number", None))


def run(args: argparse.Namespace) -> int:
    validate(args)
    if args.command == "render":
        sys.stdout.write(yaml.safe_dump(devslot_manifest(request(args)), sort_keys=False))
        return EXIT_OK
    kube = connect(args.kubeconfig)
    code, notes = EXIT_OK, list[str]()
    out: Any
    if args.command in ("ensure-slot", "ensure-ready"):
        common = {"explicit_mode": args.mode is not None,
                  "allocation_wait": args.allocation_wait}
        if args.command == "ensure-slot":
            out, notes = actions.ensure_slot(kube, request(args), **common)
        else:
            out, code, notes = actions.ensure_ready(kube, request(args), **common,
                                                    timeout=args.timeout,
                                                    soft_fail=args.soft_fail)
    elif args.command == "set":
        out = actions.set_pr(kube, slot=args.slot_number, pr=args.pr,
                             repository=args.repository)
    elif args.command == "touch":
        out = actions.touch(kube, target(args))
    elif args.command == "credentials":
        out = actions.credentials(kube, target(args))
    elif args.command == "cleanup":
        out = actions.cleanup(kube, target(args))
    elif args.command == "comment":
        sys.stdout.write(comment_markdown(actions.find_one(kube, target(args)), args.lang))
        return EXIT_OK
    else:
        devslots = actions.list_devslots(kube, args.repository)
        if not args.json:
            sys.stdout.write(table(devslots))
            return EXIT_OK
        out = [summary(d) for d in devslots]
    for note in notes:
        print(f"chatenv: {note}", file=sys.stderr)
    print(json.dumps(out, indent=2))
    return code


def connect(kubeconfig: str | None) -> Kube:
    from kubernetes.config import ConfigException

    try:
        return Kube.from_environment(kubeconfig)
    except (ConfigException, OSError) as e:
        raise CliError(f"no cluster configuration: {e}", EXIT_NO_CLUSTER) from None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (argparse exits 2 itself on unparsable input)."""
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
