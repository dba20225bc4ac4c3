"""Input rules of the API: nicknames, passwords, message text, list queries.

Pure functions that return the cleaned value or raise `ValidationFailed`; no I/O.

Nickname: trimmed of surrounding whitespace, NFKC-normalised (full-width and other
compatibility forms become the plain ones), 1-64 characters (code points), each a
Unicode letter (L*), combining mark (M*), decimal digit or number (N*), or one of
`_`, `-`, `.`; single spaces are allowed between other characters. Emoji, symbols,
control characters, invisible (default-ignorable) characters and other punctuation
are not, nor more than four combining marks on one character or one mark twice in a
row (`chat_service.nicknames.mark_problem`). Uniqueness goes by
`chat_service.nicknames.key`: case and look-alike characters do not make a new name.

Password: 8-256 characters, any characters except NUL, not trimmed.

Text: trimmed, 1-2000 characters, no NUL; newlines and emoji are kept.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chat_service import nicknames
from chat_service.errors import ValidationFailed

NICKNAME_MAX = 64
PASSWORD_MIN = 8
PASSWORD_MAX = 256
TEXT_MAX = 2000
LIMIT_DEFAULT = 50
LIMIT_MAX = 200
# PostgreSQL bigint; larger cursors could never match a row.
ID_MAX = 2**63 - 1
_NICK_PUNCTUATION = frozenset("_-.")


def _string(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        raise ValidationFailed(f"{name} is required", field=name)
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (valid in JSON escapes, not in UTF-8) cannot be stored.
        raise ValidationFailed(f"{name} is not valid Unicode", field=name) from None
    if "\x00" in value:
        raise ValidationFailed(f"{name} must not contain NUL characters", field=name)
    return value


def _nickname_char_ok(ch: str) -> bool:
    if nicknames.is_default_ignorable(ch):
        return False
    return ch in _NICK_PUNCTUATION or unicodedata.category(ch)[0] in "LMN"


def nickname(body: Mapping[str, Any]) -> str:
    """The cleaned `nickname` of a registration body."""
    value = unicodedata.normalize("NFKC", _string(body, "nickname").strip())
    if not value:
        raise ValidationFailed("nickname must not be empty", field="nickname")
    if len(value) > NICKNAME_MAX:
        raise ValidationFailed(f"nickname must be at most {NICKNAME_MAX} characters",
                               field="nickname")
    if "  " in value:
        raise ValidationFailed("nickname must not contain consecutive spaces", field="nickname")
    bad = [ch for ch in value if ch != " " and not _nickname_char_ok(ch)]
    if bad:
        raise ValidationFailed(
            "nickname may contain only letters, digits, '_', '-', '.' and single inner spaces",
            field="nickname")
    problem = nicknames.mark_problem(value)
    if problem:
        raise ValidationFailed(f"nickname must not have {problem}", field="nickname")
    return value


def login_nickname(body: Mapping[str, Any]) -> str:
    """The `nickname` of a login body, cleaned like at registration but not judged:
    a nickname that breaks the rules simply matches nobody."""
    return unicodedata.normalize("NFKC", _string(body, "nickname").strip())


def password(body: Mapping[str, Any]) -> str:
    """The `password` of a registration body."""
    value = _string(body, "password")
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise ValidationFailed(
            f"password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters", field="password")
    return value


def login_password(body: Mapping[str, Any]) -> str:
    """The `password` of a login body: a string; its length is not judged (it just fails)."""
    return _string(body, "password")


def text(body: Mapping[str, Any]) -> str:
    """The cleaned `text` of a new message."""
    value = _string(body, "text").strip()
    if not value:
        raise ValidationFailed("text must not be empty", field="text")
    if len(value) > TEXT_MAX:
        raise ValidationFailed(f"text must be at most {TEXT_MAX} characters", field="text")
    return value


@dataclass(frozen=True)
class MessageQuery:
    """Which page of messages a `GET /api/messages` asks for."""

    limit: int = LIMIT_DEFAULT
    after_id: int | None = None
    before_id: int | None = None


def _integer(query: Mapping[str, str], name: str, what: str) -> int | None:
    """An optional integer parameter, read as the original's strconv.ParseInt did
    (optional sign, ASCII digits); empty counts as absent."""
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    digits = raw[1:] if raw[:1] in ("+", "-") else raw
    if not (digits.isascii() and digits.isdigit()):
        raise ValidationFailed(f"{name} must be {what}", field=name)
    value = _bounded_int(digits)
    return -value if raw[0] == "-" else value


def _bounded_int(digits: str) -> int:
    # int() refuses strings of thousands of digits; anything past 19 digits is out of range.
    significant = digits.lstrip("0") or "0"
    return ID_MAX if len(significant) > 19 else min(int(significant), ID_MAX)


def _cursor(query: Mapping[str, str], name: str) -> int | None:
    value = _integer(query, name, "a non-negative integer")
    if value is not None and value < 0:
        raise ValidationFailed(f"{name} must be a non-negative integer", field=name)
    return value


def message_query(query: Mapping[str, str]) -> MessageQuery:
    """Parse `after_id`, `before_id` and `limit`; unknown parameters are ignored.

    As the original backend: `after_id` of 0 or less (or empty) means no cursor, and a
    `limit` above the maximum is clamped to it. Empty `limit` and `before_id` are absent.
    """
    after_id = _integer(query, "after_id", "an integer")
    if after_id is not None and after_id <= 0:
        after_id = None
    before_id = _cursor(query, "before_id")
    if after_id is not None and before_id is not None:
        raise ValidationFailed("use either after_id or before_id, not both", field="before_id")
    limit = _integer(query, "limit", "a positive integer")
    if limit is not None and limit < 1:
        raise ValidationFailed("limit must be a positive integer", field="limit")
    return MessageQuery(limit=LIMIT_DEFAULT if limit is None else min(limit, LIMIT_MAX),
                        after_id=after_id, before_id=before_id)


def event_cursor(last_event_id: str | None, after_id: str | None) -> int | None:
    """Where an event stream resumes: `Last-Event-ID` wins over `?after_id=`.

    A Last-Event-ID that is not a number is ignored (the stream starts live), since
    browsers resend whatever id they saw; a bad `after_id` is the caller's error.
    """
    if last_event_id is not None and last_event_id.strip().isascii() \
            and last_event_id.strip().isdigit():
        return _bounded_int(last_event_id.strip())
    if after_id is None:
        return None
    return _cursor({"after_id": after_id}, "after_id")
