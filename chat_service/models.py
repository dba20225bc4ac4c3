"""The service's records and their JSON form (the original's field names).

Pure dataclasses; no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson


def rfc3339(moment: datetime) -> str:
    """`2024-05-01T12:00:00.123Z`: UTC, millisecond precision, as JavaScript's Date prints."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class User:
    """A registered user, with the stored password hash."""

    id: int
    nickname: str
    password_hash: str


@dataclass(frozen=True)
class Message:
    """A visible chat message with its author's nickname."""

    id: int
    user_id: int
    nickname: str
    text: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """`{id, userId, nickname, text, createdAt}` as the API returns it."""
        return {"id": self.id, "userId": self.user_id, "nickname": self.nickname,
                "text": self.text, "createdAt": rfc3339(self.created_at)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        """The message `to_json` described (as events carry it)."""
        return cls(id=int(data["id"]), user_id=int(data["userId"]),
                   nickname=str(data["nickname"]), text=str(data["text"]),
                   created_at=datetime.fromisoformat(str(data["createdAt"])))


def encode_message(message: Message) -> bytes:
    """A message's JSON, UTF-8, compact: the same bytes in every process."""
    return orjson.dumps(message.to_json())


def encode_messages(messages: Iterable[Message]) -> bytes:
    """A JSON array of messages, byte for byte as `LatestMessages` builds it."""
    return b"[" + b",".join(encode_message(m) for m in messages) + b"]"


@dataclass(frozen=True)
class SessionInfo:
    """Whose a session token is."""

    user_id: int
    nickname: str


class Refused(enum.Enum):
    """Why a post was not stored."""

    AUTHOR_GONE = "the author no longer exists"
    OVER_QUOTA = "the author has stored USER_STORAGE_MAX_BYTES of messages"
