"""Two runs at once on one mesh: one daemon, never two; the mesh stopped by the last run that
needs it; a run that would overwrite another live run's fault is refused with the diff,
naming that run, and both end with everything restored and nothing left running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaosmesh_ext.journal import load_journal
from tests.support.lifecycle import (
    MANIFESTS,
    delay_tomcat,
    load_nginx,
    mesh_experiment,
    run_env,
    start_chaos_run,
)
from tests.support.processes import kill_all_mentioning, pids_mentioning, wait_until

pytestmark = pytest.mark.slow

# A workload that serves only once the test lets it (the file ``gate`` exists): the mesh
# that runs it is "still starting" for exactly as long as the test wants.
GATE = """\
apiVersion: v1
kind: Service
metadata: {{name: gate}}
spec:
  selector: {{app: gate}}
  ports: [{{port: 7077}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: gate}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: gate}}}}
  template:
    metadata:
      labels: {{app: gate}}
      annotations:
        chaosmesh.io/workload: command
        chaosmesh.io/command: "python3 {script}"
    spec:
      containers: [{{name: gate, image: example/gate:1}}]
"""
GATE_SCRIPT = """\
import http.server, os, pathlib, time
gate = pathlib.Path({gate!r})
while not gate.exists():
    time.sleep(0.05)
http.server.ThreadingHTTPServer(
    ("127.0.0.1", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler
).serve_forever()
"""


def _entries(ledger: Path, run_id: str) -> list[dict[str, object]]:
    path = ledger / f"{run_id}.json"
    if not path.exists():
        return []
    entries: list[dict[str, object]] = json.loads(path.read_text())["entries"]
    return entries


def test_two_runs_started_together_share_one_mesh_and_the_last_one_stops_it(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "mesh"
    gate = tmp_path / "gate"
    script = tmp_path / "gate.py"
    script.write_text(GATE_SCRIPT.format(gate=str(gate)))
    manifest = tmp_path / "gate.yaml"
    manifest.write_text(GATE.format(script=script))
    experiment = mesh_experiment(
        state_dir,
        method=[load_nginx("some-load")],
        configuration={
            "mesh_manifests": [
                str(MANIFESTS / "fortio.yaml"),
                str(MANIFESTS / "nginx-tomcat.yaml"),
                str(manifest),
            ]
        },
    )
    ledger = tmp_path / "ledger"
    first, first_journal = start_chaos_run(
        experiment, tmp_path / "a", run_env(tmp_path, ledger, CHAOSMESH_RUN_ID="run-a"), "a"
    )
    second = None
    try:
        first.wait_for(r"starting the embedded mesh")
        second, second_journal = start_chaos_run(
            experiment, tmp_path / "b", run_env(tmp_path, ledger, CHAOSMESH_RUN_ID="run-b"), "b"
        )
        # The second run waits for the first's mesh instead of starting a daemon of its own.
        second.wait_for(r"the other mesh in .* is still starting")
        gate.touch()
        assert first.wait() == 0, first.output
        assert second.wait() == 0, second.output
    finally:
        gate.touch()
        for run in (first, second):
            if run is not None:
                run.stop()
        leftover = kill_all_mentioning(state_dir)
    both = first.output + "\n" + second.output
    started = [line for line in both.splitlines() if "started the embedded mesh" in line]
    assert len(started) == 1, both  # never two daemons
    pid = started[0].rsplit("(pid ", 1)[1].rstrip(")")
    assert f"reusing the embedded mesh running in {state_dir} (pid {pid})" in second.output
    assert both.count("chaosmesh: stopping the embedded mesh") == 1
    for journal in (first_journal, second_journal):
        assert load_journal(journal).verdict.word == "completed"
    wait_until(lambda: not pids_mentioning(state_dir), 30, "the mesh stopped after the last run")
    assert leftover == []


def test_a_run_that_would_overwrite_a_live_runs_fault_is_refused_with_the_diff(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "mesh"
    ledger = tmp_path / "ledger"
    holding = mesh_experiment(
        state_dir,
        method=[
            delay_tomcat(delay="200ms"),
            # Measures its own fault the whole time: it must never vanish under it.
            load_nginx("slow-under-my-delay", t="15s", expect={"min_p50_ms": 150}),
        ],
    )
    other = mesh_experiment(state_dir, method=[delay_tomcat(name="another-delay", delay="1s")])
    first, first_journal = start_chaos_run(
        holding, tmp_path / "a", run_env(tmp_path, ledger, CHAOSMESH_RUN_ID="run-a"), "a"
    )
    second = None
    try:
        first.wait_for(r"Probe: slow-under-my-delay")
        second, second_journal = start_chaos_run(
            other, tmp_path / "b", run_env(tmp_path, ledger, CHAOSMESH_RUN_ID="run-b"), "b"
        )
        second.wait()
        assert first.proc.poll() is None, "the first run ended before the second was refused"
        assert first.wait() == 0, first.output
    finally:
        for run in (first, second):
            if run is not None:
                run.stop()
        leftover = kill_all_mentioning(state_dir)
    refused = load_journal(second_journal)
    assert refused.verdict.word == "failed", second.output
    assert "VirtualService default/tomcat-vs (changed by run run-a)" in refused.verdict.reason
    assert "fixedDelay" in refused.verdict.reason  # the diff
    assert refused.method == [] and _entries(ledger, "run-b") == []
    kept = load_journal(first_journal)
    assert kept.verdict.word == "completed", first.output
    assert [r.action for r in kept.restored] == ["restored"]
    assert {e["state"] for e in _entries(ledger, "run-a")} == {"restored"}
    assert "chaosmesh: stopping the embedded mesh" in first.output  # its own, when done
    wait_until(lambda: not pids_mentioning(state_dir), 30, "the mesh stopped after run-a")
    assert leftover == []
