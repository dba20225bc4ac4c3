"""Message-list ETags (pure): a hash of the body, compared as RFC 9110 asks."""

from __future__ import annotations

from chat_service.etag import body_tag, matches


def test_tag_is_a_quoted_hash_of_the_body() -> None:
    base = body_tag(b'[{"id": 1}]')
    assert base.startswith('"')
    assert base.endswith('"')
    # The same body has the same tag (in every process and replica), another body another.
    assert body_tag(b'[{"id": 1}]') == base
    others = {body_tag(b"[]"), body_tag(b'[{"id": 2}]'), body_tag(b'[{"id": 1} ]')}
    assert base not in others
    assert len(others) == 3


def test_if_none_match() -> None:
    tag = body_tag(b"[]")
    assert matches(tag, tag)
    assert matches(f'"other", {tag}', tag)
    assert matches(f"W/{tag}", tag)
    assert matches("*", tag)
    assert not matches(None, tag)
    assert not matches("", tag)
    assert not matches('"other"', tag)
