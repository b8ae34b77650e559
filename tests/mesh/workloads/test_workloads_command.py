"""The command workload runs the user's program with PORT, the sidecar env and its pod's own
env as a cluster would give it, and restarts it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.mesh.workloads import (
    WorkloadSpec,
    check_manifest,
    launch,
    replica_specs,
    wait_ready,
)

from .conftest import HOST, StartWorkload, call, free_port, stop

# A user's tiny server: answers with what it was given, writes its pid where the test can see.
PROGRAM = """
import http.server, json, os, sys
open(sys.argv[1], "w").write(str(os.getpid()))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(os.environ)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def _command(tmp_path: Path) -> tuple[str, Path]:
    script = tmp_path / "user server.py"  # a space: the command is split with shell quoting
    script.write_text(PROGRAM)
    pid_file = tmp_path / "pid"
    return shlex.join([sys.executable, str(script), str(pid_file)]), pid_file


def _wait_pid(pid_file: Path, not_pid: int | None = None) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = pid_file.read_text() if pid_file.exists() else ""
        if text and int(text) != not_pid:
            return int(text)
        time.sleep(0.05)
    raise AssertionError("the program did not (re)start")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_runs_program_with_port_and_sidecar_env(
    start_workload: StartWorkload, tmp_path: Path
) -> None:
    command, _ = _command(tmp_path)
    sidecar = Sidecar(outbound={8080: (HOST, 15001)}, workload="client", namespace="istio-test")
    app = start_workload(
        "command",
        deployment="client",
        sidecar=sidecar,
        annotations={"chaosmesh.io/command": command},
    )
    env = json.loads(call(app.port, "/").body)
    assert env["PORT"] == str(app.port)
    assert json.loads(env["CHAOSMESH_OUTBOUND"]) == {"8080": f"{HOST}:15001"}
    assert json.loads(env["CHAOSMESH_SOURCE"])["workload"] == "client"


def test_restarts_program_that_dies_and_stops_it_on_sigterm(
    start_workload: StartWorkload, tmp_path: Path
) -> None:
    command, pid_file = _command(tmp_path)
    app = start_workload(
        "command", deployment="client", annotations={"chaosmesh.io/command": command}
    )
    first = _wait_pid(pid_file)
    os.kill(first, 9)  # the user's program crashes
    second = _wait_pid(pid_file, not_pid=first)
    wait_ready(HOST, app.port, 20.0, process=app.process)
    assert call(app.port, "/").status == 200
    assert "exited with code -9" in app.log() and "restarting in" in app.log()
    app.process.terminate()
    assert app.process.wait(10) == 0
    assert not _alive(second)  # the supervisor took its program down with it


STUBBORN = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "w").write(str(os.getpid()))
while True:
    time.sleep(1)
