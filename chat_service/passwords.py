"""argon2id password hashing on a bounded thread pool, off the event loop.

Verifying against a dummy hash when the user is unknown makes a failed login take
about as long whether or not the nickname exists. Hashes the original backend stored
(bcrypt, `$2a$`/`$2b$`/`$2y$`) still verify; `needs_rehash` says yes to them, so the
next successful login replaces them with argon2id. The pool's threads are the only
resource here; `PasswordHasher.close` releases them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import argon2
import argon2.exceptions
import bcrypt

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
                                        thread_name_prefix="argon2",
                                        initializer=_lower_priority)
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
        if encoded is not None and is_bcrypt(encoded):
            return _bcrypt_verify(encoded, password)
        try:
            return self._argon.verify(encoded or self._dummy, password) and encoded is not None
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """Whether `encoded` is not argon2id with the configured parameters (a bcrypt
        hash of the original backend, or older argon2 settings)."""
        if is_bcrypt(encoded):
            return True
        try:
            return self._argon.check_needs_rehash(encoded)
        except argon2.exceptions.InvalidHashError:
            return True

    def close(self) -> None:
        """Stop the worker threads (waiting for running hashes)."""
        self._pool.shutdown(wait=True)


# Hashing threads run at this nice value: a login burst then takes the CPU the request
# handlers leave over, instead of slowing every other request down.
HASH_NICE = 10


def _lower_priority() -> None:
    # Linux keeps a nice value per thread; argon2's own lane threads inherit it.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)


_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


def is_bcrypt(encoded: str) -> bool:
    """Whether `encoded` is a bcrypt hash (as the original backend stored them)."""
    return encoded.startswith(_BCRYPT_PREFIXES)


def _bcrypt_verify(encoded: str, password: str) -> bool:
    # `$2y$` (PHP's name) is the same algorithm as `$2b$`; the library knows `$2a$`/`$2b$`.
    stored = encoded.encode("ascii", "replace")
    if stored.startswith(b"$2y$"):
        stored = b"$2b$" + stored[4:]
    try:
        return bcrypt.checkpw(password.encode("utf-8"), stored)
    except ValueError:
        # A malformed hash, or a password past bcrypt's 72 bytes, which the original could
        # never have stored: no match.
        return False
