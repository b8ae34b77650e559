"""The echo and proxy replicas stay small: one runs per pod, eight or more per mesh.

Memory is measured in benchmarks/ (bench_mesh, bench_workloads); these tests only guard what
keeps it down — the replica's start-up without site and without the heavy standard-library
modules — and the replica's own command line, which no longer goes through argparse.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chaosmesh_ext.mesh.workloads.spec import PACKAGE_ROOT, WorkloadSpec, command_line

from .conftest import StartWorkload, call

# Each of these costs one to several MB of RSS per replica (asyncio with ssl: ~10 MB).
HEAVY = ("asyncio", "ssl", "typing", "dataclasses", "logging", "argparse", "email", "shutil")


def _loaded_by(kind: str) -> list[str]:
    """The heavy modules a replica of ``kind`` has imported by the time it would serve."""
    modules = {
        "echo": "chaosmesh_ext.mesh.workloads.echo",
        "proxy": "chaosmesh_ext.mesh.workloads.proxy",
    }[kind]
    script = (
        "import sys, chaosmesh_ext.mesh.workloads.__main__, chaosmesh_ext.mesh.workloads._http, "
        f"{modules}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", script],
        env={"PYTHONPATH": PACKAGE_ROOT},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return proc.stdout.split()


def test_echo_replica_imports_none_of_the_heavy_modules() -> None:
    assert _loaded_by("echo") == []


def test_proxy_replica_imports_only_what_the_shared_sidecar_needs() -> None:
    # chaosmesh_ext._sidecar (not a workloads module) still brings typing and dataclasses.
    assert set(_loaded_by("proxy")) <= {"typing", "dataclasses"}


def test_echo_and_proxy_start_without_site_and_find_the_package(tmp_path: Path) -> None:
    spec = WorkloadSpec(
        kind="proxy",
        deployment="nginx",
        namespace="default",
        pod="nginx-0",
        port=8080,
        log_path=tmp_path / "w.log",
        annotations={"chaosmesh.io/upstream": "http://tomcat-svc:8080"},
    )
    argv, env = command_line(spec)
    assert argv[1:3] == ["-S", "-m"]
    assert env["PYTHONPATH"] == PACKAGE_ROOT
    assert (Path(PACKAGE_ROOT) / "chaosmesh_ext" / "__init__.py").is_file()


def test_served_through_launch_as_the_mesh_runs_it(start_workload: StartWorkload) -> None:
    echo = start_workload("echo", deployment="tomcat")
    answer = call(echo.port, "/get?x=1")  # json and urllib.parse load on first use
    assert answer.status == 200 and '"x": "1"' in answer.text
    assert call(echo.port, "/status/503,503").status == 503  # random, on first use too


def _workload_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosmesh_ext.mesh.workloads", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_bad_command_lines_exit_2_naming_the_argument() -> None:
    cases = [
        (("echo",), "--port is required"),
        (("nginx", "--port", "1"), "expected one of echo, httpbin, proxy, command, got 'nginx'"),
        (("echo", "--port", "eighty"), "--port: not a whole number: 'eighty'"),
        (("proxy", "--port", "1", "--timeout", "soon"), "--timeout: not a number of seconds"),
        (("echo", "--port", "1", "--colour", "red"), "unrecognized argument --colour"),
        (("echo", "--port"), "--port: expected a value"),
    ]
    for args, message in cases:
        proc = _workload_cli(*args)
        assert proc.returncode == 2, args
        assert message in proc.stderr, (args, proc.stderr)
        assert proc.stderr.startswith("usage: python -m chaosmesh_ext.mesh.workloads")
