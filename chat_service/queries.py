"""Every SQL statement of the service, always with bound parameters.

Thin async functions over `chat_service.database`: they take a `Database` (or a
`Session` holding one connection), run one statement and map rows to models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg2.errors

from chat_service import nicknames
from chat_service.database import Database, Row, Session
from chat_service.models import Message, Refused, User
from chat_service.validation import MessageQuery

# Held while a message is inserted and committed, so ids become visible in
# increasing order: a reader that saw id N can never later find a new id below N.
# Without it, `after_id` polling and SSE resumption could skip a message whose
# transaction committed after a higher id's. (A key for pg_advisory_xact_lock.)
MESSAGE_INSERT_LOCK = 0x63686174
# Session-level lock serialising migrators across replicas.
MIGRATION_LOCK = 0x6D696772

Executor = Database | Session


def _message(row: Row) -> Message:
    return Message(id=row[0], user_id=row[1], nickname=row[2], text=row[3], created_at=row[4])


async def ping(db: Executor) -> None:
    """A trivial round trip (readiness)."""
    await db.fetch_one("SELECT 1", "SELECT 1")


async def create_user(db: Executor, nickname: str, password_hash: str) -> User | None:
    """Insert a user; None when the nickname is taken: one with the same
    `nicknames.key` (case, look-alike characters) or the same lower() exists.

    The unique indexes decide, so two simultaneous registrations cannot both win.
    """
    try:
        row = await db.fetch_one(
            "INSERT chat_user",
            "INSERT INTO chat_user (nickname, nickname_key, password_hash) VALUES (%s, %s, %s) "
            "RETURNING id, nickname, password_hash",
            (nickname, nicknames.key(nickname), password_hash))
    except psycopg2.errors.UniqueViolation:
        return None
    assert row is not None
    return User(id=row[0], nickname=row[1], password_hash=row[2])


async def find_user(db: Executor, nickname: str) -> User | None:
    """The user whose nickname has the same `nicknames.key` as `nickname` (so the
    case and look-alike characters of what was typed do not matter)."""
    row = await db.fetch_one(
        "SELECT chat_user",
        "SELECT id, nickname, password_hash FROM chat_user WHERE nickname_key = %s",
        (nicknames.key(nickname),))
    return None if row is None else User(id=row[0], nickname=row[1], password_hash=row[2])


async def find_user_by_id(db: Executor, user_id: int) -> User | None:
    """The user with this id."""
    row = await db.fetch_one(
        "SELECT chat_user by id",
        "SELECT id, nickname, password_hash FROM chat_user WHERE id = %s", (user_id,))
    return None if row is None else User(id=row[0], nickname=row[1], password_hash=row[2])


async def set_password_hash(db: Executor, user_id: int, password_hash: str) -> bool:
    """Replace a user's password hash; False if the user is gone."""
    return await db.execute(
        "UPDATE chat_user",
        "UPDATE chat_user SET password_hash = %s WHERE id = %s", (password_hash, user_id)) > 0


async def insert_messages(db: Database, posts: list[tuple[int, str]],
                          max_bytes: int) -> list[Message | Refused]:
    """Insert and commit several (user id, text) messages in one statement; each post's
    message, or why it was refused: its author no longer exists, or storing it would take
    the author's stored text (`chat_user.stored_bytes`, UTF-8) past `max_bytes`.

    One autocommit statement, so one round trip and one commit: the CTE takes the
    insert lock before any row (and so any id) is produced, ids are given in the
    posts' order, each author's `stored_bytes` grows by what was stored, and PostgreSQL
    releases the lock at the commit, which happens before the statement's result
    reaches us. (The quota is read from the statement's snapshot: replicas posting for
    one user at the same instant may each pass it once.)
    """
    rows = await db.fetch_all(
        "INSERT chat_message",
        "WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(%s)), "
        "posts AS (SELECT * FROM unnest(%s::bigint[], %s::text[]) "
        "  WITH ORDINALITY AS p(user_id, text, ord)), "
        "allowed AS (SELECT user_id, text, ord FROM ("
        "  SELECT p.user_id, p.text, p.ord, u.stored_bytes + sum(octet_length(p.text)) "
        "    OVER (PARTITION BY p.user_id ORDER BY p.ord) AS total "
        "  FROM lock, posts p JOIN chat_user u ON u.id = p.user_id) t WHERE total <= %s), "
        "m AS (INSERT INTO chat_message (user_id, text) "
        "  SELECT user_id, text FROM allowed ORDER BY ord "
        "  RETURNING id, user_id, text, created_at), "
        "counted AS (UPDATE chat_user u SET stored_bytes = u.stored_bytes + s.bytes "
        "  FROM (SELECT user_id, sum(octet_length(text)) AS bytes FROM m GROUP BY user_id) s "
        "  WHERE u.id = s.user_id) "
        "SELECT m.id, m.user_id, u.nickname, m.text, m.created_at "
        "FROM m JOIN chat_user u ON u.id = m.user_id ORDER BY m.id",
        (MESSAGE_INSERT_LOCK, [user for user, _ in posts], [text for _, text in posts],
         max_bytes))
    # Rows come back in id order, which is the posts' order less the refused ones;
    # identical posts are interchangeable, so match each row to the first such post.
    waiting: dict[tuple[int, str], list[int]] = {}
    for index, post in enumerate(posts):
        waiting.setdefault(post, []).append(index)
    found: list[Message | Refused | None] = [None] * len(posts)
    for row in rows:
        message = _message(row)
        found[waiting[(message.user_id, message.text)].pop(0)] = message
    refused = {posts[i][0] for i, m in enumerate(found) if m is None}
    existing = await _existing_users(db, sorted(refused)) if refused else set()
    return [m if m is not None else
            Refused.OVER_QUOTA if posts[i][0] in existing else Refused.AUTHOR_GONE
            for i, m in enumerate(found)]


