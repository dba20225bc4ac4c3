"""spec.agent.secretRefs cannot take any Secret of the operator's namespace: only those
services.yaml lists (slots.agentSecrets) or that carry chatenv.dev/agent-secret=true."""

from __future__ import annotations

from test_slot_passes import NS, OPERATOR_NS, Slots

from chatenv_operator.kinds import DEPLOYMENT, SECRET


def secret(name: str, **labels: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": OPERATOR_NS, "labels": labels},
            "data": {"TOKEN": "c2VjcmV0"}}


def test_a_secret_not_on_the_allow_list_is_never_copied() -> None:
    s = Slots()
    s.api.put(secret("chatenv-operator-credentials"))  # what an attacker would ask for
    s.create("d", agent={"image": "attacker/agent:1",
                         "secretRefs": ["chatenv-operator-credentials"]})
    s.pool()
    s.environment("slot-1")
    s.slot("d")
    assert s.ready("d") == ("False", "AgentSecretNotAllowed")
    assert ("EVENT", "AgentSecretNotAllowed") in s.api.requests
    assert [r for r in s.api.requests if r[0] == "CREATE" and r[1].startswith("Secret/")] == []
    assert s.api.find(SECRET, "agent-chatenv-operator-credentials", NS) is None
    assert s.api.find(DEPLOYMENT, "agent", NS) is None  # the agent does not start
    message = s.status("d")["conditions"][0]["message"]
    assert "slots.agentSecrets" in message
    assert "chatenv.dev/agent-secret=true" in message


def test_a_secret_labelled_for_agents_is_copied() -> None:
    s = Slots()
    s.api.put(secret("model-token", **{"chatenv.dev/agent-secret": "true"}))
    s.create("d", agent={"image": "agent:1", "secretRefs": ["model-token"]})
    s.pool()
    s.environment("slot-1")
    s.slot("d")
    copy = s.api.find(SECRET, "agent-model-token", NS)
    assert copy is not None
    assert copy["data"] == {"TOKEN": "c2VjcmV0"}
    # No read in the slot's namespace: the copy is created, a 409 would say it exists.
    assert ("GET", "Secret/agent-model-token") not in s.api.requests
