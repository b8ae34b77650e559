"""`make test` runs the suite on pytest-xdist workers with `--dist loadgroup`: tests that
share a module-scoped fixture (an embedded mesh, a Prometheus) must stay on one worker so it
is started once. pytest-xdist groups through test ids, which pytest 9.2 no longer reads
(pytest-xdist#1386): this fails if grouping silently stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "support" / "xdist_sample"


def test_tests_sharing_a_module_fixture_run_on_one_worker(tmp_path: Path) -> None:
    record = tmp_path / "record"
    record.mkdir()
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-n", "3", "--dist", "loadgroup", "-q",
            "-p", "no:cacheprovider", "-o", "python_files=sample_*.py",
            "--basetemp", str(tmp_path / "basetemp"), str(SAMPLE),
        ],
        cwd=ROOT, env={**os.environ, "SAMPLE_RECORD": str(record)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    ran = {p.name: p.read_text() for p in record.iterdir()}
    shared = {worker for name, worker in ran.items() if name.startswith("shared-")}
    free = {worker for name, worker in ran.items() if name.startswith("free-")}
    assert len(ran) == 12 and all(w.startswith("gw") for w in ran.values()), ran
    assert len(shared) == 1, ran  # one worker set the module's fixture up, once
    assert len(free) >= 2, ran  # the others were spread: the run had workers