async def _existing_users(db: Executor, user_ids: list[int]) -> set[int]:
    rows = await db.fetch_all("SELECT chat_user ids",
                              "SELECT id FROM chat_user WHERE id = ANY(%s)", (user_ids,))
    return {int(r[0]) for r in rows}


async def list_messages(db: Executor, query: MessageQuery) -> list[Message]:
    """A page of visible messages, always oldest first (see `MessageQuery`).

    The page is cut from chat_message alone (an index scan on the visible-id index)
    before joining the authors, so the plan stays cheap however many messages exist.
    """
    if query.after_id is not None:
        sql = ("SELECT m.id, m.user_id, u.nickname, m.text, m.created_at FROM ("
               "  SELECT id, user_id, text, created_at FROM chat_message"
               "  WHERE deleted_at IS NULL AND id > %s ORDER BY id ASC LIMIT %s) m "
               "JOIN chat_user u ON u.id = m.user_id ORDER BY m.id ASC")
        params: tuple[int, ...] = (query.after_id, query.limit)
    elif query.before_id is not None:
        sql = ("SELECT m.id, m.user_id, u.nickname, m.text, m.created_at FROM ("
               "  SELECT id, user_id, text, created_at FROM chat_message"
               "  WHERE deleted_at IS NULL AND id < %s ORDER BY id DESC LIMIT %s) m "
               "JOIN chat_user u ON u.id = m.user_id ORDER BY m.id ASC")
        params = (query.before_id, query.limit)
    else:
        sql = ("SELECT m.id, m.user_id, u.nickname, m.text, m.created_at FROM ("
               "  SELECT id, user_id, text, created_at FROM chat_message"
               "  WHERE deleted_at IS NULL ORDER BY id DESC LIMIT %s) m "
               "JOIN chat_user u ON u.id = m.user_id ORDER BY m.id ASC")
        params = (query.limit,)
    rows = await db.fetch_all("SELECT chat_message", sql, params)
    return [_message(r) for r in rows]


async def replay_page(db: Executor, after_id: int, rows: int, budget: int) -> list[Message]:
    """Visible messages after `after_id`, oldest first: at most `rows`, and only as many
    as start within `budget` bytes of text (so at least one), for a resuming stream."""
    rows_found = await db.fetch_all(
        "SELECT chat_message replay",
        "SELECT m.id, m.user_id, u.nickname, m.text, m.created_at FROM ("
        "  SELECT id, user_id, text, created_at, "
        "    sum(octet_length(text)) OVER (ORDER BY id) - octet_length(text) AS before "
        "  FROM (SELECT id, user_id, text, created_at FROM chat_message"
        "        WHERE deleted_at IS NULL AND id > %s ORDER BY id ASC LIMIT %s) page) m "
        "JOIN chat_user u ON u.id = m.user_id WHERE m.before < %s ORDER BY m.id ASC",
        (after_id, rows, budget))
    return [_message(r) for r in rows_found]


async def list_stamp(db: Executor) -> tuple[int, int]:
    """(highest message id, deletion version): what message-list ETags derive from."""
    row = await db.fetch_one(
        "SELECT list stamp",
        "SELECT (SELECT coalesce(max(id), 0) FROM chat_message), "
        "(SELECT deletion_version FROM chat_state)")
    assert row is not None
    return int(row[0]), int(row[1] or 0)


