"""Check an experiment's activity arguments against the real functions, before a run.

chaoslib refuses an argument the function does not take with a message that names the
function, not the step, and suggests nothing; a misspelt optional argument in a step that
runs late costs a whole run. :func:`check_arguments` reads every python activity (hypothesis
probes, their ``probe`` tolerances, method, rollbacks), imports its module as ``chaos run``
would, and reports per step: unknown arguments with the closest name, missing required ones,
functions that do not exist. ``chaosmesh run`` runs nothing when it finds one;
``chaosmesh lint -f experiment.json`` reports them.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Problem", "check_arguments", "check_file", "is_experiment", "read_experiment"]

# Filled in by chaoslib, never written in an experiment.
INJECTED = ("configuration", "secrets")


@dataclass(frozen=True)
class Problem:
    """One argument problem of one step."""

    field: str  # "method[1].provider.arguments.percentge"
    step: str  # the activity's name
    func: str  # "chaosmesh_ext.actions.inject_abort"
    message: str  # "unknown argument 'percentge' (did you mean 'percentage'?)"
    severity: str = "error"  # "warning" when the module cannot be imported here
    key: str | None = None  # the argument the problem is about, when there is one

    def __str__(self) -> str:
        return f"{self.field.split('.provider')[0]} '{self.step}' ({self.func}): {self.message}"


def is_experiment(document: Any) -> bool:
    """Whether ``document`` is a Chaos Toolkit experiment (not a Kubernetes object)."""
    return (
        isinstance(document, Mapping)
        and "kind" not in document
        and ("method" in document or "steady-state-hypothesis" in document)
    )


def read_experiment(path: Path) -> Any:
    """The decoded document at ``path`` (JSON, or YAML for ``.yaml``/``.yml``); raises
    ``OSError`` or ``ValueError``."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(str(exc)) from None
    return json.loads(text)


def _activities(experiment: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """(field path, activity, called with ``value``) for every activity of the experiment."""
    hypothesis = experiment.get("steady-state-hypothesis")
    probes = hypothesis.get("probes") if isinstance(hypothesis, Mapping) else None
    for i, probe in enumerate(probes if isinstance(probes, list) else []):
        if isinstance(probe, Mapping):
            where = f"steady-state-hypothesis.probes[{i}]"
            yield where, probe, False
            tolerance = probe.get("tolerance")
            if isinstance(tolerance, Mapping) and tolerance.get("type") == "probe":
                yield f"{where}.tolerance", tolerance, True
    for section in ("method", "rollbacks"):
        steps = experiment.get(section)
        for i, step in enumerate(steps if isinstance(steps, list) else []):
            if isinstance(step, Mapping):
                yield f"{section}[{i}]", step, False


def _closest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _function(module: str, func: str) -> tuple[Callable[..., Any] | None, str | None]:
    """The function, or None and why (``"module"`` when the module cannot be imported)."""
    try:
        loaded = importlib.import_module(module)
    except Exception as exc:  # any import error: chaos run would fail on it too
        return None, f"module: cannot import {module} here ({exc}); its arguments are not checked"
    found = getattr(loaded, func, None)
    if callable(found):
        return found, None
    names = [n for n in dir(loaded) if not n.startswith("_") and callable(getattr(loaded, n))]
    return None, f"no function '{func}' in {module}{_closest(func, names)}"


def _check_call(where: str, activity: Mapping[str, Any], with_value: bool) -> Iterator[Problem]:
    provider = activity.get("provider")
    if not isinstance(provider, Mapping) or provider.get("type") != "python":
        return
    module, func = str(provider.get("module") or ""), str(provider.get("func") or "")
    step = str(activity.get("name") or "(unnamed)")
    qualified = f"{module}.{func}"
    function, why = _function(module, func)
    if function is None:
        assert why is not None
        severity = "warning" if why.startswith("module:") else "error"
        yield Problem(f"{where}.provider.func", step, qualified, why.removeprefix("module: "),
                      severity)  # fmt: skip
        return
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return  # a builtin without a signature: nothing to check against
    arguments = provider.get("arguments")
    given = arguments if isinstance(arguments, Mapping) else {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    named = [
        n
        for n, p in parameters.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    usable = [n for n in named if n not in INJECTED]
    for key in given:
        if key in INJECTED:
            why = f"'{key}' is filled in by Chaos Toolkit: do not pass it"
            yield Problem(f"{where}.provider.arguments.{key}", step, qualified, why, key=key)
        elif key not in parameters and not takes_any:
            yield Problem(
                f"{where}.provider.arguments.{key}",
                step,
                qualified,
                f"unknown argument '{key}'{_closest(str(key), usable)}",
                key=str(key),
            )
    for name, parameter in parameters.items():
        if (
            parameter.default is inspect.Parameter.empty
            and parameter.kind
            not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            and name not in INJECTED
            and name not in given
            and not (with_value and name == "value")
        ):
            yield Problem(f"{where}.provider.arguments", step, qualified,
                          f"missing argument '{name}'")  # fmt: skip


def check_arguments(experiment: Mapping[str, Any]) -> list[Problem]:
    """Every argument problem of ``experiment``'s python activities, in document order."""
    problems: list[Problem] = []
    for where, activity, with_value in _activities(experiment):
        problems.extend(_check_call(where, activity, with_value))
    return problems


def check_file(path: Path) -> list[Problem] | None:
    """The problems of the experiment at ``path``; None when it is not an experiment (or
    cannot be read: ``chaos run`` says why itself)."""
    try:
        document = read_experiment(path)
    except (OSError, ValueError):
        return None
    if not is_experiment(document):
        return None
    return check_arguments(document)
