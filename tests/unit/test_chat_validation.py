"""Input rules of the chat API (pure functions)."""

from __future__ import annotations

import pytest

from chat_service import validation
from chat_service.errors import ValidationFailed
from chat_service.validation import MessageQuery


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("a", "a"), ("  padded  ", "padded"), ("x" * 64, "x" * 64), ("Наташа", "Наташа"),
    ("日本語", "日本語"), ("a_b-c.d", "a_b-c.d"), ("two words", "two words"), ("٣٤", "٣٤"),
    ("e\u0301", "\u00e9"),  # NFC: e + combining acute becomes one character
    ("हिन्दी", "हिन्दी"),  # combining marks (M*) are letters' parts
    ("\uff41\uff4c\uff49\uff43\uff45", "alice"),  # NFKC: full-width becomes plain
    ("Tiếng Việt", "Tiếng Việt"), ("ﬁx", "fix"),
    ("a\u0301\u0302\u0303\u0304", "\u00e1\u0302\u0303\u0304"),  # four marks: fine
])
def test_nickname_accepted(raw: str, cleaned: str) -> None:
    assert validation.nickname({"nickname": raw}) == cleaned


@pytest.mark.parametrize("raw", [
    "", "   ", "x" * 65, "a  b", "emoji😀", "semi;colon", "quote'", "tab\tx", "new\nline",
    "slash/", "at@", "nul\x00", "\ud800", "zero\u200bwidth",
    "a" + "\u0301" * 63,  # 63 combining marks, as the review registered
    "a\u0301\u0302\u0303\u0304\u0305",  # five different marks on one letter
    "e\u0301\u0301",  # one mark twice in a row
    "alice\ufe0f", "bob\u034f", "\u3164",  # invisible (default-ignorable) characters
])
def test_nickname_rejected(raw: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        validation.nickname({"nickname": raw})
    assert e.value.field == "nickname"


@pytest.mark.parametrize("body", [{}, {"nickname": None}, {"nickname": 1}, {"nickname": []},
                                  {"nickname": True}, {"nickname": {"a": 1}}])
def test_nickname_type(body: dict[str, object]) -> None:
    with pytest.raises(ValidationFailed):
        validation.nickname(body)


@pytest.mark.parametrize(("length", "ok"), [(0, False), (7, False), (8, True), (256, True),
                                            (257, False)])
def test_password_length(length: int, ok: bool) -> None:
    body = {"password": "p" * length}
    if ok:
        assert validation.password(body) == "p" * length
    else:
        with pytest.raises(ValidationFailed):
            validation.password(body)


def test_password_not_trimmed() -> None:
    assert validation.password({"password": "  spaced  "}) == "  spaced  "


@pytest.mark.parametrize(("raw", "ok"), [("a", True), ("x" * 1999, True), ("x" * 2000, True),
                                         ("x" * 2001, False), (" " + "x" * 2000 + "\n", True),
                                         ("", False), (" \n\t", False), ("🎉" * 2000, True)])
def test_text_length(raw: str, ok: bool) -> None:
    if ok:
        assert validation.text({"text": raw}) == raw.strip()
    else:
        with pytest.raises(ValidationFailed):
            validation.text({"text": raw})


def test_message_query() -> None:
    assert validation.message_query({}) == MessageQuery(limit=50)
    assert validation.message_query({"after_id": "5", "limit": "200"}) == \
        MessageQuery(limit=200, after_id=5)
    assert validation.message_query({"before_id": "0007"}) == MessageQuery(before_id=7)
    huge = validation.message_query({"after_id": "9" * 5000})
    assert huge.after_id == validation.ID_MAX
    # As the original: a limit above the maximum is clamped, an empty one is absent, and
    # an after_id of 0 or less means no cursor (docs/chat-api.md).
    assert validation.message_query({"limit": "201"}) == MessageQuery(limit=200)
    assert validation.message_query({"limit": "9" * 5000}) == MessageQuery(limit=200)
    assert validation.message_query({"limit": ""}) == MessageQuery(limit=50)
    assert validation.message_query({"after_id": "-1"}) == MessageQuery(limit=50)
    for bad in ({"limit": "0"}, {"limit": "-3"}, {"limit": "x"},
                {"after_id": "1", "before_id": "2"}, {"before_id": "²"}, {"before_id": "-1"},
                {"after_id": "1e3"}):
        with pytest.raises(ValidationFailed):
            validation.message_query(bad)


def test_event_cursor() -> None:
    assert validation.event_cursor(None, None) is None
    assert validation.event_cursor("12", "3") == 12
    assert validation.event_cursor("garbage", "3") == 3
    assert validation.event_cursor(None, "0") == 0
    with pytest.raises(ValidationFailed):
        validation.event_cursor(None, "x")
