"""The services.yaml keys of the security hardening: valid values parse, bad ones name
their field, and each reaches what the operator builds."""

from __future__ import annotations

from typing import Any

import pytest
from test_operator_config import with_change

from chatenv_operator.config import ConfigError, parse_config


def test_agent_secrets_are_a_list_of_names() -> None:
    config = parse_config(with_change("slots.agentSecrets", ["agent-credentials", "a.b"]))
    assert config.slots.agent_secrets == ("agent-credentials", "a.b")
    assert parse_config(with_change("slots.agentSecrets", ...)).slots.agent_secrets == ()


@pytest.mark.parametrize("value", ["agent-credentials", ["Not_A_Name"], [""], [1]])
def test_agent_secrets_refuse_what_is_not_a_list_of_names(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"slots\.agentSecrets: must be a list of object"):
        parse_config(with_change("slots.agentSecrets", value))
