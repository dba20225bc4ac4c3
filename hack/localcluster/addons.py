"""The real node's add-ons, as pure manifests: cluster DNS, ingress controller, volumes.

- CoreDNS answers `*.cluster.local` at the kube-dns Service address the kubelet
  hands to pods (it runs as non-root on port 1053; the Service maps 53 to it).
- Traefik serves every Ingress of class `traefik` on 127.0.0.1:<ingress port>
  (a hostPort bound to loopback only) and reports that address in the Ingress
  status once it has admitted the Ingress.
- local-path-provisioner backs the default StorageClass `standard` with
  directories on the node, made writable for non-root pods (as kind does).
- The API server's client identity may use the kubelet API (logs, exec).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .node import CLUSTER_DNS, CLUSTER_DOMAIN

Manifest = dict[str, Any]

INGRESS_NAMESPACE = "ingress-traefik"
INGRESS_CLASS = "traefik"
STORAGE_NAMESPACE = "local-path-storage"
NON_ROOT = 65532


def _restricted_pod(uid: int = NON_ROOT) -> Manifest:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def _restricted_container() -> Manifest:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}}


def _account(name: str, namespace: str, rules: list[Manifest]) -> list[Manifest]:
    """A ServiceAccount with a ClusterRole of exactly ``rules``, bound cluster-wide."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": name, "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"chatenv-local:{name}"}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"chatenv-local:{name}"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": f"chatenv-local:{name}"},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
    ]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> Manifest:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


READ = ["get", "list", "watch"]


def _deployment(name: str, namespace: str, labels: dict[str, str], container: Manifest, *,
                volumes: list[Manifest], **pod: Any) -> Manifest:
    """One replica of one restricted, non-root container of an image built here, run as the
    ServiceAccount ``name``; ``pod`` adds pod-level fields (and ``strategy`` the
    Deployment's)."""
    strategy = pod.pop("strategy", None)
    spec: Manifest = {
        "replicas": 1,
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {
            "serviceAccountName": name,
            **pod,
            "securityContext": _restricted_pod(),
            "containers": [{"name": name, "imagePullPolicy": "Never", **container,
                            "securityContext": _restricted_container()}],
            "volumes": volumes,
        }},
    }
    if strategy:
        spec["strategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": spec}


def kubelet_api_access() -> list[Manifest]:
    return [{
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "chatenv-local:apiserver-kubelet-client"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "system:kubelet-api-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                      "name": "kube-apiserver-kubelet-client"}],
    }]


def network_policy_access() -> list[Manifest]:
    """What kube-router's network policy controller (a process on the node) reads."""
    name = "chatenv-local:kube-router"
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": name},
         "rules": [_rule([""], ["pods", "namespaces", "nodes", "services", "endpoints"], READ),
                   _rule(["networking.k8s.io"], ["networkpolicies"], READ),
                   _rule(["discovery.k8s.io"], ["endpointslices"], READ)]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}]},
    ]


def corefile() -> str:
    return (
        ".:1053 {\n"
        "    errors\n"
        "    health :8080\n"
        "    ready :8181\n"
        f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
        "        pods insecure\n"
        "        fallthrough in-addr.arpa ip6.arpa\n"
        "        ttl 30\n"
        "    }\n"
        "    cache 30\n"
        "    loop\n"
        "    reload\n"
        "}\n"
    )


def coredns(image: str) -> list[Manifest]:
    ns, labels = "kube-system", {"k8s-app": "kube-dns"}
    return [
        *_account("coredns", ns, [
            _rule([""], ["services", "pods", "namespaces"], ["list", "watch"]),
            _rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
        ]),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": ns},
         "data": {"Corefile": corefile()}},
        _deployment("coredns", ns, labels, {
            "image": image,
            "args": ["-conf", "/etc/coredns/Corefile"],
            "ports": [{"name": "dns", "containerPort": 1053, "protocol": "UDP"},
                      {"name": "dns-tcp", "containerPort": 1053, "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 2},
            "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 10,
                              "failureThreshold": 5},
            "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                          "limits": {"memory": "170Mi"}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
        }, volumes=[{"name": "config", "configMap": {"name": "coredns"}}],
            priorityClassName="system-cluster-critical", dnsPolicy="Default"),
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "kube-dns", "namespace": ns, "labels": labels},
         "spec": {"clusterIP": CLUSTER_DNS, "selector": labels, "ports": [
             {"name": "dns", "port": 53, "targetPort": 1053, "protocol": "UDP"},
             {"name": "dns-tcp", "port": 53, "targetPort": 1053, "protocol": "TCP"}]}},
    ]


