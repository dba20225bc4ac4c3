"""Parsers of environment-variable values, for `chat_service.config`.

Pure: each parser takes the stripped text and returns the value or raises
`ValueError` with the rule it broke ("must be an integer 1-65535"); the caller
names the variable. No I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import TypeVar

_T = TypeVar("_T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """An environment variable has a value the service cannot use."""


class Reader:
    """Reads variables from a mapping; unset or blank ones take their defaults."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, parse: Callable[[str], _T], default: _T) -> _T:
        """`parse` of the variable's stripped value, or `default` when unset or blank;
        a `ConfigError` naming the variable when `parse` refuses it."""
        raw = self._env.get(name, "")
        if raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError as e:
            raise ConfigError(f"{name} {e}, got {raw!r}") from None


def nonempty(raw: str) -> str:
    """Any text (blank values never reach a parser)."""
    return raw


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """A decimal integer within [lo, hi]."""
    def parse(raw: str) -> int:
        try:
            value = int(raw, 10)
        except ValueError:
            value = lo - 1
        if not lo <= value <= hi:
            raise ValueError(f"must be an integer {lo}-{hi}")
        return value
    return parse


def seconds(lo: float, hi: float) -> Callable[[str], float]:
    """A number of seconds within [lo, hi] (NaN and infinities refused)."""
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not lo <= value <= hi:  # also rejects NaN
            raise ValueError(f"must be a number of seconds {lo:g}-{hi:g}")
        return value
    return parse


def boolean(raw: str) -> bool:
    """true/false, yes/no, on/off, 1/0 (any case)."""
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def log_level(raw: str) -> str:
    """One of LOG_LEVELS, any case; returned upper-case."""
    if raw.upper() not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return raw.upper()


def url(raw: str) -> str:
    """An http:// or https:// URL, without a trailing slash."""
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return raw.rstrip("/")


def networks(raw: str) -> tuple[Network, ...]:
    """Comma-separated CIDR ranges (`10.42.0.0/16, fd00::/8`); a bare address is its
    own range. Host bits must be zero, so a typo cannot widen a range unnoticed."""
    found: list[Network] = []
    for part in raw.split(","):
        text = part.strip()
        if not text:
            continue
        try:
            found.append(ipaddress.ip_network(text, strict=True))
        except ValueError:
            raise ValueError(
                f"must be comma-separated CIDR ranges such as 10.42.0.0/16 ({text!r} is "
                "not one)") from None
    return tuple(found)
