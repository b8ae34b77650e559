"""Builds tiny game days for the tests: experiments with stdlib python providers only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def _py(label: str, kind: str, module: str, func: str, **args: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "name": label,
        "provider": {"type": "python", "module": module, "func": func, "arguments": args},
    }


def healthy(work: Path, name: str) -> dict[str, Any]:
    """Checks a directory exists, creates and removes another: never deviates."""
    probe = _py("workdir-exists", "probe", "os.path", "exists", path=str(work))
    probe["tolerance"] = True
    target = str(work / f"{name}-made")
    return {
        "title": f"{name} stays healthy",
        "description": "a healthy experiment",
        "steady-state-hypothesis": {"title": "the work dir exists", "probes": [probe]},
        "method": [_py("make-dir", "action", "os", "makedirs", name=target, exist_ok=True)],
        "rollbacks": [_py("remove-dir", "action", "shutil", "rmtree", path=target)],
    }


def deviating(work: Path) -> dict[str, Any]:
    """The method leaves a marker the hypothesis says must not exist: deviates."""
    marker = str(work / "marker")
    probe = _py("marker-absent", "probe", "os.path", "exists", path=marker)
    probe["tolerance"] = False
    return {
        "title": "the marker stays away",
        "description": "a deviating experiment",
        "steady-state-hypothesis": {"title": "no marker", "probes": [probe]},
        "method": [_py("make-marker", "action", "os", "makedirs", name=marker, exist_ok=True)],
        "rollbacks": [_py("remove-marker", "action", "shutil", "rmtree", path=marker)],
    }


def untested(work: Path) -> dict[str, Any]:
    """The steady state already fails before the method: chaoslib runs no method and ends
    the run "completed", not deviated."""
    probe = _py("ready-file-exists", "probe", "os.path", "exists", path=str(work / "nope"))
    probe["tolerance"] = True
    experiment = healthy(work, "untested")
    experiment["title"] = "never tested"
    experiment["steady-state-hypothesis"] = {"title": "ready", "probes": [probe]}
    return experiment


def uninjected(work: Path) -> dict[str, Any]:
    """The fault action fails (it removes a directory that does not exist); chaoslib records
    it and plays on to a "completed" run."""
    experiment = healthy(work, "uninjected")
    experiment["title"] = "fault never injected"
    experiment["method"] = [
        _py("inject-fault", "action", "os", "rmdir", path=str(work / "no-such-dir")),
    ]
    experiment["rollbacks"] = []
    return experiment


def holding(seconds: int = 60) -> dict[str, Any]:
    """A method that holds for a long time (a fault left in place)."""
    return {
        "title": "holds the fault",
        "description": "a long experiment",
        "method": [
            {
                "type": "action",
                "name": "hold-fault",
                "provider": {"type": "process", "path": "sleep", "arguments": str(seconds)},
            }
        ],
    }


def write_plan(base: Path, experiments: dict[str, dict[str, Any]], **plan: Any) -> Path:
    """experiments/<name>.json for each, and plan.yaml listing them by glob."""
    (base / "experiments").mkdir(parents=True, exist_ok=True)
    for name, experiment in experiments.items():
        (base / "experiments" / f"{name}.json").write_text(json.dumps(experiment, indent=2))
    body = {"name": "demo", "experiments": ["experiments/*.json"], **plan}
    path = base / "plan.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def run_dirs(base: Path, plan: str = "demo") -> list[Path]:
    root = base / "journals" / plan
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []
