"""What the operator tells a Prometheus and a log reader: the metrics' families and labels,
series that leave with their objects, JSON log lines with the object's fields, the status
fields read from live workloads, and the log lines for what changed an environment."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from chatenv_operator import logs, readiness, reporting
from chatenv_operator.conditions import replace_map, set_condition
from chatenv_operator.config import load_config
from chatenv_operator.controller import Controller
from chatenv_operator.environment import resolve
from chatenv_operator.kube import RequestCounter
from chatenv_operator.metrics import Metrics, Watched

ROOT = Path(__file__).resolve().parents[2]


def scrape(m: Metrics) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(m.render().decode())}


def samples(family: Any) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples
            if s.name == family.name or s.name == family.name + "_total"}


class Done:
    requeue_after = None
    gone = False


async def test_metrics_a_prometheus_user_expects() -> None:
    requests = RequestCounter()
    requests.add("GET", 200)
    requests.add("GET", 200)
    requests.add("PATCH", 409)
    requests.add("GET", 0)
    watched = Watched(environments={"dev": "Ready", "slot-1": "Provisioning"},
                      devslots={"a": "Queued"})
    controller = Controller("chatenvironment", lambda key: Done())
    m = Metrics(requests, lambda: [controller], watched)
    m.reconciled("chatenvironment", "dev", 0.2, True)
    m.pool(size=10, used=10, queued=3)
    f = scrape(m)

    assert samples(f["chatenv_api_requests"]) == {
        (("code", "200"), ("verb", "GET")): 2, (("code", "409"), ("verb", "PATCH")): 1,
        (("code", "error"), ("verb", "GET")): 1}
    assert f["chatenv_reconcile_duration_seconds"].type == "histogram"
    buckets = {s.labels["le"]: s.value for s in f["chatenv_reconcile_duration_seconds"].samples
               if s.name.endswith("_bucket")}
    assert (buckets["0.1"], buckets["0.25"]) == (0, 1)
    for name in ("chatenv_workqueue_depth", "chatenv_workqueue_oldest_item_age_seconds",
                 "chatenv_workqueue_retries", "chatenv_reconciles",
                 "chatenv_reconcile_failures"):
        assert samples(f[name]) == {(("controller", "chatenvironment"),): 0}, name
    assert samples(f["chatenv_pool_slots"]) == {(("state", "used"),): 10,
                                                (("state", "free"),): 0}
    assert samples(f["chatenv_pool_queued_devslots"]) == {(): 3}
    assert samples(f["chatenv_environments"]) == {
        (("phase", "Provisioning"),): 1, (("phase", "Ready"),): 1,
        (("phase", "Suspended"),): 0, (("phase", "Sleeping"),): 0, (("phase", "Failed"),): 0}
    assert samples(f["chatenv_environment_phase"]) == {
        (("environment", "dev"), ("phase", "Ready")): 1,
        (("environment", "slot-1"), ("phase", "Provisioning")): 1}
    assert samples(f["chatenv_devslots"])[(("phase", "Queued"),)] == 1
    assert "process_resident_memory_bytes" in f
    assert "python_info" in f
    build = f["chatenv_build_info"].samples[0].labels
    assert set(build) == {"version", "kopf_version", "python_version"}


def test_a_deleted_object_leaves_no_series() -> None:
    m = Metrics(RequestCounter(), list, Watched())
    for name in ("a", "b", "c"):
        m.reconciled("devslot", name, 0.01, True)
    m.forgotten("devslot", "a")
    m.forgotten("devslot", "b")
    m.forgotten("devslot", "never-seen")  # harmless
    assert samples(scrape(m)["chatenv_object_reconciles"]) == {
        (("controller", "devslot"), ("name", "c")): 1}


async def test_log_lines_are_json_with_the_object_and_python_level_names() -> None:
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(logs.JsonFormatter().format(record))

    log = logging.getLogger("chatenv_operator.test")
    log.addHandler(Capture())
    log.setLevel(logging.INFO)
    try:
        with logs.bound(controller="chatenvironment", kind="ChatEnvironment", name="dev"):
            # Reconciles run in threads: the fields follow them there.
            await asyncio.to_thread(log.warning, "namespace %s taken", "chat-dev")
        log.info("outside", extra={"k8s_ref": {"kind": "DevSlot", "name": "x", "uid": "u"}})
    finally:
        log.handlers.clear()
    first, second = (json.loads(r) for r in records)
    assert first["level"] == "WARNING"
    assert first["message"] == "namespace chat-dev taken"
    assert (first["controller"], first["kind"], first["name"]) == (
        "chatenvironment", "ChatEnvironment", "dev")
    assert first["time"].endswith("Z")
    assert (second["level"], second["kind"], second["name"]) == ("INFO", "DevSlot", "x")
    assert "controller" not in second


def env(spec: dict[str, Any]) -> Any:
    body = {"apiVersion": "chatenv.dev/v1alpha1", "kind": "ChatEnvironment",
            "metadata": {"name": "dev", "uid": "u"}, "spec": {"stage": "dev", **spec}}
    return resolve(body, load_config(ROOT / "services.yaml"))


def workload(image: str, replicas: int = 1, current: int = 1) -> dict[str, Any]:
    return {"spec": {"replicas": replicas,
                     "template": {"spec": {"containers": [{"image": image}]}}},
            "status": {"replicas": current}}


def test_status_shows_the_images_that_run() -> None:
    live = {"StatefulSet/postgres": workload("postgres:16"), "Deployment/redis": workload("r:7"),
            "Deployment/chat": workload("chat:2", replicas=2, current=3)}
    components = {"postgres": readiness.Readiness(True, "1/1 ready"),
                  "redis": readiness.Readiness(True, "1/1 available"),
                  "chat": readiness.Readiness(False, "rolling out: 1/2 updated"),
                  "jaeger": readiness.Readiness(True, "disabled")}
    out = reporting.workloads(env({}), live, components,
                              {"chat": "chat:1", "jaeger": "jaeger:2"})
    # chat:2 is rolling out: chat:1 still runs; jaeger was disabled: it runs nothing.
    assert out["images"] == {"postgres": "postgres:16", "redis": "r:7", "chat": "chat:1",
                             "jaeger": None}
    assert out["replicas"] == 3
    assert out["selector"] == "app.kubernetes.io/instance=dev,app.kubernetes.io/name=chat"
    live["Deployment/chat"] = workload("chat:2", replicas=0, current=0)
    components["chat"] = readiness.Readiness(True, "scaled to zero")
    assert "chat" not in reporting.workloads(env({}), live, components, {})["images"]


def test_replace_map_settles() -> None:
    assert replace_map({"a": "1", "b": "2"}, {"a": "3"}) == {"a": "3", "b": None}
    assert replace_map({"a": "3"}, {"a": "3"}) == {"a": "3"}
    assert replace_map(None, {}) == {}


def ready(status: bool, reason: str, message: str) -> list[dict[str, Any]]:
    return set_condition([], type="Ready", status=status, reason=reason, message=message,
                         generation=1)


def test_log_lines_for_what_changed_an_environment() -> None:
    created = {"phase": "Provisioning", "namespace": "chat-dev", "url": "https://d",
               "conditions": ready(False, "WaitingPostgres", "postgres: 0/1 ready")}
    assert reporting.changes({}, created) == ["new environment: namespace chat-dev, https://d"]
    running = {**created, "phase": "Ready", "images": {"chat": "chat:1"},
               "conditions": ready(True, "Ready", "all ready")}
    assert reporting.changes(created, running) == ["phase Provisioning -> Ready"]
    rolled = {**running, "images": {"chat": "chat:2"}}
    assert reporting.changes(running, rolled) == ["chat image rolled: chat:1 -> chat:2"]
    suspended = {**rolled, "phase": "Suspended"}
    assert reporting.changes(rolled, suspended) == ["suspended: workloads scaled to zero"]
    assert reporting.changes(suspended, rolled) == ["resumed: Ready"]
    invalid = {**rolled, "phase": "Failed",
               "conditions": ready(False, "InvalidSpec", "namespace 'default' is reserved")}
    assert reporting.changes(rolled, invalid) == [
        "phase Ready -> Failed", "InvalidSpec: namespace 'default' is reserved"]
    assert reporting.changes(invalid, invalid) == []


def test_alert_rules_use_metrics_the_operator_exports_and_the_docs_show_them() -> None:
    import re

    import yaml

    rules = yaml.safe_load((ROOT / "deploy" / "monitoring" / "prometheusrule.yaml").read_text())
    controller = Controller("devslot", lambda key: Done())
    m = Metrics(RequestCounter(), lambda: [controller], Watched(environments={"dev": "Ready"}))
    m.pool(size=1, used=1, queued=0)
    m.reconciled("devslot", "x", 0.1, True)
    exported = {s.name for f in text_string_to_metric_families(m.render().decode())
                for s in f.samples}
    exported.add("chatenv_api_requests_total")  # a counter with no sample until a request
    docs = (ROOT / "docs" / "operations.md").read_text()
    alerts = rules["spec"]["groups"][0]["rules"]
    assert len(alerts) >= 5
    for rule in alerts:
        for name in re.findall(r"\bchatenv_[a-z_]+", rule["expr"]):
            assert name in exported, (rule["alert"], name)
        assert f"`{rule['alert']}`" in docs, rule["alert"]
        assert f"`{rule['expr'].replace('|', chr(92) + '|')}`" in docs, rule["expr"]


def test_the_scrape_objects_find_the_operator_pod() -> None:
    import yaml

    deploy = ROOT / "deploy"
    pod = next(yaml.safe_load_all((deploy / "operator.yaml").read_text()))["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    service = yaml.safe_load((deploy / "metrics.yaml").read_text())
    monitor = yaml.safe_load((deploy / "monitoring" / "podmonitor.yaml").read_text())
    for selector in (service["spec"]["selector"], monitor["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] in ports
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in ports
    assert service["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])
    assert "metrics.yaml" in yaml.safe_load((deploy / "kustomization.yaml").read_text())[
        "resources"]
