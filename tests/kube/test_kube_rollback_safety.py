"""Restores reach the API server the run changed, whatever the restoring process's environment;
the run id from the environment wins; ledger trouble is ActivityFailed; one bad entry does not
stop the rest of a restore. Two real emulators stand for "the mesh" and "the user's cluster".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import actions, control
from tests.support.kapi import RunningEmulator
from tests.support.kubefix import REVIEWS, REVIEWS_DR, seed, state

VS = "virtualservices"
CHAOSMESH = str(Path(sys.executable).parent / "chaosmesh")


@pytest.fixture
def other(tmp_path: Path) -> Iterator[RunningEmulator]:
    """A second API server holding the same objects: the user's current kubeconfig context."""
    workdir = tmp_path / "other"
    workdir.mkdir()
    emu = RunningEmulator(workdir).start()
    try:
        seed(emu, REVIEWS, REVIEWS_DR)
        yield emu
    finally:
        emu.stop()


def _restore_cli(*args: str, kubeconfig: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    """`chaosmesh restore` as a separate process whose KUBECONFIG is ``kubeconfig``."""
    env = dict(os.environ, KUBECONFIG=str(kubeconfig))
    return subprocess.run(
        [CHAOSMESH, "restore", *args],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _entries(tmp: Path, run_id: str = "test-run") -> list[dict]:
    return json.loads((tmp / "ledger" / f"{run_id}.json").read_text())["entries"]


def test_restore_goes_to_the_recorded_kubeconfig_not_the_callers(
    seeded: RunningEmulator, other: RunningEmulator, tmp_path: Path
) -> None:
    # The experiment ran on `seeded` through an explicit kubeconfig_path (as the embedded
    # target does); the game day's restore runs with KUBECONFIG pointing at `other`.
    before = state(seeded, VS, "reviews")
    actions.inject_delay("reviews", "2s", configuration={"kubeconfig_path": str(seeded.kubeconfig)})
    assert state(seeded, VS, "reviews") != before
    (entry,) = _entries(tmp_path)
    assert entry["api"]["host"] == seeded.url
    assert entry["api"]["kubeconfig"] == str(seeded.kubeconfig.resolve())

    result = _restore_cli("--run", "test-run", kubeconfig=other.kubeconfig, tmp=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VirtualService default/reviews: restored" in result.stdout
    assert state(seeded, VS, "reviews") == before  # the fault is gone where it was made
    assert _entries(tmp_path)[0]["state"] == "restored"


def test_restore_refuses_another_api_server_and_keeps_the_entry(
    seeded: RunningEmulator, other: RunningEmulator, tmp_path: Path
) -> None:
    before = state(seeded, VS, "reviews")
    actions.inject_delay("reviews", "2s")  # through KUBECONFIG -> seeded; host recorded
    assert other.api is not None
    other.api.edit_object(VS, "default", "reviews", lambda o: o["metadata"].pop("annotations"))
    other_before = state(other, VS, "reviews")

    wrong = _restore_cli(
        "--run",
        "test-run",
        "--kubeconfig",
        str(other.kubeconfig),
        kubeconfig=other.kubeconfig,
        tmp=tmp_path,
    )
    assert wrong.returncode == 1
    assert seeded.url in wrong.stderr and other.url in wrong.stderr
    assert state(other, VS, "reviews") == other_before  # nothing written to the wrong server
    assert _entries(tmp_path)[0]["state"] == "applied"  # still outstanding

    right = _restore_cli("--run", "test-run", kubeconfig=seeded.kubeconfig, tmp=tmp_path)
    assert right.returncode == 0, right.stderr
    assert state(seeded, VS, "reviews") == before


def test_the_environment_run_id_wins_over_the_configuration(
    seeded: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CHAOSMESH_RUN_ID", "gameday-7")
    configuration = {"chaosmesh_run_id": "from-config"}
    control.configure_control(configuration=configuration, secrets={})
    try:
        assert configuration["chaosmesh_run_id"] == "gameday-7"
        actions.inject_delay("reviews", "1s", configuration={"chaosmesh_run_id": "from-config"})
    finally:
        control._state.update(run_id=None, configuration=None, prepared=None, error=None)
    assert (tmp_path / "ledger" / "gameday-7.json").exists()
    assert not (tmp_path / "ledger" / "from-config.json").exists()
    # ... so the game day's `restore --run gameday-7` finds and undoes it.
    result = _restore_cli("--run", "gameday-7", kubeconfig=seeded.kubeconfig, tmp=tmp_path)
    assert result.returncode == 0 and "restored" in result.stdout


def test_an_unwritable_ledger_is_activity_failed_naming_it_and_changes_nothing(
    seeded: RunningEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the ledger directory should be\n")
    monkeypatch.setenv("CHAOSMESH_LEDGER_DIR", str(blocker))
    before = state(seeded, VS, "reviews")
    with pytest.raises(ActivityFailed) as info:
        actions.inject_delay("reviews", "2s")
    assert str(blocker) in str(info.value) and "default/reviews" in str(info.value)
    assert state(seeded, VS, "reviews") == before


def test_a_corrupt_ledger_is_activity_failed_for_actions_restore_and_the_cli(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "ledger" / "test-run.json"
    path.parent.mkdir()
    path.write_text('{"entries": [')
    before = state(seeded, VS, "reviews")
    with pytest.raises(ActivityFailed, match=r"test-run\.json"):
        actions.inject_delay("reviews", "2s")
    with pytest.raises(ActivityFailed, match=r"test-run\.json"):
        actions.restore()
    assert state(seeded, VS, "reviews") == before
    result = _restore_cli("--run", "test-run", kubeconfig=seeded.kubeconfig, tmp=tmp_path)
    assert result.returncode == 1
    assert "test-run.json" in result.stderr and "Traceback" not in result.stderr


def test_one_malformed_entry_does_not_stop_the_rest_of_the_restore(
    seeded: RunningEmulator, tmp_path: Path
) -> None:
    before_vs = state(seeded, VS, "reviews")
    actions.inject_delay("reviews", "2s")
    actions.apply_circuit_breaker("reviews", max_connections=1)
    # Damage the newest entry (restored first) the way a hand edit or an old version might.
    path = tmp_path / "ledger" / "test-run.json"
    data = json.loads(path.read_text())
    del data["entries"][-1]["absent_before"]
    path.write_text(json.dumps(data))

    result = _restore_cli("--run", "test-run", kubeconfig=seeded.kubeconfig, tmp=tmp_path)
    assert result.returncode == 1
    assert "DestinationRule default/reviews: failed" in result.stderr
    assert "VirtualService default/reviews: restored" in result.stdout
    assert state(seeded, VS, "reviews") == before_vs
