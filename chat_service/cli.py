"""The command line: `serve` (default), `migrate`, `restore-snapshot`, `admin ...`.

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

from chat_service import admin, migrating, seeding, serving
from chat_service.config import Config, ConfigError
from chat_service.database import open_database
from chat_service.errors import Unavailable
from chat_service.telemetry import configure_logging

log = logging.getLogger("chat_service")

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3
EXIT_SCHEMA = 4
EXIT_MIGRATION_LOCK = 5
EXIT_DATA = 6


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
    migrate = commands.add_parser("migrate", help="apply database migrations (idempotent)")
    migrate.add_argument(
        "--fixtures", metavar="NAME",
        help="then load this data set into the empty database, once (every user gets "
             "DATA_PASSWORD); shipped: " + ", ".join(seeding.fixture_names()))
    commands.add_parser(
        "restore-snapshot",
        help="migrate, then copy the users and visible messages of another environment "
             "(SNAPSHOT_HOST, ...) into this empty database, once, without password "
             "hashes (every user gets DATA_PASSWORD)")
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
        return report_errors(config, lambda: _migrate_and_load(config, args.fixtures))
    if args.command == "restore-snapshot":
        return report_errors(config, lambda: _restore_snapshot(config))
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
    except seeding.SeedError as e:
        print(f"chat_service: {e}", file=sys.stderr)
        return EXIT_DATA
    except ConfigError as e:
        print(f"chat_service: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
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


def _migrate_and_load(config: Config, fixtures: str | None) -> None:
    """`migrate [--fixtures NAME]`; with SNAPSHOT_READER_PASSWORD set, also the role
    other environments' snapshots read through."""
    fixture = seeding.read_fixture(fixtures) if fixtures else None
    password = seeding.data_password(os.environ) if fixture else ""
    reader = os.environ.get("SNAPSHOT_READER_PASSWORD", "")
    asyncio.run(_migrate(config))
    if not (fixture or reader):
        return
    conn = seeding.connect(config)
    try:
        if reader:
            seeding.ensure_snapshot_reader(conn, reader)
            print(f"snapshot reader role {seeding.SNAPSHOT_ROLE} is set up")
        if fixture:
            loaded = seeding.data_source(conn) or seeding.load_fixtures(
                conn, fixture, seeding.placeholder_hash(password, config))
            if (loaded.kind, loaded.name) != ("fixtures", fixture.name):
                raise seeding.SeedError(f"this database already holds {loaded.kind} "
                                        f"{loaded.name}; it keeps the data it started with")
            log.info("%s", loaded.summary())
            print(loaded.summary())
    finally:
        conn.close()


def _restore_snapshot(config: Config) -> None:
    """`restore-snapshot`: this version's schema, then the source's data, once."""
    source = seeding.SnapshotSource.from_env(os.environ)
    password = seeding.data_password(os.environ)
    asyncio.run(_migrate(config))
    target = seeding.connect(config)
    try:
        loaded = seeding.data_source(target)
        if loaded is None:
            src = seeding.connect_source(source, config.postgres_connect_timeout,
                                          config.postgres_startup_timeout)
            try:
                loaded = seeding.restore_snapshot(
                    src, target, source.name, seeding.placeholder_hash(password, config))
            finally:
                src.close()
        elif (loaded.kind, loaded.name) != ("snapshot", source.name):
            raise seeding.SeedError(f"this database already holds {loaded.kind} "
                                    f"{loaded.name}; it keeps the data it started with")
    finally:
        target.close()
    log.info("%s", loaded.summary())
    print(loaded.summary())
