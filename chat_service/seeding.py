"""The data an environment starts with: a fixtures data set, or an anonymised snapshot.

- `load_fixtures` (run by `migrate --fixtures NAME`): the named data set shipped in
  `chat_service/fixtures/NAME.json`, its users and messages, with times relative to now.
- `restore_snapshot` (run by `restore-snapshot`, a Job in the new environment's
  namespace): users and visible messages copied from another environment's database.
  Read through `chat_snapshot`, a role that can read nothing else: not the password
  hashes (column privileges), not the sessions (they are in Redis, which is never
  read). Deleted messages are not copied.
- `ensure_snapshot_reader` (run by `migrate` where SNAPSHOT_READER_PASSWORD is set,
  i.e. in an environment others take snapshots of): that role, and its grants.

Every user loaded either way gets the same placeholder password (DATA_PASSWORD, which
the operator generates per environment and `chatenv credentials` prints); only its
argon2id hash is stored. Each load is one transaction that also writes the
`chat_data_source` row, under an advisory lock: concurrent loaders (several replicas'
init containers) load once, a second run changes nothing, and a failure leaves the
database as it was, never half filled.

These are one-shot commands, not request handlers: they use their own synchronous
psycopg2 connection (COPY streams the messages) and keep their statements here.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import argon2
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from chat_service import nicknames, validation
from chat_service.config import Config
from chat_service.envparse import ConfigError, Reader, int_range, nonempty
from chat_service.errors import ApiError

log = logging.getLogger(__name__)

# Serialises loaders and the reader role's set-up (a key for pg_advisory_xact_lock).
DATA_LOCK = 0x64617461
# Held by message inserts (chat_service.queries.MESSAGE_INSERT_LOCK): loaded ids stay
# in order with any message a running server inserts.
MESSAGE_INSERT_LOCK = 0x63686174
SNAPSHOT_ROLE = "chat_snapshot"
# What the snapshot role may read: never chat_user.password_hash.
_SNAPSHOT_GRANTS = (
    "GRANT SELECT (id, nickname, created_at) ON chat_user TO chat_snapshot",
    "GRANT SELECT (id, user_id, text, created_at, deleted_at) ON chat_message TO chat_snapshot",
    "GRANT SELECT ON schema_migrations TO chat_snapshot",
)
_BATCH = 1000
_SPOOL_BYTES = 32 * 2**20


class SeedError(Exception):
    """The data could not be loaded; nothing was changed. The message says why."""


@dataclass(frozen=True)
class Loaded:
    """What a database's first data is, and whether this run loaded it."""

    kind: str
    """`fixtures` or `snapshot`."""
    name: str
    """The data set's name, or the environment the snapshot came from."""
    users: int
    messages: int
    loaded_now: bool
    """False: it was already there (an earlier run, or another replica's)."""

    def summary(self) -> str:
        what = f"{self.kind} {self.name}: {self.users} users, {self.messages} messages"
        return f"loaded {what}" if self.loaded_now else f"already loaded: {what}"


@dataclass(frozen=True)
class FixtureMessage:
    author: str
    text: str
    minutes_ago: int


@dataclass(frozen=True)
class Fixture:
    """A data set: users and their messages (times relative to when it is loaded)."""

    name: str
    nicknames: tuple[str, ...]
    messages: tuple[FixtureMessage, ...]


def fixture_names() -> list[str]:
    """The data sets shipped with this version."""
    return sorted(entry.name.removesuffix(".json")
                  for entry in resources.files("chat_service.fixtures").iterdir()
                  if entry.name.endswith(".json"))


