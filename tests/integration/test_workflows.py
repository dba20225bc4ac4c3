"""The shipped GitHub workflows, dry-run step by step (tests/integration/workflows.py) with the
real `chatenv` CLI and kubectl against the real API server, under the CI identities deploy/
defines; `gh` is a stub that records what would be posted."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubehelpers import GROUP, VERSION, Slots, wait_until
from kubernetes import client
from kubernetes.client.rest import ApiException
from local_operator import service_account_kubeconfig
from workflows import Job, Runner, environment

Kubectl = Callable[..., subprocess.CompletedProcess[str]]
INSTALL = "Install the chatenv CLI (its own dependencies only)"  # the venv's CLI is used
AGENT = "registry.example.com/agent:1"

pytestmark = pytest.mark.usefixtures("operator")


@pytest.fixture(scope="module")
def identity(kubectl: Kubectl, kubectl_command: list[str],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """A kubeconfig for a new ServiceAccount bound to one of deploy/'s ClusterRoles."""
    made: list[str] = []

    def make(role: str) -> str:
        account = f"t-wf-{uuid.uuid4().hex[:6]}"
        made.append(account)
        kubectl("create", "serviceaccount", account, "-n", "chatenv-system")
        kubectl("create", "clusterrolebinding", account, f"--clusterrole={role}",
                f"--serviceaccount=chatenv-system:{account}")
        path = tmp_path_factory.mktemp(account) / "kubeconfig"
        return service_account_kubeconfig(kubectl_command, path, namespace="chatenv-system",
                                          account=account, duration="6h").read_text()

    yield make
    for account in made:
        kubectl("delete", "clusterrolebinding", account)
        kubectl("delete", "serviceaccount", account, "-n", "chatenv-system")


@pytest.fixture(scope="module")
def ci_kubeconfig(identity: Callable[[str], str]) -> str:
    return identity("chatenv-ci")


@pytest.fixture(scope="module")
def agent_credentials(core: client.CoreV1Api) -> Iterator[None]:
    try:
        core.create_namespaced_secret("chatenv-system", client.V1Secret(
            metadata=client.V1ObjectMeta(name="agent-credentials"),
            string_data={"TOKEN": "t"}))
    except ApiException as e:
        if e.status != 409:
            raise
    yield
    core.delete_namespaced_secret("agent-credentials", "chatenv-system")


