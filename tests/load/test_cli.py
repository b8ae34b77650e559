"""``chaosmesh load`` and ``chaosmesh load serve`` as real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cli import CHAOSMESH_BIN
from tests.support.load_target import Reply, Target

CHAOSMESH = [CHAOSMESH_BIN]
ROOT = Path(__file__).resolve().parents[2]


def _load(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHAOSMESH, "load", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_text_report_has_code_and_target_lines(make_target: Callable[..., Target]) -> None:
    t = make_target(lambda i, *_: Reply(503 if i % 5 == 0 else 200))
    proc = _load("-c", "2", "-qps", "0", "-n", "20", t.url + "/get")
    assert proc.returncode == 0, proc.stderr
    assert "Code 200 : 16 (80.0 %)" in proc.stdout
    assert "Code 503 : 4 (20.0 %)" in proc.stdout
    assert "# target 99% " in proc.stdout
    assert "All done 20 calls (plus 0 warmup)" in proc.stdout


def test_json_to_stdout_and_double_dash_flags(target: Target) -> None:
    proc = _load("--c", "1", "--qps", "0", "--n", "5", "-json", "-", target.url)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["RetCodes"] == {"200": 5}
    assert "Code 200 : 5 (100.0 %)" in proc.stderr  # the report moves to stderr


def test_json_to_a_file(target: Target, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = _load("-n", "4", "-qps", "-1", "-json", str(out), target.url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["DurationHistogram"]["Count"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "0"], "-c: number of connections must be at least 1"),
        (["-qps", "abc"], "-qps: must be a number, got 'abc'"),
        (["-n", "5", "-t", "1s"], "either -n"),
        (["-t", "soon"], "-t: expected a duration"),
        (["-H", "no colon"], "-H: expected 'Name: value'"),
    ],
)
def test_bad_input_is_refused_and_sends_nothing(
    target: Target, args: list[str], message: str
) -> None:
    proc = _load(*args, target.url)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert target.connections == 0


def test_malformed_and_unreachable_urls() -> None:
    proc = _load("-n", "2", "http://[::1/")
    assert proc.returncode != 0 and "malformed URL" in proc.stderr
    proc = _load("-n", "2", "http://127.0.0.1:1/x")
    assert proc.returncode != 0
    assert "cannot reach http://127.0.0.1:1/x" in proc.stderr and "no load was sent" in proc.stderr


def _serve(*args: str) -> tuple[subprocess.Popen[str], str, Path]:
    """``chaosmesh load serve``: the process, its REST base URL and its data directory."""
    proc = subprocess.Popen(
        [*CHAOSMESH, "load", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "fortio REST API on http://127.0.0.1:" in line, proc.stderr
    base = line.split(" on ", 1)[1].split("rest/run")[0]
    return proc, base, Path(line.split("(data in ", 1)[1].rstrip().rstrip(")"))


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.mark.parametrize("given", [True, False], ids=["data-dir", "temporary"])
def test_serve_runs_fortios_rest_api_and_keeps_results_only_where_asked(
    target: Target, tmp_path: Path, given: bool
) -> None:
    proc, base, data = _serve(*(["--data-dir", str(tmp_path)] if given else []))
    try:
        assert data.is_dir() and (data == tmp_path) == given
        url = f"{base}rest/run?url={target.url}&n=3&c=1&qps=-1&save=on"
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert json.loads(resp.read())["RetCodes"] == {"200": 3}
        saved = list(data.glob("*.json"))
        assert len(saved) == 1
    finally:
        _stop(proc)
    assert proc.returncode == 0
    # Results go where they were asked to go, and stay; a temporary directory goes with
    # the server instead of piling up in /tmp.
    assert saved[0].exists() == given and data.exists() == given


def test_t_0_runs_until_ctrl_c_and_still_reports(target: Target) -> None:
    import time

    proc = subprocess.Popen(
        [*CHAOSMESH, "load", "-c", "1", "-qps", "-1", "-t", "0", target.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while target.count < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, err
    assert "for until stop" in out and "Code 200 : " in out
    # the calls reported are the calls the server saw, minus the warm-up
    calls = int(out.split("All done ", 1)[1].split(" calls")[0])
    assert calls >= 20 and calls + 1 == target.count


def test_a_bare_service_name_points_to_via_mesh() -> None:
    proc = _load("-n", "5", "http://httpbin-nosuch-svc:8000/get")
    assert proc.returncode == 1
    assert "cannot reach http://httpbin-nosuch-svc:8000/get" in proc.stderr
    assert "no load was sent; a mesh service name resolves only inside the mesh" in proc.stderr
    assert "add --via mesh" in proc.stderr


def test_serve_on_a_taken_port_is_a_clear_error(target: Target) -> None:
    # target.port is held by the test target: the server must say so, not print a traceback.
    proc = subprocess.run(
        [*CHAOSMESH, "load", "serve", "--port", str(target.port)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{target.port}: Address already in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_long_run_on_a_terminal_shows_progress(target: Target) -> None:
    """stderr on a terminal: a progress line every five seconds; on a pipe, none."""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [*CHAOSMESH, "load", "-c", "1", "-qps", "20", "-t", "6s", target.url],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO once the terminal's last writer has gone
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    terminal = b"".join(chunks).decode()
    assert proc.returncode == 0, terminal
    (line,) = [line for line in terminal.splitlines() if "Progress:" in line]
    assert re.search(r" I Progress: 5s/6s, \d+ calls, [\d.]+ qps, 0 errors", line), line
    assert "Progress:" not in proc.stdout
