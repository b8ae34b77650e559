"""One embedded mesh for these tests (each leaves its Deployments as it found them), and
chaostoolkit-kubernetes pointed at it as a user points it (``KUBECONFIG``), never at the
developer's own cluster.

The mesh runs three Deployments:
- ``catalog``: three echo replicas behind Service ``catalog:8000``;
- ``web``: two echo replicas behind ``web:80`` (scaled by the tests);
- ``stubborn``: a ``command`` workload whose program ignores SIGTERM, with a 60 s grace
  period and no ``spec.replicas`` (the API server's default, 1) — how a slow shutdown looks;
- ``slow``: three echo replicas behind ``slow:8000`` whose every request takes 200 ms, so a
  replica always has requests in flight when it dies.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support.embedded_mesh import RunningMesh, running_mesh

T = 30

STUBBORN_PROGRAM = """
import os, signal
from http.server import BaseHTTPRequestHandler, HTTPServer

signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL stops it


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\\n")

    def log_message(self, *args):
        pass


print("stubborn serving", flush=True)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def _service(name: str, port: int) -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, labels: {{app: {name}}}}}\n"
        f"spec:\n  selector: {{app: {name}}}\n  ports: [{{name: http, port: {port}, "
        "targetPort: 8080}]\n"
    )


def _echo(name: str, replicas: int, capacity: str = "") -> str:
    annotations = f", annotations: {{chaosmesh.io/capacity: '{capacity}'}}" if capacity else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}, version: v1}}{annotations}}}
    spec:
      containers:
      - {{name: {name}, image: example.com/{name}:1.0, ports: [{{containerPort: 8080}}]}}
"""


def _stubborn(program: Path) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: stubborn}}
spec:
  selector: {{matchLabels: {{app: stubborn}}}}
  template:
    metadata:
      labels: {{app: stubborn}}
      annotations:
        chaosmesh.io/workload: command
        chaosmesh.io/command: "{sys.executable} {program}"
    spec:
      terminationGracePeriodSeconds: 60
      containers: [{{name: stubborn, image: example.com/stubborn:1.0}}]
"""


@pytest.fixture(scope="package")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMesh]:
    workdir = tmp_path_factory.mktemp("pods")
    program = workdir / "stubborn.py"
    program.write_text(STUBBORN_PROGRAM)
    manifests = {
        "catalog.yaml": _service("catalog", 8000) + "---\n" + _echo("catalog", 3),
        "web.yaml": _service("web", 80) + "---\n" + _echo("web", 2),
        "stubborn.yaml": _service("stubborn", 7000) + "---\n" + _stubborn(program),
        "slow.yaml": _service("slow", 8000)
        + "---\n"
        + _echo("slow", 3, "workers=16,service=200ms"),
    }
    with running_mesh(workdir, manifests) as running:
        yield running


@pytest.fixture
def k8s(mesh: RunningMesh, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningMesh]:
    """chaosk8s reads KUBECONFIG (then ~/.kube/config): only the mesh's, for this test.

    chaosk8s checks that ``$KUBECONFIG`` exists, then calls ``load_kube_config()``, which
    loads the kubernetes package's ``KUBE_CONFIG_DEFAULT_LOCATION``: ``$KUBECONFIG`` as it
    was when the package was *imported*. Setting the variable later in the same process is
    not enough; the module's default must follow (a ``chaos run`` started with KUBECONFIG in
    its environment has both from the start)."""
    from kubernetes.config import kube_config

    for key in ("KUBERNETES_CONTEXT", "KUBERNETES_HOST", "CHAOSTOOLKIT_IN_POD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("KUBECONFIG", mesh.kubeconfig)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", mesh.kubeconfig)
    monkeypatch.setenv("HOME", str(mesh.workdir))
    try:
        yield mesh
    finally:
        # chaosk8s loads the kubeconfig into the client's process-wide default.
        client.Configuration.set_default(client.Configuration())
        mesh.refresh()


@pytest.fixture
def core(k8s: RunningMesh) -> Iterator[client.CoreV1Api]:
    """An independent client (the official one, built from the kubeconfig) to look with."""
    from kubernetes import config

    api_client = config.new_client_from_config(config_file=k8s.kubeconfig)
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


# ---- looking at the pods (the official client, as the tests' independent eyes) ----------
def list_pods(core: client.CoreV1Api, selector: str) -> list[client.V1Pod]:
    return list(
        core.list_namespaced_pod("default", label_selector=selector, _request_timeout=T).items
    )


def local_ports(pods: list[client.V1Pod]) -> set[int]:
    return {int(p.metadata.annotations["chaosmesh.io/local-port"]) for p in pods}


def pod_pid(pod: client.V1Pod) -> int:
    return int(pod.metadata.annotations["chaosmesh.io/pid"])


def program_pid(core: client.CoreV1Api, pod: client.V1Pod) -> int:
    """The pid of a command pod's own program, from its supervisor's line in the pod log."""
    log = core.read_namespaced_pod_log(pod.metadata.name, "default", _request_timeout=T)
    found = re.search(r": started pid (\d+)", log)
    assert found, log
    return int(found.group(1))


def ready_status(pod: client.V1Pod) -> str:
    return next(c.status for c in pod.status.conditions if c.type == "Ready")


def settled(core: client.CoreV1Api, selector: str, count: int) -> list[client.V1Pod]:
    """Wait until exactly ``count`` pods match, all Running and Ready, none being deleted."""
    deadline = time.monotonic() + T
    pods: list[client.V1Pod] = []
    while time.monotonic() < deadline:
        pods = list_pods(core, selector)
        if len(pods) == count and all(
            p.status.phase == "Running"
            and ready_status(p) == "True"
            and not p.metadata.deletion_timestamp
            for p in pods
        ):
            return pods
        time.sleep(0.05)
    raise AssertionError(f"{selector}: not {count} ready pods: {[p.metadata.name for p in pods]}")


def wait_for(check: Any, what: str, timeout: float = T) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
