"""The newest messages answered from memory: no query, no hole, bounded staleness."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from chathelpers import running_service, wait_for, with_port
from servers import PostgresServer

from chat_service.config import Config
from chat_service.state import HUB


async def test_latest_page_and_poll_need_no_query(config: Config,
                                                  postgres_server: PostgresServer) -> None:
    patient = replace(config, message_cache_seconds=60)
    async with running_service(patient) as svc:
        token = (await svc.register("memo"))["token"]
        ids = [(await svc.post(token, f"m{i}")).body["id"] for i in range(3)]
        await wait_for(svc.app[HUB].subscribed.is_set)
        page = await svc.call("GET", "/api/messages")
        assert [m["id"] for m in page.body] == ids
        await asyncio.to_thread(postgres_server.stop)
        try:
            # PostgreSQL is gone; the newest page and the empty poll still answer.
            again = await svc.call("GET", "/api/messages")
            assert again.status == 200
            assert again.body == page.body
            assert again.headers["ETag"] == page.headers["ETag"]
            poll = await svc.call("GET", f"/api/messages?after_id={ids[-1]}")
            assert (poll.status, poll.body) == (200, [])
            tail = await svc.call("GET", f"/api/messages?after_id={ids[0]}")
            assert [m["id"] for m in tail.body] == ids[1:]
            # An older page is not in memory: it needs the database.
            older = await svc.call("GET", f"/api/messages?before_id={ids[0]}")
            assert older.status == 503
        finally:
            await asyncio.to_thread(postgres_server.start)


async def test_a_replica_never_shows_a_hole(config: Config,
                                            postgres_server: PostgresServer) -> None:
    async with running_service(config) as a, running_service(with_port(config)) as b:
        token = (await b.register("holes"))["token"]
        first = (await b.post(token, "first")).body["id"]
        await wait_for(lambda: a.app[HUB].subscribed.is_set() and b.app[HUB].subscribed.is_set())
        assert [m["id"] for m in (await a.call("GET", "/api/messages")).body] == [first]
        # A message nobody announces (written behind the service's back) ...
        quiet = int(postgres_server.psql(
            config.postgres_db, "INSERT INTO chat_message (user_id, text) "  # noqa: S608
                                f"VALUES ({(await b.register('q'))['userId']}, 'quiet') "
                                "RETURNING id").stdout.split()[0])
        # ... then one announced from the other replica: replica A hears of an id past a
        # gap, and must not show the later message without the earlier one.
        loud = (await b.post(token, "loud")).body["id"]
        assert loud == quiet + 1

        async def shows_loud() -> bool:
            return loud in [m["id"] for m in (await a.call("GET", "/api/messages")).body]

        await wait_for(shows_loud, seconds=5)
        listed = [m["id"] for m in (await a.call("GET", "/api/messages")).body]
        assert listed == [first, quiet, loud]
        # A client polling replica A from `first` gets both, in order.
        polled = await a.call("GET", f"/api/messages?after_id={first}")
        assert [m["id"] for m in polled.body] == [quiet, loud]


async def test_posts_on_other_replicas_reach_the_poll(config: Config) -> None:
    async with running_service(config) as a, running_service(with_port(config)) as b:
        token = (await a.register("relay"))["token"]
        await wait_for(lambda: a.app[HUB].subscribed.is_set() and b.app[HUB].subscribed.is_set())
        seen = await b.call("GET", "/api/messages")
        cursor = seen.body[-1]["id"] if seen.body else 0
        posted = [(await a.post(token, f"r{i}")).body["id"] for i in range(20)]

        async def all_there() -> bool:
            reply = await b.call("GET", f"/api/messages?after_id={cursor}")
            return [m["id"] for m in reply.body] == posted

        await wait_for(all_there, seconds=5)
        # Deletions travel the same way.
        deleted = await a.call("DELETE", f"/api/messages/{posted[-1]}", token=token)
        assert deleted.status == 204

        async def gone() -> bool:
            reply = await b.call("GET", "/api/messages")
            return posted[-1] not in [m["id"] for m in reply.body]

        await wait_for(gone, seconds=5)
