"""A typo in an activity's arguments is caught before anything runs, naming the step and the
closest name: ``chaosmesh lint -f experiment.json`` and ``chaosmesh run`` as users run them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.experiment_check import check_arguments
from tests.support.cli import chaosmesh

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _with_typos(tmp_path: Path) -> Path:
    experiment = json.loads((EXPERIMENTS / "abort-retries.json").read_text())
    abort = experiment["method"][0]["provider"]
    abort["arguments"]["percentge"] = abort["arguments"].pop("percentage")
    experiment["method"][1]["provider"]["func"] = "set_retry"
    experiment["method"][2]["provider"]["arguments"].pop("host")
    path = tmp_path / "abort-retries.json"
    path.write_text(json.dumps(experiment, indent=2))
    return path


def test_lint_names_the_step_and_suggests_the_closest_name(tmp_path: Path) -> None:
    path = _with_typos(tmp_path)
    done = chaosmesh("lint", "-f", str(path))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    line_of = {ln.strip(): i + 1 for i, ln in enumerate(path.read_text().splitlines())}
    line = line_of['"percentge": 100']
    assert lines[0] == (
        f"{path}:{line}: error: method[0].provider.arguments.percentge: "
        "'abort-tomcat-503' (chaosmesh_ext.actions.inject_abort): unknown argument 'percentge' "
        "(did you mean 'percentage'?)"
    )
    assert (
        "no function 'set_retry' in chaosmesh_ext.actions (did you mean 'set_retries'?)"
        in (lines[1])
    )
    assert lines[2].endswith(
        "'nginx-upstream-counters-before' (chaosmesh_ext.probes.breaker_stats): "
        "missing argument 'host'"
    )
    assert lines[-1] == "3 error(s), 0 warning(s), 0 info"


def test_chaosmesh_run_runs_nothing_when_an_argument_is_wrong(tmp_path: Path) -> None:
    path = _with_typos(tmp_path)
    done = chaosmesh(
        "run", "--journals", str(tmp_path / "journals"), "--state-dir", str(tmp_path / "mesh"),
        str(path), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "unknown argument 'percentge' (did you mean 'percentage'?)" in done.stderr
    assert "nothing was run" in done.stderr
    # Not even the embedded mesh was started, and no journal written.
    assert not (tmp_path / "mesh").exists() and not (tmp_path / "journals").exists()


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.json")), ids=lambda p: p.stem)
def test_the_projects_experiments_have_no_argument_problem(path: Path) -> None:
    assert check_arguments(json.loads(path.read_text())) == []


def test_a_probe_tolerance_gets_value_and_a_foreign_module_is_only_a_warning() -> None:
    slo: dict[str, Any] = {
        "type": "probe",
        "name": "slo",
        "provider": {"type": "python", "module": "chaosmesh_ext.tolerances", "func": "slo",
                     "arguments": {"max_p99ms": 100}},
    }  # fmt: skip
    experiment = {
        "title": "t",
        "steady-state-hypothesis": {
            "title": "h",
            "probes": [
                {"type": "probe", "name": "p", "tolerance": slo,
                 "provider": {"type": "python", "module": "not_installed_ext", "func": "f"}},
            ],
        },
        "method": [],
    }  # fmt: skip
    problems = check_arguments(experiment)
    assert [(p.severity, p.field) for p in problems] == [
        ("warning", "steady-state-hypothesis.probes[0].provider.func"),
        ("error", "steady-state-hypothesis.probes[0].tolerance.provider.arguments.max_p99ms"),
    ]
    assert problems[1].message == "unknown argument 'max_p99ms' (did you mean 'max_p99_ms'?)"
