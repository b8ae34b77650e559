"""How long the runbook's experiments take, and how much of that is not their own load.

Targets (issue: the seed's runbook as experiments): every experiment in ``experiments/``
together under 90 s on a 2-core machine; per experiment, the time beyond its declared load
and pauses under 2 s. Runs ``chaosmesh run`` exactly as ``make run`` does (a fresh embedded
mesh, one ``chaos run`` process per experiment) and reads the journals:

- wall: the experiment's ``chaos run`` process, start to exit (what a user waits for);
- load: the time its load probes spent sending requests (activity durations), which is
  what the experiment declares (``n`` calls, or ``t`` seconds at ``qps``);
- pauses: the ``pauses`` the experiment declares;
- overhead = wall - load - pauses: interpreter start, mesh preparation, actions, restore.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOAD_FUNCS = {
    "fortio_load",
    "latency_ms",
    "error_rate",
    "response_codes",
    "traffic_split",
    "split_follows_weights",
    "progressive_rollout",
}
TOTAL_TARGET_S = 90.0
OVERHEAD_TARGET_S = 2.0


def _activities(journal: dict[str, Any]) -> list[dict[str, Any]]:
    runs = list(journal.get("run") or [])
    for phase in ("before", "after"):
        runs += list(((journal.get("steady_states") or {}).get(phase) or {}).get("probes") or [])
    return runs + list(journal.get("rollbacks") or [])


def _load_and_pauses(journal: dict[str, Any]) -> tuple[float, float]:
    load = pauses = 0.0
    for record in _activities(journal):
        activity = record.get("activity") or {}
        func = ((activity.get("provider") or {}).get("func")) or ""
        if func in LOAD_FUNCS:
            load += float(record.get("duration") or 0.0)
        for value in (activity.get("pauses") or {}).values():
            pauses += float(value)
    return load, pauses


def main() -> int:
    experiments = sorted((ROOT / "experiments").glob("*.json"))
    with tempfile.TemporaryDirectory(prefix="bench-experiments-") as tmp:
        journals = Path(tmp) / "journals"
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "chaosmesh_ext.cli",
                "run",
                "--journals",
                str(journals),
                "--state-dir",
                str(Path(tmp) / "mesh"),
                *map(str, experiments),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            cwd=ROOT,
        )
        total = time.monotonic() - started
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr)
            print("chaosmesh run failed")
            return 1
        summary = json.loads((journals / "summary.json").read_text())
        rows = []
        worst = 0.0
        for outcome in summary["outcomes"]:
            journal = json.loads(Path(outcome["journal"]).read_text())
            load, pauses = _load_and_pauses(journal)
            wall = float(outcome["duration"])
            overhead = wall - load - pauses
            worst = max(worst, overhead)
            rows.append((Path(outcome["experiment"]).stem, wall, load, pauses, overhead))

    print(f"{'experiment':<28}{'wall s':>8}{'load s':>8}{'pauses s':>10}{'overhead s':>12}")
    for name, wall, load, pauses, overhead in rows:
        print(f"{name:<28}{wall:>8.2f}{load:>8.2f}{pauses:>10.2f}{overhead:>12.2f}")
    print(
        f"all experiments, mesh start and stop included: {total:.1f} s "
        f"(target < {TOTAL_TARGET_S:.0f} s)"
    )
    print(f"worst overhead per experiment: {worst:.2f} s (target < {OVERHEAD_TARGET_S:.0f} s)")
    return 0 if total < TOTAL_TARGET_S and worst < OVERHEAD_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