async def max_message_id(db: Executor) -> int:
    """The highest message id ever committed and still stored (0 when none)."""
    row = await db.fetch_one("SELECT max id", "SELECT coalesce(max(id), 0) FROM chat_message")
    assert row is not None
    return int(row[0])


async def soft_delete_message(db: Executor, message_id: int, user_id: int | None) -> bool:
    """Mark a visible message deleted; only the author's when `user_id` is given."""
    if user_id is None:
        count = await db.execute(
            "UPDATE chat_message soft delete",
            "UPDATE chat_message SET deleted_at = now() WHERE id = %s AND deleted_at IS NULL",
            (message_id,))
    else:
        count = await db.execute(
            "UPDATE chat_message soft delete",
            "UPDATE chat_message SET deleted_at = now() "
            "WHERE id = %s AND user_id = %s AND deleted_at IS NULL",
            (message_id, user_id))
    return count > 0


# --- the admin tool ---------------------------------------------------------------

async def list_users(db: Executor) -> list[tuple[int, str, datetime, int]]:
    """(id, nickname, created_at, visible message count) of every user, by id."""
    rows = await db.fetch_all(
        "SELECT chat_user list",
        "SELECT u.id, u.nickname, u.created_at, "
        "  count(m.id) FILTER (WHERE m.deleted_at IS NULL) "
        "FROM chat_user u LEFT JOIN chat_message m ON m.user_id = u.id "
        "GROUP BY u.id ORDER BY u.id")
    return [(r[0], r[1], r[2], int(r[3])) for r in rows]


async def user_message_ids(db: Executor, user_id: int) -> list[int]:
    """Ids of a user's visible messages (to announce their removal)."""
    rows = await db.fetch_all(
        "SELECT chat_message ids",
        "SELECT id FROM chat_message WHERE user_id = %s AND deleted_at IS NULL", (user_id,))
    return [int(r[0]) for r in rows]


async def delete_user(db: Executor, user_id: int) -> bool:
    """Delete a user and (by cascade) their messages; False if unknown."""
    row = await db.fetch_one(
        "DELETE chat_user", "DELETE FROM chat_user WHERE id = %s RETURNING id", (user_id,))
    return row is not None


async def stats(db: Executor) -> dict[str, Any]:
    """Counts for the admin tool's `stats`."""
    row = await db.fetch_one(
        "SELECT stats",
        "SELECT (SELECT count(*) FROM chat_user), "
        "  (SELECT count(*) FROM chat_message WHERE deleted_at IS NULL), "
        "  (SELECT count(*) FROM chat_message WHERE deleted_at IS NOT NULL), "
        "  (SELECT count(*) FROM chat_message WHERE deleted_at IS NULL "
        "     AND created_at > now() - interval '24 hours'), "
        "  (SELECT max(created_at) FROM chat_message)")
    assert row is not None
    return {"users": int(row[0]), "messages": int(row[1]), "deletedMessages": int(row[2]),
            "messagesLast24h": int(row[3]), "lastMessageAt": row[4]}


# --- migrations -------------------------------------------------------------------

async def unlimit_statements(db: Session) -> None:
    """No statement_timeout on this connection (migrations may take long)."""
    await db.execute("SET statement_timeout",
                     "SELECT set_config('statement_timeout', '0', false)")


