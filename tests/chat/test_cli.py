"""The command line as a user runs it: config errors, --help, admin actions, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable

import aiohttp
import pytest
from chathelpers import ServerProcess, run_cli


@pytest.mark.parametrize(("name", "value", "message"), [
    ("HTTP_PORT", "abc", "HTTP_PORT must be an integer 1-65535, got 'abc'"),
    ("HTTP_PORT", "70000", "HTTP_PORT must be an integer 1-65535, got '70000'"),
    ("POSTGRES_PORT", "-5", "POSTGRES_PORT must be an integer 1-65535, got '-5'"),
    ("REDIS_DB", "16", "REDIS_DB must be an integer 0-15, got '16'"),
    ("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "jaeger:4318", "OTEL_EXPORTER_OTLP_ENDPOINT must be an"),
    ("TRUST_X_FORWARDED_FOR", "maybe", "TRUST_X_FORWARDED_FOR must be true or false"),
    ("POSTGRES_QUERY_TIMEOUT_SECONDS", "nan", "POSTGRES_QUERY_TIMEOUT_SECONDS must be a number"),
])
def test_config_errors_name_the_variable(name: str, value: str, message: str) -> None:
    # Every command reads the config first; trying them all once is enough.
    commands = ((), ("serve",), ("migrate",), ("admin", "stats")) if name == "HTTP_PORT" \
        else (("serve",),)
    for command in commands:
        result = run_cli({name: value}, *command)
        assert result.returncode == 2, (command, result.stderr)
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_help() -> None:
    result = run_cli({}, "--help")
    assert result.returncode == 0
    for word in ("serve", "migrate", "admin"):
        assert word in result.stdout
    admin = run_cli({}, "admin", "--help")
    assert admin.returncode == 0
    for action in ("list-users", "delete-user", "delete-message", "set-password", "stats"):
        assert action in admin.stdout
    assert run_cli({}, "bogus").returncode == 2


async def test_admin_end_to_end(chat_env: dict[str, str],
                                server_process: Callable[..., ServerProcess]) -> None:
    server = server_process()
    async with aiohttp.ClientSession() as http:
        async def call(method: str, path: str, body: object = None,
                       token: str | None = None) -> tuple[int, object]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.request(method, server.url + path, json=body, headers=headers) as r:
                return r.status, (await r.json() if r.content_type == "application/json"
                                  else None)

        _, ann = await call("POST", "/api/register", {"nickname": "Ann", "password": "ann-pass-1"})
        _, ben = await call("POST", "/api/register", {"nickname": "Ben", "password": "ben-pass-1"})
        assert isinstance(ann, dict)
        assert isinstance(ben, dict)
        ids = []
        for who, n in ((ann, 2), (ben, 3)):
            for i in range(n):
                status, msg = await call("POST", "/api/messages", {"text": f"m{i}"}, who["token"])
                assert status == 201
                assert isinstance(msg, dict)
                ids.append(msg["id"])

        listed = await asyncio.to_thread(run_cli, chat_env, "admin", "list-users", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [(u["nickname"], u["messages"]) for u in json.loads(listed.stdout)] == \
            [("Ann", 2), ("Ben", 3)]
        table = await asyncio.to_thread(run_cli, chat_env, "admin", "list-users")
        assert "Ann" in table.stdout
        assert "NICKNAME" in table.stdout

        stats = await asyncio.to_thread(run_cli, chat_env, "admin", "stats", "--json")
        assert json.loads(stats.stdout)["messages"] == 5
        assert json.loads(stats.stdout)["users"] == 2

        deleted = await asyncio.to_thread(run_cli, chat_env, "admin", "delete-message",
                                          str(ids[0]))
        assert deleted.returncode == 0, deleted.stderr
        status, page = await call("GET", "/api/messages")
        assert isinstance(page, list)
        assert ids[0] not in [m["id"] for m in page]
        missing = await asyncio.to_thread(run_cli, chat_env, "admin", "delete-message", "999999")
        assert missing.returncode == 1
        assert "no message with id 999999" in missing.stderr

        # set-password: from stdin, never argv; old sessions end, the new password works.
        changed = await asyncio.to_thread(run_cli, chat_env, "admin", "set-password", "ann",
                                          stdin="brand-new-pass\n")
        assert changed.returncode == 0, changed.stderr
        assert "brand-new-pass" not in changed.stdout + changed.stderr
        assert (await call("POST", "/api/messages", {"text": "x"}, ann["token"]))[0] == 401
        assert (await call("POST", "/api/login",
                           {"nickname": "Ann", "password": "ann-pass-1"}))[0] == 401
        assert (await call("POST", "/api/login",
                           {"nickname": "Ann", "password": "brand-new-pass"}))[0] == 200
        short = await asyncio.to_thread(run_cli, chat_env, "admin", "set-password", "ann",
                                        stdin="short\n")
        assert short.returncode == 2
        assert "password must be 8-256" in short.stderr
        nobody = await asyncio.to_thread(run_cli, chat_env, "admin", "set-password", "nobody",
                                         stdin="whatever-123\n")
        assert nobody.returncode == 1
        assert "no user named 'nobody'" in nobody.stderr

        gone = await asyncio.to_thread(run_cli, chat_env, "admin", "delete-user", "BEN")
        assert gone.returncode == 0, gone.stderr
        assert "3 messages" in gone.stdout
        status, page = await call("GET", "/api/messages")
        assert isinstance(page, list)
        assert all(m["nickname"] != "Ben" for m in page)
        assert (await call("POST", "/api/messages", {"text": "x"}, ben["token"]))[0] == 401
        again = await asyncio.to_thread(run_cli, chat_env, "admin", "delete-user", "Ben")
        assert again.returncode == 1
        assert "no user named 'Ben'" in again.stderr


async def test_sigterm_finishes_requests_and_closes_streams(
        server_process: Callable[..., ServerProcess]) -> None:
    # A costly hash keeps the login below in flight when the signal arrives.
    server = server_process(SSE_HEARTBEAT_SECONDS="30", ARGON2_TIME_COST="40")
    async with aiohttp.ClientSession() as http:
        stream = await http.get(server.url + "/api/events")
        assert stream.status == 200
        # An in-flight login (argon2 takes a moment) must still be answered.
        login = asyncio.create_task(http.post(server.url + "/api/login",
                                              json={"nickname": "x", "password": "y"}))
        await asyncio.sleep(0.05)
        assert not login.done()
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        reply = await login
        assert reply.status == 401
        body = await asyncio.wait_for(stream.content.read(), 10)
        assert body.startswith(b"retry:")  # the stream ended cleanly
        code = await asyncio.to_thread(server.proc.wait, 15)
        assert code == 0
        assert time.monotonic() - started < 8
    assert '"message": "stopped"' in server.output()
