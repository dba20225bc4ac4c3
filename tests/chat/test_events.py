"""Live updates over Server-Sent Events, across replicas, with resumption."""

from __future__ import annotations

import asyncio
import time

import pytest
from chathelpers import Service, running_service, sse, wait_for, with_port
from servers import PostgresServer

from chat_service.config import Config
from chat_service.replaying import REPLAY_MAX_ROWS
from chat_service.state import CONFIG, HUB


async def test_events_across_two_replicas(config: Config) -> None:
    async with running_service(config) as one, running_service(with_port(config)) as two:
        alice = (await one.register("alice"))["token"]
        bob = (await two.call("POST", "/api/login",
                              json_body={"nickname": "alice", "password": "correct horse"}))
        assert bob.status == 200  # sessions are shared through Redis
        async with sse(one) as on_one, sse(two) as on_two:
            await wait_for(lambda: one.app[HUB].subscribed.is_set()
                           and two.app[HUB].subscribed.is_set())
            posted = (await one.post(alice, "hello replicas")).body
            for stream in (on_one, on_two):
                event = await stream.next()
                assert event.event == "message.created"
                assert event.id == str(posted["id"])
                assert event.data == posted
            # Delete through the other replica; both streams hear it.
            deleted = await two.call("DELETE", f"/api/messages/{posted['id']}",
                                     token=bob.body["token"])
            assert deleted.status == 204
            for stream in (on_one, on_two):
                event = await stream.next()
                assert event.event == "message.deleted"
                assert event.id is None
                assert event.data == {"id": posted["id"]}
            assert on_one.retry == 3000


async def test_resume_with_last_event_id(service: Service) -> None:
    token = (await service.register("resumer"))["token"]
    async with sse(service) as stream:
        await wait_for(service.app[HUB].subscribed.is_set)
        first = (await service.post(token, "first")).body
        assert (await stream.next()).id == str(first["id"])
    # Missed while disconnected (one of them deleted meanwhile).
    missed = [(await service.post(token, f"missed {i}")).body for i in range(3)]
    await service.call("DELETE", f"/api/messages/{missed[1]['id']}", token=token)
    async with sse(service, headers={"Last-Event-ID": str(first["id"])}) as stream:
        replayed = [await stream.next() for _ in range(2)]
        assert [e.data["id"] for e in replayed] == [missed[0]["id"], missed[2]["id"]]
        assert all(e.event == "message.created" for e in replayed)
        live = (await service.post(token, "live again")).body
        event = await stream.next()
        assert event.data == live  # and not the replayed ones again
    # ?after_id= does the same for clients that cannot set headers.
    async with sse(service, f"?after_id={missed[0]['id']}") as stream:
        assert (await stream.next()).data["id"] == missed[2]["id"]
        assert (await stream.next()).data["id"] == live["id"]
    # Last-Event-ID wins over ?after_id=; a garbage Last-Event-ID is ignored.
    async with sse(service, "?after_id=0", headers={"Last-Event-ID": str(missed[2]["id"])}) as s:
        assert (await s.next()).data["id"] == live["id"]


async def test_bad_after_id_is_400(service: Service) -> None:
    reply = await service.call("GET", "/api/events?after_id=abc")
    assert reply.status == 400
    assert reply.body["code"] == "validation_failed"


async def test_heartbeat_comments(service: Service) -> None:
    # The test config sends a heartbeat every second.
    async with sse(service) as stream:
        await wait_for(lambda: stream.comments >= 2, seconds=5)


async def test_live_clients_metric(service: Service) -> None:
    async with sse(service), sse(service):
        await wait_for(lambda: service.app[HUB].client_count == 2)
        assert "chat_live_clients 2.0" in await service.metrics()
    await wait_for(lambda: service.app[HUB].client_count == 0)


async def test_shutdown_closes_streams_and_finishes_requests(config: Config) -> None:
    async with running_service(config) as svc, sse(svc) as stream:
        started = time.monotonic()
        closing = asyncio.create_task(svc.app.shutdown())
        assert await stream.ended(seconds=5)
        await closing
        assert time.monotonic() - started < config.shutdown_timeout


async def test_long_replay_is_capped_with_resync(service: Service,
                                                 postgres_server: PostgresServer) -> None:
    await service.register("bulk")
    postgres_server.psql(service.app[CONFIG].postgres_db,
                         "INSERT INTO chat_message (user_id, text) "
                         "SELECT 1, 'bulk ' || g FROM generate_series(1, 1100) g")
    async with sse(service, "?after_id=0") as stream:
        replayed = [await stream.next() for _ in range(REPLAY_MAX_ROWS)]
        assert [int(e.id or 0) for e in replayed] == list(range(1, REPLAY_MAX_ROWS + 1))
        # Nothing beyond the cap is sent; the client is told to reload instead.
        last = await stream.next()
        assert last.event == "resync"
        with pytest.raises(TimeoutError):
            await stream.next(seconds=1.5)
