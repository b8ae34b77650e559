"""Issue 12's safety first: an experiment on the embedded mesh that mixes chaostoolkit-kubernetes
and chaosmesh activities sends nothing to the user's own cluster.

The tripwire is the user's ``~/.kube/config`` (HOME points at the test's directory): its
server records every request, and ``KUBERNETES_CONTEXT`` names its context, as a user's shell
might. chaosk8s builds its client from ``KUBECONFIG`` / ``~/.kube/config`` and that context,
never from the experiment's configuration — so only the environment the safety net sets for
the whole run (and ``chaosmesh run`` for each child) keeps it on the mesh.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaosmesh_ext.journal import load_journal
from tests.support.lifecycle import (
    Tripwire,
    count_pods,
    delay_tomcat,
    mesh_experiment,
    run_env,
    start_chaos_run,
)
from tests.support.processes import kill_all_mentioning, pids_mentioning

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "chaosmesh_ext.cli"]


def _experiment(state_dir: Path) -> dict[str, object]:
    return mesh_experiment(
        state_dir,
        hypothesis=[count_pods("two-web-pods")],
        method=[delay_tomcat(), count_pods("pods-under-the-delay")],
        title="chaosk8s and chaosmesh side by side",
    )


def test_a_chaos_run_on_the_embedded_mesh_sends_nothing_to_the_users_cluster(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "mesh"
    with Tripwire(tmp_path / ".kube") as cluster:
        env = run_env(tmp_path, tmp_path / "ledger", KUBERNETES_CONTEXT=cluster.context)
        run, journal_path = start_chaos_run(_experiment(state_dir), tmp_path / "work", env)
        try:
            code = run.wait()
        finally:
            run.stop()
            leftover = kill_all_mentioning(state_dir)
        assert cluster.seen == [], run.output
    assert code == 0, run.output
    journal = load_journal(journal_path)
    assert journal.verdict.word == "completed", (journal.verdict, run.output)
    # chaosk8s counted the mesh's pods (nginx and tomcat): it reached the mesh, not nothing.
    assert [r.output for r in journal.method if r.name == "pods-under-the-delay"] == [2]
    assert leftover == [] and pids_mentioning(state_dir) == []


def test_chaosmesh_run_gives_each_chaos_run_the_meshs_kubernetes_environment(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "mesh"
    experiment = _experiment(state_dir)
    # Left to chaosmesh run: its mesh, in --state-dir.
    del experiment["configuration"]["mesh_state_dir"]  # type: ignore[index]
    work = tmp_path / "work"
    work.mkdir()
    (work / "side-by-side.json").write_text(json.dumps(experiment))
    with Tripwire(tmp_path / ".kube") as cluster:
        env = run_env(tmp_path, tmp_path / "ledger", KUBERNETES_CONTEXT=cluster.context)
        try:
            proc = subprocess.run(
                [*CLI, "run", "side-by-side.json", "--state-dir", str(state_dir),
                 "--journals", str(tmp_path / "journals")],
                cwd=work, env=env, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
        finally:
            leftover = kill_all_mentioning(state_dir)
        assert cluster.seen == [], proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    journal = load_journal(tmp_path / "journals" / "side-by-side.json")
    assert journal.verdict.word == "completed"
    assert [r.output for r in journal.method if r.name == "pods-under-the-delay"] == [2]
    assert leftover == []
