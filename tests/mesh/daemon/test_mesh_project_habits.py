"""kind/kubectl habits on a real embedded mesh, from anywhere in the project.

``mesh up -f -`` reads standard input; every command below runs from a subdirectory with no
``CHAOSMESH_STATE_DIR`` and finds the mesh by walking up to ``.chaosmesh/``; ``eval "$(chaosmesh
mesh env)"`` points kubectl and ``chaosmesh load -via mesh`` (the runbook's command, as
written) at it; ``chaosmesh lint`` checks a file against what the mesh holds.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.state import alive
from tests.support.cli import CHAOSMESH_BIN
from tests.support.tools import require_tool

from .conftest import SEED

pytestmark = pytest.mark.envoy

T = 120
VS_HTTPBIN = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route:
    - destination: {host: httpbin}
"""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CHAOSMESH_STATE_DIR", "KUBECONFIG")}
    return {**env, "HOME": str(home)}


def _run(
    args: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=T
    )


def test_the_mesh_from_anywhere_in_the_project(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    deep = project / "experiments" / "nested"
    deep.mkdir(parents=True)
    home.mkdir()
    env = _env(home)
    manifests = "---\n".join(p.read_text() for p in sorted((SEED / "circuit-breaker").iterdir()))
    up = _run([CHAOSMESH_BIN, "mesh", "up", "-f", "-"], project, env, stdin=manifests)
    state = project / ".chaosmesh"
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert (state / "mesh.json").exists()

        # Found from two levels down, with nothing set in the environment.
        status = _run([CHAOSMESH_BIN, "mesh", "status"], deep, env)
        assert status.returncode == 0, status.stderr
        assert "default/httpbin:8000" in status.stdout
        path = _run([CHAOSMESH_BIN, "mesh", "kubeconfig"], deep, env)
        assert path.stdout.strip() == str(state / "kubeconfig")

        # eval "$(chaosmesh mesh env)", then kubectl and the runbook's command as written.
        kubectl = require_tool("kubectl")
        script = (
            f'eval "$({CHAOSMESH_BIN} mesh env)" && echo "KUBECONFIG=$KUBECONFIG" && '
            f"{kubectl} get svc httpbin -o name && "
            f"{CHAOSMESH_BIN} load -c 2 -qps 0 -n 20 -loglevel Warning "
            "http://httpbin:8000/get --via mesh"
        )
        shell = _run(["bash", "-c", script], deep, env)
        assert shell.returncode == 0, shell.stderr + shell.stdout
        assert f"KUBECONFIG={state / 'kubeconfig'}" in shell.stdout
        assert "service/httpbin" in shell.stdout
        assert "Code 200 : " in shell.stdout and "All done 20 calls" in shell.stdout
        assert " I " not in shell.stderr  # -loglevel Warning: no info lines

        # lint: a VirtualService file alone, checked against the mesh's Services.
        (deep / "vs.yaml").write_text(VS_HTTPBIN)
        linted = _run([CHAOSMESH_BIN, "lint", "-f", "vs.yaml"], deep, env)
        assert linted.returncode == 0, linted.stdout + linted.stderr
        assert f"of the embedded mesh in {state}" in linted.stderr
        alone = _run([CHAOSMESH_BIN, "lint", "--use-kube=false", "-f", "vs.yaml"], deep, env)
        assert alone.returncode == 1 and "has no Service" in alone.stdout

        recorded = json.loads((state / "mesh.json").read_text()).get("pids") or []
        down = _run([CHAOSMESH_BIN, "mesh", "down"], deep, env)
        assert down.returncode == 0 and f"from {state}" in down.stdout, down.stderr
        assert not [p for p in recorded if alive(int(p["pid"]), p.get("started"))]
    finally:
        _run([CHAOSMESH_BIN, "mesh", "down", "--state-dir", str(state)], project, env)
