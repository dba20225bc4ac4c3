"""argon2id password hashing on a bounded thread pool, off the event loop.

Verifying against a dummy hash when the user is unknown makes a failed login take
about as long whether or not the nickname exists. The pool's threads are the only
resource here; `PasswordHasher.close` releases them.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import argon2
import argon2.exceptions

from chat_service.config import Config


class PasswordHasher:
    """argon2id with the configured cost, run in its own small thread pool."""

    def __init__(self, config: Config) -> None:
        self._argon = argon2.PasswordHasher(
            time_cost=config.argon2_time_cost, memory_cost=config.argon2_memory_kib,
            parallelism=config.argon2_parallelism, type=argon2.Type.ID)
        # argon2 releases the GIL while hashing, so threads give real parallelism;
        # the bound caps memory at workers x memory_cost.
        self._pool = ThreadPoolExecutor(max_workers=config.password_hash_workers,
                                        thread_name_prefix="argon2")
        self._dummy = self._argon.hash("dummy password for unknown users")

    async def hash(self, password: str) -> str:
        """The encoded argon2id hash of `password`."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._argon.hash, password)

    async def verify(self, encoded: str | None, password: str) -> bool:
        """Whether `password` matches `encoded`; with None, spends the same time and fails."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._verify, encoded, password)

    def _verify(self, encoded: str | None, password: str) -> bool:
        try:
            return self._argon.verify(encoded or self._dummy, password) and encoded is not None
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """Whether `encoded` was made with other parameters than the configured ones."""
        return self._argon.check_needs_rehash(encoded)

    def close(self) -> None:
        """Stop the worker threads (waiting for running hashes)."""
        self._pool.shutdown(wait=True)
