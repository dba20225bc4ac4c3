"""Versioned SQL migrations: `migrations/NNNN_name.sql`, recorded in `schema_migrations`.

`migrate` applies the missing ones, each in its own transaction, under a
PostgreSQL advisory lock so several replicas may run it at once; running it
again does nothing. `check` is what the server runs at start: it refuses an
unmigrated, partially migrated or altered schema. Both do I/O through a `Database`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from chat_service import queries
from chat_service.database import Database

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SchemaNotReady(Exception):
    """The database schema does not match the migrations this version ships."""


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


async def migrate(db: Database) -> list[Migration]:
    """Apply every missing migration; returns those applied by this call."""
    applied_now: list[Migration] = []
    async with db.session() as session:
        await queries.lock_migrations(session)
        try:
            await queries.ensure_migrations_table(session)
            done = await queries.applied_migrations(session) or {}
            _verify_applied(done, available())
            for migration in available():
                if migration.version in done:
                    continue
                await session.execute("BEGIN", "BEGIN")
                try:
                    await queries.run_migration_script(session, migration.sql)
                    await queries.record_migration(session, migration.version, migration.name,
                                                   migration.checksum)
                except BaseException:
                    await session.execute("ROLLBACK", "ROLLBACK")
                    raise
                await session.execute("COMMIT", "COMMIT")
                applied_now.append(migration)
        finally:
            await queries.unlock_migrations(session)
    return applied_now


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
