"""services.yaml's keys for sleeping when idle (stages.<stage>.idle) and for the data a
DevSlot starts with (slots.data): defaults, valid values, and bad ones named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatenv_operator.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[2]
DOC = yaml.safe_load((ROOT / "services.yaml").read_text())


def changed(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DOC)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return doc


def test_the_shipped_file_lets_slots_sleep_after_30_minutes_and_start_empty() -> None:
    config = parse_config(DOC)
    assert config.stages["ai"].idle == 30 * 60
    assert config.stages["dev"].idle is None
    assert config.stages["ai-staging"].idle is None
    assert config.slots.data == "empty"


@pytest.mark.parametrize(("value", "seconds"), [
    ("10s", 10), ("2h", 7200), ("1h30m", 5400), ("7d", 7 * 86400), ("never", None),
    (..., None)])
def test_idle(value: Any, seconds: int | None) -> None:
    assert parse_config(changed("stages.dev.idle", value)).stages["dev"].idle == seconds


@pytest.mark.parametrize(("value", "message"), [
    ("5s", "stages.dev.idle: must be between 10s and 720h, or never"),
    ("31d", "stages.dev.idle: must be between 10s and 720h, or never"),
    ("soon", "stages.dev.idle: not a duration"),
    (30, "stages.dev.idle: not a duration"),
])
def test_bad_idle(value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(changed("stages.dev.idle", value))


@pytest.mark.parametrize("mode", ["empty", "fixtures", "snapshot"])
def test_slot_data(mode: str) -> None:
    assert parse_config(changed("slots.data", mode)).slots.data == mode


def test_bad_slot_data() -> None:
    with pytest.raises(ConfigError, match=r"slots\.data: must be one of empty, fixtures, "
                                          r"snapshot, got 'staging'"):
        parse_config(changed("slots.data", "staging"))
    assert parse_config(changed("slots.data", ...)).slots.data == "empty"
