"""`python -m chat_service admin ...`: user and message administration from a shell.

Meant for `kubectl exec deploy/chat -- python -m chat_service admin stats`. Uses the
same environment variables as the server. New passwords are read from standard
input or an interactive prompt, never from the command line (where `ps` and shell
history would keep them). Changes are announced to live clients and sessions of
a deleted user or a changed password are ended, when Redis is reachable.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from opentelemetry.trace import NoOpTracer

from chat_service import events, queries, validation
from chat_service.config import Config
from chat_service.database import open_database
from chat_service.errors import RedisUnavailable, ValidationFailed
from chat_service.models import rfc3339
from chat_service.passwords import PasswordHasher
from chat_service.redis_store import RedisStore, create_client

EXIT_NOT_FOUND = 1
EXIT_INVALID = 2


def add_parser(commands: Any) -> None:
    """Add the `admin` command and its subcommands to the CLI's subparsers."""
    parser = commands.add_parser("admin", help="administer users and messages")
    sub = parser.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    users = sub.add_parser("list-users", help="list users with their message counts")
    users.add_argument("--json", action="store_true", help="print JSON")
    delete = sub.add_parser("delete-user", help="delete a user and all their messages")
    delete.add_argument("nickname")
    message = sub.add_parser("delete-message", help="delete (soft) a message by id")
    message.add_argument("id", type=int)
    password = sub.add_parser(
        "set-password", help="set a user's password (read from stdin, or prompted)")
    password.add_argument("nickname")
    stats = sub.add_parser("stats", help="counts of users and messages")
    stats.add_argument("--json", action="store_true", help="print JSON")


async def run(config: Config, args: argparse.Namespace) -> int:
    """Run one admin action; returns the exit code."""
    async with open_database(config) as db:
        command = args.admin_command
        if command == "list-users":
            rows = await queries.list_users(db)
            if args.json:
                print(json.dumps([{"id": i, "nickname": n, "createdAt": rfc3339(c),
                                   "messages": m} for i, n, c, m in rows], ensure_ascii=False))
            else:
                print(f"{'ID':>8}  {'NICKNAME':<32}  {'CREATED (UTC)':<24}  MESSAGES")
                for user_id, nickname, created, count in rows:
                    print(f"{user_id:>8}  {nickname:<32}  {rfc3339(created):<24}  {count}")
            return 0
        if command == "stats":
            data = await queries.stats(db)
            if data["lastMessageAt"] is not None:
                data["lastMessageAt"] = rfc3339(data["lastMessageAt"])
            if args.json:
                print(json.dumps(data))
            else:
                for key, value in data.items():
                    print(f"{key}: {value}")
            return 0
        if command == "delete-user":
            user = await queries.find_user(db, args.nickname)
            if user is None:
                return _fail(f"no user named {args.nickname!r}", EXIT_NOT_FOUND)
            ids = await queries.user_message_ids(db, user.id)
            if not await queries.delete_user(db, user.id):
                return _fail(f"no user named {args.nickname!r}", EXIT_NOT_FOUND)
            print(f"deleted user {user.nickname!r} (id {user.id}) and {len(ids)} messages")
            await _tell_redis(config, user_id=user.id, deleted_ids=ids)
            return 0
        if command == "delete-message":
            if not 0 <= args.id <= validation.ID_MAX or \
                    not await queries.soft_delete_message(db, args.id, None):
                return _fail(f"no message with id {args.id}", EXIT_NOT_FOUND)
            print(f"deleted message {args.id}")
            await _tell_redis(config, user_id=None, deleted_ids=[args.id])
            return 0
        if command == "set-password":
            user = await queries.find_user(db, args.nickname)
            if user is None:
                return _fail(f"no user named {args.nickname!r}", EXIT_NOT_FOUND)
            try:
                password = validation.password({"password": _read_password()})
            except ValidationFailed as e:
                return _fail(e.message, EXIT_INVALID)
            hasher = PasswordHasher(config)
            try:
                await queries.set_password_hash(db, user.id, await hasher.hash(password))
            finally:
                hasher.close()
            print(f"password of {user.nickname!r} changed")
            await _tell_redis(config, user_id=user.id, deleted_ids=[])
            return 0
    return _fail(f"unknown admin command {command!r}", EXIT_INVALID)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Repeat: ") != first:
            raise ValidationFailed("the passwords differ")
        return first
    # One line from a pipe; only the line break is dropped, spaces are part of it.
    return sys.stdin.readline().rstrip("\r\n")


async def _tell_redis(config: Config, *, user_id: int | None, deleted_ids: list[int]) -> None:
    """End the user's sessions and announce deletions; a warning if Redis is away."""
    client = create_client(config)
    store = RedisStore(client, NoOpTracer(), config)
    try:
        if user_id is not None:
            ended = await store.delete_user_sessions(user_id)
            print(f"ended {ended} sessions")
        for message_id in deleted_ids:
            await store.publish(events.deleted_event(message_id))
    except RedisUnavailable:
        print("warning: Redis unavailable: sessions were not ended and live clients were "
              "not told (sessions of a deleted user fail on use anyway)", file=sys.stderr)
    finally:
        await client.aclose()


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
