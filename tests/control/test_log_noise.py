"""A normal run's log has no alarms in it: real ``chaos run`` with the safety-net control.

- chaoslib's "Rollbacks were explicitly requested to be played" (every experiment here asks
  for ``strategy: always``) is reported at INFO, not WARNING;
- the note that a ``via=local`` load ran in the chaos process is logged once, not per load.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.load.engine import LOCAL_NOTE
from tests.support.chaos_run import SAFETY_NET, chaos_run, running_target
from tests.support.load_target import Target


@pytest.fixture
def target() -> Iterator[Target]:
    with running_target() as started:
        yield started


def _load(name: str, url: str) -> dict[str, Any]:
    return {
        "type": "probe",
        "name": name,
        "provider": {
            "type": "python",
            "module": "chaosmesh_ext.probes",
            "func": "fortio_load",
            "arguments": {"url": url, "n": 3, "c": 1, "via": "local"},
        },
    }


def test_a_normal_run_logs_no_warning(target: Target, tmp_path: Path) -> None:
    experiment = {
        "title": "three local loads",
        "description": "nothing goes wrong",
        "configuration": {"mesh_target": "kubernetes"},
        "controls": [SAFETY_NET],
        "method": [_load(f"load-{i}", target.url) for i in range(3)],
        "rollbacks": [_load("load-after", target.url)],
        "runtime": {"rollbacks": {"strategy": "always"}},
    }
    run = chaos_run(experiment, tmp_path)
    console = run.output
    assert run.proc.returncode == 0, console
    assert target.count == 12
    warnings = [line for line in console.splitlines() if "WARNING" in line]
    assert warnings == []
    assert "INFO] Rollbacks were explicitly requested to be played" in console
    assert console.count(LOCAL_NOTE) == 1