async def try_lock_migrations(db: Session) -> bool:
    """Take the migration lock if it is free (held by this connection until unlocked)."""
    row = await db.fetch_one("SELECT pg_try_advisory_lock",
                             "SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK,))
    return bool(row and row[0])


async def lock_migrations(db: Session, wait_seconds: float) -> None:
    """Wait up to `wait_seconds` for the migration lock; PostgreSQL raises
    LockNotAvailable when the wait is over (its lock_timeout)."""
    await db.execute("SET lock_timeout", "SELECT set_config('lock_timeout', %s, false)",
                     (f"{max(1, int(wait_seconds * 1000))}ms",))
    try:
        await db.execute("SELECT pg_advisory_lock", "SELECT pg_advisory_lock(%s)",
                         (MIGRATION_LOCK,))
    finally:
        await db.execute("RESET lock_timeout", "SELECT set_config('lock_timeout', '0', false)")


async def migration_lock_holder(db: Executor) -> str:
    """Who holds the migration lock: `pid N (application, state)`, or "" if nobody."""
    row = await db.fetch_one(
        "SELECT migration lock holder",
        "SELECT a.pid, a.application_name, a.state FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = %s "
        "AND l.objsubid = 1 LIMIT 1", (MIGRATION_LOCK,))
    if row is None:
        return ""
    return f"pid {row[0]} ({row[1] or 'no application name'}, {row[2] or 'unknown state'})"


async def unlock_migrations(db: Session) -> None:
    """Release the migration lock."""
    await db.execute("SELECT pg_advisory_unlock", "SELECT pg_advisory_unlock(%s)",
                     (MIGRATION_LOCK,))


async def ensure_migrations_table(db: Executor) -> None:
    """Create `schema_migrations` if absent (only under the migration lock)."""
    await db.execute(
        "CREATE schema_migrations",
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())")


async def applied_migrations(db: Executor) -> dict[int, tuple[str, str]] | None:
    """version -> (name, checksum) of applied migrations; None if never migrated."""
    row = await db.fetch_one("SELECT to_regclass",
                             "SELECT to_regclass('schema_migrations') IS NOT NULL")
    if row is None or not row[0]:
        return None
    rows = await db.fetch_all("SELECT schema_migrations",
                              "SELECT version, name, checksum FROM schema_migrations")
    return {int(r[0]): (str(r[1]), str(r[2])) for r in rows}


async def table_columns(db: Executor, tables: list[str]) -> dict[str, dict[str, str]]:
    """table -> column -> type (`character varying(64)`, `bigint`, ...) of those of
    `tables` that exist in the current schema."""
    rows = await db.fetch_all(
        "SELECT information_schema.columns",
        "SELECT table_name, column_name, data_type, character_maximum_length "
        "FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ANY(%s)", (tables,))
    found: dict[str, dict[str, str]] = {}
    for table, column, kind, length in rows:
        found.setdefault(table, {})[column] = f"{kind}({length})" if length else kind
    return found


async def nickname_case_clashes(db: Executor) -> list[list[tuple[int, str]]]:
    """Groups of users whose nicknames differ only in case, each as (id, nickname)."""
    rows = await db.fetch_all(
        "SELECT chat_user case clashes",
        "SELECT array_agg(id ORDER BY id), array_agg(nickname ORDER BY id) FROM chat_user "
        "GROUP BY lower(nickname) HAVING count(*) > 1 ORDER BY min(id)")
    return [list(zip(ids, nicks, strict=True)) for ids, nicks in rows]


async def all_nicknames(db: Executor) -> list[tuple[int, str]]:
    """(id, nickname) of every user, by id."""
    rows = await db.fetch_all("SELECT chat_user nicknames",
                              "SELECT id, nickname FROM chat_user ORDER BY id")
    return [(int(r[0]), str(r[1])) for r in rows]


async def fill_nickname_keys(db: Session, keys: list[tuple[int, str]]) -> None:
    """Store each (user id, nickname key), then make the key required and unique."""
    if keys:
        await db.execute(
            "UPDATE chat_user nickname_key",
            "UPDATE chat_user u SET nickname_key = k.key "
            "FROM unnest(%s::bigint[], %s::text[]) AS k(id, key) WHERE u.id = k.id",
            ([user_id for user_id, _ in keys], [key for _, key in keys]))
    await db.execute("ALTER chat_user nickname_key",
                     "ALTER TABLE chat_user ALTER COLUMN nickname_key SET NOT NULL")
    await db.execute("CREATE chat_user_nickname_key_key",
                     "CREATE UNIQUE INDEX chat_user_nickname_key_key ON chat_user (nickname_key)")


async def count_users_and_messages(db: Executor) -> tuple[int, int]:
    """(users, messages) stored."""
    row = await db.fetch_one(
        "SELECT counts",
        "SELECT (SELECT count(*) FROM chat_user), (SELECT count(*) FROM chat_message)")
    assert row is not None
    return int(row[0]), int(row[1])


async def run_migration_script(db: Session, sql: str) -> None:
    """Execute one migration file's statements (trusted text shipped with the package)."""
    await db.execute("migration script", sql)


async def record_migration(db: Session, version: int, name: str, checksum: str) -> None:
    """Note a migration as applied."""
    await db.execute(
        "INSERT schema_migrations",
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
        (version, name, checksum))


# --- activity (when a person last used the environment) ----------------------------

async def record_activity(db: Executor, when: datetime) -> None:
    """Store `when` as the last request, unless a later one is stored already."""
    await db.execute(
        "UPDATE chat_activity",
        "UPDATE chat_activity SET last_request_at = GREATEST(last_request_at, %s)", (when,))


async def last_activity(db: Executor) -> datetime | None:
    """The last request any replica stored, or None if none ever did."""
    row = await db.fetch_one("SELECT chat_activity",
                             "SELECT last_request_at FROM chat_activity")
    return None if row is None else row[0]
