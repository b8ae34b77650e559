"""Issue 15 item 2, from the user's side: ``chaosmesh run`` on a mesh the user started and
changed never clobbers the change. Objects that differ from the experiment's manifests stop
the run with a diff (nothing applied); ``--reapply`` runs on the manifests' form, and
afterwards the user's form is back — not the manifest's — and the user's mesh still runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaosmesh_ext.journal import load_journal
from tests.support.lifecycle import (
    MANIFESTS,
    delay_tomcat,
    load_nginx,
    mesh_experiment,
    remove_delay,
    run_env,
)
from tests.support.processes import kill_all_mentioning
from tests.support.tools import require_tool

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "chaosmesh_ext.cli"]


def _cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _nginx_timeout(kubeconfig: Path, env: dict[str, str]) -> str:
    got = subprocess.run(
        [require_tool("kubectl"), "--kubeconfig", str(kubeconfig), "get", "virtualservice",
         "nginx-vs", "-o", "json"],
        capture_output=True, text=True, timeout=30, env=env, check=True,
    )  # fmt: skip
    timeout: str = json.loads(got.stdout)["spec"]["http"][0]["timeout"]
    return timeout


def test_chaosmesh_run_on_a_users_changed_mesh_refuses_or_reapplies_and_puts_it_back(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "mesh"
    env = run_env(tmp_path, tmp_path / "ledger", CHAOSMESH_STATE_DIR=str(state_dir))
    experiment = mesh_experiment(
        state_dir,
        hypothesis=[load_nginx("nginx-answers", slo={"max_error_rate": 0})],
        method=[delay_tomcat(), load_nginx("under-the-delay"), remove_delay()],
    )
    del experiment["configuration"]["mesh_state_dir"]  # the command's --state-dir
    work = tmp_path / "work"
    work.mkdir()
    (work / "exp.json").write_text(json.dumps(experiment))
    kubeconfig = state_dir / "kubeconfig"
    try:
        up = _cli("mesh", "up", "-f", str(MANIFESTS / "fortio.yaml"), "-f",
                  str(MANIFESTS / "nginx-tomcat.yaml"), cwd=work, env=env)  # fmt: skip
        assert up.returncode == 0, up.stderr
        # The user's own change: a longer route timeout for nginx.
        subprocess.run(
            [require_tool("kubectl"), "--kubeconfig", str(kubeconfig), "patch",
             "virtualservice", "nginx-vs", "--type", "json", "-p",
             '[{"op": "replace", "path": "/spec/http/0/timeout", "value": "3s"}]'],
            check=True, capture_output=True, timeout=30, env=env,
        )  # fmt: skip
        daemon = json.loads((state_dir / "mesh.json").read_text())["pid"]

        refused = _cli("run", "exp.json", "--journals", "j1", cwd=work, env=env)
        said = refused.stdout + refused.stderr
        assert refused.returncode == 1, said
        journal = load_journal(work / "j1" / "exp.json")
        assert journal.verdict.word == "failed"
        assert "VirtualService default/nginx-vs:" in journal.verdict.reason
        assert '"timeout": "3s"' in journal.verdict.reason  # the diff, the user's side...
        assert '"timeout": "2s"' in journal.verdict.reason  # ... and the manifest's
        assert journal.method == []
        assert _nginx_timeout(kubeconfig, env) == "3s"  # untouched

        reapplied = _cli("run", "exp.json", "--reapply", "--journals", "j2", cwd=work, env=env)
        said = reapplied.stdout + reapplied.stderr
        assert reapplied.returncode == 0, said
        journal = load_journal(work / "j2" / "exp.json")
        assert journal.verdict.word == "completed", said
        restored = {r.label: r.action for r in journal.restored}
        assert restored == {"VirtualService default/nginx-vs": "restored"}, said
        assert _nginx_timeout(kubeconfig, env) == "3s"  # the user's form again
        # The user's mesh, still running: runs never stop a mesh they did not start.
        assert json.loads((state_dir / "mesh.json").read_text())["pid"] == daemon
        assert "leaving the embedded mesh" in said
    finally:
        _cli("mesh", "down", cwd=work, env=env)
        kill_all_mentioning(state_dir)
