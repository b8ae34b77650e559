"""Benchmark: journal review and game-day overhead.

- Reading + summarising + reporting the fixture journals (synthetic shapes and real runs of
  ``experiments/``), and a synthetic long journal
  (500 load-probe results, as a continuous-hypothesis run over an hour would write), beside
  the floor of just ``json.loads`` of the same file.
- The cron parser's worst case (``0 0 29 feb *`` looks years ahead).
- What a game day adds per experiment over the ``chaos run`` it wraps: a plan of 3 trivial
  experiments via ``chaosmesh gameday run`` vs the same 3 ``chaos run`` calls in a loop.

``python -m benchmarks.bench_review``. Targets: a 500-result journal reported in under 1 s;
game-day overhead under 0.5 s per experiment.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "journal" / "fixtures"
REPORT_TARGET_S = 1.0
OVERHEAD_TARGET_S = 0.5


def _median(fn: Callable[[], Any], n: int) -> float:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _long_journal(results: int) -> dict[str, Any]:
    from tests.support.ctk_helpers import load_result

    raw = json.loads((FIXTURES / "mesh-ok-121.json").read_text())
    probe = raw["run"][1]
    raw["steady_states"]["during"] = [
        {"steady_state_met": True, "probes": [{**probe, "output": load_result(p99=5.0 + i % 40)}]}
        for i in range(results)
    ]
    return raw


def _trivial_experiment(i: int) -> dict[str, Any]:
    return {
        "title": f"trivial {i}",
        "description": "d",
        "method": [
            {
                "type": "probe",
                "name": "tmp",
                "provider": {
                    "type": "python",
                    "module": "os.path",
                    "func": "exists",
                    "arguments": {"path": "/tmp"},
                },
            }
        ],
    }


def main() -> int:
    from chaosmesh_ext.gameday.cron import CronExpression
    from chaosmesh_ext.journal import load_journal, parse_journal
    from chaosmesh_ext.journal.report import render_html
    from chaosmesh_ext.journal.summary import render

    ok = True
    # The synthetic fixtures of every journal shape, and real journals of this project's
    # experiments (fortio results of 50 keys, breaker counters, a rollout).
    real = sorted(p for p in (FIXTURES / "real").glob("*.json") if p.name != "summary.json")
    fixtures = sorted(FIXTURES.glob("*.json")) + real
    per = _median(lambda: [render(load_journal(p)) for p in fixtures], 20) / len(fixtures)
    print(f"fixture journal load+summary: {per * 1000:.2f} ms each ({len(fixtures)} journals)")
    journals = [load_journal(p) for p in fixtures]
    t = _median(lambda: render_html(journals), 10)
    print(f"report of all {len(fixtures)} fixtures: {t * 1000:.1f} ms")

    long = _long_journal(500)
    text = json.dumps(long)
    floor = _median(lambda: json.loads(text), 5)
    parse = _median(lambda: parse_journal(json.loads(text)), 5)
    report_t = _median(lambda: render_html([parse_journal(json.loads(text))]), 3)
    size = len(render_html([parse_journal(json.loads(text))]))
    print(
        f"500-result journal ({len(text) / 1e6:.1f} MB): json.loads {floor * 1000:.1f} ms, "
        f"load {parse * 1000:.1f} ms, report {report_t * 1000:.0f} ms ({size / 1e6:.1f} MB HTML)"
        f"  target < {REPORT_TARGET_S:.0f} s"
    )
    ok &= report_t < REPORT_TARGET_S

    cron = CronExpression.parse("0 0 29 feb *")
    t = _median(lambda: cron.next_after(datetime(2029, 3, 1, tzinfo=UTC)), 20)
    print(f"cron next_after worst case (29 Feb, 3 years ahead): {t * 1000:.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "experiments").mkdir()
        paths = []
        for i in range(3):
            p = base / "experiments" / f"e{i}.json"
            p.write_text(json.dumps(_trivial_experiment(i)))
            paths.append(p)
        (base / "plan.yaml").write_text("name: bench\nexperiments: [experiments/*.json]\n")
        chaos = str(Path(sys.executable).with_name("chaos"))
        start = time.perf_counter()
        for i, p in enumerate(paths):
            subprocess.run(
                [chaos, "--no-log-file", "run", "--journal-path", str(base / f"j{i}.json"), str(p)],
                cwd=base,
                capture_output=True,
                timeout=120,
                check=True,
            )
        bare = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "chaosmesh_ext.cli", "gameday", "run", "plan.yaml"],
            cwd=base,
            capture_output=True,
            timeout=300,
            check=True,
        )
        gameday = time.perf_counter() - start
        overhead = (gameday - bare) / 3
        print(
            f"3 trivial experiments: chaos run loop {bare:.2f} s, gameday run {gameday:.2f} s "
            f"-> overhead {overhead:.2f} s/experiment  target < {OVERHEAD_TARGET_S} s"
        )
        ok &= overhead < OVERHEAD_TARGET_S
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