def read_fixture(name: str) -> Fixture:
    """The data set `name`, checked against the API's own rules for nicknames and text."""
    if name not in fixture_names():
        raise SeedError(f"no fixtures data set named {name!r} (this version ships: "
                        f"{', '.join(fixture_names())})")
    raw = json.loads(resources.files("chat_service.fixtures").joinpath(f"{name}.json")
                     .read_text(encoding="utf-8"))
    try:
        users = tuple(validation.nickname(u) for u in raw["users"])
        messages = tuple(
            FixtureMessage(m["author"], validation.text(m), int(m["minutesAgo"]))
            for m in raw["messages"])
    except (ApiError, KeyError, TypeError, ValueError) as e:
        raise SeedError(f"fixtures {name}: {e}") from None
    unknown = sorted({m.author for m in messages} - set(users))
    if unknown or len({nicknames.key(n) for n in users}) != len(users):
        raise SeedError(f"fixtures {name}: unknown or duplicate authors {unknown}")
    # Oldest first: ids grow with time, as when people post.
    ordered = sorted(messages, key=lambda m: -m.minutes_ago)
    return Fixture(name, users, tuple(ordered))


def placeholder_hash(password: str, config: Config) -> str:
    """The argon2id hash every loaded user gets (one hash: they share the password)."""
    hasher = argon2.PasswordHasher(
        time_cost=config.argon2_time_cost, memory_cost=config.argon2_memory_kib,
        parallelism=config.argon2_parallelism, type=argon2.Type.ID)
    return hasher.hash(password)


# --- settings the data commands read (beside chat_service.config's) ----------------

@dataclass(frozen=True)
class SnapshotSource:
    """Where `restore-snapshot` reads from: SNAPSHOT_HOST, _PORT, _DB, _USER, _PASSWORD,
    and SNAPSHOT_NAME (the environment it comes from, recorded with the data)."""

    host: str
    port: int
    db: str
    user: str
    password: str
    name: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SnapshotSource:
        r = Reader(env)
        host = r.get("SNAPSHOT_HOST", nonempty, "")
        password = r.get("SNAPSHOT_PASSWORD", str, "")
        if not host or not password:
            raise ConfigError("SNAPSHOT_HOST and SNAPSHOT_PASSWORD must be set")
        return cls(host=host, port=r.get("SNAPSHOT_PORT", int_range(1, 65535), 5432),
                   db=r.get("SNAPSHOT_DB", nonempty, "chat"),
                   user=r.get("SNAPSHOT_USER", nonempty, SNAPSHOT_ROLE),
                   password=password, name=r.get("SNAPSHOT_NAME", nonempty, host))


def data_password(env: Mapping[str, str]) -> str:
    """DATA_PASSWORD: the placeholder password of every loaded user (at least 8 characters)."""
    value = Reader(env).get("DATA_PASSWORD", str, "")
    if len(value) < 8:
        raise ConfigError("DATA_PASSWORD must be set to at least 8 characters: every user "
                          "of the loaded data gets it as their password")
    return value


# --- connections --------------------------------------------------------------------

def connect(config: Config) -> Any:
    """A connection to the service's own database, without a statement timeout."""
    return _connect(config.postgres_host, config.postgres_port, config.postgres_db,
                    config.postgres_user, config.postgres_password,
                    config.postgres_connect_timeout)


def connect_source(source: SnapshotSource, timeout: float, patience: float = 0.0) -> Any:
    """A read-only connection to the snapshot's source, retrying for up to `patience`
    seconds while it cannot be reached: the restore Job's pod is new, and a network policy
    controller admits a new pod's address a moment after it starts (Kubernetes leaves that
    delay to the plugin). A refusal by the server itself (a wrong password) is not retried."""
    deadline = time.monotonic() + patience
    delay = 0.5
    while True:
        try:
            conn = _connect(source.host, source.port, source.db, source.user,
                            source.password, timeout)
            break
        except SeedError as e:
            if not unreachable(str(e)) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s; retrying", e)
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    return conn


# libpq's words for a server it could not reach (as opposed to one that refused it).
_UNREACHABLE = ("connection refused", "timeout expired", "could not translate host name",
                "no route to host", "network is unreachable", "is the server running",
                "the database system is starting up")


def unreachable(message: str) -> bool:
    """Whether a connection error says the server was not reached (worth retrying)."""
    lowered = message.lower()
    return any(words in lowered for words in _UNREACHABLE)


