"""``python -m chatenv_operator``: run the operator, or render an environment offline.

    python -m chatenv_operator run                     # the operator (kopf)
    python -m chatenv_operator render -f env.yaml      # manifests, like `helm template`
    python -m chatenv_operator check-config            # validate services.yaml and exit
    python -m chatenv_operator hold-secrets            # once, after upgrading (administrator)
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from . import logs
from .builders.render import render
from .config import ConfigError, ProjectConfig, load_config
from .constants import CHATENV_KIND
from .environment import InvalidSpec, resolve
from .settings import Settings, SettingsError, load_settings


def _load(args: argparse.Namespace) -> tuple[Settings, ProjectConfig]:
    settings = load_settings()
    path = Path(args.config) if args.config else settings.config_path
    return settings, load_config(path)


def run(args: argparse.Namespace) -> int:
    import kopf

    from . import handlers  # noqa: F401 - registers the handlers with kopf
    from .kube import Kube
    from .runtime import Runtime

    settings, config = _load(args)
    kopf.configure(verbose=settings.log_level == "DEBUG", quiet=settings.log_level == "ERROR")
    logs.configure(settings.log_format, settings.log_level)
    # Per-event "Handler ... succeeded" lines and probe access logs would drown the rest.
    logging.getLogger("kopf.objects").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    runtime = Runtime(settings=settings, config=config, kube=Kube.from_environment())
    kopf.run(clusterwide=True, standalone=True, memo=runtime,
             liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz")
    return 0


def render_command(args: argparse.Namespace) -> int:
    _, config = _load(args)
    text = sys.stdin.read() if args.filename == "-" else Path(args.filename).read_text()
    out: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(text):
        if not doc or doc.get("kind") != CHATENV_KIND:
            continue
        doc.setdefault("metadata", {}).setdefault("uid", "00000000-0000-0000-0000-000000000000")
        out += render(resolve(doc, config))
    if not out:
        raise InvalidSpec(f"no {CHATENV_KIND} found in {args.filename}")
    sys.stdout.write(yaml.safe_dump_all(out, sort_keys=False))
    return 0


def check_config(args: argparse.Namespace) -> int:
    _, config = _load(args)
    print(f"services.yaml is valid: project {config.project}, "
          f"{len(config.stages)} stages, maxSlots {config.slots.max_slots}")
    return 0


def hold_secrets(args: argparse.Namespace) -> int:
    from .holding import hold_existing
    from .kube import Kube

    settings, config = _load(args)
    home = args.namespace or settings.namespace or "chatenv-system"
    for what in hold_existing(Kube.from_environment(), config, home):
        print(f"held a copy of {what} in {home}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatenv_operator",
                                     description="chatenv's Kubernetes operator")
    parser.add_argument("--config", help="services.yaml (default: $CHATENV_CONFIG)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the operator")
    r = sub.add_parser("render", help="print the manifests of a ChatEnvironment, offline")
    r.add_argument("-f", "--filename", required=True, help="a ChatEnvironment YAML file, or -")
    sub.add_parser("check-config", help="validate services.yaml and exit")
    h = sub.add_parser("hold-secrets", help="once, as an administrator: copy the generated "
                       "Secrets of environments made before the operator held copies")
    h.add_argument("--namespace", help="the operator's namespace (default: $CHATENV_NAMESPACE "
                   "or chatenv-system)")
    args = parser.parse_args(argv)
    command = {"run": run, "render": render_command, "check-config": check_config,
               "hold-secrets": hold_secrets}.get(args.command or "run", run)
    try:
        return command(args)
    except (ConfigError, SettingsError, InvalidSpec) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (OSError, yaml.YAMLError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
