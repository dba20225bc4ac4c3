"""The data an environment starts with: fixtures loaded by `migrate --fixtures`, and a
snapshot of another environment restored without its password hashes, each loaded
once, whole or not at all."""

from __future__ import annotations

import time

import psycopg2
import pytest
from chathelpers import (
    FAST_HASHING,
    create_database,
    relaying,
    run_cli,
    running_service,
    start_cli,
)
from servers import PostgresServer, free_port

from chat_service.config import Config
from chat_service.seeding import fixture_names, read_fixture, unreachable

PASSWORD = "placeholder-1234"
READER = "reader-secret-5678"


def _count(pg: PostgresServer, db: str, sql: str) -> str:
    return pg.psql(db, sql).stdout.strip()


@pytest.fixture
def empty_db(postgres_server: PostgresServer) -> dict[str, str]:
    return {**create_database(postgres_server, "seed"), **FAST_HASHING}


def test_every_shipped_data_set_passes_the_apis_rules() -> None:
    assert "demo" in fixture_names()
    for name in fixture_names():
        fixture = read_fixture(name)
        assert fixture.nicknames
        assert fixture.messages
        ages = [m.minutes_ago for m in fixture.messages]
        assert ages == sorted(ages, reverse=True)  # oldest first


def test_fixtures_load_once_and_log_in_with_the_placeholder_password(
        empty_db: dict[str, str], postgres_server: PostgresServer) -> None:
    env = {**empty_db, "DATA_PASSWORD": PASSWORD}
    db = env["POSTGRES_DB"]
    first = run_cli(env, "migrate", "--fixtures", "demo")
    assert first.returncode == 0, first.stderr
    demo = read_fixture("demo")
    assert f"loaded fixtures demo: {len(demo.nicknames)} users, {len(demo.messages)} messages" \
        in first.stdout
    again = run_cli(env, "migrate", "--fixtures", "demo")
    assert again.returncode == 0, again.stderr
    assert "already loaded: fixtures demo" in again.stdout
    assert _count(postgres_server, db, "SELECT count(*) FROM chat_user") == str(
        len(demo.nicknames))
    assert _count(postgres_server, db, "SELECT count(*) FROM chat_message") == str(
        len(demo.messages))
    # Every author's stored bytes are counted, as posting counts them.
    assert _count(postgres_server, db, "SELECT count(*) FROM chat_user u WHERE stored_bytes <> "
                  "(SELECT coalesce(sum(octet_length(text)), 0) FROM chat_message "
                  "WHERE user_id = u.id)") == "0"
    assert _count(postgres_server, db, "SELECT count(DISTINCT password_hash) FROM chat_user "
                  "WHERE password_hash LIKE '$argon2id$%'") == "1"


async def test_loaded_users_log_in_and_their_messages_list_in_order(
        empty_db: dict[str, str], redis_server: object, chat_env: dict[str, str]) -> None:
    env = {**empty_db, "DATA_PASSWORD": PASSWORD}
    assert run_cli(env, "migrate", "--fixtures", "demo").returncode == 0
    config = Config.from_env({**chat_env, "POSTGRES_DB": env["POSTGRES_DB"]})
    demo = read_fixture("demo")
    async with running_service(config) as svc:
        login = await svc.call("POST", "/api/login",
                               json_body={"nickname": demo.nicknames[0], "password": PASSWORD})
        assert login.status == 200, login.body
        wrong = await svc.call("POST", "/api/login",
                               json_body={"nickname": demo.nicknames[1], "password": "nope" * 3})
        assert wrong.status == 401
        listed = await svc.call("GET", "/api/messages?limit=200")
        assert [m["text"] for m in listed.body] == [m.text for m in demo.messages]
        times = [m["createdAt"] for m in listed.body]
        assert times == sorted(times)
        posted = await svc.post(login.body["token"], "a new message after the fixtures")
        assert posted.status == 201
        assert posted.body["id"] > max(m["id"] for m in listed.body)


