"""One host for the UI, the API and the Jaeger UI; TLS through cert-manager or a secret."""

from __future__ import annotations

from ..constants import CHAT_NAME, INGRESS_NAME, JAEGER_NAME, JAEGER_UI_PORT
from ..environment import Environment
from ..kinds import INGRESS
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
    paths = [_path("/api", CHAT_NAME, 80)]
    if env.jaeger_enabled and env.jaeger_public_ui:  # every trace, to anyone: on request only
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
