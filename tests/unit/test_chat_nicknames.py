"""Nickname identity (Unicode TS #39 skeleton) and the vendored confusables data."""

from __future__ import annotations

import re
import unicodedata
from importlib import resources

import pytest

from chat_service import nicknames


def test_the_vendored_table_is_whole() -> None:
    text = resources.files("chat_service.unicode").joinpath("confusables.txt").read_text(
        encoding="utf-8")
    total = re.search(r"^# total: (\d+)$", text, re.MULTILINE)
    assert total is not None
    assert len(nicknames.prototypes()) == int(total.group(1)) == 6565
    assert "Version: 17.0.0" in text
    license_text = resources.files("chat_service.unicode").joinpath("LICENSE").read_text()
    assert "UNICODE LICENSE V3" in license_text


@pytest.mark.parametrize("lookalike", [
    "alice", "ALICE", "Alice", "\u0430lice",  # Cyrillic a
    "\uff41\uff4c\uff49\uff43\uff45",  # full-width
    "al\u0456ce",  # Cyrillic i
    "alice\u200b", "a\u00adlice",  # invisible characters
    "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e",  # mathematical bold
])
def test_lookalikes_share_a_key(lookalike: str) -> None:
    assert nicknames.key(lookalike) == nicknames.key("alice")


@pytest.mark.parametrize(("one", "other"), [
    ("b0b", "bob"), ("Amie", "Arnie"), ("Straße", "STRASSE"), ("Наташа", "НАТАША"),
    ("paypa1", "paypal"),
])
def test_confusable_pairs(one: str, other: str) -> None:
    assert nicknames.key(one) == nicknames.key(other)


@pytest.mark.parametrize(("one", "other"), [
    ("alice", "alicia"), ("José", "Jose"), ("日本", "日本語"), ("ann", "anna"),
])
def test_different_names_differ(one: str, other: str) -> None:
    assert nicknames.key(one) != nicknames.key(other)


@pytest.mark.parametrize("name", ["alice", "ÄRGER", "Наташа", "b0b", "Tiếng Việt", "हिन्दी"])
def test_key_is_stable(name: str) -> None:
    once = nicknames.key(name)
    assert nicknames.key(once) == once
    assert nicknames.key(unicodedata.normalize("NFD", name)) == once


def test_skeleton_follows_ts39() -> None:
    # NFD, drop default ignorables, map to prototypes, NFD: the standard's own examples.
    assert nicknames.skeleton("\u0430") == "a"
    assert nicknames.skeleton("1") == "l"
    assert nicknames.skeleton("rn") == "rn"
    assert nicknames.skeleton("m") == "rn"
    assert nicknames.skeleton("a\u200db") == "ab"


@pytest.mark.parametrize(("name", "problem"), [
    ("a" + "\u0301" * 63, "the same combining mark twice in a row"),
    ("a\u0301\u0302\u0303\u0304\u0305", "more than 4 combining marks on one character"),
    ("Tiếng Việt", None), ("हिन्दी", None), ("a\u0301b\u0301", None),
])
def test_marks(name: str, problem: str | None) -> None:
    assert nicknames.mark_problem(name) == problem
