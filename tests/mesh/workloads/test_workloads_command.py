"""The command workload runs the user's program with PORT and the sidecar env, and restarts it."""

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
from chaosmesh_ext.mesh.workloads import wait_ready

from .conftest import HOST, StartWorkload, call

# A user's tiny server: answers with what it was given, writes its pid where the test can see.
PROGRAM = """
import http.server, json, os, sys
open(sys.argv[1], "w").write(str(os.getpid()))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k: os.environ.get(k) for k in
                           ("PORT", "CHAOSMESH_OUTBOUND", "CHAOSMESH_SOURCE")}).encode()
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
    assert env["CHAOSMESH_SOURCE"] is None  # a pod without identity gets none
    assert env["CHAOSMESH_OUTBOUND"] == "{}"
