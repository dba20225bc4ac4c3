"""A real Kubernetes control plane for the integration tests.

When KUBECONFIG is set, the tests run against that cluster (kind, k3s, a
cloud cluster, or one started by `hack/cluster.py up`). Otherwise the session
starts the local control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok) from the cached binaries and stops it at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubehelpers import Slots
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from local_operator import service_account_kubeconfig
from servers import free_port

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = [sys.executable, str(ROOT / "hack" / "cluster.py")]


@pytest.fixture(scope="session")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    given = os.environ.get("KUBECONFIG")
    if given:
        yield Path(given)
        return
    state = tmp_path_factory.mktemp("cluster")
    res = subprocess.run([*CLUSTER, "up", "--fake-nodes", "--no-build", "--state-dir", str(state)],
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
def kubectl_command(kubeconfig: Path) -> list[str]:
    """kubectl (the one built with the control plane, else the one on PATH) for the cluster."""
    binary = subprocess.run([*CLUSTER, "kubectl"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return [binary, "--kubeconfig", str(kubeconfig)]


@pytest.fixture(scope="session")
def kubectl(kubectl_command: list[str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run kubectl against the tests' cluster."""

    def run(*args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*kubectl_command, *args], input=stdin, capture_output=True,
                              text=True, check=check, timeout=timeout)

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


def wait_crds_established(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd",
            "-l", "app.kubernetes.io/part-of=chatenv")


@pytest.fixture(scope="session")
def crds(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """The project's CRDs, installed and Established."""
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "crds"))
    wait_crds_established(kubectl)


# --------------------------------------------------------------------------- the operator


# How the API server words an authorization denial of the operator's ServiceAccount.
RBAC_DENIAL = 'User \\"system:serviceaccount:chatenv-system:chatenv-operator\\" cannot'


class OperatorProcess:
    """The real operator (`python -m chatenv_operator run`) as a child process.

    It authenticates with a token of the ServiceAccount that deploy/ creates, so
    every test exercises exactly the permissions deploy/ grants.
    """

    def __init__(self, kubeconfig: Path, config: Path, workdir: Path) -> None:
        self.kubeconfig = kubeconfig
        self.config = config
        self.workdir = workdir
        self.log = workdir / "operator.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0
        self.health_port = 0
        self.starts = 0

    def start(self) -> None:
        import time
        import urllib.request

        self.metrics_port, self.health_port = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "CHATENV_CONFIG": str(self.config),
            "CHATENV_NAMESPACE": "chatenv-system",
            "CHATENV_METRICS_PORT": str(self.metrics_port),
            "CHATENV_HEALTH_PORT": str(self.health_port),
            "CHATENV_LOG_FORMAT": "json",
            "CHATENV_SWEEP_SECONDS": "2",
            "CHATENV_ORPHAN_GRACE_SECONDS": "3",
        }
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "chatenv_operator", "run"],
                                         env=env, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.workdir)
        self.starts += 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"operator exited:\n{self.log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.health_port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("operator did not become live within 60 s")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as in a node failure or an OOM kill."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def metrics(self) -> dict[str, float]:
        import urllib.request

        with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out

    def writes(self) -> int:
        """Write requests sent so far, whatever their answer."""
        return int(sum(value for key, value in self.metrics().items()
                       if key.startswith("chatenv_api_requests_total{")
                       and any(f'verb="{v}"' in key for v in ("POST", "PUT", "PATCH", "DELETE"))))

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


@pytest.fixture(scope="session")
def installed(kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    """`kubectl apply -k deploy/`, as a cluster admin would; the in-cluster operator is
    scaled to zero so the tests' own operator process is the only one reconciling."""
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "deploy"))
    wait_crds_established(kubectl)
    kubectl("scale", "deployment/chatenv-operator", "-n", "chatenv-system", "--replicas=0")


@pytest.fixture(scope="session")
def operator(installed: None, kubectl_command: list[str],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    workdir = tmp_path_factory.mktemp("operator")
    import yaml

    config = workdir / "services.yaml"
    doc = yaml.safe_load((ROOT / "services.yaml").read_text())
    doc["slots"].update({"maxSlots": 10, "expiryWarning": "10s"})  # short TTLs in the tests
    if os.environ.get("CHATENV_TEST_CHAT_IMAGE"):  # a real cluster runs a real image (kind)
        doc["images"]["chat"] = os.environ["CHATENV_TEST_CHAT_IMAGE"]
    config.write_text(yaml.safe_dump(doc))
    sa_config = service_account_kubeconfig(kubectl_command, workdir / "kubeconfig",
                                           duration="6h")
    proc = OperatorProcess(sa_config, config, workdir)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def slots(custom: client.CustomObjectsApi) -> Iterator[Slots]:
    s = Slots(custom)
    yield s
    s.cleanup()