def _connect(host: str, port: int, db: str, user: str, password: str, timeout: float) -> Any:
    try:
        conn = psycopg2.connect(host=host, port=port, dbname=db, user=user, password=password,
                                connect_timeout=max(1, int(timeout + 0.999)),
                                application_name="chat-seeding")
    except psycopg2.OperationalError as e:
        # libpq's words (no password in them), without its "connection to server at".
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        said = "; ".join(line.split(" failed: ", 1)[-1] for line in lines[-2:])
        raise SeedError(f"cannot connect to PostgreSQL at {host}:{port} as {user}: "
                        f"{said or type(e).__name__}") from None
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = 0")
    conn.commit()
    return conn


# --- loading ------------------------------------------------------------------------

def load_fixtures(conn: Any, fixture: Fixture, password_hash: str,
                  now: datetime | None = None) -> Loaded:
    """Load `fixture` into an empty database, once."""
    now = now or datetime.now(UTC)
    with _loading(conn, "fixtures", fixture.name) as cur:
        if isinstance(cur, Loaded):
            return cur
        first = {m.author: m.minutes_ago for m in reversed(fixture.messages)}
        users = [(None, n, password_hash, now - timedelta(minutes=first.get(n, 0) + 60))
                 for n in fixture.nicknames]
        ids = dict(_insert_users(cur, users))
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MESSAGE_INSERT_LOCK,))
        psycopg2.extras.execute_values(
            cur, "INSERT INTO chat_message (user_id, text, created_at) VALUES %s",
            [(ids[m.author], m.text, now - timedelta(minutes=m.minutes_ago))
             for m in fixture.messages], page_size=_BATCH)
        return _finish(cur, "fixtures", fixture.name, len(users), len(fixture.messages))


def restore_snapshot(source: Any, target: Any, source_name: str,
                     password_hash: str) -> Loaded:
    """Copy the users (id, nickname, created_at) and visible messages of `source` into
    an empty `target`, once; every user gets `password_hash`."""
    with _loading(target, "snapshot", source_name) as cur:
        if isinstance(cur, Loaded):
            return cur
        try:
            with source.cursor(name="snapshot_users") as users:
                users.itersize = _BATCH
                users.execute("SELECT id, nickname, created_at FROM chat_user ORDER BY id")
                count = 0
                for batch in _batches(users):
                    count += len(_insert_users(
                        cur, [(uid, nick, password_hash, at) for uid, nick, at in batch]))
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MESSAGE_INSERT_LOCK,))
            with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool, \
                    source.cursor() as read:
                read.copy_expert(
                    "COPY (SELECT id, user_id, text, created_at FROM chat_message "
                    "WHERE deleted_at IS NULL ORDER BY id) TO STDOUT", spool)
                spool.seek(0)
                cur.copy_expert(
                    "COPY chat_message (id, user_id, text, created_at) FROM STDIN", spool)
                messages = cur.rowcount
            source.rollback()
        except psycopg2.errors.InsufficientPrivilege as e:
            raise SeedError(f"the snapshot role may not read this: {_first_line(e)}") from None
        except (psycopg2.errors.UndefinedTable, psycopg2.errors.UndefinedColumn) as e:
            raise SeedError(f"the source is not a chat database this version can read: "
                            f"{_first_line(e)}") from None
        for table in ("chat_user", "chat_message"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                        f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
        return _finish(cur, "snapshot", source_name, count, messages)


def _batches(cur: Any) -> Iterator[list[Any]]:
    while rows := cur.fetchmany(_BATCH):
        yield rows


def _insert_users(cur: Any, users: Sequence[tuple[int | None, str, str, datetime]]
                  ) -> list[tuple[str, int]]:
    """Insert (id or None, nickname, hash, created_at); returns (nickname, id) of each."""
    rows = [(uid, nick, nicknames.key(nick), pw, at) for uid, nick, pw, at in users]
    keys = [r[2] for r in rows]
    if len(set(keys)) != len(keys):
        raise SeedError("two users' nicknames look alike (same nickname key): the source "
                        "was made by a version that allowed it")
    with_ids = [r for r in rows if r[0] is not None]
    fresh = [r[1:] for r in rows if r[0] is None]
    out: list[tuple[str, int]] = []
    if with_ids:
        out += psycopg2.extras.execute_values(
            cur, "INSERT INTO chat_user (id, nickname, nickname_key, password_hash, created_at) "
                 "VALUES %s RETURNING nickname, id", with_ids, page_size=_BATCH, fetch=True)
    if fresh:
        out += psycopg2.extras.execute_values(
            cur, "INSERT INTO chat_user (nickname, nickname_key, password_hash, created_at) "
                 "VALUES %s RETURNING nickname, id", fresh, page_size=_BATCH, fetch=True)
    return [(str(nick), int(uid)) for nick, uid in out]


@contextmanager
def _loading(conn: Any, kind: str, name: str) -> Iterator[Any]:
    """The load's transaction: the data lock, then either the `Loaded` already there
    (yielded instead of a cursor) or a cursor on an empty database. Commits when the
    block ends, rolls everything back on any error."""
    cur = conn.cursor()
    try:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (DATA_LOCK,))
        cur.execute("SELECT kind, name, users, messages FROM chat_data_source")
        row = cur.fetchone()
        if row is not None:
            if (row[0], row[1]) != (kind, name):
                raise SeedError(f"this database already holds {row[0]} {row[1]}; it keeps "
                                "the data it started with")
            yield Loaded(row[0], row[1], row[2], row[3], loaded_now=False)
        else:
            cur.execute("SELECT (SELECT count(*) FROM chat_user), "
                        "(SELECT count(*) FROM chat_message)")
            users, messages = cur.fetchone()
            if users or messages:
                raise SeedError(
                    f"the database is not empty ({users} users, {messages} messages): data "
                    "is loaded only into a new environment's empty database")
            yield cur
    except BaseException:
        conn.rollback()
        raise
    else:
        conn.commit()
    finally:
        cur.close()


