"""Regenerate the journal fixtures with real ``chaos run`` (not run by the test suite).

Usage: ``python tests/journal/make_fixtures.py CHAOS_BINARY SUFFIX [NAME...]`` — e.g.
``.venv/bin/chaos 121`` and ``/tmp/ctk119/bin/chaos 119`` (a Python 3.11 venv with
``chaostoolkit==1.19.*``). Writes ``fixtures/<name>-<SUFFIX>.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
# The activities the fixture experiments name as module ``ctk_helpers``.
SUPPORT = HERE.parent / "support"
H = "ctk_helpers"


def _probe(name: str, func: str, args: dict[str, Any], tolerance: Any = None) -> dict[str, Any]:
    probe: dict[str, Any] = {
        "type": "probe",
        "name": name,
        "provider": {"type": "python", "module": H, "func": func, "arguments": args},
    }
    if tolerance is not None:
        probe["tolerance"] = tolerance
    return probe


def _action(name: str, func: str, args: dict[str, Any], module: str = H) -> dict[str, Any]:
    return {
        "type": "action",
        "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": args},
    }


P99_OK = {"type": "range", "range": [0, 50], "target": "p99_ms"}


def mesh_experiment(title: str) -> dict[str, Any]:
    """A delay experiment shaped like this extension's: load before/during/after."""
    return {
        "title": title,
        "description": "reviews keeps p99 under 50 ms while ratings is delayed",
        "tags": ["mesh"],
        "controls": [{"name": "chaosmesh", "provider": {"type": "python", "module": H}}],
        "steady-state-hypothesis": {
            "title": "reviews is fast",
            "probes": [
                _probe("reviews-load", "load_result", {"p99": 9.0}, P99_OK),
                _probe(
                    "canary-split",
                    "traffic_split",
                    {"v1": 0.91, "v2": 0.09},
                    {"type": "range", "range": [0.8, 1.0], "target": "v1"},
                ),
            ],
        },
        "method": [
            _action("inject-delay", "inject", {"kind": "delay", "seconds": 0.3}),
            _probe(
                "reviews-load-under-fault",
                "load_result",
                {
                    "p50": 30.0,
                    "p90": 120.0,
                    "p99": 180.0,
                    "codes": {"200": 180, "503": 15, "-1": 5},
                },
            ),
        ],
        "rollbacks": [_action("remove-delay", "inject", {"kind": "none", "seconds": 0.1})],
    }


def build() -> dict[str, dict[str, Any]]:
    ok = mesh_experiment("reviews survives a ratings delay")
    deviated = mesh_experiment("reviews survives a ratings delay")
    # After the method the load probe reports a p99 past the tolerance -> deviated.
    marker = "/tmp/chaosmesh-review-fixture-marker"
    deviated["steady-state-hypothesis"]["probes"][0]["provider"]["arguments"]["degraded_marker"] = (
        marker
    )
    deviated["method"][0]["provider"]["arguments"]["marker"] = marker
    failed_probe = {
        "title": "a probe that cannot reach its target",
        "steady-state-hypothesis": {
            "title": "reviews answers",
            "probes": [_probe("reviews-answers", "crash", {}, True)],
        },
        "method": [_action("inject-delay", "inject", {"seconds": 0.0})],
    }
    failed_method = {
        "title": "a fault action that fails",
        "method": [
            _action(
                "inject-delay", "crash", {"message": "VirtualService default/reviews: not found"}
            ),
            _probe("reviews-load-under-fault", "load_result", {"p99": 12.0}),
        ],
        "rollbacks": [],
    }
    not_tested = {
        # The hypothesis already fails before the method: chaoslib ends the run "completed"
        # (not deviated) without running the method.
        "title": "a steady state that does not hold before the fault",
        "steady-state-hypothesis": {
            "title": "reviews is fast",
            "probes": [_probe("reviews-load", "load_result", {"p99": 80.0}, P99_OK)],
        },
        "method": [_action("inject-delay", "inject", {"seconds": 0.0})],
        "rollbacks": [_action("remove-delay", "inject", {"kind": "none", "seconds": 0.0})],
    }
    no_method = {
        "title": "only a hypothesis",
        "steady-state-hypothesis": {
            "title": "reviews is fast",
            "probes": [_probe("reviews-load", "load_result", {}, P99_OK)],
        },
        "method": [],
    }
    plain = {
        "title": "an experiment without this extension",
        "steady-state-hypothesis": {
            "title": "the temp dir exists",
            "probes": [
                {
                    "type": "probe",
                    "name": "tmp-exists",
                    "tolerance": True,
                    "provider": {
                        "type": "python",
                        "module": "os.path",
                        "func": "exists",
                        "arguments": {"path": "/tmp"},
                    },
                }
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "wait",
                "provider": {"type": "process", "path": "sleep", "arguments": "0.05"},
            }
        ],
        "rollbacks": [
            {
                "type": "action",
                "name": "list-tmp",
                "provider": {"type": "process", "path": "ls", "arguments": "-d /tmp"},
            }
        ],
    }
    interrupted = {
        "title": "interrupted during the fault",
        "steady-state-hypothesis": {
            "title": "reviews is fast",
            "probes": [_probe("reviews-load", "load_result", {}, P99_OK)],
        },
        "method": [
            _action("inject-delay", "inject", {"seconds": 0.1}),
            _action("hold-fault", "inject", {"kind": "hold", "seconds": 30}),
        ],
        "rollbacks": [_action("remove-delay", "inject", {"kind": "none"})],
    }
    for experiment in (failed_probe, failed_method, not_tested, no_method, plain, interrupted):
        experiment["description"] = experiment["title"]
    return {
        "mesh-ok": ok,
        "mesh-deviated": deviated,
        "failed-probe": failed_probe,
        "failed-method": failed_method,
        "not-tested": not_tested,
        "no-method": no_method,
        "plain": plain,
        "interrupted": interrupted,
    }


def run(chaos: str, suffix: str, only: list[str] | None = None) -> None:
    env = dict(os.environ, PYTHONPATH=str(SUPPORT))
    exp_dir = FIXTURES / "experiments"
    exp_dir.mkdir(parents=True, exist_ok=True)
    for name, experiment in build().items():
        if only and name not in only:
            continue
        if os.path.exists("/tmp/chaosmesh-review-fixture-marker"):
            os.remove("/tmp/chaosmesh-review-fixture-marker")
        path = exp_dir / f"{name}.json"
        path.write_text(json.dumps(experiment, indent=2))
        journal = FIXTURES / f"{name}-{suffix}.json"
        cmd = [
            chaos,
            "--no-log-file",
            "run",
            "--no-verify-tls",
            "--journal-path",
            str(journal),
            str(path),
        ]
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=HERE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if name == "interrupted":
            time.sleep(4.0)
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        print(
            name, suffix, "exit", proc.returncode, "journal" if journal.exists() else "NO JOURNAL"
        )


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], sys.argv[3:])
