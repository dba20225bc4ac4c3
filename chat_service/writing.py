"""Message inserts grouped: the posts that arrive while one insert runs go in the next.

Inserts are serialised anyway (the insert lock keeps ids visible in order), so under
load each insert statement would wait for the one before. `MessageWriter` sends one
statement at a time per process and puts every post that arrived meanwhile into it:
one round trip and one commit for many posts, and a post alone is not delayed at
all. Each post still gets its own committed message (or None if its author is gone),
or the statement's error. The new messages are then announced to every replica in
one pipelined round trip, before any of the posts is answered. A post that would take
its author past USER_STORAGE_MAX_BYTES is refused in the same statement. Does I/O
through `queries` and the `RedisStore`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chat_service import events, queries
from chat_service.coalescing import Coalescer
from chat_service.database import Database
from chat_service.errors import RedisUnavailable
from chat_service.models import Message, Refused
from chat_service.redis_store import RedisStore

log = logging.getLogger(__name__)

# Posts per statement; more wait for the next one.
BATCH_MAX = 100


class MessageWriter:
    """Inserts posts, grouping those that arrive while an insert is running."""

    def __init__(self, db: Database, redis: RedisStore, *, max_bytes_per_user: int,
                 on_created: Callable[[Message], None]) -> None:
        self._db = db
        self._redis = redis
        self._max_bytes = max_bytes_per_user
        self._on_created = on_created
        self._batches: Coalescer[tuple[int, str], Message | Refused] = Coalescer(
            self._write, limit=BATCH_MAX)

    async def insert(self, user_id: int, text: str) -> Message | Refused:
        """Insert, commit and announce one message; or why it was not stored."""
        return await self._batches.get((user_id, text))

    async def _write(self, posts: list[tuple[int, str]]) -> list[Message | Refused]:
        found = await queries.insert_messages(self._db, posts, self._max_bytes)
        created = [m for m in found if isinstance(m, Message)]
        try:
            for message in created:
                self._on_created(message)
            await self._announce(created)
        except Exception:
            # Committed: every post gets its message, whatever the announcement did.
            log.exception("could not announce %d new messages", len(created))
        return found

    async def _announce(self, created: list[Message]) -> None:
        if not created:
            return
        try:
            await self._redis.publish_all([events.created_event(m) for m in created])
        except RedisUnavailable:
            # The messages are committed, so the posts still succeed; hubs replay
            # creations from PostgreSQL when their subscription comes back, and every
            # process's newest messages are revalidated within MESSAGE_CACHE_SECONDS.
            log.warning("could not publish %d new messages: Redis unavailable", len(created))
