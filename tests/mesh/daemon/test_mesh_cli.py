"""``chaosmesh mesh up/down/status/url`` as a user drives them: bad input, re-apply while
running, foreground mode, a killed daemon, a killed Envoy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.mesh.state import alive, start_time
from tests.support.processes import kill_all_mentioning, pids_mentioning, wait_until

from .conftest import CLI, SEED, Mesh, chaosmesh, request

pytestmark = pytest.mark.envoy

BAD_VS = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: canary
spec:
  hosts:
  - "*"
  gateways:
  - canary-gateway
  http:
  - fault:
      abort:
        percentage:
          value: 200
        httpStatus: 503
    route:
    - destination:
        host: canary.istio-test.svc.cluster.local
        subset: v1
      weight: 90
    - destination:
        host: canary.istio-test.svc.cluster.local
        subset: v2
      weight: -1
"""

UNKNOWN_HOST_VS = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
"""

ECHO_APP = """\
apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  selector: {app: hello}
  ports:
  - port: 9090
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 2
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
      - name: hello
        image: example/hello:1
"""


def _up_fails(workdir: Path, *args: str) -> str:
    proc = chaosmesh("mesh", "up", *args, cwd=workdir, check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "broken.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n spec: [\n",
            ["broken.yaml: document 1 (line 5", "malformed YAML"],
        ),
        (
            "se.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"
            "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n"
            "  name: external\n",
            [
                "se.yaml: document 2",
                "ServiceEntry istio-test/external",
                "not implemented by the embedded mesh: 'ServiceEntry'",
            ],
        ),
        (
            "bad.yaml",
            BAD_VS,
            [
                "bad.yaml: document 1",
                "VirtualService istio-test/canary",
                "spec.http[0].fault.abort.percentage.value",
                "spec.http[0].route[1].weight",
            ],
        ),
        (
            "tool.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: tool}\nspec:\n  template:\n"
            "    metadata:\n      labels: {app: tool}\n"
            "      annotations: {chaosmesh.io/workload: command}\n",
            ["tool.yaml: document 1", "Deployment istio-test/tool", "chaosmesh.io/command"],
        ),
        (
            "unknown.yaml",
            UNKNOWN_HOST_VS,
            [
                "VirtualService istio-test/reviews",
                "spec.http[0].route[0].destination.host",
                "matches no Service",
            ],
        ),
    ],
)
def test_bad_input_starts_nothing_and_names_file_object_field(
    tmp_path: Path, name: str, text: str, expected: list[str]
) -> None:
    (tmp_path / name).write_text(text)
    stderr = _up_fails(tmp_path, "-f", name, "--namespace", "istio-test")
    for fragment in expected:
        assert fragment in stderr
    assert not (tmp_path / ".chaosmesh" / "mesh.json").exists()
    assert "no mesh running" in chaosmesh("mesh", "down", cwd=tmp_path).stdout


def _split(url: str, n: int = 40) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _ in range(n):
        status, _, body = request(url)
        assert status == 200
        counts[body.split()[0].decode()] = counts.get(body.split()[0].decode(), 0) + 1
    return counts


def test_running_mesh_keeps_serving_after_bad_input_and_takes_new_workloads(mesh_up) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    gateway = mesh.gateway()["url"]
    (mesh.workdir / "bad.yaml").write_text(BAD_VS)
    stderr = _up_fails(mesh.workdir, "-f", "bad.yaml", "--namespace", "istio-test")
    assert (
        "the running mesh keeps what it had" in stderr and "spec.http[0].route[1].weight" in stderr
    )
    got = json.loads(mesh.kubectl("get", "vs", "canary", "-n", "istio-test", "-o", "json").stdout)
    assert got["metadata"]["generation"] == 1 and "fault" not in got["spec"]["http"][0]
    assert set(_split(gateway)) <= {"appv1", "appv2"}

    # New Service + Deployment into the running mesh: two replicas start, the service routes.
    (mesh.workdir / "hello.yaml").write_text(ECHO_APP)
    out = chaosmesh("mesh", "up", "-f", "hello.yaml", cwd=mesh.workdir).stdout
    assert "service default/hello:9090" in out
    pods = mesh.kubectl("get", "pods", "-n", "default").stdout
    assert "hello-0" in pods and "hello-1" in pods
    url = chaosmesh("mesh", "url", "hello", cwd=mesh.workdir).stdout.splitlines()[0]
    replicas = {request(url, host="hello:9090")[2].split()[1] for _ in range(20)}
    assert replicas == {b"hello-0", b"hello-1"}
    mesh.state = json.loads((mesh.state_dir / "mesh.json").read_text())  # new pids for the check
    assert set(_split(gateway)) <= {"appv1", "appv2"}


def test_status_json_reports_envoy_restart_after_it_is_killed(mesh_up) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    report = json.loads(chaosmesh("mesh", "status", "--json", cwd=mesh.workdir).stdout)
    assert report["envoy"]["running"] and report["envoy"]["restarts"] == 0
    assert {i["kind"] for i in report["istio"]} == {"VirtualService", "DestinationRule", "Gateway"}
    endpoints = report["services"][0]["endpoints"]
    assert [e["health"] for e in endpoints] == ["healthy", "healthy"]
    os.kill(report["envoy"]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        report = json.loads(chaosmesh("mesh", "status", "--json", cwd=mesh.workdir).stdout)
        if report["envoy"]["restarts"] >= 1 and report["envoy"]["running"]:
            break
        time.sleep(0.2)
    assert report["envoy"]["restarts"] >= 1
    assert request(mesh.gateway()["url"])[0] == 200
    # mesh.json follows the new Envoy, so `mesh down` (the fixture) stops it by pid.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        mesh.state = json.loads((mesh.state_dir / "mesh.json").read_text())
        if report["envoy"]["pid"] in [p["pid"] for p in mesh.state["pids"]]:
            break
        time.sleep(0.1)
    assert report["envoy"]["pid"] in [p["pid"] for p in mesh.state["pids"]]


def _pids(state: dict[str, Any]) -> list[dict[str, Any]]:
    pids: list[dict[str, Any]] = state["pids"]
    return pids


def test_a_killed_daemon_takes_its_processes_with_it(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(SEED / "canary", tmp_path / "canary")
    state_dir = tmp_path / ".chaosmesh"
    chaosmesh("mesh", "up", "-f", "canary", "--namespace", "istio-test", cwd=tmp_path)
    first = json.loads((state_dir / "mesh.json").read_text())
    second: dict[str, Any] = {}
    try:
        assert len(_pids(first)) >= 4  # daemon, Envoy, two workloads
        os.kill(first["pid"], signal.SIGKILL)
        # The kernel's parent-death signal takes Envoy and every workload down with it.
        wait_until(
            lambda: not [p for p in _pids(first) if alive(p["pid"], p.get("started"))],
            timeout=15,
            what="every process of the killed mesh gone",
        )
        assert pids_mentioning(state_dir) == []
        out = chaosmesh("mesh", "up", "-f", "canary", "--namespace", "istio-test", cwd=tmp_path)
        assert "left by a dead mesh" not in out.stderr  # nothing was left
        second = json.loads((state_dir / "mesh.json").read_text())
        assert request(second["gateways"][0]["url"])[0] == 200
    finally:
        chaosmesh("mesh", "down", cwd=tmp_path, check=False)
        kill_all_mentioning(state_dir)
    survivors = [p for p in _pids(first) + _pids(second) if alive(p["pid"], p.get("started"))]
    assert not survivors


def test_processes_a_dead_mesh_left_are_stopped_by_the_next_mesh_up(tmp_path: Path) -> None:
    # Where the kernel did not take them down (a process that left the daemon's care): the
    # next `mesh up` stops what the dead daemon's mesh.json recorded, by pid and start time.
    state_dir = tmp_path / ".chaosmesh"
    state_dir.mkdir()
    token = f"left-by-a-dead-mesh-{tmp_path.name}"
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", token], start_new_session=True
    )
    try:
        records = [
            {
                "pid": orphan.pid,
                "role": "workload default/orphan-0",
                "started": start_time(orphan.pid),
            }
        ]
        (state_dir / "mesh.json").write_text(json.dumps({"pid": 2**22 + 7, "pids": records}))
        out = chaosmesh("mesh", "up", cwd=tmp_path)
        assert "left by a dead mesh" in out.stderr and f"pid {orphan.pid}" in out.stderr
        assert orphan.wait(timeout=15) is not None
    finally:
        chaosmesh("mesh", "down", cwd=tmp_path, check=False)
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_foreground_mesh_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(SEED / "canary", tmp_path / "canary")
    env = {**os.environ, "CHAOSMESH_STATE_DIR": str(tmp_path / ".chaosmesh")}
    proc = subprocess.Popen(
        [*CLI, "mesh", "up", "--foreground", "-f", "canary", "-n", "istio-test"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    state: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            path = tmp_path / ".chaosmesh" / "mesh.json"
            if path.exists():
                state = json.loads(path.read_text())
                if state.get("ready"):
                    break
            time.sleep(0.05)
        assert state.get("ready"), proc.stderr.read() if proc.stderr else ""
        assert request(state["gateways"][0]["url"])[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout is not None and b"mesh up: API" in proc.stdout.read()
    finally:
        # Never SIGKILL a foreground mesh first: Envoy and the workloads would be orphaned.
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                subprocess.run(
                    [*CLI, "mesh", "down"], cwd=tmp_path, env=env, timeout=60, check=False
                )
                proc.kill()
                proc.wait(timeout=10)
    assert not [p for p in _pids(state) if alive(p["pid"], p.get("started"))]
    assert not (tmp_path / ".chaosmesh" / "mesh.json").exists()
    assert sys.executable  # the same interpreter ran the CLI


def test_change_envoy_rejects_is_422_with_its_reason_and_nothing_changes(mesh_up) -> None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    from kubernetes import config

    api = client.CustomObjectsApi(config.new_client_from_config(mesh.state["kubeconfig"]))
    # Istio's validation accepts this regex; Envoy refuses it (RE2 program size > 100).
    ops = [
        {
            "op": "add",
            "path": "/spec/http/0/match",
            "value": [{"uri": {"regex": "[a-z]{80}[0-9]{80}"}}],
        }
    ]
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_custom_object(
            "networking.istio.io",
            "v1",
            "istio-test",
            "virtualservices",
            "canary",
            ops,
            _content_type="application/json-patch+json",
            _request_timeout=30,
        )
    status = json.loads(err.value.body)
    assert err.value.status == 422 and "program size" in status["message"]
    got = api.get_namespaced_custom_object(
        "networking.istio.io", "v1", "istio-test", "virtualservices", "canary", _request_timeout=30
    )
    assert got["metadata"]["generation"] == 1 and "match" not in got["spec"]["http"][0]
    assert request(mesh.gateway()["url"], "/anything")[0] == 200  # last good config serves


LATE_GATEWAY = """\
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: late-gateway, namespace: istio-test}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http-alt, protocol: HTTP}
    hosts: ["late.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: late, namespace: istio-test}
spec:
  hosts: ["late.example.com"]
  gateways: [late-gateway]
  http:
  - route:
    - destination: {host: canary.istio-test.svc.cluster.local, subset: v2}
"""


def _listed(mesh: Mesh, port: int) -> dict[str, bool]:
    """Whether mesh url, mesh status, mesh.json and the API know a gateway on ``port``."""
    url = chaosmesh("mesh", "url", f"gateway:{port}", cwd=mesh.workdir, check=False)
    report = json.loads(chaosmesh("mesh", "status", "--json", cwd=mesh.workdir).stdout)
    state = json.loads((mesh.state_dir / "mesh.json").read_text())
    api = json.loads(mesh.kubectl("get", "gateways", "-A", "-o", "json").stdout)
    return {
        "url": url.returncode == 0,
        "status": any(g["port"] == port for g in report["gateways"]),
        "mesh.json": any(g["port"] == port for g in state["gateways"]),
        "api": any(s["port"]["number"] == port for g in api["items"] for s in g["spec"]["servers"]),
    }


def test_url_status_and_api_agree_on_a_gateway_made_and_deleted_with_kubectl(mesh_up) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    assert _listed(mesh, 8080) == dict.fromkeys(("url", "status", "mesh.json", "api"), False)
    mesh.kubectl("apply", "-f", "-", stdin=LATE_GATEWAY)
    assert _listed(mesh, 8080) == dict.fromkeys(("url", "status", "mesh.json", "api"), True)
    shown = chaosmesh("mesh", "url", "gateway:8080", cwd=mesh.workdir).stdout.splitlines()
    assert shown[1] == f"curl -H 'Host: late.example.com' {shown[0]}"
    status, _, body = request(shown[0], host="late.example.com")
    assert status == 200 and body.startswith(b"appv2 appv2-0 version=v2\n")

    mesh.kubectl("delete", "gateway", "late-gateway", "-n", "istio-test")
    assert _listed(mesh, 8080) == dict.fromkeys(("url", "status", "mesh.json", "api"), False)
    gone = chaosmesh("mesh", "url", "gateway:8080", cwd=mesh.workdir, check=False)
    assert "no service or gateway 'gateway:8080' in the mesh; known: " in gone.stderr
    assert "gateway:80" in gone.stderr  # the seed's gateway is still there
