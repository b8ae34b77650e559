"""Following the README leaves nothing for ``git status`` to show: every file its commands
write where they are run is ignored."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What the README's commands write: `make run`, the walkthrough in experiments/
# (chaos run, journal show/report), `chaos discover`, `chaosmesh mesh up`.
WRITTEN = [
    "journals/timeout.json",
    "journals/summary.json",
    "journals/report.html",
    "experiments/journal.json",
    "experiments/chaostoolkit.log",
    "experiments/report.html",
    "experiments/journals/timeout.json",  # `chaosmesh run` from experiments/
    "experiments/.chaosmesh/mesh.json",
    ".chaosmesh/kubeconfig",
    "chaostoolkit.log",
    "discovery.json",
    "report.html",
    ".venv/install.log",
]


def test_every_file_the_walkthrough_writes_is_ignored_by_git() -> None:
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--verbose", "--non-matching", *WRITTEN],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    not_ignored = [ln.split("\t")[-1] for ln in done.stdout.splitlines() if ln.startswith("::")]
    assert not_ignored == []