"""


def test_a_program_that_ignores_sigterm_is_killed_after_the_pods_grace_period(
    tmp_path: Path,
) -> None:
    (tmp_path / "stubborn.py").write_text(STUBBORN)
    pid_file = tmp_path / "pid"
    spec = WorkloadSpec(
        kind="command",
        deployment="stubborn",
        namespace="default",
        pod="stubborn-0",
        port=free_port(),
        log_path=tmp_path / "stubborn-0.log",
        annotations={
            "chaosmesh.io/command": shlex.join(
                [sys.executable, str(tmp_path / "stubborn.py"), str(pid_file)]
            )
        },
        grace_seconds=1,  # the pod template's terminationGracePeriodSeconds
    )
    supervisor = launch(spec)
    try:
        program = _wait_pid(pid_file)
        supervisor.terminate()
        assert supervisor.wait(20) == 0  # it does not wait for a program that never exits
        assert not _alive(program)
    finally:
        stop(supervisor)
    assert spec.log_path.read_text().rstrip().endswith("stopped")


def test_missing_program_is_refused_at_launch(start_workload: StartWorkload) -> None:
    with pytest.raises(ValueError) as err:
        start_workload(
            "command",
            deployment="client",
            annotations={"chaosmesh.io/command": "no-such-program-xyz --flag"},
        )
    message = str(err.value)
    assert "Deployment istio-test/client: annotation chaosmesh.io/command" in message
    assert "'no-such-program-xyz' not found" in message


def test_supervisor_exits_127_when_program_vanished(tmp_path: Path) -> None:
    # The program existed at launch but is gone when the supervisor starts it: no restart loop.
    done = subprocess.run(
        [sys.executable, "-m", "chaosmesh_ext.mesh.workloads", "command", "--port", "1",
         "--command", str(tmp_path / "gone")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 127
    assert f"cannot start '{tmp_path / 'gone'}'" in done.stderr


def test_sidecar_identity_is_not_inherited_from_the_launcher(
    start_workload: StartWorkload, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSMESH_SOURCE", json.dumps({"workload": "the-daemon"}))
    command, _ = _command(tmp_path)
    app = start_workload("command", annotations={"chaosmesh.io/command": command})
    env = json.loads(call(app.port, "/").body)
    assert env.get("CHAOSMESH_SOURCE") is None  # a pod without identity gets none
    assert env["CHAOSMESH_OUTBOUND"] == "{}"


def _ratings(command: str, env: list[dict[str, object]]) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ratings-v2", "namespace": "bookinfo"},
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {
                    "labels": {"app": "ratings", "version": "v2"},
                    "annotations": {
                        "chaosmesh.io/workload": "command",
                        "chaosmesh.io/command": command,
                        "team": "books",
                    },
                },
                "spec": {
                    "serviceAccountName": "bookinfo-ratings",
                    "containers": [{"name": "ratings", "image": "example/ratings", "env": env}],
                },
            },
        },
    }


def _field(path: str) -> dict[str, object]:
    return {"valueFrom": {"fieldRef": {"fieldPath": path}}}


def test_program_sees_its_pod_as_on_a_cluster(tmp_path: Path) -> None:
    command, _ = _command(tmp_path)
    env_list: list[dict[str, object]] = [
        {"name": "GREETING", "value": "hi"},
        {"name": "SAID", "value": "$(GREETING) there, $$(GREETING) $(UNDEFINED)"},
        {"name": "MY_POD", **_field("metadata.name")},
        {"name": "MY_NS", **_field("metadata.namespace")},
        {"name": "APP", **_field("metadata.labels['app']")},
        {"name": "TEAM", **_field("metadata.annotations['team']")},
        {"name": "MY_IP", **_field("status.podIP")},
        {"name": "ACCOUNT", **_field("spec.serviceAccountName")},
        {"name": "PORT", "value": "1"},  # the mesh decides the port
        {"name": "SERVICE_VERSION", "value": "v2-custom"},  # the container's own env wins
    ]
    outbound = {9080: (HOST, 15001)}
    (spec,) = replica_specs(_ratings(command, env_list), [free_port()], outbound, tmp_path)
    process = launch(spec)
    try:
        wait_ready(HOST, spec.port, 20.0, process=process)
        env = json.loads(call(spec.port, "/").body)
    finally:
        stop(process)
    assert env["PORT"] == str(spec.port)
    assert (env["HOSTNAME"], env["POD_NAME"], env["POD_NAMESPACE"]) == (
        "ratings-v2-0",
        "ratings-v2-0",
        "bookinfo",
    )
    assert env["SERVICE_VERSION"] == "v2-custom"
    assert env["SAID"] == "hi there, $(GREETING) $(UNDEFINED)"
    assert (env["MY_POD"], env["MY_NS"], env["APP"], env["TEAM"]) == (
        "ratings-v2-0",
        "bookinfo",
        "ratings",
        "books",
    )
    assert (env["MY_IP"], env["ACCOUNT"]) == ("127.0.0.1", "bookinfo-ratings")
    assert json.loads(env["CHAOSMESH_OUTBOUND"]) == {"9080": f"{HOST}:15001"}
    source = json.loads(env["CHAOSMESH_SOURCE"])
    assert source == {
        "workload": "ratings-v2",
        "namespace": "bookinfo",
        "labels": {"app": "ratings", "version": "v2"},
    }


@pytest.mark.parametrize(
    ("env", "container_field", "expected"),
    [
        (
            [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            None,
            "containers[0].env[0].valueFrom: the embedded mesh resolves only fieldRef",
        ),
        (
            [{"name": "A", "value": "x"}, {"name": "B", **_field("spec.nodeName")}],
            None,
            "env[1].valueFrom: the embedded mesh resolves only fieldRef (metadata.name",
        ),
        ([{"value": "x"}], None, "containers[0].env[0].name: required"),
        ([], {"envFrom": [{"configMapRef": {"name": "c"}}]}, "containers[0].envFrom: the embedded"),
    ],
)
def test_env_the_mesh_cannot_give_is_refused_naming_the_field(
    env: list[dict[str, object]], container_field: dict[str, object] | None, expected: str
) -> None:
    deployment = _ratings("sleep 1", env)
    container = deployment["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    container.update(container_field or {})
    with pytest.raises(ValueError) as err:
        check_manifest(deployment)
    assert str(err.value).startswith("Deployment bookinfo/ratings-v2: spec.template.spec.")
    assert expected in str(err.value)
    # Only a command replica runs the container's program: an echo stand-in ignores its env.
    deployment["spec"]["template"]["metadata"]["annotations"]["chaosmesh.io/workload"] = "echo"  # type: ignore[index]
    check_manifest(deployment)
