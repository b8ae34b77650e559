"""The running mesh's API as a stranger, a web page and its owner see it, and
``POST /chaosmesh/v1/manifests`` being all or nothing (a real daemon, Envoy, kubectl)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from .conftest import Mesh, chaosmesh, request

pytestmark = pytest.mark.envoy

# A Deployment that would run any program (the attack the token closes).
COMMAND_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "evil", "annotations": {"chaosmesh.io/workload": "command"}},
    "spec": {
        "selector": {"matchLabels": {"app": "evil"}},
        "template": {
            "metadata": {
                "labels": {"app": "evil"},
                "annotations": {"chaosmesh.io/command": "python3 -m http.server $PORT"},
            },
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    },
}

# appv2 changed (a new label: its replica would restart) plus a VirtualService that Istio's
# validation accepts and Envoy refuses (RE2 program size > 100).
CHANGE_REFUSED_BY_ENVOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: appv2
  labels:
    app: v2
    changed: "yes"
spec:
  replicas: 1
  selector:
    matchLabels:
      app: v2
      apply: canary
  template:
    metadata:
      labels:
        app: v2
        apply: canary
    spec:
      containers:
      - name: nginx
        image: xianchao/canary:v2
        ports:
        - containerPort: 80
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: canary
spec:
  hosts: ["*"]
  gateways: [canary-gateway]
  http:
  - match:
    - uri:
        regex: "[a-z]{80}[0-9]{80}"
    route:
    - destination:
        host: canary.istio-test.svc.cluster.local
        subset: v1
"""


def _pod_pid(mesh: Mesh, pod: str) -> str:
    got = json.loads(mesh.kubectl("get", "pod", pod, "-n", "istio-test", "-o", "json").stdout)
    return str(got["metadata"]["annotations"]["chaosmesh.io/pid"])


def test_only_the_kubeconfig_holder_reaches_the_api_and_never_a_web_page(mesh_up) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    path = Path(mesh.state["kubeconfig"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert mesh.state["api_url"].startswith("https://127.0.0.1:")
    manifests = json.dumps({"namespace": "default", "manifests": [COMMAND_DEPLOYMENT]}).encode()

    code, body = mesh.api("POST", "/chaosmesh/v1/manifests", manifests, token=False)
    assert code == 401 and json.loads(body)["reason"] == "Unauthorized"
    assert mesh.api("POST", "/chaosmesh/v1/shutdown", token=False)[0] == 401
    assert mesh.api("GET", "/api/v1/namespaces/istio-test/pods", token=False)[0] == 401
    # A page in a local browser: a "simple" text/plain POST carries an Origin header.
    page = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    assert mesh.api("POST", "/chaosmesh/v1/manifests", manifests, headers=page)[0] == 403
    assert mesh.api("POST", "/chaosmesh/v1/shutdown", headers=page)[0] == 403
    assert mesh.kubectl("get", "deployment", "evil", "-n", "default", check=False).returncode

    # The owner's tools, unchanged: kubectl, mesh status, the pod proxy, mesh up -f.
    assert "appv1" in mesh.kubectl("get", "deployments", "-n", "istio-test").stdout
    report = json.loads(chaosmesh("mesh", "status", "--json", cwd=mesh.workdir).stdout)
    assert {s["name"] for s in report["services"]} == {"canary"}
    code, _ = mesh.api("GET", "/api/v1/namespaces/istio-test/pods/appv1-0:15020/proxy/ready")
    assert code == 200
    (mesh.workdir / "again.yaml").write_text((mesh.workdir / "canary/service.yaml").read_text())
    chaosmesh("mesh", "up", "-f", "again.yaml", "-n", "istio-test", cwd=mesh.workdir)
    assert request(mesh.gateway()["url"])[0] == 200


def test_a_change_envoy_refuses_leaves_workloads_and_istio_as_they_were(mesh_up) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    pid_before = _pod_pid(mesh, "appv2-0")
    (mesh.workdir / "change.yaml").write_text(CHANGE_REFUSED_BY_ENVOY)
    proc = chaosmesh(
        "mesh", "up", "-f", "change.yaml", "-n", "istio-test", cwd=mesh.workdir, check=False
    )
    assert proc.returncode != 0
    assert "the running mesh keeps what it had" in proc.stderr and "program size" in proc.stderr

    deployment = json.loads(
        mesh.kubectl("get", "deployment", "appv2", "-n", "istio-test", "-o", "json").stdout
    )
    assert "changed" not in deployment["metadata"]["labels"]
    assert _pod_pid(mesh, "appv2-0") == pid_before  # its replica was never restarted
    vs = json.loads(mesh.kubectl("get", "vs", "canary", "-n", "istio-test", "-o", "json").stdout)
    assert vs["metadata"]["generation"] == 1 and "match" not in vs["spec"]["http"][0]
    assert request(mesh.gateway()["url"])[0] == 200

    # A malformed request body is a 400 naming the expected shape (it was a 500).
    for body in (b"not json", b'{"manifests": [{"obj": {}}]}', b'["a list"]'):
        code, answer = mesh.api("POST", "/chaosmesh/v1/manifests", body)
        assert code == 400, (body, answer)
        assert "namespace, manifests" in json.loads(answer)["error"]
    assert request(mesh.gateway()["url"])[0] == 200
    mesh.state = json.loads((mesh.state_dir / "mesh.json").read_text())  # pids for the check
