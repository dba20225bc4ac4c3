"""Two operators at once, as two replicas of deploy/'s Deployment run: one leads, the other
waits. 20 DevSlots created while both run get exactly one slot each; the leader killed,
the other takes over within 15 s. (Before leader election, two operators gave one DevSlot
two slots.)"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import yaml
from conftest import ROOT, OperatorProcess
from kubehelpers import GROUP, VERSION, Slots, wait_until
from kubernetes import client
from local_operator import service_account_kubeconfig

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
SLOTS = 25


def leads(process: OperatorProcess) -> bool:
    return any('"leading: ' in line for line in process.log_lines())


@pytest.fixture
def two(operator: OperatorProcess, kubectl_command: list[str],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[OperatorProcess]]:
    """The session's operator stopped (it releases the Lease), two others started with a
    pool big enough for the test; afterwards the session's operator leads again."""
    operator.stop()
    processes = []
    for who in ("first", "second"):
        workdir = tmp_path_factory.mktemp(who)
        doc = yaml.safe_load((ROOT / "services.yaml").read_text())
        doc["slots"].update({"maxSlots": SLOTS, "expiryWarning": "10s"})
        config = workdir / "services.yaml"
        config.write_text(yaml.safe_dump(doc))
        kubeconfig = service_account_kubeconfig(kubectl_command, workdir / "kubeconfig",
                                                duration="1h")
        process = OperatorProcess(kubeconfig, config, workdir)
        process.start()
        processes.append(process)
    yield processes
    for process in processes:
        process.stop()
    operator.start()


def holders(custom: client.CustomObjectsApi, slots: Slots) -> dict[str, list[int]]:
    """DevSlot uid -> the slot numbers whose environments it owns."""
    owned: dict[str, list[int]] = {}
    for env in custom.list_cluster_custom_object(GROUP, VERSION, "chatenvironments")["items"]:
        if env["metadata"].get("labels", {}).get("chatenv.dev/repository") != \
                slots.repository.replace("/", "."):
            continue
        for ref in env["metadata"].get("ownerReferences") or []:
            owned.setdefault(ref["uid"], []).append(env["spec"]["slot"])
    return owned


@pytest.mark.timeout(600)
def test_one_leader_one_slot_each_and_a_takeover_within_15_s(
        two: list[OperatorProcess], slots: Slots, custom: client.CustomObjectsApi,
        kubectl: Kubectl) -> None:
    wait_until(lambda: sum(leads(p) for p in two) == 1, 30, "one of the two to lead")
    names = [slots.create(issue=i)["metadata"]["name"] for i in range(1, 21)]
    wait_until(lambda: all(slots.slot_of(n) for n in names), 180,
               "all 20 DevSlots to hold a slot", interval=1)
    owned = holders(custom, slots)
    uids = {(slots.get(n) or {})["metadata"]["uid"] for n in names}
    assert set(owned) == uids
    assert all(len(numbers) == 1 for numbers in owned.values()), owned
    assert len({n for numbers in owned.values() for n in numbers}) == 20
    assert sum(leads(p) for p in two) == 1  # the other never led meanwhile

    leader = next(p for p in two if leads(p))
    standby = next(p for p in two if p is not leader)
    lease = json.loads(kubectl("get", "lease", "chatenv-operator", "-n", "chatenv-system",
                               "-o", "json").stdout)["spec"]
    killed_at = time.monotonic()
    leader.kill()
    late = slots.create(issue=21)["metadata"]["name"]  # only a leader can give it a slot
    wait_until(lambda: slots.slot_of(late), 15, "the other operator to take over and give "
               "the new DevSlot a slot", interval=0.2)
    took = time.monotonic() - killed_at
    assert leads(standby)
    after = json.loads(kubectl("get", "lease", "chatenv-operator", "-n", "chatenv-system",
                               "-o", "json").stdout)["spec"]
    assert after["holderIdentity"] != lease["holderIdentity"]
    assert after["leaseTransitions"] == lease["leaseTransitions"] + 1
    print(f"took over and allocated in {took:.1f} s")
    assert all(len(numbers) == 1 for numbers in holders(custom, slots).values())
