"""Stop a run whose fault did not go in: the safety-net control's ``after_activity_control``.

Chaos Toolkit records a failed method activity and plays on, so an abort aimed at a
VirtualService that does not exist ends ``completed`` and an unchanged steady state reads as
"the mesh survived the fault". When one of this extension's method activities fails — a fault
action (not injected) or a probe (for instance one whose ``expect`` bounds say the fault did
not show) — the control raises ``InterruptExecution``: the run ends ``interrupted`` before its
later steps, the safety net restores whatever earlier steps changed, and the journal's
``chaosmesh`` section records which activity stopped it and why.

On by default; the configuration key ``chaosmesh_stop_on_failure: false`` lets the run play on
(``chaosmesh run``, game days and ``journal show`` still report it as failed).

Pure apart from logging: decides from the activity, its run record and the experiment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosmesh_ext._parse import parse_bool

__all__ = ["STOP_KEY", "stop_reason"]

STOP_KEY = "chaosmesh_stop_on_failure"
# Only this extension's activities: another extension's failed action may be meant to fail.
OUR_MODULES = ("chaosmesh_ext.",)
_INTERRUPT = "chaoslib.exceptions.InterruptExecution"


def _in_method(activity: Mapping[str, Any], experiment: Mapping[str, Any] | None) -> bool:
    """Whether ``activity`` is a step of the method (not a hypothesis probe, not a rollback).

    chaoslib hands the control the method's own activity dicts, so identity tells; a
    ``{"ref": name}`` step is looked up by name.
    """
    method = (experiment or {}).get("method")
    if not isinstance(method, list):
        return False
    for step in method:
        if step is activity:
            return True
        if isinstance(step, dict) and step.get("ref") and step.get("ref") == activity.get("name"):
            return True
    return False


def _ours(activity: Mapping[str, Any]) -> bool:
    provider = activity.get("provider")
    if not isinstance(provider, dict) or provider.get("type") != "python":
        return False
    return str(provider.get("module") or "").startswith(OUR_MODULES)


def _error(run: Mapping[str, Any]) -> str:
    lines = [ln.strip() for item in run.get("exception") or [] for ln in str(item).splitlines()]
    last = next((ln for ln in reversed(lines) if ln), "failed")
    prefix = "chaoslib.exceptions.ActivityFailed: "
    while last.startswith(prefix):
        last = last[len(prefix) :]
    return last


def stop_reason(
    activity: Any,
    run: Any,
    experiment: Mapping[str, Any] | None,
    configuration: Mapping[str, Any] | None,
) -> str | None:
    """Why the run must stop after ``activity`` (its run record ``run``), or None to go on.

    ``"fault not injected: <name>: <error>"`` for an action, ``"method probe failed: ..."``
    for a probe; None unless it is one of this extension's method activities and it failed,
    or when ``chaosmesh_stop_on_failure`` is false.
    """
    if not isinstance(activity, dict) or not isinstance(run, dict):
        return None
    if run.get("status") != "failed" or not _ours(activity):
        return None
    if not _in_method(activity, experiment):
        return None
    if not parse_bool((configuration or {}).get(STOP_KEY), default=True):
        return None
    error = _error(run)
    if error.startswith(_INTERRUPT):
        # chaoslib 1.44 turns a SIGTERM inside an activity into its failure and plays on.
        said = error[len(_INTERRUPT) :].lstrip(": ") or "signal received"
        return f"interrupted during {activity.get('name')}: {said}"
    what = "fault not injected" if activity.get("type") == "action" else "method probe failed"
    return f"{what}: {activity.get('name')}: {error}"
