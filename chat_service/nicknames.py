"""Nickname identity: when two nicknames are the same user, and which marks are refused.

Pure functions over Unicode data; the only I/O is reading the vendored
`unicode/confusables.txt` once, on first use.

`key(nickname)` is what uniqueness, login and the login throttle compare (stored in
`chat_user.nickname_key`, unique): the NFKC form, case-folded, then the confusable
skeleton of Unicode Technical Standard #39 (section 4: NFD, drop default-ignorable
code points, map each character to its prototype, NFD), case-folded again because
prototypes include capitals (`0` -> `O`). So `alice`, `ALICE`, `alice` spelled with a
Cyrillic a, and `alice` in full-width letters share one key, as do `b0b` and `bob`, or
`Amie` and `Arnie` (`m` and `rn` are confusable): first come, first served. Accents
that show are kept (`José` is not `Jose`).

`mark_problem(nickname)` applies the optional checks of TS #39 section 5.4 to
nonspacing marks (no run of more than four, no mark repeated in a row), which keeps
stacks of combining marks ("zalgo") out of nicknames while every script's ordinary
use of marks passes.
"""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources

# Default_Ignorable_Code_Point, from DerivedCoreProperties.txt of Unicode 17.0.0:
# invisible characters the skeleton drops (and registration refuses).
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# TS #39 section 5.4: "Forbid sequences of more than 4 nonspacing marks".
MAX_MARKS_IN_A_ROW = 4
_NONSPACING = ("Mn", "Me")


def is_default_ignorable(ch: str) -> bool:
    """Whether `ch` is a Default_Ignorable_Code_Point (drawn as nothing)."""
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _DEFAULT_IGNORABLE)


@functools.cache
def prototypes() -> dict[str, str]:
    """character -> prototype, from confusables.txt (`SOURCE ; TARGET ; MA # ...`)."""
    text = resources.files("chat_service.unicode").joinpath("confusables.txt").read_text(
        encoding="utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        source, target, _kind = (field.strip() for field in data.split(";"))
        table[chr(int(source, 16))] = "".join(chr(int(c, 16)) for c in target.split())
    return table


def skeleton(text: str) -> str:
    """TS #39's skeleton(X): NFD, default-ignorables removed, prototypes, NFD."""
    table = prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    mapped = "".join(table.get(ch, ch) for ch in decomposed if not is_default_ignorable(ch))
    return unicodedata.normalize("NFD", mapped)


def key(nickname: str) -> str:
    """The identity of a nickname: equal keys mean the same user (see the module doc).

    Repeated until it no longer changes, so the key of a key is itself.
    """
    current = unicodedata.normalize("NFKC", nickname)
    for _ in range(8):
        folded = unicodedata.normalize("NFKC", current.casefold())
        following = skeleton(folded).casefold()
        if following == current:
            break
        current = following
    return current


def mark_problem(nickname: str) -> str | None:
    """Why the nonspacing marks of `nickname` are refused, or None when they are fine."""
    run = 0
    previous = ""
    for ch in unicodedata.normalize("NFD", nickname):
        if unicodedata.category(ch) in _NONSPACING:
            run += 1
            if run > MAX_MARKS_IN_A_ROW:
                return f"more than {MAX_MARKS_IN_A_ROW} combining marks on one character"
            if ch == previous:
                return "the same combining mark twice in a row"
        else:
            run = 0
        previous = ch
    return None
