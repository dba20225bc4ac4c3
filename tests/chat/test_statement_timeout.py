"""Statements over PostgreSQL's statement_timeout, and migrate waiting for its lock."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import psycopg2
import pytest
from chathelpers import create_database, run_cli, running_service, start_cli
from servers import PostgresServer

from chat_service.config import Config
from chat_service.queries import MIGRATION_LOCK


@contextmanager
def holding(env: dict[str, str], sql: str) -> Iterator[Any]:
    """A connection of its own that ran `sql` (in an open transaction) until the block ends."""
    conn = psycopg2.connect(host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
                            dbname=env["POSTGRES_DB"], user=env["POSTGRES_USER"],
                            password=env["POSTGRES_PASSWORD"])
    try:
        conn.cursor().execute(sql)
        yield conn
    finally:
        conn.rollback()
        conn.close()


async def test_statement_over_the_timeout_is_a_json_503(
        config: Config, chat_env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    # The server cancels the statement; aiopg reports that as a CancelledError, which
    # used to drop the connection without an answer (a bare 502 through the ingress).
    async with running_service(replace(config, postgres_query_timeout=1.0)) as svc:
        token = (await svc.register("patient"))["token"]
        assert (await svc.post(token, "before the lock")).status == 201
        with caplog.at_level(logging.WARNING), \
                holding(chat_env, "LOCK TABLE chat_message IN ACCESS EXCLUSIVE MODE"):
            started = time.monotonic()
            # before_id is answered by PostgreSQL, not from memory.
            reply = await svc.call("GET", "/api/messages?before_id=1000")
            elapsed = time.monotonic() - started
        assert reply.status == 503, reply.body
        assert reply.body == {"error": "postgresql is unavailable, try again shortly",
                              "code": "unavailable"}
        assert reply.headers["Retry-After"] == "1"
        assert 0.9 < elapsed < 3
        # The connection the statement ran on was replaced; the service goes on.
        after = await svc.call("GET", "/api/messages?before_id=1000")
        assert after.status == 200
        assert [m["text"] for m in after.body] == ["before the lock"]
    assert any("statement_timeout" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def _migrate(env: dict[str, str]) -> subprocess.Popen[str]:
    return start_cli(env, "migrate")


def test_migrate_waits_for_the_lock_past_the_statement_timeout(
        postgres_server: PostgresServer) -> None:
    env = {**create_database(postgres_server, "lockwait"), "POSTGRES_QUERY_TIMEOUT_SECONDS": "1"}
    with holding(env, f"SELECT pg_advisory_lock({MIGRATION_LOCK})"):
        proc = _migrate(env)
        time.sleep(3)  # three statement timeouts
        assert proc.poll() is None, proc.communicate()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "0001_initial" in out
    assert "waiting up to 300 s for the migration lock, held by pid" in out


def test_migrate_gives_up_after_its_lock_timeout(postgres_server: PostgresServer) -> None:
    env = {**create_database(postgres_server, "locktimeout"),
           "MIGRATION_LOCK_TIMEOUT_SECONDS": "1.5"}
    with holding(env, f"SELECT pg_advisory_lock({MIGRATION_LOCK})"):
        started = time.monotonic()
        result = run_cli(env, "migrate")
        elapsed = time.monotonic() - started
    assert result.returncode == 5, result.stderr
    assert "held the migration lock for more than 1.5 s (pid " in result.stderr
    assert "nothing was changed" in result.stderr
    assert "Traceback" not in result.stderr
    assert 1.4 < elapsed < 15
    # Nothing was applied; the next run does the work.
    assert postgres_server.psql(env["POSTGRES_DB"],
                                "SELECT to_regclass('schema_migrations')").stdout.strip() == ""
    assert run_cli(env, "migrate").returncode == 0
