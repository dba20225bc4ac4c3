"""The cluster's PKI: one CA, serving and client certificates, service-account keys."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .processes import ClusterError

KUBERNETES_SERVICE_IP = "10.96.0.1"  # the first address of the service range


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _leaf(pki: Path, name: str, subject: str, extensions: str) -> None:
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ext = pki / f"{name}.ext"
    ext.write_text(extensions)
    _openssl("req", *ec, "-keyout", str(pki / f"{name}.key"), "-out", str(pki / f"{name}.csr"),
             "-subj", subject)
    _openssl("x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(pki / "ca.crt"),
             "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "3650",
             "-out", str(pki / f"{name}.crt"), "-extfile", str(ext))


CLIENT = "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"


def make_certificates(pki: Path, *, address: str, node: str | None) -> None:
    """A CA, the apiserver's serving cert, client certs, service-account keys.

    ``address`` is where the API server listens; ``node`` names the real node whose
    kubelet and kube-proxy get client certificates (None on fake nodes).
    """
    if not shutil.which("openssl"):
        raise ClusterError("`openssl` is needed to create the cluster's certificates")
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
             "-days", "3650", "-subj", "/CN=chatenv-local-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    ips = sorted({"127.0.0.1", address, KUBERNETES_SERVICE_IP})
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local"]
    _leaf(pki, "apiserver", "/CN=kube-apiserver",
          "subjectAltName=" + ",".join([*(f"IP:{i}" for i in ips), *(f"DNS:{n}" for n in names)])
          + "\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _leaf(pki, "admin", "/O=system:masters/CN=chatenv-admin", CLIENT)
    if node:
        _leaf(pki, "kubelet", f"/O=system:nodes/CN=system:node:{node}", CLIENT)
        _leaf(pki, "kube-proxy", "/CN=system:kube-proxy", CLIENT)
        _leaf(pki, "kube-router", "/CN=chatenv-local:kube-router", CLIENT)
        # The API server's identity towards kubelets (logs, exec, port-forward).
        _leaf(pki, "apiserver-kubelet-client", "/CN=kube-apiserver-kubelet-client", CLIENT)
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", str(pki / "sa.key"))
    _openssl("pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))
    for key in pki.glob("*.key"):
        key.chmod(0o600)


def write_kubeconfig(path: Path, pki: Path, server: str, user: str = "admin") -> None:
    """A kubeconfig for ``server`` that authenticates with the client cert ``pki/<user>.crt``."""
    path.write_text(json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "chatenv-local", "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": f"chatenv-{user}", "user": {
            "client-certificate": str(pki / f"{user}.crt"),
            "client-key": str(pki / f"{user}.key")}}],
        "contexts": [{"name": "chatenv-local", "context": {
            "cluster": "chatenv-local", "user": f"chatenv-{user}"}}],
        "current-context": "chatenv-local",
    }, indent=2))
    path.chmod(0o600)
