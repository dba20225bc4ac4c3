"""Run a GitHub Actions job of this repository locally, step by step, as a runner would.

Shell steps run in `bash --noprofile --norc -eo pipefail` (the runner's bash), with
`$GITHUB_OUTPUT` read back into `steps.<id>.outputs`; the repository's own composite
actions run step by step too; `${{ }}` expressions are looked up in a given context
(an unset `vars.*`, `secrets.*` or skipped step's output is empty, as on GitHub); `if:`
conditions of the forms the workflows use (`==`, `!=`, `||`, `&&`, `success()`,
`failure()`, `always()`) are evaluated. Other actions (checkout, setup-python) are
skipped: the working tree is the checkout and the test's Python is set up. This is a dry
run of the workflow's logic against whatever the commands talk to, not an emulation of
GitHub.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class Step:
    name: str
    ran: bool
    code: int = 0
    output: str = ""


@dataclass
class Job:
    steps: list[Step] = field(default_factory=list)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(s.code for s in self.steps)

    @property
    def log(self) -> str:
        return "\n".join(f"--- {s.name}\n{s.output}" for s in self.steps if s.ran)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


class Runner:
    def __init__(self, context: Mapping[str, str], env: Mapping[str, str], workdir: Path,
                 skip: frozenset[str] = frozenset()) -> None:
        self.context = dict(context)
        self.env = dict(env)
        self.workdir = workdir
        self.skip = skip

    # ------------------------------------------------------------------ expressions

    def value(self, path: str, scope: Mapping[str, Any]) -> str:
        if path.startswith("'") and path.endswith("'"):
            return path[1:-1]
        if path in scope:
            return str(scope[path])
        if path.startswith(("vars.", "secrets.", "steps.")):  # unset, or a skipped step
            return ""
        raise KeyError(f"no value for ${{{{ {path} }}}} in the test's context")

    def expand(self, text: Any, scope: Mapping[str, Any]) -> str:
        return EXPRESSION.sub(lambda m: self.value(m.group(1), scope), str(text))

    def condition(self, text: str | None, scope: Mapping[str, Any], failed: bool) -> bool:
        text = EXPRESSION.sub(lambda m: m.group(1), text or "success()").strip()
        return any(all(self.term(t.strip(), scope, failed) for t in alt.split("&&"))
                   for alt in text.split("||"))

    def term(self, term: str, scope: Mapping[str, Any], failed: bool) -> bool:
        if term in ("success()", "failure()", "always()"):
            return {"success()": not failed, "failure()": failed, "always()": True}[term]
        match = re.fullmatch(r"(\S+)\s*(==|!=)\s*(\S+)", term)
        if match:
            left, op, right = (self.value(match.group(1), scope), match.group(2),
                               self.value(match.group(3), scope))
            return (left == right) == (op == "==")
        return bool(self.value(term, scope)) and not failed

    # ------------------------------------------------------------------ steps

    def run_job(self, workflow: str, job_id: str, env: Mapping[str, str] | None = None) -> Job:
        doc = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())
        spec = doc["jobs"][job_id]
        job = Job()
        scope: dict[str, Any] = dict(self.context)
        job_env = {k: self.expand(v, scope) for k, v in (spec.get("env") or {}).items()}
        job_env.update(env or {})
        self.steps(spec["steps"], job, scope, job_env, action_path=None)
        return job

    def steps(self, steps: list[dict[str, Any]], job: Job, scope: dict[str, Any],
              env: Mapping[str, str], action_path: Path | None) -> None:
        for number, step in enumerate(steps):
            name = step.get("name") or step.get("uses") or f"step {number}"
            if name in self.skip or not self.condition(step.get("if"), scope, job.failed):
                job.steps.append(Step(name, ran=False))
                continue
            step_env = {**env, **{k: self.expand(v, scope)
                                  for k, v in (step.get("env") or {}).items()}}
            if "run" in step:
                outputs = self.shell(name, self.expand(step["run"], scope), step_env, job,
                                     action_path)
            elif str(step["uses"]).startswith("./"):
                outputs = self.composite(ROOT / step["uses"], step.get("with") or {}, job,
                                         scope, step_env)
            else:
                job.steps.append(Step(name, ran=False))  # a third-party action: skipped
                continue
            if step.get("id"):
                for key, value in outputs.items():
                    scope[f"steps.{step['id']}.outputs.{key}"] = value

    def shell(self, name: str, script: str, env: Mapping[str, str], job: Job,
              action_path: Path | None) -> dict[str, str]:
        with tempfile.NamedTemporaryFile("r", dir=self.workdir, delete=False) as out:
            output_file = Path(out.name)
        full_env = {**self.env, **env, "GITHUB_OUTPUT": str(output_file),
                    "RUNNER_TEMP": str(self.workdir)}
        if action_path is not None:
            full_env["GITHUB_ACTION_PATH"] = str(action_path)
        res = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                             env=full_env, cwd=self.workdir, capture_output=True, text=True,
                             timeout=600)
        job.steps.append(Step(name, ran=True, code=res.returncode,
                              output=res.stdout + res.stderr))
        outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines()
                       if "=" in line)
        output_file.unlink()
        return outputs

    def composite(self, path: Path, given: Mapping[str, Any], job: Job,
                  scope: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
        action = yaml.safe_load((path / "action.yml").read_text())
        inner: dict[str, Any] = {k: v for k, v in scope.items() if not k.startswith("steps.")}
        for key, spec in (action.get("inputs") or {}).items():
            inner[f"inputs.{key}"] = (self.expand(given[key], scope) if key in given
                                      else spec.get("default", ""))
        self.steps(action["runs"]["steps"], job, inner, env, action_path=path)
        return {key: self.expand(spec["value"], inner)
                for key, spec in (action.get("outputs") or {}).items()}


def environment(bin_dir: Path, home: Path) -> dict[str, str]:
    """A runner-like environment: the test's tools first on PATH, a HOME of its own."""
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(home), "LANG": "C.UTF-8"}
