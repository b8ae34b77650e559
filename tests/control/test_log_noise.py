"""A normal run's log has no alarms in it: real ``chaos run`` with the safety-net control.

- chaoslib's "Rollbacks were explicitly requested to be played" (every experiment here asks
  for ``strategy: always``) is reported at INFO, not WARNING;
- the note that a ``via=local`` load ran in the chaos process is logged once, not per load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.load.engine import LOCAL_NOTE
from tests.support.load_target import Target

CHAOS = str(Path(sys.executable).with_name("chaos"))


@pytest.fixture
def target() -> Iterator[Target]:
    started = Target().start()
    try:
        yield started
    finally:
        started.stop()


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
        "controls": [
            {
                "name": "chaosmesh-safety-net",
                "provider": {"type": "python", "module": "chaosmesh_ext.control"},
            }
        ],
        "method": [_load(f"load-{i}", target.url) for i in range(3)],
        "rollbacks": [_load("load-after", target.url)],
        "runtime": {"rollbacks": {"strategy": "always"}},
    }
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    env = dict(os.environ, HOME=str(tmp_path), CHAOSMESH_LEDGER_DIR=str(tmp_path / "ledger"))
    env.pop("MESH_TARGET", None)
    proc = subprocess.run(
        [CHAOS, "run", "--journal-path", str(tmp_path / "journal.json"), str(path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console
    assert target.count == 12
    warnings = [line for line in console.splitlines() if "WARNING" in line]
    assert warnings == []
    assert "INFO] Rollbacks were explicitly requested to be played" in console
    assert console.count(LOCAL_NOTE) == 1
