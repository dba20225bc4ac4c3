"""Migrations: idempotent, safe in parallel, and the server refuses an unmigrated schema."""

from __future__ import annotations

import time

from chathelpers import create_database, relaying, run_cli, start_cli
from servers import PostgresServer, free_port

from chat_service.migrating import available


def _versions(pg: PostgresServer, db: str) -> list[str]:
    out = pg.psql(db, "SELECT version FROM schema_migrations ORDER BY version").stdout
    return out.split()


def test_migrate_twice_is_idempotent(postgres_server: PostgresServer) -> None:
    env = create_database(postgres_server, "twice")
    first = run_cli(env, "migrate")
    assert first.returncode == 0, first.stderr
    assert "0001_initial" in first.stdout
    second = run_cli(env, "migrate")
    assert second.returncode == 0, second.stderr
    assert "none (up to date)" in second.stdout
    expected = [str(m.version) for m in available()]
    assert _versions(postgres_server, env["POSTGRES_DB"]) == expected
    tables = postgres_server.psql(env["POSTGRES_DB"],
                                  "SELECT string_agg(tablename, ',' ORDER BY tablename) "
                                  "FROM pg_tables WHERE schemaname = 'public'").stdout.strip()
    assert tables == ("chat_activity,chat_data_source,chat_message,chat_state,chat_user,"
                      "schema_migrations")


def test_concurrent_migrators(postgres_server: PostgresServer) -> None:
    env = create_database(postgres_server, "parallel")
    procs = [start_cli(env, "migrate") for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    applied = [out for out, _ in outputs if "0001_initial" in out]
    assert len(applied) == 1, outputs  # exactly one did the work, the others found it done
    assert _versions(postgres_server, env["POSTGRES_DB"]) == [str(m.version) for m in available()]


def test_serve_refuses_unmigrated_database(postgres_server: PostgresServer) -> None:
    env = {**create_database(postgres_server, "bare"), "REDIS_HOST": "127.0.0.1",
           "HTTP_PORT": "1"}
    result = run_cli(env, "serve")
    assert result.returncode == 4
    assert "not migrated" in result.stderr
    assert "migrate" in result.stderr


def test_serve_refuses_partially_migrated_database(postgres_server: PostgresServer) -> None:
    env = {**create_database(postgres_server, "partial"), "REDIS_HOST": "127.0.0.1"}
    db = env["POSTGRES_DB"]
    postgres_server.psql(db, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, "
                             "name text NOT NULL, checksum text NOT NULL, "
                             "applied_at timestamptz NOT NULL DEFAULT now())")
    result = run_cli(env, "serve")
    assert result.returncode == 4
    assert "missing migrations 0001_initial" in result.stderr


def test_serve_refuses_changed_or_unknown_migrations(postgres_server: PostgresServer) -> None:
    env = {**create_database(postgres_server, "changed"), "REDIS_HOST": "127.0.0.1"}
    db = env["POSTGRES_DB"]
    assert run_cli(env, "migrate").returncode == 0
    postgres_server.psql(db, "UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    result = run_cli(env, "serve")
    assert result.returncode == 4
    assert "was changed after it was applied" in result.stderr
    assert run_cli(env, "migrate").returncode == 4
    postgres_server.psql(db, "UPDATE schema_migrations SET checksum = "  # noqa: S608
                             f"'{available()[0].checksum}' WHERE version = 1; "
                             "INSERT INTO schema_migrations VALUES (9999, 'future', 'y')")
    result = run_cli(env, "serve")
    assert result.returncode == 4
    assert "newer release" in result.stderr


def test_unreachable_database_exits_quickly(postgres_server: PostgresServer) -> None:
    env = {**postgres_server.env, "POSTGRES_PORT": "1", "POSTGRES_STARTUP_TIMEOUT_SECONDS": "1"}
    result = run_cli(env, "serve", timeout=30)
    assert result.returncode == 3
    assert "postgresql is unavailable" in result.stderr
    assert run_cli(env, "migrate", timeout=30).returncode == 3


def test_migrate_waits_for_a_database_that_is_still_starting(
        postgres_server: PostgresServer) -> None:
    """An init container starts beside PostgreSQL: migrate waits until it answers."""
    env = create_database(postgres_server, "late")
    port = free_port()
    proc = start_cli({**env, "POSTGRES_PORT": str(port),
                      "POSTGRES_STARTUP_TIMEOUT_SECONDS": "60"}, "migrate")
    time.sleep(2)
    assert proc.poll() is None, proc.communicate()
    # The database "starts": a relay on the port it was told, to the real server.
    with relaying(port, int(postgres_server.env["POSTGRES_PORT"])):
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "0001_initial" in out
