"""A real Kubernetes control plane for the integration tests.

When KUBECONFIG is set, the tests run against that cluster (kind, k3s, a
cloud cluster, or one started by `hack/cluster.py up`). Otherwise the session
starts the local control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok) from the cached binaries and stops it at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = [sys.executable, str(ROOT / "hack" / "cluster.py")]


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    given = os.environ.get("KUBECONFIG")
    if given:
        yield Path(given)
        return
    state = tmp_path_factory.mktemp("cluster")
    res = subprocess.run([*CLUSTER, "up", "--no-build", "--state-dir", str(state)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"could not start the local control plane:\n{res.stderr}", pytrace=False)
    try:
        yield state / "kubeconfig"
    finally:
        subprocess.run([*CLUSTER, "down", "--state-dir", str(state)], capture_output=True)


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        client.VersionApi(api).get_code()
    except Exception as e:
        pytest.fail(f"the cluster in {kubeconfig} does not answer: {e}", pytrace=False)
    yield api
    api.close()


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run kubectl (the one built with the control plane, else the one on PATH)."""
    versions = subprocess.run([*CLUSTER, "versions"], capture_output=True, text=True, check=True)
    import json

    k8s = json.loads(versions.stdout)["kubernetes"]
    cache = Path(os.environ.get("CHATENV_CACHE", Path.home() / ".cache" / "chatenv"))
    built = cache / f"k8s-{k8s}" / "kubectl"
    binary = str(built) if built.exists() else shutil.which("kubectl")
    if binary is None:
        pytest.fail("no kubectl: build the control plane (hack/cluster.py build)", pytrace=False)

    def run(*args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, "--kubeconfig", str(kubeconfig), *args], input=stdin,
                              capture_output=True, text=True, check=check, timeout=timeout)

    return run


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"chatenv.dev/test": "true"})))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise


@pytest.fixture(scope="session")
def crds(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """The project's CRDs, installed and Established."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))
