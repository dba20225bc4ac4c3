"""Login throttling that slows guessing without locking the owner out, and the per-user
posting rate limit and storage quota."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from chathelpers import Service, running_service
from servers import PostgresServer

from chat_service.config import Config
from chat_service.state import REDIS
from chat_service.throttling import login_delay

PW = "correct horse"


def _behind_proxy(config: Config, **limits: int) -> Config:
    # The tests' peer (127.0.0.1) is the trusted proxy; X-Forwarded-For names the client.
    settings = {"login_limit_per_nickname": 10, "login_failures_free": 5,
                "login_delay_max": 300, "login_limit_per_address": 1000, **limits}
    return replace(config, trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),), **settings)


async def _login(svc: Service, nickname: str, password: str, address: str) -> tuple[int, str]:
    reply = await svc.call("POST", "/api/login",
                           json_body={"nickname": nickname, "password": password},
                           headers={"X-Forwarded-For": address})
    return reply.status, reply.headers.get("Retry-After", "")


async def _skip_waits(svc: Service) -> None:
    client = svc.app[REDIS].client
    keys = [k async for k in client.scan_iter(match="chat:ratelimit:login:wait:*")]
    if keys:
        await client.delete(*keys)


def test_delays_grow_and_stop_at_the_maximum() -> None:
    assert [login_delay(n, 5, 300) for n in range(1, 17)] == \
        [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert [login_delay(n, 0, 300) for n in range(1, 4)] == [1, 2, 4]


async def test_guessing_does_not_lock_the_owner_out(config: Config) -> None:
    # The review: 11 bad attempts on a nickname made its owner's right password a 429.
    async with running_service(_behind_proxy(config)) as svc:
        await svc.register("victim")
        attacker = [await _login(svc, "victim", f"guess {i}", "203.0.113.66") for i in range(8)]
        assert [status for status, _ in attacker[:6]] == [401] * 6
        # The sixth failure made the attacker's address wait; it is refused without a
        # password check until then.
        assert attacker[6] == (429, "1")
        assert (await _login(svc, "victim", PW, "198.51.100.7"))[0] == 200
        # The owner's own address never failed: the right password always works.
        for _ in range(5):
            assert (await _login(svc, "victim", PW, "198.51.100.7"))[0] == 200


async def test_an_address_waits_longer_with_each_failure(config: Config) -> None:
    async with running_service(_behind_proxy(config, login_failures_free=1)) as svc:
        await svc.register("slow")
        seen = []
        for i in range(4):
            seen.append(await _login(svc, "slow", f"guess {i}", "203.0.113.5"))
            if i < 3:
                await _skip_waits(svc)  # as if the attacker had waited each time
        assert [s for s, _ in seen] == [401, 401, 401, 401]
        # Failures 2, 3 and 4 made it wait 1, 2 and 4 s; even the right password waits
        # (that is the point: no password is checked while it waits).
        assert await _login(svc, "slow", PW, "203.0.113.5") == (429, "4")
        # Another nickname from the same address is not held up.
        assert (await _login(svc, "someone-else", "x", "203.0.113.5"))[0] == 401


async def test_a_nickname_under_attack_makes_every_address_wait(config: Config) -> None:
    async with running_service(_behind_proxy(config, login_limit_per_nickname=3)) as svc:
        await svc.register("popular")
        # Four addresses fail once each: none of them has used its free failures ...
        for i in range(4):
            assert (await _login(svc, "popular", "guess", f"203.0.113.{i}"))[0] == 401
        # ... but the nickname is now under attack: a fifth address waits after one failure.
        assert (await _login(svc, "popular", "guess", "203.0.113.50"))[0] == 401
        assert (await _login(svc, "popular", "guess", "203.0.113.50"))[0] == 429
        # The owner, from an address that has not failed, still logs in.
        assert (await _login(svc, "popular", PW, "198.51.100.1"))[0] == 200


async def test_the_bucket_folds_like_the_look_up(config: Config) -> None:
    async with running_service(_behind_proxy(config, login_failures_free=2)) as svc:
        user = await svc.register("ivan")
        # Every spelling the look-up accepts as "ivan" counts against the same bucket.
        spellings = ["IVAN", "Ivan", "\u0131van", "\uff49\uff56\uff41\uff4e"]
        for spelling in spellings:
            reply = await svc.call("POST", "/api/login",
                                   json_body={"nickname": spelling, "password": PW},
                                   headers={"X-Forwarded-For": "198.51.100.9"})
            assert reply.status == 200, spelling
            assert reply.body["userId"] == user["id"]
        statuses = [(await _login(svc, s, "wrong", "203.0.113.9"))[0] for s in spellings]
        assert statuses == [401, 401, 401, 429]


async def test_posting_is_rate_limited_per_user(config: Config) -> None:
    async with running_service(replace(config, post_limit_per_user=5,
                                       post_rate_window=30)) as svc:
        flooder = (await svc.register("flooder"))["token"]
        other = (await svc.register("other"))["token"]
        statuses = [(await svc.post(flooder, f"flood {i}")).status for i in range(7)]
        assert statuses == [201] * 5 + [429] * 2
        reply = await svc.post(flooder, "once more")
        assert reply.body["code"] == "rate_limited"
        assert 1 <= int(reply.headers["Retry-After"]) <= 30
        # Another user posts as usual; the flooder's refused posts were not stored.
        assert (await svc.post(other, "hello")).status == 201
        listing = await svc.call("GET", "/api/messages")
        assert len(listing.body) == 6


async def test_stored_bytes_are_capped_per_user(config: Config, chat_env: dict[str, str],
                                                postgres_server: PostgresServer) -> None:
    async with running_service(replace(config, user_storage_max_bytes=10_000)) as svc:
        hoarder = (await svc.register("hoarder"))["token"]
        text = "\U0001f600" * 1000  # 4,000 bytes of UTF-8
        statuses = [(await svc.post(hoarder, text)).status for _ in range(3)]
        assert statuses == [201, 201, 403]
        refused = await svc.post(hoarder, text)
        assert refused.body == {
            "error": "you have stored as much text as one user may; delete nothing, it still "
                     "counts: ask an administrator", "code": "quota_exceeded"}
        # What still fits is stored; deleting does not free anything (the rows stay).
        assert (await svc.post(hoarder, "x" * 2000)).status == 201
        first = (await svc.call("GET", "/api/messages")).body[0]["id"]
        assert (await svc.call("DELETE", f"/api/messages/{first}", token=hoarder)).status == 204
        assert (await svc.post(hoarder, "y")).status == 403
        stored = postgres_server.psql(chat_env["POSTGRES_DB"],
                                      "SELECT stored_bytes FROM chat_user").stdout.strip()
        assert stored == "10000"
