"""Entity tags for message lists, so a poll that finds nothing new costs no body.

Pure: a tag is a hash of the response body, so the same answer has the same tag in
every process and replica, whether it came from memory or from PostgreSQL, and any
change to what a page shows (a new message, a deletion) changes its tag. No I/O here.
"""

from __future__ import annotations

import hashlib


def body_tag(body: bytes) -> str:
    """The strong ETag (quoted) of a response body."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak comparison, as RFC 9110 asks)."""
    if not if_none_match:
        return False
    candidates = [c.strip() for c in if_none_match.split(",")]
    bare = etag.removeprefix("W/")
    return any(c == "*" or c.removeprefix("W/") == bare for c in candidates)
