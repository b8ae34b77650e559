"""Run an experiment as a user does, with real ``chaos run`` (bounded), for the tests.

``chaos_run(experiment, tmp)`` writes ``tmp/experiment.json``, runs it in ``tmp`` with a HOME
and ledger of its own (and no ``MESH_TARGET`` from the caller's environment) and returns the
process, the decoded journal, the journal's path and the log's text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.load_target import Behaviour, Target, ok

CHAOS = str(Path(sys.executable).with_name("chaos"))
CHAOS_TIMEOUT = 120

# The safety-net control, as an experiment declares it.
SAFETY_NET: dict[str, Any] = {
    "name": "chaosmesh-safety-net",
    "provider": {"type": "python", "module": "chaosmesh_ext.control"},
}


@dataclass
class ChaosRun:
    proc: subprocess.CompletedProcess[str]
    journal: dict[str, Any]
    journal_path: Path
    log: str

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr


def chaos_run(
    experiment: Mapping[str, Any], tmp: Path, env: Mapping[str, str] | None = None
) -> ChaosRun:
    path = tmp / "experiment.json"
    path.write_text(json.dumps(experiment, ensure_ascii=False), encoding="utf-8")
    journal = tmp / "journal.json"
    log = tmp / "chaostoolkit.log"
    full_env = dict(os.environ, HOME=str(tmp), CHAOSMESH_LEDGER_DIR=str(tmp / "ledger"))
    for key in ("MESH_TARGET", "CHAOSMESH_RUN_ID"):
        full_env.pop(key, None)
    full_env.update(env or {})
    proc = subprocess.run(
        [CHAOS, "--log-file", str(log), "run", "--journal-path", str(journal), str(path)],
        cwd=tmp, env=full_env, capture_output=True, text=True, timeout=CHAOS_TIMEOUT,
    )  # fmt: skip
    return ChaosRun(
        proc,
        json.loads(journal.read_text()) if journal.exists() else {},
        journal,
        log.read_text() if log.exists() else "",
    )


@contextmanager
def running_target(behaviour: Behaviour = ok) -> Iterator[Target]:
    """A local HTTP target (tests/support/load_target.py), stopped afterwards."""
    target = Target(behaviour).start()
    try:
        yield target
    finally:
        target.stop()
