"""services.yaml and the operator's settings: valid input parses, bad input names its field."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatenv_operator.config import (
    ConfigError,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
)
from chatenv_operator.environment import InvalidSpec, resolve
from chatenv_operator.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
DOC = yaml.safe_load((ROOT / "services.yaml").read_text())


def with_change(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DOC)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return doc


def test_repository_services_yaml_is_valid() -> None:
    config = load_config(ROOT / "services.yaml")
    assert config.project == "chat"
    assert config.slots.max_slots == 10
    assert config.slots.default_ttl == 24 * 3600
    assert config.stages["ai"].namespace == "{project}-dev-{slot}"
    assert config.defaults.chat_resources.limits == {"cpu": "1", "memory": "512Mi"}


def test_quantities_are_read_as_a_pod_spec_reads_them() -> None:
    doc = with_change("defaults.chat.resources", {"requests": {"cpu": 1, "memory": "1.5Gi"},
                                                   "limits": {"cpu": 2, "memory": "512M"}})
    doc["defaults"]["postgres"]["storage"]["size"] = "1.5Gi"
    config = parse_config(doc)
    assert config.defaults.chat_resources.requests == {"cpu": "1", "memory": "1.5Gi"}
    assert config.defaults.chat_resources.limits == {"cpu": "2", "memory": "512M"}
    assert config.defaults.postgres_storage_size == "1.5Gi"


def test_deploy_copy_of_services_yaml_is_identical() -> None:
    """kustomize reads no file outside deploy/, so deploy/ carries a copy; keep it in step."""
    assert (ROOT / "deploy" / "services.yaml").read_text() == (
        ROOT / "services.yaml").read_text(), "run: cp services.yaml deploy/services.yaml"


BAD = [
    ("project", ..., "services.yaml: project: is required"),
    ("project", "Chat_App", "services.yaml: project: must be a DNS label"),
    ("stages.ai.namespace", "{project}-dev", "stages.ai.namespace: the ai stage's pattern must"),
    ("stages.ai.host", "dev.{baseDomain}", "stages.ai.host: the ai stage's host pattern must"),
    ("stages.dev.baseDomain", "not a domain", "stages.dev.baseDomain: must be a DNS name"),
    ("stages.dev.namespace", "{project}-{team}", "unknown placeholder {team}"),
    ("stages.prod", {"namespace": "x", "baseDomain": "a.b"}, "stages.prod: unknown stage"),
    ("images.chat", "", "images.chat: must be a non-empty string"),
    ("images.redis", "redis 7", "images.redis: must be an image reference"),
    ("slots.maxSlots", 0, "slots.maxSlots: must be an integer between 1 and 999, got 0"),
    ("slots.maxSlots", "ten", "slots.maxSlots: must be an integer"),
    ("slots.defaultTTL", "soon", "slots.defaultTTL: not a duration"),
    ("slots.defaultTTL", "400h", "slots.defaultTTL: must not exceed slots.maxTTL"),
    ("slots.maxSlot", 3, "services.yaml: slots.maxSlot: unknown key"),
    ("defaults.tls.mode", "always", "defaults.tls.mode: must be one of off, clusterIssuer"),
    ("defaults.tls.clusterIssuer", ..., "defaults.tls.clusterIssuer: is required when mode"),
    ("defaults.chat.replicas", -1, "defaults.chat.replicas: must be an integer between 0 and 20"),
    ("defaults.chat.resources.limits.cpu", "lots", "defaults.chat.resources.limits.cpu: must be a"),
    ("defaults.postgres.storage.size", "1GB", "storage.size: must be a Kubernetes"),
    ("defaults.jaeger.enabled", "yes", "defaults.jaeger.enabled: must be true or false"),
    ("defaults.quota.gpus", "1", "defaults.quota.gpus: unknown key"),
    ("defaults.quota.pods", "many", "defaults.quota.pods: must be a Kubernetes quantity"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[b[0] for b in BAD])
def test_invalid_services_yaml_names_the_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(with_change(path, value))
    assert message in str(err.value)


def test_not_a_mapping_and_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the document: must be a mapping"):
        parse_config(["a", "list"])
    bad = tmp_path / "services.yaml"
    bad.write_text("project: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_operator_refuses_to_start_with_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "services.yaml"
    bad.write_text(yaml.safe_dump(with_change("slots.maxSlots", 0)))
    res = subprocess.run([sys.executable, "-m", "chatenv_operator", "--config", str(bad), "run"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "slots.maxSlots: must be an integer between 1 and 999" in res.stderr


@pytest.mark.parametrize(("text", "seconds"), [("24h", 86400), ("90m", 5400), ("1h30m", 5400),
                                               ("7d", 604800), ("45s", 45)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "h", "10", "1.5h", "-1h", "1w"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def body(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "e", "uid": "u"}, "spec": spec, "status": status or {}}


def test_resolve_takes_defaults_and_overrides() -> None:
    config = load_config(ROOT / "services.yaml")
    env = resolve(body({"stage": "ai", "slot": 7}), config)
    assert (env.namespace, env.host, env.url) == (
        "chat-dev-7", "dev-7.ai.chat.example.com", "https://dev-7.ai.chat.example.com")
    assert env.chat_image == config.images.chat
    env = resolve(body({"stage": "dev", "chat": {"image": "x/y:1", "replicas": 0},
                        "tls": {"mode": "off"}, "jaeger": {"enabled": False}}), config)
    assert (env.chat_image, env.chat_replicas, env.url, env.jaeger_enabled) == (
        "x/y:1", 0, "http://dev.chat.example.com", False)


def test_namespace_sticks_to_the_status_once_chosen() -> None:
    config = load_config(ROOT / "services.yaml")
    env = resolve(body({"stage": "dev"}, {"namespace": "chat-dev-old"}), config)
    assert env.namespace == "chat-dev-old"


@pytest.mark.parametrize(("spec", "message"), [
    ({"stage": "dev", "namespace": "kube-system"}, "reserved"),
    ({"stage": "dev", "namespace": "kube-anything"}, "reserved"),
    ({"stage": "dev", "namespace": "chatenv-system"}, "reserved"),
    ({"stage": "ai-repair"}, "has no entry under stages"),
])
def test_specs_the_schema_cannot_catch(spec: dict[str, Any], message: str) -> None:
    config = load_config(ROOT / "services.yaml")
    with pytest.raises(InvalidSpec, match=message):
        resolve(body(spec), config, operator_namespace="chatenv-system")


def test_too_long_generated_namespace_is_invalid() -> None:
    doc = with_change("project", "p" * 30)
    doc["stages"]["ai"]["namespace"] = "{project}-{project}-dev-{slot}"
    with pytest.raises(InvalidSpec, match="not a valid namespace name"):
        resolve(body({"stage": "ai", "slot": 1}), parse_config(doc))


def test_settings_errors_name_the_variable() -> None:
    assert (load_settings({}).workers, load_settings({}).concurrent_requests) == (16, 16)
    with pytest.raises(SettingsError, match="CHATENV_WORKERS must be an integer"):
        load_settings({"CHATENV_WORKERS": "many"})
    with pytest.raises(SettingsError, match="CHATENV_METRICS_PORT must be between 0 and 65535"):
        load_settings({"CHATENV_METRICS_PORT": "70000"})
    with pytest.raises(SettingsError, match="CHATENV_LOG_FORMAT must be json or text"):
        load_settings({"CHATENV_LOG_FORMAT": "xml"})


def test_render_prints_the_example_environment_offline() -> None:
    res = subprocess.run([sys.executable, "-m", "chatenv_operator", "--config",
                          str(ROOT / "services.yaml"), "render", "-f",
                          str(ROOT / "deploy" / "examples" / "dev.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    docs = list(yaml.safe_load_all(res.stdout))
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert kinds[0] == ("Namespace", "chat-dev")
    assert ("Deployment", "chat") in kinds
    assert ("StatefulSet", "postgres") in kinds
    assert len(kinds) == 21


def test_render_rejects_what_resolve_rejects(tmp_path: Path) -> None:
    bad = tmp_path / "env.yaml"
    bad.write_text("apiVersion: chatenv.dev/v1alpha1\nkind: ChatEnvironment\n"
                   "metadata: {name: x}\nspec: {stage: dev, namespace: kube-system}\n")
    res = subprocess.run([sys.executable, "-m", "chatenv_operator", "--config",
                          str(ROOT / "services.yaml"), "render", "-f", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "namespace 'kube-system' is reserved" in res.stderr
