"""When a person last used the environment: every replica answers the same on its
internal port, probes do not count, and the answer survives the replicas' restarts."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from chathelpers import running_service, wait_for, with_port
from servers import PostgresServer

from chat_service.activity import ACTIVITY
from chat_service.config import Config


@pytest.fixture(autouse=True)
def no_activity_yet(postgres_server: PostgresServer, chat_env: dict[str, str]) -> None:
    postgres_server.psql(chat_env["POSTGRES_DB"],
                         "UPDATE chat_activity SET last_request_at = NULL")


async def _activity(config: Config) -> dict[str, object]:
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{config.activity_port}/activity") as r:
        assert r.status == 200, await r.text()
        return dict(await r.json())


def _time(value: object) -> datetime:
    assert isinstance(value, str), value
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


async def test_probes_and_scrapes_are_not_activity(config: Config) -> None:
    async with running_service(config) as svc:
        for path in ("/health/livez", "/health/readyz"):
            assert (await svc.call("GET", path)).status == 200
        await svc.call("GET", "/metrics")  # a scrape sent to the API's port by mistake
        body = await _activity(config)
        assert body == {"lastRequestAt": None, "recordEverySeconds": 30.0}


async def test_a_request_is_activity_at_once_on_its_own_replica(config: Config) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    async with running_service(config) as svc:
        assert (await svc.call("GET", "/api/messages")).status == 200
        last = _time((await _activity(config))["lastRequestAt"])
    assert before <= last <= datetime.now(UTC)


async def test_the_api_port_does_not_serve_it(config: Config) -> None:
    async with running_service(config) as svc:
        assert (await svc.call("GET", "/activity")).status == 404
        assert (await svc.call("GET", "/api/activity")).status == 404


async def test_every_replica_answers_and_a_restart_forgets_nothing(config: Config) -> None:
    fast = replace(config, activity_record_seconds=1.0)
    other = with_port(fast)
    async with running_service(other):
        async with running_service(fast) as first:
            # A failed request is a person using it too.
            assert (await first.call("POST", "/api/login", json_body={
                "nickname": "nobody", "password": "wrong password"})).status == 401
            seen = _time((await _activity(fast))["lastRequestAt"])

            async def other_knows() -> bool:
                value = (await _activity(other))["lastRequestAt"]
                return value is not None and _time(value) == seen

            await wait_for(other_knows, seconds=5)
        # A replica started after the one that saw the request went away knows it too.
        restarted = with_port(fast)
        async with running_service(restarted):
            assert _time((await _activity(restarted))["lastRequestAt"]) == seen


async def test_the_time_never_moves_back(config: Config, postgres_server: PostgresServer,
                                         chat_env: dict[str, str]) -> None:
    async with running_service(config) as svc:
        assert (await svc.call("GET", "/api/messages")).status == 200
        recorder = svc.app[ACTIVITY]
        assert await recorder.write()
        newest = _time((await _activity(config))["lastRequestAt"])
        recorder.note(time.time() - 3600)  # a replica whose clock or news is older
        assert await recorder.write()
        recorder.last = None
        assert _time((await _activity(config))["lastRequestAt"]) == newest
    stored = postgres_server.psql(chat_env["POSTGRES_DB"],
                                  "SELECT last_request_at > now() - interval '1 minute' "
                                  "FROM chat_activity").stdout.strip()
    assert stored == "t"
    assert newest > datetime.now(UTC) - timedelta(minutes=1)
