"""The GitHub workflows keep to the rules an attacker-shaped event (a branch name made from
issue text, a pull request's code) cannot bend: event values and secrets reach scripts only
through the environment, a job that holds the cluster's credentials checks out and runs
only the default branch, actions are pinned by commit, nothing persists a token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / ".github").rglob("*.yml"))
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    return doc if isinstance(doc, dict) else {}


def steps(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in (doc.get("jobs") or {}).values():
        yield from job.get("steps") or []
    yield from ((doc.get("runs") or {}).get("steps") or [])


def triggers(doc: dict[str, Any]) -> set[str]:
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    return set(on) if isinstance(on, dict) else {on} if isinstance(on, str) else set(on or [])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_scripts_take_event_values_and_secrets_from_the_environment_only(path: Path) -> None:
    for step in steps(load(path)):
        assert "${{" not in str(step.get("run", "")), (path.name, step.get("name"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_and_checkouts_keep_no_token(path: Path) -> None:
    for step in steps(load(path)):
        uses = step.get("uses")
        if not uses or uses.startswith("./"):
            continue
        assert PINNED.match(uses), uses
        if uses.startswith("actions/checkout@"):
            assert (step.get("with") or {}).get("persist-credentials") is False, path.name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_a_job_holding_cluster_credentials_runs_only_the_default_branch(path: Path) -> None:
    doc = load(path)
    for name, job in (doc.get("jobs") or {}).items():
        if "secrets." not in yaml.safe_dump(job):
            continue
        for step in job.get("steps") or []:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert (step.get("with") or {}).get("ref") == (
                    "${{ github.event.repository.default_branch }}"), (path.name, name)


def test_cleanup_is_limited_like_the_workflows_that_open_slots() -> None:
    doc = load(ROOT / ".github" / "workflows" / "cleanup.yml")
    assert doc["permissions"] == {"contents": "read"}
    for job in doc["jobs"].values():
        gate = job["steps"][0]
        assert gate["id"] == "gate"
        assert gate["env"] == {"ALLOWED": "${{ vars.AI_ALLOWED_USERS }}",
                               "ACTOR": "${{ github.actor }}"}
        assert "github-actions[bot]" in job["if"]
    release, branch = doc["jobs"]["release"], doc["jobs"]["branch"]
    assert "permissions" not in release  # the workflow's: read only, with the kubeconfig
    assert branch["permissions"] == {"contents": "write"}
    assert "secrets." not in yaml.safe_dump(branch)  # write access, no cluster credentials
    assert not [s for s in branch["steps"] if "uses" in s]  # and no checkout at all
