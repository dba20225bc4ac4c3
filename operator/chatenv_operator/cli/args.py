"""The command line: subcommands, their options, and every check that needs no cluster.

Wrong arguments exit 2 before any request is sent: argparse rejects values that
do not parse (a number below 1, an empty image, a malformed TTL), and
``validate`` the combinations it cannot see (a missing repository, a secret
without an agent).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable

from ..config import parse_duration
from .errors import EXIT_CODES, EXIT_USAGE, CliError
from .output import Request

REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
TTL = re.compile(r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$")
TTL_RANGE = (10, 720 * 3600)  # the DevSlot schema's bounds for spec.ttl
MODES = ("dev", "plan", "repair")
DATA = ("empty", "fixtures", "snapshot")


def number(low: int = 1, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer within [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value
    return parse


def image(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError(
            "is empty (in a workflow: is the repository variable that names it set?)")
    if any(c.isspace() for c in text) or len(text) > 512:
        raise argparse.ArgumentTypeError(f"is not an image reference: {text!r}")
    return text


def secret_name(text: str) -> str:
    if not SECRET_NAME.match(text) or len(text) > 200:
        raise argparse.ArgumentTypeError(f"is not a Secret name: {text!r}")
    return text


def ttl(text: str) -> str:
    seconds = parse_duration(text) if text and TTL.match(text) else None
    if seconds is None:
        raise argparse.ArgumentTypeError(f"must be hours, minutes, seconds like 24h, 90m or "
                                         f"1h30m, got {text!r}")
    if not TTL_RANGE[0] <= seconds <= TTL_RANGE[1]:
        raise argparse.ArgumentTypeError(f"must be between 10s and 720h, got {text}")
    return text


def duration(text: str) -> str:
    """A duration like 20m or 1h30m; a bare number is seconds."""
    if text.isdigit():
        text += "s"
    try:
        parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


ISSUE, PR, SLOT = number(), number(), number(1, 999)

COMMANDS = {
    "ensure-slot": ("open or find the DevSlot of an issue or PR",
                    "Return the DevSlot of an issue or PR, creating it if there is none "
                    "(idempotent: its name is deterministic). For an existing DevSlot, "
                    "--chat-image rolls its chat image; its mode cannot change."),
    "ensure-ready": ("ensure-slot, then wait until the slot is Ready",
                     "ensure-slot, then wait up to --timeout for Ready. A DevSlot still "
                     "queued at the timeout keeps its place and exits 7."),
    "set": ("attach a PR to the DevSlot holding a slot",
            "Attach a pull request to the DevSlot holding --slot (once; a PR belongs to one "
            "DevSlot only)."),
    "touch": ("record activity: the TTL starts again, a sleeping slot wakes",
              "Record activity on a DevSlot: its TTL starts again from now, and its "
              "environment wakes if it sleeps."),
    "credentials": ("print the placeholder password of the slot's loaded users",
                    "Print the password every user of the slot's starting data (fixtures "
                    "or a snapshot of ai-staging) logs in with. Needs read access to "
                    "Secrets in the slot's namespace."),
    "cleanup": ("delete the DevSlot(s) of an issue or PR",
                "Delete the DevSlot of an issue or PR of --repository; everything it made "
                "goes with it. Idempotent: nothing to delete is success."),
    "list": ("list DevSlots", "List DevSlots (of --repository, when given) as a table or JSON."),
    "comment": ("print the issue/PR comment with the slot's links",
                "Print the markdown comment for the issue or PR: the slot's links, or its "
                "place in the queue."),
    "render": ("print the DevSlot ensure-slot would create (offline)",
               "Print the DevSlot that ensure-slot would create, without a cluster."),
}


def _repository(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--repository", default=os.environ.get("GITHUB_REPOSITORY") or None,
                     help="owner/name (default: $GITHUB_REPOSITORY)")


def _target(cmd: argparse.ArgumentParser, *, slot: bool = False) -> None:
    group = cmd.add_mutually_exclusive_group(required=True)
    group.add_argument("--issue", type=ISSUE, metavar="N", help="issue number (1 or more)")
    group.add_argument("--pr", type=PR, metavar="N", help="pull request number (1 or more)")
    if slot:
        group.add_argument("--slot", type=SLOT, dest="slot_number", metavar="S",
                           help="slot number (1-999)")
    _repository(cmd)


def _ensure_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--mode", choices=MODES, default=None,
                     help="dev (default), plan or repair; fixed at creation")
    cmd.add_argument("--ttl", type=ttl, help="lifetime after the last activity, e.g. 24h "
                     "(default from services.yaml; only for a new DevSlot)")
    cmd.add_argument("--slot", type=SLOT, metavar="S",
                     help="preferred slot number (only for a new DevSlot)")
    cmd.add_argument("--chat-image", type=image, metavar="IMAGE",
                     help="the chat image to run; for an existing DevSlot, rolls it to this one")
    cmd.add_argument("--agent-image", type=image, metavar="IMAGE",
                     help="run an agent with this image in the slot (only for a new DevSlot)")
    cmd.add_argument("--agent-secret", type=secret_name, action="append", metavar="SECRET",
                     help="a Secret of the operator's namespace for the agent (repeatable; "
                          "needs --agent-image)")
    cmd.add_argument("--data", choices=DATA, default=None,
                     help="what the slot's database starts with: empty, fixtures (the demo "
                          "data set) or snapshot (of ai-staging); default from services.yaml "
                          "(only for a new DevSlot)")
    cmd.add_argument("--allocation-wait", type=seconds, default=30, metavar="SECONDS",
                     help="seconds to wait for a slot number (default 30)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chatenv", description="DevSlots: per-issue and per-PR chat environments",
        epilog="exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()))
    p.add_argument("--kubeconfig", help="default: in-cluster credentials, else $KUBECONFIG")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str) -> argparse.ArgumentParser:
        short, long = COMMANDS[name]
        return sub.add_parser(name, help=short, description=long)

    for name in ("ensure-slot", "ensure-ready", "render"):
        cmd = add(name)
        _target(cmd)
        _ensure_options(cmd)
        if name == "ensure-ready":
            cmd.add_argument("--timeout", type=duration, default="20m",
                             help="how long to wait for Ready, e.g. 20m (default) or 300 "
                                  "(seconds)")
            cmd.add_argument("--soft-fail", action="store_true",
                             help="exit 0 when not Ready (or still queued) at the timeout")
    cmd = add("set")
    cmd.add_argument("--slot", type=SLOT, dest="slot_number", metavar="S", required=True,
                     help="the slot number whose DevSlot gets the PR")
    cmd.add_argument("--pr", type=PR, metavar="N", required=True, help="pull request number")
    _repository(cmd)
    for name in ("touch", "comment", "credentials"):
        cmd = add(name)
        _target(cmd, slot=True)
        if name == "comment":
            cmd.add_argument("--lang", choices=["en", "ru"], default="en")
    cmd = add("cleanup")
    _target(cmd)
    cmd = add("list")
    cmd.add_argument("--json", action="store_true", help="JSON instead of a table")
    _repository(cmd)
    return p


def validate(args: argparse.Namespace) -> None:
    """The checks argparse cannot make alone; raises CliError (exit 2)."""
    repository = getattr(args, "repository", None)
    if repository is not None and not REPOSITORY.match(repository):
        raise CliError(f"--repository must be owner/name, got {repository!r}", EXIT_USAGE)
    if args.command in ("ensure-slot", "ensure-ready", "render", "cleanup") and not repository:
        raise CliError("--repository (or $GITHUB_REPOSITORY) is required", EXIT_USAGE)
    if getattr(args, "agent_secret", None) and not args.agent_image:
        raise CliError("--agent-secret needs --agent-image", EXIT_USAGE)


def request(args: argparse.Namespace) -> Request:
    """The ensure-slot request the arguments describe."""
    return Request(repository=args.repository, issue=args.issue, pr=args.pr,
                   mode=args.mode or "dev", ttl=args.ttl, slot=args.slot,
                   chat_image=args.chat_image, agent_image=args.agent_image,
                   agent_secrets=tuple(args.agent_secret or ()), data=args.data)
