"""End to end: `chaos run` of experiments using the actions, finished or interrupted, then restore.

Each experiment changes three objects (a delay and a canary shift on a VirtualService, a
circuit breaker that creates a DestinationRule, a breaker on an existing DestinationRule).
Every test checks each object is byte-identical (spec, labels, annotations) to before, or
gone again when the run created it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.kapi import RunningEmulator, wait_until
from tests.support.kubefix import state
from tests.support.processes import Watched

BIN = Path(sys.executable).parent
CHAOS = str(BIN / "chaos")
CHAOSMESH = str(BIN / "chaosmesh")
OBJECTS = [
    ("virtualservices", "reviews"),
    ("destinationrules", "reviews"),
    ("destinationrules", "ratings"),
]


def _state(emu: RunningEmulator) -> dict[str, str | None]:
    """Each object's spec, labels and annotations as canonical JSON text (None: absent)."""
    return {f"{plural}/{name}": state(emu, plural, name) for plural, name in OBJECTS}


def _action(func: str, **arguments: Any) -> dict[str, Any]:
    return {
        "type": "action",
        "name": func.replace("_", "-"),
        "provider": {
            "type": "python",
            "module": "chaosmesh_ext.actions",
            "func": func,
            "arguments": arguments,
        },
    }


def _experiment(path: Path, pause_after: float = 0, control: bool = True) -> Path:
    method = [
        _action("inject_delay", virtual_service="reviews", delay="2s", percentage=50),
        _action(
            "shift_traffic",
            virtual_service="reviews",
            weights={"v1": 90, "v2": 10},
            route="default",
        ),
        _action(
            "apply_circuit_breaker", destination_rule="ratings", host="ratings", max_connections=1
        ),
        _action(
            "apply_circuit_breaker",
            destination_rule="reviews",
            subset="v2",
            consecutive_5xx_errors=1,
        ),
    ]
    if pause_after:
        method[-1]["pauses"] = {"after": pause_after}
    experiment: dict[str, Any] = {
        "title": "reviews survives a slow, shifted, broken mesh",
        "description": "kube layer end-to-end test",
        "steady-state-hypothesis": {"title": "nothing", "probes": []},
        "method": method,
        "rollbacks": [_action("restore")],
    }
    if control:
        experiment["controls"] = [
            {
                "name": "chaosmesh-safety-net",
                "provider": {"type": "python", "module": "chaosmesh_ext.control"},
            }
        ]
    path.write_text(json.dumps(experiment))
    return path


def _env(emu: RunningEmulator, tmp: Path, run_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KUBECONFIG=str(emu.kubeconfig),
        CHAOSMESH_LEDGER_DIR=str(tmp / "ledger"),
        CHAOSMESH_RUN_ID=run_id,
        HOME=str(tmp),
    )
    return env


def _chaos(tmp: Path, experiment: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            CHAOS,
            "--no-log-file",
            "run",
            "--journal-path",
            str(tmp / "journal.json"),
            str(experiment),
        ],
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _applied(tmp: Path, run_id: str, count: int) -> bool:
    path = tmp / "ledger" / f"{run_id}.json"
    if not path.exists():
        return False
    try:
        entries = json.loads(path.read_text())["entries"]
    except ValueError:
        return False
    return sum(e["state"] == "applied" for e in entries) >= count


def _stop(proc: subprocess.Popen[str]) -> str:
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    return out


