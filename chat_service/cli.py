"""The command line: `serve` (default), `migrate`, `admin ...`.

Reads the configuration from the environment; exits non-zero with a message on
stderr for a bad variable, an unreachable or unmigrated database, or an admin
command that finds nothing to act on.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable

from chat_service import admin, migrating, serving
from chat_service.config import Config, ConfigError
from chat_service.database import open_database
from chat_service.errors import Unavailable
from chat_service.telemetry import configure_logging

log = logging.getLogger("chat_service")

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3
EXIT_SCHEMA = 4
EXIT_MIGRATION_LOCK = 5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chat_service",
        description="The chatenv chat service. Configuration comes from environment "
                    "variables (see docs/chat-service.md).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the HTTP server (the default)")
    serve.add_argument(
        "--workers", type=_workers, metavar="N",
        help="server processes sharing the port (default: HTTP_WORKERS, else the CPUs "
             "this process may use)")
    commands.add_parser("migrate", help="apply database migrations (idempotent)")
    admin.add_parser(commands)
    return parser


def main(argv: list[str]) -> int:
    """Run the command in `argv`; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        config = Config.from_env(os.environ)
    except ConfigError as e:
        print(f"chat_service: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(config.log_level)
    if args.command in (None, "serve"):
        workers = getattr(args, "workers", None) or config.http_workers or \
            serving.workers_default()
        return serving.serve(config, workers, report_errors)
    if args.command == "migrate":
        return report_errors(config, lambda: asyncio.run(_migrate(config)))
    return report_errors(config, lambda: asyncio.run(admin.run(config, args)))


def report_errors(config: Config, run: Callable[[], int | None]) -> int:
    """Call `run`; turn a schema or availability problem into a message and exit code."""
    try:
        return run() or 0
    except migrating.SchemaNotReady as e:
        print(f"chat_service: {e}", file=sys.stderr)
        return EXIT_SCHEMA
    except migrating.MigrationLockTimeout as e:
        print(f"chat_service: {e}", file=sys.stderr)
        return EXIT_MIGRATION_LOCK
    except Unavailable as e:
        print(f"chat_service: {e.message} ({e.dependency} at "
              f"{config.postgres_host if e.dependency == 'postgresql' else config.redis_host})",
              file=sys.stderr)
        return EXIT_UNAVAILABLE


def _workers(raw: str) -> int:
    value = int(raw) if raw.isdigit() else 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError("must be an integer 1-64")
    return value


async def _migrate(config: Config) -> None:
    async with open_database(config) as db:
        report = await migrating.migrate(db, lock_timeout=config.migration_lock_timeout)
    if report.adopted is not None:
        users, messages = report.adopted
        note = (f"adopted the original backend's database in place ({users} users, "
                f"{messages} messages kept) as 0001_initial")
        log.info("%s", note)
        print(note)
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in report.applied) or "none (up to date)"
    log.info("migrations applied: %s", names)
    print(f"migrations applied: {names}")