def _finish(cur: Any, kind: str, name: str, users: int, messages: int) -> Loaded:
    # Per-user stored bytes, as migration 0003 counts them.
    cur.execute("UPDATE chat_user u SET stored_bytes = s.bytes FROM (SELECT user_id, "
                "sum(octet_length(text)) AS bytes FROM chat_message GROUP BY user_id) s "
                "WHERE s.user_id = u.id")
    cur.execute("INSERT INTO chat_data_source (kind, name, users, messages) "
                "VALUES (%s, %s, %s, %s)", (kind, name, users, messages))
    return Loaded(kind, name, users, messages, loaded_now=True)


def data_source(conn: Any) -> Loaded | None:
    """What the database was loaded with, if anything."""
    with conn.cursor() as cur:
        cur.execute("SELECT kind, name, users, messages FROM chat_data_source")
        row = cur.fetchone()
    conn.rollback()
    return None if row is None else Loaded(row[0], row[1], row[2], row[3], loaded_now=False)


# --- the source's side ----------------------------------------------------------------

def ensure_snapshot_reader(conn: Any, password: str) -> None:
    """The `chat_snapshot` role with this password (sent as a SCRAM verifier, never in
    clear), able to log in and read only what a snapshot copies."""
    verifier = psycopg2.extensions.encrypt_password(password, SNAPSHOT_ROLE, conn,
                                                    "scram-sha-256")
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (DATA_LOCK,))
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (SNAPSHOT_ROLE,))
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(f"{verb} ROLE chat_snapshot WITH LOGIN NOSUPERUSER NOCREATEDB "
                    "NOCREATEROLE NOINHERIT CONNECTION LIMIT 4 PASSWORD %s", (verifier,))
        cur.execute("ALTER ROLE chat_snapshot SET default_transaction_read_only = on")
        cur.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM chat_snapshot")
        cur.execute("GRANT USAGE ON SCHEMA public TO chat_snapshot")
        for grant in _SNAPSHOT_GRANTS:
            cur.execute(grant)
    conn.commit()


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
