"""Versioned SQL migrations: `migrations/NNNN_name.sql`, recorded in `schema_migrations`.

`migrate` applies the missing ones, each in its own transaction, under a
PostgreSQL advisory lock so several replicas may run it at once; running it
again does nothing. A database the original backend made (its `chat_user` and
`chat_message`, no `schema_migrations`) is adopted in place: checked, brought to
0001's schema by `migrations/adopt_original.sql` in one transaction, and recorded
as 0001. Tables of those names with any other shape are refused. `check` is what
the server runs at start: it refuses an unmigrated, partially migrated or altered
schema. Both do I/O through a `Database`.

`migrate` runs without a statement timeout (a migration may rewrite a large table)
and waits for the lock at most MIGRATION_LOCK_TIMEOUT_SECONDS, then raises
`MigrationLockTimeout`, which the command line turns into its own exit code.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources

import psycopg2
import psycopg2.errors

from chat_service import nicknames, queries
from chat_service.database import Database, Session

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_ADOPTION_FILE = "adopt_original.sql"

# The original's tables as its Django migrations made them: column -> accepted types
# (information_schema's data_type, with the varchar length). `deleted_at` came later.
_ORIGINAL_COLUMNS: dict[str, dict[str, set[str]]] = {
    "chat_user": {"id": {"bigint"}, "nickname": {"character varying(64)"},
                  "password_hash": {"character varying(128)", "character varying(256)",
                                    "text"},
                  "created_at": {"timestamp with time zone"}},
    "chat_message": {"id": {"bigint"}, "user_id": {"bigint"}, "text": {"text"},
                     "created_at": {"timestamp with time zone"}},
}
_ORIGINAL_OPTIONAL = {"chat_message": {"deleted_at": {"timestamp with time zone"}}}


# Client-side limit per migration statement: in effect none (the server has none either).
_MIGRATION_STATEMENT_SECONDS = 7 * 86400.0


class SchemaNotReady(Exception):
    """The database schema does not match the migrations this version ships."""


class MigrationLockTimeout(Exception):
    """Another migrator held the migration lock for longer than the wait allowed."""


@dataclass
class Report:
    """What one `migrate` did."""

    applied: list[Migration] = field(default_factory=list)
    """Migrations applied by this run, in order."""
    adopted: tuple[int, int] | None = None
    """(users, messages) of an original backend's database adopted by this run, if any."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, to notice a migration edited after it was applied."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """The migrations shipped in the package, by version."""
    found = []
    for entry in resources.files("chat_service.migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate(db: Database, *, lock_timeout: float) -> Report:
    """Apply every missing migration (adopting an original backend's database first),
    waiting up to `lock_timeout` seconds for another migrator to finish."""
    report = Report()
    async with db.session(statement_seconds=_MIGRATION_STATEMENT_SECONDS + lock_timeout) as session:
        await queries.unlimit_statements(session)
        await _lock(session, lock_timeout)
        try:
            done = await queries.applied_migrations(session)
            if done is None:
                report.adopted = await _adopt_original(session)
            await queries.ensure_migrations_table(session)
            done = await queries.applied_migrations(session) or {}
            _verify_applied(done, available())
            for migration in available():
                if migration.version in done:
                    continue
                async with _transaction(session):
                    await queries.run_migration_script(session, migration.sql)
                    step = _PYTHON_STEPS.get(migration.version)
                    if step is not None:
                        await step(session)
                    await queries.record_migration(session, migration.version, migration.name,
                                                   migration.checksum)
                report.applied.append(migration)
        finally:
            await queries.unlock_migrations(session)
    return report


async def _lock(session: Session, wait_seconds: float) -> None:
    if await queries.try_lock_migrations(session):
        return
    holder = await queries.migration_lock_holder(session)
    log.info("waiting up to %g s for the migration lock, held by %s", wait_seconds,
             holder or "another migrator")
    try:
        await queries.lock_migrations(session, wait_seconds)
    except psycopg2.errors.LockNotAvailable:
        holder = await queries.migration_lock_holder(session)
        raise MigrationLockTimeout(
            f"another migrator held the migration lock for more than {wait_seconds:g} s "
            f"({holder or 'it has just released it'}); nothing was changed. Run migrate "
            "again, or raise MIGRATION_LOCK_TIMEOUT_SECONDS") from None


@asynccontextmanager
async def _transaction(session: Session) -> AsyncIterator[None]:
    """BEGIN ... COMMIT, or ROLLBACK on any exception."""
    await session.execute("BEGIN", "BEGIN")
    try:
        yield
    except BaseException:
        await session.execute("ROLLBACK", "ROLLBACK")
        raise
    await session.execute("COMMIT", "COMMIT")


async def _adopt_original(session: Session) -> tuple[int, int] | None:
    """Adopt the original backend's tables if they are here; None when there are none
    (a fresh database). Raises `SchemaNotReady` for tables of another shape."""
    columns = await queries.table_columns(session, list(_ORIGINAL_COLUMNS))
    if not columns:
        return None
    problem = _original_shape_problem(columns)
    if problem:
        raise SchemaNotReady(
            f"the database has tables {', '.join(sorted(columns))} that neither this service "
            f"nor the original backend made ({problem}); refusing to touch them")
    clashes = await queries.nickname_case_clashes(session)
    if clashes:
        listed = "; ".join(" / ".join(f"{nick!r} (id {uid})" for uid, nick in group)
                           for group in clashes[:10])
        raise SchemaNotReady(
            "cannot adopt the original backend's database: nicknames here must be unique "
            f"regardless of case, and these differ only in case: {listed}. Give all but "
            "one of each another nickname in chat_user, then run migrate again; nothing "
            "was changed")
    initial = available()[0]
    try:
        async with _transaction(session):
            users, messages = await queries.count_users_and_messages(session)
            await queries.run_migration_script(session, _adoption_sql())
            await queries.ensure_migrations_table(session)
            await queries.record_migration(session, initial.version, initial.name,
                                           initial.checksum)
    except psycopg2.DatabaseError as e:
        # E.g. the tables belong to another role. The transaction rolled back: unchanged.
        raise SchemaNotReady(
            f"could not adopt the original backend's database ({str(e).strip()}); "
            "nothing was changed") from None
    return users, messages


async def _fill_nickname_keys(session: Session) -> None:
    """0002's second half: each user's `nicknames.key`, unique; refuses (the transaction
    rolls back, nothing changes) when existing users share one, naming them."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for user_id, nickname in await queries.all_nicknames(session):
        groups.setdefault(nicknames.key(nickname), []).append((user_id, nickname))
    clashes = [group for group in groups.values() if len(group) > 1]
    if clashes:
        listed = "; ".join(" / ".join(f"{nick!r} (id {uid})" for uid, nick in group)
                           for group in clashes[:10])
        more = f" and {len(clashes) - 10} more groups" if len(clashes) > 10 else ""
        fix = "UPDATE chat_user SET nickname = '...' WHERE id = ..."
        raise SchemaNotReady(
            "cannot apply 0002_nickname_key: nicknames must now be unique by how they look "
            "(case, look-alike letters from other scripts, full-width forms), and these "
            f"existing users look alike: {listed}{more}. Give all but one of each another "
            f"nickname ({fix}), then run migrate again; nothing was changed")
    await queries.fill_nickname_keys(session,
                                     [(group[0][0], key) for key, group in groups.items()])


# Steps a migration needs beyond its SQL file, run in the same transaction after it.
_PYTHON_STEPS: dict[int, Callable[[Session], Awaitable[None]]] = {2: _fill_nickname_keys}


def _original_shape_problem(columns: dict[str, dict[str, str]]) -> str:
    """Why these tables are not the original's, or "" when they are."""
    for table, expected in _ORIGINAL_COLUMNS.items():
        found = columns.get(table)
        if found is None:
            return f"{table} is missing"
        optional = _ORIGINAL_OPTIONAL.get(table, {})
        for name, kinds in {**expected, **optional}.items():
            if name in found and found[name] not in kinds:
                return f"{table}.{name} is {found[name]}"
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected) - set(optional))
        if missing or extra:
            return f"{table} has columns {', '.join(sorted(found))}"
    return ""


def _adoption_sql() -> str:
    return resources.files("chat_service.migrations").joinpath(_ADOPTION_FILE).read_text(
        encoding="utf-8")


async def check(db: Database) -> None:
    """Raise `SchemaNotReady` unless every shipped migration, and no other, is applied."""
    done = await queries.applied_migrations(db)
    if done is None:
        raise SchemaNotReady(
            "the database is not migrated: run `python -m chat_service migrate` first")
    shipped = available()
    _verify_applied(done, shipped)
    missing = [f"{m.version:04d}_{m.name}" for m in shipped if m.version not in done]
    if missing:
        raise SchemaNotReady(
            f"the database is missing migrations {', '.join(missing)}: "
            "run `python -m chat_service migrate` first")


def _verify_applied(done: dict[int, tuple[str, str]], shipped: list[Migration]) -> None:
    by_version = {m.version: m for m in shipped}
    for version, (name, checksum) in sorted(done.items()):
        migration = by_version.get(version)
        if migration is None:
            raise SchemaNotReady(
                f"the database has migration {version:04d}_{name}, which this version does "
                "not know: it was migrated by a newer release")
        if migration.checksum != checksum:
            raise SchemaNotReady(
                f"migration {version:04d}_{name} was changed after it was applied")
