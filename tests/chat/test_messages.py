"""Posting, listing (cursors, limits, ETags) and deleting messages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiopg
from chathelpers import Service, wait_for
from servers import PostgresServer

from chat_service import queries
from chat_service.models import Message, Refused
from chat_service.state import CONFIG, DB


async def _user(service: Service, nickname: str) -> str:
    return str((await service.register(nickname))["token"])


async def test_post_message_shape(service: Service) -> None:
    user = await service.register("poster")
    before = datetime.now(UTC)
    reply = await service.post(user["token"], "  hello world \n")
    assert reply.status == 201
    body = reply.body
    assert set(body) == {"id", "userId", "nickname", "text", "createdAt"}
    assert body["text"] == "hello world"
    assert body["userId"] == user["userId"]
    assert body["nickname"] == "poster"
    assert body["createdAt"].endswith("Z")
    created = datetime.fromisoformat(body["createdAt"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=5) < created < datetime.now(UTC) + timedelta(seconds=5)
    # 201 means committed: it is listed straight away.
    listed = await service.call("GET", "/api/messages")
    assert listed.body == [body]


async def test_text_boundaries(service: Service) -> None:
    token = await _user(service, "texter")
    cases = [("", 400), ("   \n\t ", 400), ("a", 201), ("b" * 1999, 201), ("c" * 2000, 201),
             ("d" * 2001, 400), ("  " + "e" * 2000 + "  ", 201), ("😀" * 2000, 201),
             ("😀" * 2001, 400), ("nul\u0000", 400)]
    for text, expected in cases:
        reply = await service.post(token, text)
        assert reply.status == expected, (len(text), reply.body)
        if expected == 201:
            assert reply.body["text"] == text.strip()
        else:
            assert reply.body["field"] == "text"
    for body in ({}, {"text": None}, {"text": 5}, {"text": ["x"]}, {"text": {"a": 1}}):
        reply = await service.call("POST", "/api/messages", json_body=body, token=token)
        assert reply.status == 400, body


async def test_unicode_and_injection_strings_verbatim(service: Service) -> None:
    token = await _user(service, "mallory")
    texts = ["'; DROP TABLE chat_message; --", "Robert'); DELETE FROM chat_user;--",
             "%s %(x)s {0} \\x00 $1", "<script>alert(1)</script>", "Ünïcödé ✓ 🎉 עברית 中文",
             "line one\nline two", "\u202eRTL override"]
    ids = []
    for text in texts:
        reply = await service.post(token, text)
        assert reply.status == 201, text
        ids.append(reply.body["id"])
    listed = await service.call("GET", "/api/messages")
    assert [m["text"] for m in listed.body] == texts
    assert [m["id"] for m in listed.body] == ids
    # And a nickname that looks like SQL.
    reply = await service.call("POST", "/api/register",
                               json_body={"nickname": "x' OR '1'='1", "password": "password1"})
    assert reply.status == 400  # quote is not in the nickname set
    users = await service.call("POST", "/api/login",
                               json_body={"nickname": "x' OR '1'='1", "password": "password1"})
    assert users.status == 401


async def test_list_empty_is_array(service: Service) -> None:
    for query in ("", "?after_id=0", "?before_id=10", "?after_id=999999"):
        reply = await service.call("GET", "/api/messages" + query)
        assert reply.status == 200, query
        assert reply.body == [], query


async def test_cursors_and_limits(service: Service) -> None:
    token = await _user(service, "pager")
    ids = [(await service.post(token, f"m{i}")).body["id"] for i in range(12)]

    async def listed(query: str) -> list[int]:
        reply = await service.call("GET", "/api/messages" + query)
        assert reply.status == 200, reply.body
        return [m["id"] for m in reply.body]

    assert await listed("") == ids
    assert await listed("?limit=5") == ids[-5:]
    # As in the original: after_id of 0 or less, or empty, is no cursor; a limit past the
    # maximum is clamped; the original's strconv.ParseInt also took a sign.
    for no_cursor in ("?after_id=0&limit=5", "?after_id=-1&limit=5", "?after_id=&limit=5",
                      "?after_id=-99999999999999999999999&limit=5", "?after_id=%2B0&limit=5",
                      "?limit=5&before_id="):
        assert await listed(no_cursor) == ids[-5:], no_cursor
    assert await listed(f"?after_id=%2B{ids[4]}&limit=3") == ids[5:8]
    assert await listed("?limit=201") == ids
    assert await listed("?limit=" + "9" * 5000) == ids
    assert await listed("?limit=") == ids
    assert await listed("?after_id=-5&limit=%2B2") == ids[-2:]
    assert await listed(f"?after_id={ids[4]}&limit=3") == ids[5:8]
    assert await listed(f"?after_id={ids[-1]}") == []
    assert await listed(f"?before_id={ids[6]}&limit=3") == ids[3:6]
    assert await listed(f"?before_id={ids[2]}") == ids[:2]
    assert await listed("?limit=200") == ids
    assert await listed(f"?after_id={'9' * 30}") == []
    assert await listed("?after_id=0&unknown=1") == ids
    # The clamp applies to the rows, not just the parameter.
    many = ids + [(await service.post(token, f"n{i}")).body["id"] for i in range(200)]
    assert await listed("?limit=1000") == many[-200:]
    assert await listed(f"?after_id={many[0]}&limit=1000") == many[1:201]


async def test_bad_query_values(service: Service) -> None:
    for query in ("limit=0", "limit=-1", "limit=-0", "limit=abc", "limit=1.5", "limit=+",
                  "after_id=x", "after_id=-", "after_id=1.5", "after_id= 1", "before_id=1e3",
                  "before_id=-1", "after_id=1&before_id=5", "after_id=%D9%A3",
                  "limit=%D9%A3"):
        reply = await service.call("GET", f"/api/messages?{query}")
        assert reply.status == 400, (query, reply.status)
        assert reply.body["code"] == "validation_failed"


async def test_original_client_polling_pattern(service: Service) -> None:
    # The original client polled after_id=<last id> every few seconds.
    alice, bob = await _user(service, "alice"), await _user(service, "bob")
    first = (await service.post(alice, "one")).body["id"]
    seen = (await service.call("GET", "/api/messages?")).body
    assert [m["id"] for m in seen] == [first]
    # Bob posts while alice posts too; alice's cursor must not skip bob's message.
    bobs = (await service.post(bob, "from bob")).body["id"]
    mine = (await service.post(alice, "mine")).body["id"]
    new = (await service.call("GET", f"/api/messages?after_id={first}&limit=50")).body
    assert [m["id"] for m in new] == [bobs, mine]


async def test_delete_own_message(service: Service) -> None:
    alice, bob = await _user(service, "alice"), await _user(service, "bob")
    keep = (await service.post(alice, "keep")).body["id"]
    gone = (await service.post(alice, "gone")).body["id"]
    bobs = (await service.post(bob, "bob's")).body["id"]
    assert (await service.call("DELETE", f"/api/messages/{bobs}", token=alice)).status == 404
    assert (await service.call("DELETE", f"/api/messages/{gone}")).status == 401
    assert (await service.call("DELETE", f"/api/messages/{gone}", token=alice)).status == 204
    again = await service.call("DELETE", f"/api/messages/{gone}", token=alice)
    assert again.status == 404
    assert again.body["code"] == "not_found"
    assert (await service.call("DELETE", "/api/messages/999999", token=alice)).status == 404
    assert (await service.call("DELETE", "/api/messages/" + "9" * 40, token=alice)).status == 404
    assert (await service.call("DELETE", "/api/messages/abc", token=alice)).status == 404
    # Digits of other scripts are not ids (int() would read "\u0663" as 3).
    arabic = "".join(chr(0x0660 + int(d)) for d in str(keep))
    assert (await service.call("DELETE", f"/api/messages/{arabic}", token=alice)).status == 404
    ids = [m["id"] for m in (await service.call("GET", "/api/messages")).body]
    assert ids == [keep, bobs]
    # Deleted messages are not replayed by cursors either.
    after = (await service.call("GET", f"/api/messages?after_id={keep}")).body
    assert [m["id"] for m in after] == [bobs]


async def test_etag_and_304(service: Service, postgres_server: PostgresServer) -> None:
    token = await _user(service, "tagger")
    first = (await service.post(token, "a")).body["id"]
    reply = await service.call("GET", "/api/messages")
    tag = reply.headers["ETag"]
    assert tag.startswith('"')
    assert reply.headers["Cache-Control"] == "no-cache"
    unchanged = await service.call("GET", "/api/messages", headers={"If-None-Match": tag})
    assert unchanged.status == 304
    assert unchanged.body == ""
    assert unchanged.headers["ETag"] == tag
    assert (await service.call("GET", "/api/messages",
                               headers={"If-None-Match": f'"x", W/{tag}'})).status == 304
    # Tags follow the body: the same answer has the same tag (for any URL), another
    # answer another one.
    same = await service.call("GET", "/api/messages?limit=1")
    assert same.headers["ETag"] == tag
    empty = await service.call("GET", f"/api/messages?after_id={first}")
    assert empty.body == []
    assert empty.headers["ETag"] != tag
    assert (await service.call("GET", f"/api/messages?after_id={first}",
                               headers={"If-None-Match": tag})).status == 200
    # A new message changes it...
    second = (await service.post(token, "b")).body["id"]
    changed = await service.call("GET", "/api/messages", headers={"If-None-Match": tag})
    assert changed.status == 200
    assert [m["id"] for m in changed.body] == [first, second]
    tag2 = changed.headers["ETag"]
    assert tag2 != tag
    # ...and so does deleting the newest one, although the highest id stays the same.
    assert (await service.call("DELETE", f"/api/messages/{second}", token=token)).status == 204
    after_delete = await service.call("GET", "/api/messages", headers={"If-None-Match": tag2})
    assert after_delete.status == 200
    assert [m["id"] for m in after_delete.body] == [first]
    assert after_delete.headers["ETag"] == tag  # the same answer as before `second`
    # A hard delete behind the service's back (no event) shows within the cache's
    # revalidation age, a second by default.
    db = service.app[CONFIG].postgres_db
    postgres_server.psql(db, f"DELETE FROM chat_message WHERE id = {int(first)}")  # noqa: S608

    async def gone() -> bool:
        reply = await service.call("GET", "/api/messages", headers={"If-None-Match": tag})
        return reply.status == 200 and reply.body == []

    await wait_for(gone, seconds=3)


async def test_concurrent_posts_all_listed_in_order(service: Service) -> None:
    tokens = [await _user(service, f"writer{i}") for i in range(4)]
    replies = await asyncio.gather(*(service.post(tokens[i % 4], f"c{i}") for i in range(40)))
    assert all(r.status == 201 for r in replies)
    posted = sorted(r.body["id"] for r in replies)
    listed = [m["id"] for m in (await service.call("GET", "/api/messages?limit=200")).body]
    assert listed == posted


async def test_inserts_wait_for_the_insert_lock(service: Service,
                                                postgres_server: PostgresServer) -> None:
    # Message ids must become visible in increasing order, so inserts serialise on an
    # advisory lock held until commit. Holding that lock elsewhere must hold up a post.
    token = await _user(service, "locked")
    dsn = postgres_server.dsn.replace(f"dbname={postgres_server.database}",
                                      f"dbname={service.app[CONFIG].postgres_db}")
    async with aiopg.connect(dsn) as conn, conn.cursor() as cur:
        await cur.execute("BEGIN")
        await cur.execute("SELECT pg_advisory_xact_lock(%s)", (queries.MESSAGE_INSERT_LOCK,))
        posting = asyncio.create_task(service.post(token, "waits for the lock"))
        await asyncio.sleep(0.5)
        assert not posting.done()
        await cur.execute("COMMIT")
        reply = await asyncio.wait_for(posting, 5)
    assert reply.status == 201


async def test_grouped_insert_keeps_order_and_owners(service: Service) -> None:
    alice = (await service.register("grouped-a"))["userId"]
    bob = (await service.register("grouped-b"))["userId"]
    posts = [(alice, "same"), (999_999, "nobody"), (bob, "b1"), (alice, "same"), (bob, "b2")]
    found = await queries.insert_messages(service.app[DB], posts, 10**9)
    # An author that does not exist gets nothing, the rest go in.
    assert found[1] is Refused.AUTHOR_GONE
    messages = [m for m in found if isinstance(m, Message)]
    assert [(m.user_id, m.text) for m in messages] == [p for p in posts if p[0] != 999_999]
    ids = [m.id for m in messages]
    assert ids == sorted(ids)  # ids in the posts' order
    assert len(set(ids)) == 4
    assert [m.nickname for m in messages] == ["grouped-a", "grouped-b", "grouped-a", "grouped-b"]
    listed = (await service.call("GET", "/api/messages")).body
    assert [m["id"] for m in listed] == ids


async def test_grouped_insert_counts_each_authors_bytes(service: Service) -> None:
    alice = (await service.register("quota-a"))["userId"]
    bob = (await service.register("quota-b"))["userId"]
    # Within one statement, each author's posts count in order against their own quota.
    posts = [(alice, "a" * 6), (bob, "b" * 9), (alice, "\u00e9" * 3), (alice, "c"), (bob, "d")]
    found = await queries.insert_messages(service.app[DB], posts, 10)
    assert [m if isinstance(m, Refused) else m.text for m in found] == \
        ["a" * 6, "b" * 9, Refused.OVER_QUOTA, Refused.OVER_QUOTA, "d"]


async def test_many_concurrent_posts_grouped(service: Service) -> None:
    tokens = [await _user(service, f"burst{i}") for i in range(8)]
    replies = await asyncio.gather(*(service.post(tokens[i % 8], f"burst {i}")
                                     for i in range(300)))
    assert [r.status for r in replies] == [201] * 300
    by_text = {r.body["text"]: r.body for r in replies}
    assert len(by_text) == 300
    ids = sorted(r.body["id"] for r in replies)
    assert len(set(ids)) == 300
    newest = (await service.call("GET", "/api/messages?limit=200")).body
    older = (await service.call("GET", f"/api/messages?before_id={newest[0]['id']}"
                                       "&limit=200")).body
    listed = older + newest
    assert [m["id"] for m in listed] == ids
    assert all(by_text[m["text"]]["id"] == m["id"] for m in listed)