def test_concurrent_loaders_load_once(empty_db: dict[str, str],
                                      postgres_server: PostgresServer) -> None:
    env = {**empty_db, "DATA_PASSWORD": PASSWORD}
    procs = [start_cli(env, "migrate", "--fixtures", "demo") for _ in range(3)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert sum("loaded fixtures demo" in out and "already" not in out
               for out, _ in outputs) == 1, outputs
    assert _count(postgres_server, empty_db["POSTGRES_DB"], "SELECT count(*) FROM chat_user") \
        == str(len(read_fixture("demo").nicknames))


def test_refusals_change_nothing(empty_db: dict[str, str],
                                 postgres_server: PostgresServer) -> None:
    db = empty_db["POSTGRES_DB"]
    no_password = run_cli(empty_db, "migrate", "--fixtures", "demo")
    assert no_password.returncode == 2
    assert "DATA_PASSWORD" in no_password.stderr
    unknown = run_cli({**empty_db, "DATA_PASSWORD": PASSWORD}, "migrate", "--fixtures", "nope")
    assert unknown.returncode == 6
    assert "no fixtures data set named 'nope'" in unknown.stderr
    assert run_cli(empty_db, "migrate").returncode == 0
    postgres_server.psql(db, "INSERT INTO chat_user (nickname, nickname_key, password_hash) "
                             "VALUES ('early', 'early', 'x')")
    busy = run_cli({**empty_db, "DATA_PASSWORD": PASSWORD}, "migrate", "--fixtures", "demo")
    assert busy.returncode == 6
    assert "the database is not empty (1 users, 0 messages)" in busy.stderr
    assert _count(postgres_server, db, "SELECT count(*) FROM chat_user") == "1"
    assert _count(postgres_server, db, "SELECT count(*) FROM chat_data_source") == "0"


# --- snapshots ------------------------------------------------------------------------

@pytest.fixture
async def source(postgres_server: PostgresServer, chat_env: dict[str, str]
                 ) -> dict[str, str]:
    """An environment's database with the reader role, users, messages and a deletion."""
    env = {**create_database(postgres_server, "source"), "SNAPSHOT_READER_PASSWORD": READER}
    made = run_cli(env, "migrate")
    assert made.returncode == 0, made.stderr
    assert "snapshot reader role chat_snapshot is set up" in made.stdout
    config = Config.from_env({**chat_env, "POSTGRES_DB": env["POSTGRES_DB"]})
    async with running_service(config) as svc:
        for nick in ("ann", "Ben", "Zoë"):
            user = await svc.register(nick, "their own password")
            for i in range(3):
                assert (await svc.post(user["token"], f"{nick} says {i}")).status == 201
        gone = await svc.post(user["token"], "deleted before the snapshot")
        assert (await svc.call("DELETE", f"/api/messages/{gone.body['id']}",
                               token=user["token"])).status == 204
    return env


def _snapshot_env(target: dict[str, str], source: dict[str, str], **extra: str
                  ) -> dict[str, str]:
    return {**target, "DATA_PASSWORD": PASSWORD, "SNAPSHOT_HOST": source["POSTGRES_HOST"],
            "SNAPSHOT_PORT": source["POSTGRES_PORT"], "SNAPSHOT_DB": source["POSTGRES_DB"],
            "SNAPSHOT_PASSWORD": READER, "SNAPSHOT_NAME": "ai-staging", **extra}


async def test_a_snapshot_copies_users_and_messages_but_no_password_hash(
        source: dict[str, str], empty_db: dict[str, str], postgres_server: PostgresServer,
        chat_env: dict[str, str]) -> None:
    env = _snapshot_env(empty_db, source)
    done = run_cli(env, "restore-snapshot")
    assert done.returncode == 0, done.stderr
    assert "loaded snapshot ai-staging: 3 users, 9 messages" in done.stdout
    again = run_cli(env, "restore-snapshot")
    assert again.returncode == 0
    assert "already loaded: snapshot ai-staging" in again.stdout

    src, dst = source["POSTGRES_DB"], empty_db["POSTGRES_DB"]
    same = "SELECT string_agg(id || ':' || nickname, ',' ORDER BY id) FROM chat_user"
    assert _count(postgres_server, dst, same) == _count(postgres_server, src, same)
    texts = "SELECT string_agg(id || ':' || text, ',' ORDER BY id) FROM chat_message " \
            "WHERE deleted_at IS NULL"
    assert _count(postgres_server, dst, texts) == _count(postgres_server, src, texts)
    assert "deleted before" not in _count(postgres_server, dst,
                                          "SELECT string_agg(text, ',') FROM chat_message")
    assert _count(postgres_server, dst,
                  "SELECT count(DISTINCT password_hash) FROM chat_user") == "1"
    placeholder = _count(postgres_server, dst, "SELECT min(password_hash) FROM chat_user")
    assert placeholder not in _count(postgres_server, src,
                                     "SELECT string_agg(password_hash, ' ') FROM chat_user")

    config = Config.from_env({**chat_env, "POSTGRES_DB": dst})
    async with running_service(config) as svc:
        old = await svc.call("POST", "/api/login",
                             json_body={"nickname": "ann", "password": "their own password"})
        assert old.status == 401
        new = await svc.call("POST", "/api/login",
                             json_body={"nickname": "zoë", "password": PASSWORD})
        assert new.status == 200, new.body
        posted = await svc.post(new.body["token"], "after the restore")
        assert posted.status == 201  # the id sequence continues after the copied ids


def test_the_reader_role_reads_no_hash_and_writes_nothing(
        source: dict[str, str]) -> None:
    conn = psycopg2.connect(host=source["POSTGRES_HOST"], port=source["POSTGRES_PORT"],
                            dbname=source["POSTGRES_DB"], user="chat_snapshot",
                            password=READER)
    try:
        for sql in ("SELECT password_hash FROM chat_user", "SELECT * FROM chat_user",
                    "SELECT * FROM chat_state"):
            with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(sql)
            conn.rollback()
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            cur.execute("UPDATE chat_message SET text = 'x'")
        conn.rollback()
    finally:
        conn.close()


def test_a_failed_restore_leaves_the_database_empty(
        source: dict[str, str], empty_db: dict[str, str],
        postgres_server: PostgresServer) -> None:
    # Users copy, then reading the messages is refused: nothing of it may stay.
    postgres_server.psql(source["POSTGRES_DB"], "REVOKE SELECT ON chat_message FROM chat_snapshot")
    failed = run_cli(_snapshot_env(empty_db, source), "restore-snapshot")
    assert failed.returncode == 6
    assert "the snapshot role may not read this: permission denied" in failed.stderr
    dst = empty_db["POSTGRES_DB"]
    assert _count(postgres_server, dst, "SELECT count(*) FROM chat_user") == "0"
    assert _count(postgres_server, dst, "SELECT count(*) FROM chat_data_source") == "0"

    wrong = run_cli(_snapshot_env(empty_db, source, SNAPSHOT_PASSWORD="not-the-password"),
                    "restore-snapshot")
    assert wrong.returncode == 6
    assert "cannot connect to PostgreSQL" in wrong.stderr
    assert "password authentication failed" in wrong.stderr
    assert "retrying" not in wrong.stdout  # the server said no: asking again changes nothing
    assert "not-the-password" not in wrong.stderr + wrong.stdout


def test_a_source_reached_late_is_waited_for(
        source: dict[str, str], empty_db: dict[str, str]) -> None:
    # A new pod's address is admitted by the network policy a moment after it starts:
    # until then the source refuses it. Here nothing listens on the port for 3 s.
    port = free_port()
    env = _snapshot_env(empty_db, source, SNAPSHOT_HOST="127.0.0.1", SNAPSHOT_PORT=str(port),
                        POSTGRES_STARTUP_TIMEOUT_SECONDS="30")
    restoring = start_cli(env, "restore-snapshot")
    time.sleep(3)
    with relaying(port, int(source["POSTGRES_PORT"])):
        out, err = restoring.communicate(timeout=60)
    assert restoring.returncode == 0, err
    assert "Connection refused; Is the server running" in out  # logged (JSON lines on stdout)
    assert "retrying" in out
    assert "loaded snapshot ai-staging: 3 users, 9 messages" in out


def test_an_unreachable_source_fails_once_its_patience_is_spent(
        source: dict[str, str], empty_db: dict[str, str]) -> None:
    port = free_port()
    started = time.monotonic()
    failed = run_cli(_snapshot_env(empty_db, source, SNAPSHOT_HOST="127.0.0.1",
                                   SNAPSHOT_PORT=str(port),
                                   POSTGRES_STARTUP_TIMEOUT_SECONDS="3"), "restore-snapshot")
    assert failed.returncode == 6
    assert time.monotonic() - started < 30
    assert failed.stdout.count("retrying") >= 2  # asked again until its 3 s were spent
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}" in failed.stderr
    assert "Connection refused" in failed.stderr.splitlines()[-1]


@pytest.mark.parametrize(("message", "retried"), [
    ('connection to server at "pg" (10.96.0.9), port 5432 failed: Connection refused', True),
    ("connection to server at \"pg\" (10.96.0.9), port 5432 failed: timeout expired", True),
    ('could not translate host name "pg" to address: Name or service not known', True),
    ("FATAL:  the database system is starting up", True),
    ('FATAL:  password authentication failed for user "chat_snapshot"', False),
    ('FATAL:  database "chat" does not exist', False),
])
def test_only_an_unreached_server_is_asked_again(message: str, retried: bool) -> None:
    assert unreachable(message) is retried