def traefik(image: str, port: int) -> list[Manifest]:
    ns, labels = INGRESS_NAMESPACE, {"app.kubernetes.io/name": "traefik"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        *_account("traefik", ns, [
            # Nodes: Traefik 3.6's ingress provider watches them (for NodePort services).
            _rule([""], ["services", "secrets", "nodes"], READ),
            _rule(["discovery.k8s.io"], ["endpointslices"], READ),
            _rule(["networking.k8s.io"], ["ingresses", "ingressclasses"], READ),
            _rule(["networking.k8s.io"], ["ingresses/status"], ["update"]),
        ]),
        {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
         "metadata": {"name": INGRESS_CLASS,
                      "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
         "spec": {"controller": "traefik.io/ingress-controller"}},
        _deployment("traefik", ns, labels, {
            "image": image,
            "args": [
                "--entryPoints.web.address=:8000",
                "--entryPoints.traefik.address=:8080",
                "--ping=true",
                "--providers.kubernetesIngress=true",
                # Routes go live right after the status says admitted (the
                # default waits up to 2 s after any earlier reload).
                "--providers.providersThrottleDuration=100ms",
                f"--providers.kubernetesIngress.ingressClass={INGRESS_CLASS}",
                # What the Ingress status reports: where users reach it.
                "--providers.kubernetesIngress.ingressEndpoint.ip=127.0.0.1",
                # A sleeping environment's Ingress routes to the waker through an
                # ExternalName Service (Traefik refuses those unless told).
                "--providers.kubernetesIngress.allowExternalNameServices=true",
                "--log.level=INFO",
                "--global.checkNewVersion=false",
                "--global.sendAnonymousUsage=false",
            ],
            "ports": [
                {"name": "web", "containerPort": 8000, "hostPort": port, "hostIP": "127.0.0.1",
                 "protocol": "TCP"},
                {"name": "admin", "containerPort": 8080, "protocol": "TCP"},
            ],
            "readinessProbe": {"httpGet": {"path": "/ping", "port": "admin"}, "periodSeconds": 2},
            "livenessProbe": {"httpGet": {"path": "/ping", "port": "admin"}, "periodSeconds": 10,
                              "failureThreshold": 5},
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                          "limits": {"memory": "512Mi"}},
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }, volumes=[{"name": "tmp", "emptyDir": {}}],
            strategy={"type": "Recreate"}),  # one hostPort: never two pods at once
    ]


def local_path_provisioner(image: str, helper_image: str, volumes: Path) -> list[Manifest]:
    ns, labels = STORAGE_NAMESPACE, {"app.kubernetes.io/name": "local-path-provisioner"}
    helper = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "helper-pod"},
        "spec": {"priorityClassName": "system-node-critical",
                 "containers": [{"name": "helper-pod", "image": helper_image,
                                 "imagePullPolicy": "Never"}]},
    }
    config = {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES",
                               "paths": [str(volumes)]}]}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        *_account("local-path-provisioner", ns, [
            _rule([""], ["nodes", "persistentvolumeclaims", "configmaps", "pods/log"], READ),
            _rule([""], ["pods"], [*READ, "create", "patch", "update", "delete"]),
            _rule([""], ["persistentvolumes"], [*READ, "create", "patch", "update", "delete"]),
            _rule([""], ["events"], ["create", "patch"]),
            _rule(["storage.k8s.io"], ["storageclasses"], READ),
        ]),
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "local-path-config", "namespace": ns},
         "data": {
             "config.json": json.dumps(config),
             # World-writable, so a non-root pod owns its volume (fsGroup does not apply
             # to host-path volumes).
             "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
             "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
             "helperPod.yaml": json.dumps(helper),
         }},
        _deployment("local-path-provisioner", ns, labels, {
            "image": image,
            "args": ["start", "--config", "/etc/config/config.json",
                     "--service-account-name", "local-path-provisioner",
                     "--provisioner-name", "rancher.io/local-path",
                     "--configmap-name", "local-path-config"],
            "env": [{"name": "POD_NAMESPACE",
                     "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "CONFIG_MOUNT_PATH", "value": "/etc/config/"}],
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"},
                          "limits": {"memory": "128Mi"}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/config/"}],
        }, volumes=[{"name": "config", "configMap": {"name": "local-path-config"}}]),
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": "standard",
                      "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
         "provisioner": "rancher.io/local-path",
         "volumeBindingMode": "WaitForFirstConsumer",
         "reclaimPolicy": "Delete"},
    ]


def all_addons(images: dict[str, str], ingress_port: int, volumes: Path) -> Manifest:
    items = [*kubelet_api_access(), *network_policy_access(), *coredns(images["coredns"]),
             *traefik(images["traefik"], ingress_port),
             *local_path_provisioner(images["local-path-provisioner"], images["debian"], volumes)]
    return {"apiVersion": "v1", "kind": "List", "items": items}
