"""Nickname impersonation: look-alike nicknames are taken, combining marks are capped, and
the migration that brings this to existing users refuses clashes loudly."""

from __future__ import annotations

from chathelpers import Service, create_database, run_cli
from servers import PostgresServer

from chat_service.migrating import available

PW = "correct horse"


async def test_lookalikes_of_a_nickname_are_taken(service: Service) -> None:
    await service.register("alice")
    for lookalike in ("\u0430lice",  # a Cyrillic a, as the review registered
                      "\uff41\uff4c\uff49\uff43\uff45",  # full-width, likewise
                      "ALICE", "al\u0456ce", "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e"):
        reply = await service.call("POST", "/api/register",
                                   json_body={"nickname": lookalike, "password": PW})
        assert reply.status == 409, (lookalike, reply.body)
        assert reply.body == {"error": "nickname is already taken", "code": "nickname_taken",
                              "field": "nickname"}
    # Names that merely resemble each other in spelling are still free.
    assert (await service.call("POST", "/api/register",
                               json_body={"nickname": "alicia", "password": PW})).status == 201


async def test_full_width_registers_in_its_plain_form(service: Service) -> None:
    reply = await service.call("POST", "/api/register",
                               json_body={"nickname": "\uff42\uff4f\uff42", "password": PW})
    assert reply.status == 201
    assert reply.body["nickname"] == "bob"


async def test_login_finds_the_user_by_how_the_name_looks(service: Service) -> None:
    user = await service.register("Natasha")
    for typed in ("natasha", "NATASHA", "N\u0430t\u0430sh\u0430"):
        reply = await service.call("POST", "/api/login",
                                   json_body={"nickname": typed, "password": PW})
        assert reply.status == 200, typed
        assert reply.body["userId"] == user["id"]
        assert reply.body["nickname"] == "Natasha"


async def test_combining_marks_are_capped(service: Service) -> None:
    for name in ("a" + "\u0301" * 63, "zal\u0301\u0302\u0303\u0304\u0305go", "e\u0301\u0301",
                 "alice\ufe0f"):
        reply = await service.call("POST", "/api/register",
                                   json_body={"nickname": name, "password": PW})
        assert reply.status == 400, name
        assert reply.body["field"] == "nickname"
    for name in ("Tiếng Việt", "हिन्दी", "Zoë"):
        assert (await service.call("POST", "/api/register",
                                   json_body={"nickname": name, "password": PW})).status == 201


def _database_at_0001(pg: PostgresServer, label: str, nicknames: list[str]) -> dict[str, str]:
    env = create_database(pg, label)
    initial = available()[0]
    db = env["POSTGRES_DB"]
    pg.psql(db, initial.sql)
    record = ("INSERT INTO schema_migrations (version, name, checksum) "  # noqa: S608
              f"VALUES (1, 'initial', '{initial.checksum}')")
    pg.psql(db, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()); "
                + record)
    for nickname in nicknames:
        pg.psql(db, "INSERT INTO chat_user (nickname, password_hash) "  # noqa: S608
                    f"VALUES ('{nickname}', 'x')")
    return env


def test_migration_refuses_existing_lookalikes_and_changes_nothing(
        postgres_server: PostgresServer) -> None:
    env = _database_at_0001(postgres_server, "lookalikes",
                            ["alice", "bob", "\u0430lice", "b0b", "carol"])
    db = env["POSTGRES_DB"]
    result = run_cli(env, "migrate")
    assert result.returncode == 4, result.stderr
    assert "'alice' (id 1) / '\u0430lice' (id 3)" in result.stderr
    assert "'bob' (id 2) / 'b0b' (id 4)" in result.stderr
    assert "nothing was changed" in result.stderr
    assert postgres_server.psql(db, "SELECT array_agg(version) FROM schema_migrations"
                                ).stdout.strip() == "{1}"
    assert postgres_server.psql(db, "SELECT count(*) FROM information_schema.columns WHERE "
                                    "table_name = 'chat_user' AND column_name = 'nickname_key'"
                                ).stdout.strip() == "0"
    # The server refuses the half-migrated database rather than serve without the rule.
    assert run_cli({**env, "REDIS_HOST": "127.0.0.1"}, "serve").returncode == 4
    # Renamed as the message says, the migration goes through and keys every user.
    postgres_server.psql(db, "UPDATE chat_user SET nickname = 'alice2' WHERE id = 3; "
                             "UPDATE chat_user SET nickname = 'bobby' WHERE id = 4")
    result = run_cli(env, "migrate")
    assert result.returncode == 0, result.stderr
    assert "0002_nickname_key" in result.stdout
    keys = postgres_server.psql(db, "SELECT string_agg(nickname_key, ',' ORDER BY id) "
                                    "FROM chat_user").stdout.strip()
    assert keys == "alice,bob,alice2,bobby,carol"
