"""``chaos discover`` names every argument's type, so ``chaos init`` can ask for it.

Both run as the real ``chaos`` command; ``chaos init`` is driven with its answers on stdin,
through a steady-state probe and a method action, to the experiment file it writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext import discover
from chaosmesh_ext._discovery import portable_type

CHAOS = str(Path(sys.executable).with_name("chaos"))
CHAOSLIB_TYPES = {"string", "integer", "number", "boolean", "mapping", "list"}


def test_portable_type_names() -> None:
    from collections.abc import Iterable, Mapping, Sequence

    assert portable_type(int | None) == "integer"
    assert portable_type(str | float) == "string"  # a delay "2s" or 2.0: text covers both
    assert portable_type(str | float, 2.0) == "number"  # ... unless the default says otherwise
    assert portable_type(Mapping[str, str] | list[str] | None) == "mapping"
    assert portable_type(Iterable[int | str] | None) == "list"
    assert portable_type(Sequence[int]) == "list"
    assert portable_type(dict[str, float]) == "mapping"
    assert portable_type(bool) == "boolean"
    assert portable_type(Any) == "object"


def test_every_argument_a_user_fills_has_a_chaoslib_type() -> None:
    activities = discover()["activities"]
    by_name = {a["name"]: a for a in activities}
    for activity in activities:
        if activity["type"] not in ("action", "probe"):
            continue
        for argument in activity["arguments"]:
            if argument["name"] in ("configuration", "secrets"):
                continue
            assert argument["type"] in CHAOSLIB_TYPES, (activity["name"], argument)
    delay = {a["name"]: a["type"] for a in by_name["inject_delay"]["arguments"]}
    assert (delay["delay"], delay["percentage"], delay["headers"]) == (
        "string",
        "number",
        "mapping",
    )
    load = {a["name"]: a["type"] for a in by_name["fortio_load"]["arguments"]}
    assert (load["c"], load["qps"], load["open_loop"], load["timeout"]) == (
        "integer",
        "number",
        "boolean",
        "string",
    )
    assert by_name["error_rate"]["return_type"] == "number"


def _answers(activity: dict[str, Any], values: dict[str, str]) -> list[str]:
    """One answer per argument prompt, in order: ours, else a value of the argument's type."""
    example = {"integer": "3", "number": "0.5", "boolean": "n", "string": "x"}
    answers = []
    for argument in activity["arguments"]:
        name = argument["name"]
        if name in ("configuration", "secrets"):
            continue
        if name in values:
            answers.append(values[name])
        elif argument["type"] in ("mapping", "list"):
            answers.append("")  # the default: chaos init reads an empty answer as {} / []
        else:
            answers.append(example[argument["type"]])
    return answers


def test_chaos_init_builds_an_experiment_from_this_extension(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}  # chaos keeps its settings under ~
    discovery = tmp_path / "discovery.json"
    found = subprocess.run(
        [CHAOS, "discover", "--no-install", "--discovery-path", str(discovery),
         "chaostoolkit-mesh"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    activities = json.loads(discovery.read_text())["activities"]
    probes = [a for a in activities if a["type"] == "probe"]
    probe_index = [a["name"] for a in probes].index("fortio_load") + 1
    action_index = [a["name"] for a in activities].index("inject_delay") + 1
    probe = next(a for a in probes if a["name"] == "fortio_load")
    action = next(a for a in activities if a["name"] == "inject_delay")
    lines = [
        "runbook check",  # experiment title
        "y", "steady", str(probe_index), "y", "true",  # hypothesis, a probe, its tolerance
        *_answers(probe, {"url": "http://httpbin:8000/get", "c": "2", "n": "20", "t": "5s"}),
        "n",  # no other probe
        "y", str(action_index), "y",  # method: one action
        *_answers(action, {"virtual_service": "reviews", "delay": "2s", "percentage": "50"}),
        "n",  # no other action
        "n",  # no rollbacks
    ]  # fmt: skip
    experiment = tmp_path / "experiment.json"
    proc = subprocess.run(
        [CHAOS, "init", "--discovery-path", str(discovery), "--experiment-path", str(experiment)],
        cwd=tmp_path, env=env, input="\n".join(lines) + "\n", capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "is not a valid" not in proc.stdout + proc.stderr  # every answer fit its type
    made = json.loads(experiment.read_text())
    (steady,) = made["steady-state-hypothesis"]["probes"]
    assert steady["provider"]["func"] == "fortio_load"
    load_args = steady["provider"]["arguments"]
    assert (load_args["url"], load_args["c"], load_args["n"]) == ("http://httpbin:8000/get", 2, 20)
    assert load_args["open_loop"] is False and load_args["qps"] == 0.5
    (fault,) = made["method"]
    assert fault["provider"]["func"] == "inject_delay"
    assert fault["provider"]["arguments"]["percentage"] == 50.0
    assert fault["provider"]["arguments"]["delay"] == "2s"


@pytest.fixture(autouse=True)
def _no_ctk_log_in_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # chaostoolkit.log lands where chaos runs
