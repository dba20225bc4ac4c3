"""One host for the UI, the API and the Jaeger UI; TLS through cert-manager or a secret.

While the environment's chat pods do not serve (asleep, suspended, starting) every path
of the host goes to the waker instead: an ExternalName Service ``waker`` in the
environment's namespace names the waker's Service in the operator's namespace, so the
same Ingress (and host) answers, and nothing outside the namespace changes."""

from __future__ import annotations

from ..constants import (
    CHAT_NAME,
    INGRESS_NAME,
    JAEGER_NAME,
    JAEGER_UI_PORT,
    WAKER_NAME,
    WAKER_SERVICE,
)
from ..environment import Environment
from ..kinds import INGRESS, SERVICE
from .common import Manifest, metadata

CERT_MANAGER_ISSUER = "cert-manager.io/cluster-issuer"


def _path(path: str, service: str, port: int) -> Manifest:
    return {"path": path, "pathType": "Prefix",
            "backend": {"service": {"name": service, "port": {"number": port}}}}


def tls_secret_name(env: Environment) -> str | None:
    if env.tls.mode == "secret":
        return env.tls.secret_name
    if env.tls.mode == "clusterIssuer":
        return f"{env.name}-tls"
    return None


def ingress(env: Environment) -> Manifest:
    if env.to_waker:
        paths = [_path("/", WAKER_SERVICE, 80)]
    else:
        paths = [_path("/api", CHAT_NAME, 80)]
        if env.jaeger_enabled and env.jaeger_public_ui:  # every trace, to anyone: on request
            paths.append(_path("/jaeger", JAEGER_NAME, JAEGER_UI_PORT))
        paths.append(_path("/", CHAT_NAME, 80))
    annotations = ({CERT_MANAGER_ISSUER: env.tls.cluster_issuer}
                   if env.tls.mode == "clusterIssuer" and env.tls.cluster_issuer else None)
    spec: Manifest = {"rules": [{"host": env.host, "http": {"paths": paths}}]}
    if env.ingress_class:
        spec = {"ingressClassName": env.ingress_class, **spec}
    secret = tls_secret_name(env)
    if secret:
        spec["tls"] = [{"hosts": [env.host], "secretName": secret}]
    return INGRESS.new(metadata(env, INGRESS_NAME, "ingress", annotations), spec=spec)


def waker_service(env: Environment, operator_namespace: str) -> Manifest:
    """The waker, by a name of this namespace (the cluster's DNS search path completes
    ``.svc``, whatever the cluster's domain)."""
    return SERVICE.new(metadata(env, WAKER_SERVICE, "ingress"), spec={
        "type": "ExternalName",
        "externalName": f"{WAKER_NAME}.{operator_namespace}.svc",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    })
