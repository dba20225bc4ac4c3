"""A deleted generated Secret never locks the chat service out of its data: it comes back
with the password PostgreSQL was started with, from the copy the operator holds in its own
namespace, whether the operator restarted or the environment stopped being Ready."""

from __future__ import annotations

import itertools

import pytest
from test_environment_pass import CONFIG, HELD, NS, World

from chatenv_operator.kinds import SECRET, STATEFULSET
from chatenv_operator.passes import Memo


class Passwords(World):
    """Every password the operator generates is a new one, as secrets.token_urlsafe's are."""

    def __init__(self) -> None:
        super().__init__()
        counter = itertools.count(1)
        self.password = lambda: f"generated-{next(counter)}"


def password(world: World, name: str = "postgres-credentials") -> str:
    secret = world.api.find(SECRET, name, NS)
    assert secret is not None
    return str(secret["stringData"]["password"])


@pytest.fixture
def world() -> Passwords:
    w = Passwords()
    w.create()
    w.settle()
    return w


def test_a_deleted_secret_comes_back_with_its_password_after_a_restart(world: Passwords
                                                                        ) -> None:
    before = password(world)
    world.api.remove(SECRET, "postgres-credentials", NS)
    world.memo = Memo()  # the operator restarted
    world.run()
    assert ("CREATE", "Secret/postgres-credentials") in world.sent
    assert password(world) == before  # PostgreSQL still has it: nobody is locked out
    assert world.api.find(SECRET, f"{HELD[len('Secret/'):]}.postgres-credentials",
                          "chatenv-system") is not None


def test_a_deleted_secret_comes_back_when_the_environment_stops_being_ready(
        world: Passwords) -> None:
    before = password(world, "redis-credentials")
    world.api.remove(SECRET, "redis-credentials", NS)
    world.run()
    assert world.sent == []  # nothing shows it yet: Secrets are not watched
    # The next pod to start cannot find the Secret: its workload stops being ready.
    world.api.edit(STATEFULSET, "postgres", NS, {"status": {"readyReplicas": 0}}, spec=False)
    world.run()
    assert world.ready() == ("False", "WaitingPostgres")
    world.run()  # the pass after it looks at what it generated again
    assert ("CREATE", "Secret/redis-credentials") in world.sent
    assert password(world, "redis-credentials") == before


def test_a_secret_made_before_copies_were_held_is_never_made_again() -> None:
    """An environment of an older operator: its Secrets exist, no copy is held. The
    operator cannot read them, so it leaves them (and says so) rather than guess."""
    world = Passwords()
    world.create()
    world.api.put({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "postgres-credentials", "namespace": NS},
                   "stringData": {"password": "made-long-ago"}})
    world.run()
    assert ("CREATE?", "Secret/postgres-credentials") in world.sent
    assert ("CREATE", f"{HELD}.postgres-credentials") not in world.sent
    assert password(world) == "made-long-ago"


def test_an_administrator_holds_the_secrets_of_older_environments_once() -> None:
    from chatenv_operator.holding import hold_existing

    world = Passwords()
    world.create()
    world.api.put({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": "postgres-credentials", "namespace": NS},
                   "stringData": {"password": "made-long-ago"}})
    copied = hold_existing(world.api, CONFIG, "chatenv-system")  # type: ignore[arg-type]
    assert copied == [f"{NS}/postgres-credentials"]
    assert hold_existing(world.api, CONFIG, "chatenv-system") == []  # type: ignore[arg-type]
    world.run()
    world.api.remove(SECRET, "postgres-credentials", NS)
    world.memo = Memo()
    world.run()
    assert password(world) == "made-long-ago"