def _chaosmesh(*args: str, env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHAOSMESH, *args], env=env, cwd=tmp, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_completed_run_restores_everything_through_its_rollback(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    before = _state(seeded)
    env = _env(seeded, tmp_path, "e2e-complete")
    proc = _chaos(tmp_path, _experiment(tmp_path / "exp.json"), env)
    out = _stop(proc)
    assert proc.returncode == 0, out
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed"
    assert all(r["status"] == "succeeded" for r in journal["run"]), out
    assert journal["rollbacks"][0]["status"] == "succeeded"
    assert _state(seeded) == before
    ext = next(e for e in journal["experiment"]["extensions"] if e["name"] == "chaosmesh")
    assert ext["run_id"] == "e2e-complete"


@pytest.mark.slow
def test_sigterm_mid_method_is_restored_by_the_control_then_restore_is_a_no_op(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    before = _state(seeded)
    env = _env(seeded, tmp_path, "e2e-sigterm")
    experiment = _experiment(tmp_path / "exp.json", pause_after=120)
    argv = [CHAOS, "--no-log-file", "run", "--journal-path", str(tmp_path / "journal.json")]
    run = Watched([*argv, str(experiment)], cwd=tmp_path, env=env)
    try:
        assert wait_until(lambda: _applied(tmp_path, "e2e-sigterm", 4), timeout=60), (
            "changes never landed"
        )
        assert _state(seeded) != before
        # Mid-method is the pause after the last action. The ledger shows the 4th change while
        # that action is still returning: a SIGTERM there (seen on a loaded machine) becomes
        # the action's failure on chaoslib 1.44, which then still pauses its 120 s.
        run.wait_for(r"Pausing after activity for 120s", timeout=60)
        os.killpg(run.proc.pid, signal.SIGTERM)
        run.wait(timeout=60)
    finally:
        run.stop()
    out = run.output
    assert _state(seeded) == before, out
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] in ("interrupted", "aborted", "failed")
    assert journal["rollbacks"] == []  # Chaos Toolkit skipped them: the control restored
    ext = next(e for e in journal["experiment"]["extensions"] if e["name"] == "chaosmesh")
    restored = {o["object"]: o["result"] for o in ext["safety_net"][0]["restored"]}
    assert restored["DestinationRule default/ratings"] == "deleted"
    assert restored["VirtualService default/reviews"] == "restored"
    done = _chaosmesh("restore", env=env, tmp=tmp_path)
    assert done.returncode == 0 and "nothing to restore" in done.stdout
    assert _state(seeded) == before


@pytest.mark.slow
def test_sigkill_mid_method_then_chaosmesh_restore(seeded: RunningEmulator, tmp_path: Path) -> None:
    before = _state(seeded)
    env = _env(seeded, tmp_path, "e2e-sigkill")
    proc = _chaos(tmp_path, _experiment(tmp_path / "exp.json", pause_after=120), env)
    try:
        assert wait_until(lambda: _applied(tmp_path, "e2e-sigkill", 4), timeout=60), (
            "changes never landed"
        )
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        _stop(proc)
    assert _state(seeded) != before  # nothing in the process could clean up
    listed = _chaosmesh("restore", "--list", env=env, tmp=tmp_path)
    assert listed.returncode == 0
    assert "e2e-sigkill" in listed.stdout and "DestinationRule default/ratings" in listed.stdout
    assert "VirtualService default/reviews" in listed.stdout
    done = _chaosmesh("restore", env=env, tmp=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _state(seeded) == before
    assert "nothing outstanding" in _chaosmesh("restore", "--list", env=env, tmp=tmp_path).stdout


@pytest.mark.slow
def test_chaosmesh_restore_exits_1_and_says_why_when_someone_else_changed_it(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    env = _env(seeded, tmp_path, "e2e-clobber")
    proc = _chaos(tmp_path, _experiment(tmp_path / "exp.json", pause_after=120, control=False), env)
    try:
        assert wait_until(lambda: _applied(tmp_path, "e2e-clobber", 4), timeout=60), (
            "changes never landed"
        )
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        _stop(proc)
    assert seeded.api is not None
    seeded.api.edit_object(
        "virtualservices",
        "default",
        "reviews",
        lambda o: o["spec"]["hosts"].append("reviews.example.com"),
    )
    theirs = _state(seeded)["virtualservices/reviews"]
    done = _chaosmesh("restore", "--run", "e2e-clobber", env=env, tmp=tmp_path)
    assert done.returncode == 1
    assert (
        "VirtualService default/reviews: refused" in done.stderr
        and "reviews.example.com" in done.stderr
    )
    assert _state(seeded)["virtualservices/reviews"] == theirs
    assert _state(seeded)["destinationrules/ratings"] is None  # the others were restored


@pytest.mark.slow
def test_probe_raising_after_the_method_skips_rollbacks_and_the_control_restores(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    before = _state(seeded)
    marker = tmp_path / "healthy"
    marker.write_text("")
    experiment = json.loads(_experiment(tmp_path / "exp.json").read_text())
    # The hypothesis probe raises once the method removed the marker: a failed run.
    experiment["steady-state-hypothesis"]["probes"] = [
        {
            "type": "probe",
            "name": "marker-is-there",
            "tolerance": 0,
            "provider": {
                "type": "python",
                "module": "os.path",
                "func": "getsize",
                "arguments": {"filename": str(marker)},
            },
        }
    ]
    experiment["method"].append(
        {
            "type": "action",
            "name": "break-it",
            "provider": {"type": "process", "path": "rm", "arguments": ["-f", str(marker)]},
        }
    )
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(experiment))
    proc = _chaos(tmp_path, path, _env(seeded, tmp_path, "e2e-probe"))
    out = _stop(proc)
    assert proc.returncode == 1, out
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "failed" and journal["rollbacks"] == []
    assert _state(seeded) == before
    ext = next(e for e in journal["experiment"]["extensions"] if e["name"] == "chaosmesh")
    assert {o["result"] for o in ext["safety_net"][0]["restored"]} == {"restored", "deleted"}


@pytest.mark.slow
@pytest.mark.parametrize("emulator_options", [{"token": "e2e-s3cret-token"}])
def test_token_from_env_secrets_works_and_never_reaches_the_journal(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    before = _state(seeded)
    experiment = json.loads(_experiment(tmp_path / "exp.json", pause_after=0).read_text())
    experiment["secrets"] = {
        "k8s": {
            "KUBERNETES_HOST": {"type": "env", "key": "MESH_API"},
            "KUBERNETES_API_KEY": {"type": "env", "key": "MESH_TOKEN"},
        }
    }
    for activity in [*experiment["method"], *experiment["rollbacks"]]:
        activity["provider"]["secrets"] = ["k8s"]
    experiment["rollbacks"] = []  # the control (given every scope) does the restore
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(experiment))
    env = _env(seeded, tmp_path, "e2e-token")
    env.update(
        KUBECONFIG=str(tmp_path / "no-kubeconfig"),
        MESH_API=seeded.url,
        MESH_TOKEN="e2e-s3cret-token",
    )
    proc = _chaos(tmp_path, path, env)
    out = _stop(proc)
    assert proc.returncode == 0, out
    journal_text = (tmp_path / "journal.json").read_text()
    journal = json.loads(journal_text)
    assert all(r["status"] == "succeeded" for r in journal["run"]), out
    assert "e2e-s3cret-token" not in journal_text and "e2e-s3cret-token" not in out
    assert _state(seeded) == before
