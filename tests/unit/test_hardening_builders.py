"""What the hardening settings make of an environment: the chat service's trusted proxies,
its metrics port kept off the Ingress, Jaeger's UI public only on request, Redis kept on a
volume with a memory cap, the namespace's quota, host and network policies."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from test_operator_config import DOC, with_change

from chatenv_operator.builders import chat, data, ingress, namespace, redis
from chatenv_operator.config import ConfigError, parse_config
from chatenv_operator.environment import Environment, resolve


def env(spec: dict[str, Any] | None = None, **changes: Any) -> Environment:
    """An environment of stage dev; ``a__b__c=value`` sets a.b.c of services.yaml."""
    doc = copy.deepcopy(DOC)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    body = {"metadata": {"name": "e", "uid": "u", "generation": 1},
            "spec": {"stage": "dev", "namespace": "e-ns", **(spec or {})}}
    return resolve(body, parse_config(doc))


def test_the_chat_service_trusts_forwarding_headers_only_from_the_ingress_controller() -> None:
    assert "TRUSTED_PROXY_CIDRS" not in data.config_data(env())  # the peer's address, then
    e = env(defaults__ingress__trustedProxyCIDRs=["10.244.0.0/16", "fd00:10:244::/56"])
    assert data.config_data(e)["TRUSTED_PROXY_CIDRS"] == "10.244.0.0/16,fd00:10:244::/56"


@pytest.mark.parametrize("value", [["10.244.0.1/16"], "10.244.0.0/16", ["ingress"], [None]])
def test_trusted_proxies_must_be_ranges_with_their_host_bits_zero(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"defaults\.ingress\.trustedProxyCIDRs: must be"):
        parse_config(with_change("defaults.ingress.trustedProxyCIDRs", value))


def test_metrics_have_a_port_of_their_own_that_no_ingress_reaches() -> None:
    e = env()
    container = chat.chat_deployment(e)["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "metrics", "containerPort": 9090, "protocol": "TCP"} in container["ports"]
    assert data.config_data(e)["METRICS_PORT"] == "9090"
    assert [p["targetPort"] for p in chat.chat_service(e)["spec"]["ports"]] == [
        "http", "activity"]
    controller = namespace.network_policy(e)["spec"]["ingress"][1]
    assert controller["ports"] == [{"protocol": "TCP", "port": 8080}]  # the chat port only
    assert len(namespace.network_policy(e)["spec"]["ingress"]) == 2  # no scraper configured
    scraped = env(defaults__metrics={"namespace": "monitoring"})
    rule = namespace.network_policy(scraped)["spec"]["ingress"][2]
    assert rule == {"from": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}],
        "ports": [{"protocol": "TCP", "port": 9090}]}


def test_jaegers_ui_is_public_only_when_asked_for() -> None:
    def paths(e: Environment) -> list[str]:
        return [p["path"] for p in ingress.ingress(e)["spec"]["rules"][0]["http"]["paths"]]

    assert paths(env()) == ["/api", "/"]
    opted = env({"jaeger": {"publicUI": True}})
    assert paths(opted) == ["/api", "/jaeger", "/"]
    assert namespace.network_policy(opted)["spec"]["ingress"][1]["ports"] == [
        {"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 16686}]
    assert paths(env(defaults__jaeger__publicUI=True)) == ["/api", "/jaeger", "/"]
    assert paths(env({"jaeger": {"publicUI": True, "enabled": False}})) == ["/api", "/"]


@pytest.mark.parametrize(("limit", "maxmemory"), [
    ("256Mi", "214748364"), ("1Gi", "858993459"), ("512M", "409600000"), (None, None)])
def test_redis_persists_and_caps_its_memory_at_80_percent_of_its_limit(
        limit: str | None, maxmemory: str | None) -> None:
    e = env(defaults__redis={"resources": {"limits": {"memory": limit}} if limit else {}})
    container = redis.redis_deployment(e)["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[:2] == ["redis-server", "/etc/redis/redis.conf"]
    options = dict(zip(command[2::2], command[3::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"
    assert options["--maxmemory-policy"] == "volatile-ttl"
    assert options.get("--maxmemory") == maxmemory
    volumes = redis.redis_deployment(e)["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "redis-data"}} in volumes
    claim = redis.redis_volume_claim(env(defaults__postgres={"storage": {
        "storageClassName": "fast"}}))
    assert claim["spec"]["storageClassName"] == "fast"


def test_nothing_is_exposed_but_through_the_ingress_whatever_the_quota_says() -> None:
    hard = namespace.resource_quota(env())["spec"]["hard"]
    assert hard["services.loadbalancers"] == "0"
    assert hard["services.nodeports"] == "0"


def test_the_namespace_names_the_host_its_ingresses_may_serve() -> None:
    e = env({"host": "mine.dev.chat.example.com"})
    assert namespace.namespace(e)["metadata"]["annotations"] == {
        "chatenv.dev/host": "mine.dev.chat.example.com"}


def test_egress_is_the_namespace_and_dns_and_agents_never_reach_link_local() -> None:
    e = env(defaults__egress={"dnsNamespace": "dns", "dnsPodLabels": {"app": "coredns"},
                              "agentDeniedCIDRs": ["10.0.0.0/8", "fd00::/8"],
                              "apiServerCIDRs": ["10.0.0.1/32"]})
    rules = namespace.egress_policy(e)["spec"]["egress"]
    assert rules[1] == {"to": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "dns"}}, "podSelector": {"matchLabels": {
            "app": "coredns"}}}]}
    agent = namespace.agent_egress_policy(e)["spec"]
    assert agent["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "agent"}}
    assert agent["egress"] == [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16", "10.0.0.0/8"]}},
                {"ipBlock": {"cidr": "::/0", "except": ["fe80::/10", "fd00::/8"]}}]},
        {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}]


@pytest.mark.parametrize(("key", "value"), [
    ("agentDeniedCIDRs", ["10.0.0.1/8"]), ("apiServerCIDRs", "10.0.0.1/32"),
    ("dnsPodLabels", {}), ("dnsNamespace", "Kube_System"), ("typo", 1)])
def test_egress_settings_name_their_field(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=rf"defaults\.egress\.{key}"):
        parse_config(with_change(f"defaults.egress.{key}", value))
