"""The mesh's life as a user lives it: the README's curl loop, a Gateway deleted and brought
back by a second ``mesh up``, a crashing workload, ``mesh down`` after ``kill -9`` of the
daemon and while ``mesh up`` still waits, and nothing listening beyond loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.mesh.state import alive
from tests.support.processes import pids_mentioning, wait_until

from .conftest import CLI, Mesh, chaosmesh, request

pytestmark = pytest.mark.envoy


def _command_deployment(name: str, command: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 1
  template:
    metadata:
      labels: {{app: {name}}}
      annotations:
        chaosmesh.io/workload: command
        chaosmesh.io/command: "{command}"
    spec:
      containers: [{{name: app, image: example/{name}:1}}]
"""


def _sleeper(token: str) -> str:
    """A program that runs but never opens its port (``token`` marks its command line)."""
    return f"python3 -c 'import time; time.sleep(600)' {token}"


def _listening(pids: list[int]) -> list[str]:
    """'address:port' of every TCP socket in LISTEN state that one of ``pids`` holds."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            address, port = local.split(":")
            if len(address) == 8:
                octets = [str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)]
                host = ".".join(octets)
            else:
                host = f"ipv6:{address}"
            out.append(f"{host}:{int(port, 16)}")
    return out


def test_readme_loop_reports_versions_and_a_recreated_gateway_serves_again(mesh_up) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    plain = chaosmesh("mesh", "url", "gateway", "--plain", cwd=mesh.workdir).stdout
    assert plain.splitlines() == [mesh.gateway()["url"]]  # one bare URL, for $(...)

    bodies: dict[str, int] = {}
    for _ in range(100):
        status, _, body = request(plain.strip())
        assert status == 200
        first = body.decode().splitlines()[0]  # the loop's `| head -n1`
        bodies[first] = bodies.get(first, 0) + 1
    # The seed's Deployments label their versions `app: v1` / `app: v2`.
    assert set(bodies) == {"appv1 appv1-0 version=v1", "appv2 appv2-0 version=v2"}, bodies

    mesh.kubectl("delete", "gateway", "canary-gateway", "-n", "istio-test")
    with pytest.raises(OSError):
        request(plain.strip(), timeout=5)
    # The same files again: the running mesh takes them and the gateway routes at once.
    out = chaosmesh(
        "mesh", "up", "-f", "canary", "--namespace", "istio-test", cwd=mesh.workdir
    ).stdout
    assert "applied" in out and "gateway istio-test/canary-gateway:80" in out
    url = chaosmesh("mesh", "url", "gateway", "--plain", cwd=mesh.workdir).stdout.strip()
    assert request(url)[0] == 200
    report = json.loads(chaosmesh("mesh", "status", "--json", cwd=mesh.workdir).stdout)
    gateway = next(i for i in report["istio"] if i["kind"] == "Gateway")
    assert gateway["config_version"] == report["envoy"]["config_version"]


def test_a_crashing_workload_fails_mesh_up_with_its_log_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    token = f"crash{uuid.uuid4().hex[:8]}"
    program = f"python3 -c 'import sys; print(*sys.argv[1:]); sys.exit(3)' {token}: address-in-use"
    (tmp_path / "app.yaml").write_text(
        _command_deployment(token, program)
        + "---\n"
        + _command_deployment(f"{token}-slow", _sleeper(token))
    )
    proc = chaosmesh("mesh", "up", "-f", "app.yaml", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    # The crash is reported as such (not as a readiness timeout), with the program's output.
    assert f"Deployment default/{token}: pod {token}-0 (command)" in proc.stderr
    assert "exited with code 3" in proc.stderr and "crash loop" in proc.stderr
    assert f"{token}: address-in-use" in proc.stderr
    assert not (tmp_path / ".chaosmesh" / "mesh.json").exists()
    deadline = time.monotonic() + 10
    while pids_mentioning(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pids_mentioning(token)


def test_kill_9_of_the_daemon_leaves_nothing_running(mesh_up) -> None:
    mesh: Mesh = mesh_up(["canary", "timeout"], "--namespace", "istio-test")
    pids: list[dict[str, Any]] = mesh.state["pids"]
    addresses = _listening([p["pid"] for p in pids])
    # API, metrics, Envoy's admin and listeners, one port per workload: all on loopback.
    assert len(addresses) >= 8
    assert all(a.startswith("127.0.0.1:") for a in addresses), addresses

    os.kill(mesh.state["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(mesh.state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    status = chaosmesh("mesh", "status", cwd=mesh.workdir, check=False)
    assert status.returncode != 0 and "daemon" in status.stderr and "mesh down" in status.stderr

    # Envoy and the workloads died with it (the kernel's parent-death signal): nothing is
    # left for `mesh down` to stop, only the state it removes.
    wait_until(
        lambda: not [p for p in pids if alive(p["pid"], p.get("started"))],
        timeout=15,
        what="every process of the killed daemon gone",
    )
    out = chaosmesh("mesh", "down", cwd=mesh.workdir).stdout
    assert "had died already" in out and "left-over" not in out
    assert not (mesh.state_dir / "mesh.json").exists()


def test_mesh_down_while_mesh_up_still_waits_stops_the_starting_daemon(tmp_path: Path) -> None:
    token = f"slow{uuid.uuid4().hex[:8]}"
    # Never opens its port: mesh up waits for it.
    (tmp_path / "slow.yaml").write_text(_command_deployment(token, _sleeper(token)))
    env = {**os.environ, "CHAOSMESH_STATE_DIR": str(tmp_path / ".chaosmesh")}
    up = subprocess.Popen(
        [*CLI, "mesh", "up", "-f", "slow.yaml"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not pids_mentioning(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pids_mentioning(token), "the workload never started"
        status = chaosmesh("mesh", "status", cwd=tmp_path, check=False)
        assert status.returncode != 0 and "still starting" in status.stderr

        out = chaosmesh("mesh", "down", cwd=tmp_path).stdout
        assert out.startswith("mesh down: stopped")
        _, stderr = up.communicate(timeout=60)
        assert up.returncode != 0 and "stopping" in stderr
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(timeout=10)
    deadline = time.monotonic() + 10
    while pids_mentioning(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pids_mentioning(token)
    assert not (tmp_path / ".chaosmesh" / "mesh.lock").exists()


def test_a_crashing_workload_added_to_a_running_mesh_changes_nothing(mesh_up) -> None:
    mesh: Mesh = mesh_up(["canary"], "--namespace", "istio-test")
    token = f"crash{uuid.uuid4().hex[:8]}"
    program = f"python3 -c 'import sys; sys.exit(3)' {token}"
    service = f"apiVersion: v1\nkind: Service\nmetadata: {{name: {token}}}\nspec:\n"
    service += f"  selector: {{app: {token}}}\n  ports: [{{port: 7070}}]\n"
    (mesh.workdir / "more.yaml").write_text(service + "---\n" + _command_deployment(token, program))
    proc = chaosmesh("mesh", "up", "-f", "more.yaml", cwd=mesh.workdir, check=False)
    assert proc.returncode != 0
    assert "the running mesh keeps what it had" in proc.stderr
    assert "exited with code 3" in proc.stderr

    report = json.loads(chaosmesh("mesh", "status", "--json", cwd=mesh.workdir).stdout)
    assert {s["name"] for s in report["services"]} == {"canary"}
    assert mesh.kubectl("get", "service", token, check=False).returncode != 0
    assert request(mesh.gateway()["url"])[0] == 200
    deadline = time.monotonic() + 10
    while pids_mentioning(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pids_mentioning(token)


def test_kill_9_of_a_starting_daemon_takes_its_workloads_with_it(tmp_path: Path) -> None:
    token = f"orphan{uuid.uuid4().hex[:8]}"
    (tmp_path / "slow.yaml").write_text(_command_deployment(token, _sleeper(token)))
    env = {**os.environ, "CHAOSMESH_STATE_DIR": str(tmp_path / ".chaosmesh")}
    up = subprocess.Popen(
        [*CLI, "mesh", "up", "-f", "slow.yaml"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # mesh.json records the workload as soon as it is started, before the mesh serves.
        state: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                state = json.loads((tmp_path / ".chaosmesh" / "mesh.json").read_text())
            except (OSError, ValueError):
                state = {}
            if any(p["role"].startswith("workload ") for p in state.get("pids", [])):
                break
            time.sleep(0.05)
        assert not state.get("ready")
        workload = next(p for p in state["pids"] if p["role"].startswith("workload "))
        # `mesh up` itself stops what its dead daemon left (test_mesh_client.py): kill it
        # first, as a closed terminal or an OOM kill would.
        up.kill()
        up.wait(timeout=10)
        os.kill(state["pid"], signal.SIGKILL)
        # The workload (and its user program) die with the daemon: no orphan to stop.
        wait_until(
            lambda: not alive(workload["pid"], workload["started"]) and not pids_mentioning(token),
            timeout=15,
            what="the starting daemon's workload gone with it",
        )
        out = chaosmesh("mesh", "down", cwd=tmp_path).stdout
        assert "had died already" in out
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(timeout=10)
    assert not alive(workload["pid"], workload["started"])
    deadline = time.monotonic() + 10
    while pids_mentioning(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pids_mentioning(token)


FLAKY_PROGRAM = """\
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\\n")
        self.wfile.flush()
        if self.path == "/exit":
            os._exit(5)


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def _ready(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod's Ready condition."""
    return next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")


def test_a_command_program_that_exits_is_restarted_and_counted_like_a_container(
    mesh_up, tmp_path: Path
) -> None:
    (tmp_path / "flaky.py").write_text(FLAKY_PROGRAM)
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: flaky}\nspec:\n"
    service += "  selector: {app: flaky}\n  ports: [{port: 7071}]\n"
    deployment = _command_deployment("flaky", f"python3 {tmp_path / 'flaky.py'}")
    mesh: Mesh = mesh_up([], extra={"flaky.yaml": service + "---\n" + deployment})
    url = mesh.service("flaky")["url"]
    assert request(url, "/exit", host="flaky:7071")[0] == 200  # answers, then exits

    pod: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pod = json.loads(mesh.kubectl("get", "pod", "flaky-0", "-o", "json").stdout)
        status = pod["status"]
        if status["containerStatuses"][0]["restartCount"] >= 1 and _ready(pod)["status"] == "True":
            break
        time.sleep(0.1)
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 1
    assert _ready(pod)["status"] == "True"
    report = json.loads(chaosmesh("mesh", "status", "--json", cwd=mesh.workdir).stdout)
    endpoint = report["services"][0]["endpoints"][0]
    assert endpoint["process"] == "running (1 restarts)"
    # The restarted program serves again on the same port, through the mesh.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(url, host="flaky:7071", timeout=5)[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    assert request(url, host="flaky:7071")[0] == 200

    # A replica whose process is gone turns unready in the API, as a failed pod does.
    os.kill(int(pod["metadata"]["annotations"]["chaosmesh.io/pid"]), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pod = json.loads(mesh.kubectl("get", "pod", "flaky-0", "-o", "json").stdout)
        if pod["status"]["phase"] == "Failed":
            break
        time.sleep(0.1)
    assert pod["status"]["phase"] == "Failed"
    assert _ready(pod)["status"] == "False"
    assert "0/1" in mesh.kubectl("get", "deployment", "flaky").stdout
