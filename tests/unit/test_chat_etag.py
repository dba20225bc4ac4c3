"""Message-list ETags (pure)."""

from __future__ import annotations

from chat_service.etag import matches, message_list_etag
from chat_service.validation import MessageQuery


def test_tag_changes_with_every_input() -> None:
    base = message_list_etag(MessageQuery(), 10, 0)
    assert base.startswith('"')
    assert base.endswith('"')
    assert message_list_etag(MessageQuery(), 10, 0) == base
    others = {message_list_etag(MessageQuery(), 11, 0), message_list_etag(MessageQuery(), 10, 1),
              message_list_etag(MessageQuery(limit=5), 10, 0),
              message_list_etag(MessageQuery(after_id=3), 10, 0),
              message_list_etag(MessageQuery(before_id=3), 10, 0)}
    assert base not in others
    assert len(others) == 5


def test_if_none_match() -> None:
    tag = message_list_etag(MessageQuery(), 1, 0)
    assert matches(tag, tag)
    assert matches(f'"other", {tag}', tag)
    assert matches(f"W/{tag}", tag)
    assert matches("*", tag)
    assert not matches(None, tag)
    assert not matches("", tag)
    assert not matches('"other"', tag)
