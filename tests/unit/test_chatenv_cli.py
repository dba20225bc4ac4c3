"""The `chatenv` CLI without a cluster: argument checks (exit 2 before any request), names,
manifests, summaries, comments, the expiry a touch reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chatenv_operator import cli
from chatenv_operator.cli import args as cli_args
from chatenv_operator.cli.errors import EXIT_NO_CLUSTER, EXIT_USAGE
from chatenv_operator.cli.output import (
    Request,
    comment_markdown,
    devslot_manifest,
    devslot_name,
    expiry_after_touch,
    summary,
    table,
)


def devslot(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "chatenv.dev/v1alpha1", "kind": "DevSlot",
            "metadata": {"name": "d", "uid": "u1", "creationTimestamp": "2026-11-26T12:00:00Z"},
            "spec": {"repository": "acme/chat", "issue": 7, **spec}}


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A kubeconfig that does not exist: a command that got as far as connecting exits 5."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def exit_code(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as e:  # argparse's own exit for unparsable values
        return int(e.code or 0)


REPO = ["--repository", "acme/chat"]
WRONG = [
    ["cleanup", "--issue", "0", *REPO],
    ["cleanup", "--pr", "-3", *REPO],
    ["ensure-slot", "--issue", "0", *REPO],
    ["ensure-ready", "--pr", "0", *REPO],
    ["touch", "--issue", "0", *REPO],
    ["touch", "--slot", "0"],
    ["comment", "--pr", "0", *REPO],
    ["set", "--slot", "0", "--pr", "5"],
    ["set", "--slot", "1", "--pr", "0"],
    ["set", "--slot", "1000", "--pr", "5"],
    ["ensure-slot", "--issue", "x", *REPO],
    ["ensure-slot", "--issue", "1", *REPO, "--slot", "0"],
    ["ensure-slot", "--issue", "1", *REPO, "--agent-image", ""],
    ["ensure-slot", "--issue", "1", *REPO, "--chat-image", ""],
    ["ensure-slot", "--issue", "1", *REPO, "--agent-secret", "keys"],
    ["ensure-slot", "--issue", "1", *REPO, "--ttl", "7d"],
    ["ensure-slot", "--issue", "1", *REPO, "--ttl", "5s"],
    ["ensure-slot", "--issue", "1", *REPO, "--ttl", "soon"],
    ["ensure-ready", "--issue", "1", *REPO, "--timeout", "soon"],
    ["ensure-slot", "--issue", "1", "--repository", "not-a-repository"],
    ["ensure-slot", "--issue", "1"],
    ["cleanup", "--issue", "1"],
]


@pytest.mark.usefixtures("no_cluster")
@pytest.mark.parametrize("argv", WRONG, ids=[" ".join(a) for a in WRONG])
def test_wrong_arguments_exit_2_before_any_request(argv: list[str]) -> None:
    assert exit_code(argv) == EXIT_USAGE


@pytest.mark.usefixtures("no_cluster")
def test_right_arguments_get_as_far_as_the_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    """The counterpart of the test above: the same commands, well formed, try to connect."""
    for argv in (["cleanup", "--issue", "1", *REPO], ["set", "--slot", "1", "--pr", "5", *REPO],
                 ["list", *REPO], ["touch", "--slot", "3"],
                 ["ensure-ready", "--issue", "1", *REPO, "--timeout", "300"],
                 ["ensure-slot", "--issue", "1", *REPO, "--agent-image", "x/agent:1",
                  "--agent-secret", "keys", "--ttl", "1h30m", "--mode", "plan"]):
        assert exit_code(argv) == EXIT_NO_CLUSTER, argv
    assert "no cluster configuration" in capsys.readouterr().err


def test_every_subcommand_is_described_and_takes_a_repository() -> None:
    p = cli_args.parser()
    sub = next(a for a in p._actions if a.dest == "command")
    choices: dict[str, Any] = sub.choices  # type: ignore[assignment]
    assert set(choices) == set(cli_args.COMMANDS)
    helps = {c.dest: c.help for c in sub._choices_actions}  # type: ignore[attr-defined]
    for name, cmd in choices.items():
        assert cmd.description, name
        assert helps[name], name
        assert "--repository" in cmd.format_help(), name


def test_render_needs_no_cluster(capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    assert cli.main(["render", "--issue", "4", "--repository", "acme/chat"]) == 0
    assert "name: acme-chat-issue-4" in capsys.readouterr().out
    assert cli.main(["render", "--issue", "4"]) == EXIT_USAGE


def test_devslot_names_are_deterministic_and_valid() -> None:
    assert devslot_name("Acme/Chat.App", issue=12, pr=None) == "acme-chat-app-issue-12"
    assert devslot_name("acme/chat", issue=None, pr=3) == "acme-chat-pr-3"
    assert len(devslot_name("o" * 60 + "/" + "r" * 60, issue=1, pr=None)) <= 63


def test_manifest_and_summary() -> None:
    manifest = devslot_manifest(Request("Acme/Chat.App", pr=5, ttl="2h",
                                        chat_image="x/chat:pr-5", agent_image="x/agent:1",
                                        agent_secrets=("keys",)))
    assert manifest["spec"] == {"repository": "Acme/Chat.App", "mode": "dev", "pr": 5,
                                "ttl": "2h", "images": {"chat": "x/chat:pr-5"},
                                "agent": {"image": "x/agent:1", "secretRefs": ["keys"]}}
    assert manifest["metadata"]["labels"]["chatenv.dev/pr"] == "5"
    d = devslot(mode="repair")
    d["status"] = {"namespace": "chat-ai-staging", "phase": "Ready",
                   "images": {"agent": "x/agent:1"},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                                   "message": "agent working"}]}
    s = summary(d, created=False)
    assert (s["env"], s["slot"], s["infraReady"], s["created"]) == ("ai-repair", None, True,
                                                                    False)
    assert s["images"] == {"agent": "x/agent:1"}


def test_comment_and_table() -> None:
    d = devslot(pr=9)
    d["status"] = {"slot": 3, "namespace": "chat-dev-3", "phase": "Ready",
                   "url": "https://dev-3.ai.chat.example.com", "expiresAt": "2026-11-27T12:00:00Z"}
    en = comment_markdown(d, "en")
    assert "### Slot 3 for #9" in en
    assert "https://dev-3.ai.chat.example.com/jaeger" in en
    assert "Queued" not in en
    assert "Слот 3" in comment_markdown(d, "ru")
    lines = table([d]).splitlines()
    assert lines[0].split() == ["NAME", "SLOT", "ISSUE", "PR", "MODE", "PHASE", "READY",
                                "EXPIRES", "URL"]
    assert lines[1].split()[:3] == ["d", "3", "7"]


def test_comment_of_a_queued_slot_gives_its_place() -> None:
    d = devslot()
    d["status"] = {"phase": "Queued", "queuePosition": 4}
    assert "Queued: position 4" in comment_markdown(d, "en")
    assert "место 4" in comment_markdown(d, "ru")


def test_expiry_after_touch_uses_the_ttl_in_force() -> None:
    touched = datetime(2026, 11, 26, 15, 0, 0, 700000, tzinfo=UTC)
    assert expiry_after_touch(devslot(ttl="2h"), touched) == "2026-11-26T17:00:00Z"
    # Without spec.ttl the operator's default applies: the status shows it, as the
    # distance from the last activity to the expiry.
    d = devslot()
    d["status"] = {"lastActivity": "2026-11-26T12:00:00Z", "expiresAt": "2026-11-27T12:00:00Z"}
    assert expiry_after_touch(d, touched) == "2026-11-27T15:00:00Z"
    assert expiry_after_touch(devslot(), touched) is None  # not reconciled yet: unknown


def test_the_cli_needs_only_its_own_dependencies() -> None:
    """The workflows install the CLI with pyproject's `cli` extra only (see
    .github/actions/chatenv): it must import nothing of the operator's or the service's."""
    import subprocess
    import sys
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml")
                            .read_text())["project"]
    cli_only = {Requirement(r).name.lower() for r in project["optional-dependencies"]["cli"]}
    service_only = {Requirement(r).name.lower() for r in project["dependencies"]} - cli_only
    assert {"kopf", "aiohttp", "prometheus-client"} <= service_only
    probe = ("import importlib.metadata as m, json, sys; import chatenv_operator.cli.main; "
             "owners = m.packages_distributions(); "
             "print(json.dumps(sorted({d.lower() for name in list(sys.modules) "
             "for d in owners.get(name.split('.')[0], [])})))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", probe], check=True,
                                           capture_output=True, text=True).stdout))
    assert not loaded & service_only, loaded & service_only
