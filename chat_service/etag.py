"""Entity tags for message lists, so a poll that finds nothing new costs one tiny query.

Pure: the tag is derived from the query, the highest message id and the deletion
version (a counter PostgreSQL bumps, by trigger, whenever a message is soft- or
hard-deleted). New messages raise the highest id; deletions bump the version; so
any change that could alter a page changes every tag. No I/O here.
"""

from __future__ import annotations

import hashlib

from chat_service.validation import MessageQuery

# Bump when the response format changes, so cached bodies of the old format go stale.
_FORMAT = "1"


def message_list_etag(query: MessageQuery, max_id: int, deletion_version: int) -> str:
    """The strong ETag (quoted) of `GET /api/messages` for this query and database state."""
    key = f"{_FORMAT}|{query.after_id}|{query.before_id}|{query.limit}|{max_id}|{deletion_version}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return f'"m{max_id}-v{deletion_version}-{digest}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak comparison, as RFC 9110 asks)."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    bare = etag.removeprefix("W/")
    return any(c == "*" or c.removeprefix("W/") == bare for c in candidates)