class Posted:
    """What the workflow asked `gh` to post."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def runner(tmp_path: Path, kubectl_command: list[str]) -> tuple[Runner, Posted]:
    tools = tmp_path / "bin"
    tools.mkdir()
    gh = tools / "gh"
    gh.write_text(f"#!{sys.executable}\n" + '''import json, os, sys
args = sys.argv[1:]
body = None
if "--body-file" in args:
    body = open(args[args.index("--body-file") + 1]).read()
elif "--body" in args:
    body = args[args.index("--body") + 1]
with open(os.environ["GH_LOG"], "a") as f:
    f.write(json.dumps({"args": args, "body": body}) + "\\n")
''')
    gh.chmod(0o755)
    for binary in (Path(sys.executable).parent / "chatenv", Path(kubectl_command[0])):
        (tools / binary.name).symlink_to(binary)
    home = tmp_path / "home"
    home.mkdir()
    env = {**environment(tools, home), "GH_LOG": str(tmp_path / "gh.log")}
    work = tmp_path / "work"
    work.mkdir()
    return Runner({}, env, work, skip=frozenset({INSTALL})), Posted(tmp_path / "gh.log")


def issue_context(slots: Slots, kubeconfig: str, **over: str) -> dict[str, str]:
    return {"github.repository": slots.repository, "github.event.issue.number": "42",
            "github.event.label.name": "[ai-dev]", "github.actor": "alice",
            "github.token": "token", "vars.AI_ALLOWED_USERS": '["alice", "bob"]',
            "vars.AI_AGENT_IMAGE": AGENT, "secrets.CHATENV_KUBECONFIG": kubeconfig, **over}


def run(runner: tuple[Runner, Posted], workflow: str, job: str, context: dict[str, str],
        **env: str) -> Job:
    r, _ = runner
    r.context = context
    return r.run_job(workflow, job, env)


def _json_of(job: Job) -> str:
    """slot.json as the step printed it (`cat slot.json`), even when ensure-ready failed."""
    out = job.step("Ensure a ready slot (a queued one keeps its place)").output
    return out[out.index("{"):out.rindex("}") + 1]


@pytest.mark.usefixtures("agent_credentials")
def test_ai_issue_comments_the_slot_links(slots: Slots, ci_kubeconfig: str,
                                          runner: tuple[Runner, Posted]) -> None:
    slots.names.append(f"{slots.repository.replace('/', '-')}-issue-42")
    job = run(runner, "ai-issue.yml", "slot", issue_context(slots, ci_kubeconfig),
              READY_TIMEOUT="120s")
    assert not job.failed, job.log
    slot = json.loads(_json_of(job))
    assert slot["infraReady"] is True
    (call,) = runner[1].calls()
    assert call["args"][:3] == ["issue", "comment", "42"]
    assert f"- Chat: {slot['url']}" in call["body"]
    devslot = slots.get(slot["name"]) or {}
    assert devslot["spec"]["agent"] == {"image": AGENT, "secretRefs": ["agent-credentials"]}


def test_ai_issue_keeps_a_queued_slot_queued(slots: Slots, ci_kubeconfig: str,
                                             runner: tuple[Runner, Posted]) -> None:
    holders = [slots.create(issue=i)["metadata"]["name"] for i in range(1, 11)]
    wait_until(lambda: all(slots.slot_of(n) for n in holders), 90, "the pool full")
    slots.names.append(f"{slots.repository.replace('/', '-')}-issue-42")
    job = run(runner, "ai-issue.yml", "slot", issue_context(slots, ci_kubeconfig),
              READY_TIMEOUT="3s")
    assert not job.failed, job.log  # a queued slot is no failure
    slot = json.loads(_json_of(job))  # the JSON reached the log although ensure-ready exited 7
    assert (slot["phase"], slot["queuePosition"]) == ("Queued", 1)
    assert not job.step("Release a slot that did not become ready").ran
    assert slots.get(slot["name"]) is not None  # kept, in its place
    (call,) = runner[1].calls()
    assert "Queued: position 1" in call["body"]


def test_ai_issue_says_what_a_repository_lacks(slots: Slots, ci_kubeconfig: str,
                                               runner: tuple[Runner, Posted],
                                               custom: client.CustomObjectsApi) -> None:
    unset = run(runner, "ai-issue.yml", "slot",
                issue_context(slots, ci_kubeconfig, **{"vars.AI_ALLOWED_USERS": ""}))
    assert not unset.failed
    assert "::warning::the repository variable AI_ALLOWED_USERS is not set" in unset.log
    assert not unset.step("Ensure a ready slot (a queued one keeps its place)").ran

    stranger = run(runner, "ai-issue.yml", "slot",
                   issue_context(slots, ci_kubeconfig, **{"github.actor": "mallory"}))
    assert "::notice::mallory is not listed in AI_ALLOWED_USERS" in stranger.log

    garbled = run(runner, "ai-issue.yml", "slot",
                  issue_context(slots, ci_kubeconfig, **{"vars.AI_ALLOWED_USERS": "alice"}))
    assert garbled.failed
    assert "must be a JSON array" in garbled.log

    no_secret = run(runner, "ai-issue.yml", "slot",
                    issue_context(slots, ci_kubeconfig, **{"secrets.CHATENV_KUBECONFIG": ""}))
    assert not no_secret.failed
    assert "::notice::no cluster credentials" in no_secret.log

    no_agent = run(runner, "ai-issue.yml", "slot",
                   issue_context(slots, ci_kubeconfig, **{"vars.AI_AGENT_IMAGE": ""}))
    assert no_agent.failed
    assert "::error::the repository variable AI_AGENT_IMAGE is not set" in no_agent.log
    assert not [d for d in custom.list_cluster_custom_object(GROUP, VERSION, "devslots")[
        "items"] if d["spec"]["repository"] == slots.repository]  # nothing was opened
    assert runner[1].calls() == []


@pytest.mark.usefixtures("agent_credentials")
def test_ai_review_rolls_the_pr_slot_to_the_pr_image(slots: Slots, ci_kubeconfig: str,
                                                     runner: tuple[Runner, Posted]) -> None:
    context = {"github.repository": slots.repository, "github.event.pull_request.number": "9",
               "github.event.pull_request.head.sha": "aaa111", "github.actor": "bob",
               "github.token": "token", "vars.AI_ALLOWED_USERS": '["bob"]',
               "vars.AI_AGENT_IMAGE": AGENT,
               "vars.CHAT_IMAGE_REPOSITORY": "registry.example.com/chatenv/chat",
               "secrets.CHATENV_KUBECONFIG": ci_kubeconfig}
    name = f"{slots.repository.replace('/', '-')}-pr-9"
    slots.names.append(name)
    first = run(runner, "ai-review.yml", "slot", context, READY_TIMEOUT="120s")
    assert not first.failed, first.log
    assert (slots.get(name) or {})["status"]["images"]["chat"].endswith(":aaa111")
    second = run(runner, "ai-review.yml", "slot",
                 {**context, "github.event.pull_request.head.sha": "bbb222"},
                 READY_TIMEOUT="120s")
    assert not second.failed, second.log
    assert (slots.get(name) or {})["status"]["images"]["chat"].endswith(":bbb222")
    assert [c["args"][:3] for c in runner[1].calls()] == [["pr", "comment", "9"]] * 2


def test_cleanup_releases_the_slot_and_a_fork_pr_ends_green(
        slots: Slots, ci_kubeconfig: str, runner: tuple[Runner, Posted]) -> None:
    name = slots.create(pr=5)["metadata"]["name"]
    context = {"github.repository": slots.repository, "github.event.pull_request.number": "5",
               "github.event.issue.number": "", "github.token": "token",
               "github.event.pull_request": "true", "github.actor": "alice",
               "vars.AI_ALLOWED_USERS": '["alice"]',
               "github.event.repository.default_branch": "main",
               "github.event.pull_request.head.repo.full_name": "someone/fork",
               "github.event.pull_request.head.ref": "feature",
               "secrets.CHATENV_KUBECONFIG": ""}
    fork = run(runner, "cleanup.yml", "release", context)
    assert not fork.failed, fork.log
    assert "::notice::no cluster credentials" in fork.log
    assert slots.get(name) is not None
    # Anyone may close their own issue or pull request: only the allowed release slots.
    stranger = run(runner, "cleanup.yml", "release",
                   {**context, "secrets.CHATENV_KUBECONFIG": ci_kubeconfig,
                    "github.actor": "mallory"})
    assert not stranger.failed, stranger.log
    assert "::notice::mallory is not listed in AI_ALLOWED_USERS" in stranger.log
    assert not stranger.step("Release the slot").ran
    assert slots.get(name) is not None
    done = run(runner, "cleanup.yml", "release",
               {**context, "secrets.CHATENV_KUBECONFIG": ci_kubeconfig})
    assert not done.failed, done.log
    wait_until(lambda: slots.get(name) is None, 30, "the DevSlot deleted")


def test_staging_waits_until_the_new_image_runs(
        kubectl: Kubectl, identity: Callable[[str], str], custom: client.CustomObjectsApi,
        runner: tuple[Runner, Posted]) -> None:
    staging = identity("chatenv-staging-deployer")
    custom.create_cluster_custom_object(GROUP, VERSION, "chatenvironments", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ChatEnvironment",
        "metadata": {"name": "ai-staging"}, "spec": {"stage": "ai-staging"}})
    try:
        kubectl("wait", "--for=condition=Ready", "chatenv/ai-staging", "--timeout=120s")
        context = {"github.sha": "c0ffee", "secrets.CHATENV_STAGING_KUBECONFIG": staging,
                   "vars.CHAT_IMAGE_REPOSITORY": "registry.example.com/chatenv/chat"}
        job = run(runner, "staging.yml", "deploy", context)
        assert not job.failed, job.log
        assert not job.step("Diagnostics").ran
        status = custom.get_cluster_custom_object(GROUP, VERSION, "chatenvironments",
                                                  "ai-staging")["status"]
        assert status["images"]["chat"] == "registry.example.com/chatenv/chat:c0ffee"
        unset = run(runner, "staging.yml", "deploy",
                    {**context, "vars.CHAT_IMAGE_REPOSITORY": ""})
        assert not unset.failed
        assert "::warning::staging is not configured" in unset.log
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "chatenvironments", "ai-staging")
