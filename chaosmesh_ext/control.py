"""The safety net: an experiment-level control that restores whatever the run changed.

Chaos Toolkit skips rollbacks when a run ends ``failed`` or ``interrupted`` (a raising probe,
SIGTERM, a tripped safeguard), but still calls the experiment-level
``after_experiment_control`` and ``cleanup_control``. So this control:

- ``configure_control``: fixes the run id (``CHAOSMESH_RUN_ID``, or the configuration key
  ``chaosmesh_run_id``, or a new one) and puts it in the live configuration, so every action
  and the ``restore`` rollback of this run share one ledger; on the embedded target
  (``mesh_target``, default ``embedded``) it also brings the embedded mesh up with the
  experiment's ``mesh_manifests`` and points ``kubeconfig_path`` at it (``mesh.target``).
  If that fails it sets ``chaosmesh_target_error`` in the configuration (no Kubernetes client
  is then built, so nothing falls back to the user's current kubeconfig) — chaoslib only logs
  an exception raised here, so the error is raised again from ``before_experiment_control``;
- ``before_experiment_control``: stops the run if the target could not be prepared; notes
  the run id in the journal;
- ``after_experiment_control``: restores every object the run left changed and records what
  it restored in the journal (``experiment.extensions``, entry ``chaosmesh``);
- ``after_activity_control``: stops the run (``InterruptExecution``) when one of this
  extension's method activities failed — a fault that was not injected must not let the run
  pass for a test of it (``stop_on_failure``; ``chaosmesh_stop_on_failure: false`` plays on);
- ``cleanup_control``: the same, for runs that never reached ``after_experiment_control``;
  then stops the embedded mesh if this run started it.

Restore is idempotent, so a run whose rollbacks already restored everything is a no-op.
Declare it in an experiment as::

    "controls": [{"name": "chaosmesh-safety-net",
                  "provider": {"type": "python", "module": "chaosmesh_ext.control"}}]

After a kill -9 nothing in the process runs: use ``chaosmesh restore``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from chaoslib.exceptions import InterruptExecution

from chaosmesh_ext import log_noise
from chaosmesh_ext.kube.client import TARGET_ERROR_KEY
from chaosmesh_ext.kube.ledger import RUN_ID_KEY, Ledger, choose_run_id, set_run_id
from chaosmesh_ext.kube.restore import Outcome, objects_for, restore_ledger
from chaosmesh_ext.mesh import target as mesh_target
from chaosmesh_ext.stop_on_failure import STOP_KEY, stop_reason
from chaosmesh_ext.substitutions import used_values

__all__ = [
    "after_activity_control",
    "after_experiment_control",
    "before_experiment_control",
    "cleanup_control",
    "configure_control",
]

logger = logging.getLogger("chaostoolkit")
EXTENSION_NAME = "chaosmesh"

# cleanup_control gets no arguments: keep what configure_control was given.
_state: dict[str, Any] = {
    "run_id": None,
    "configuration": None,
    "secrets": None,
    "prepared": None,
    "error": None,
    "stopped": None,  # {"activity", "reason"} when after_activity_control stopped the run
    # What the control itself spent time on, for the report's timeline: [{what, start, end}].
    "phases": [],
}


def _phase(what: str, started: datetime) -> None:
    _state["phases"].append(
        {"what": what, "start": started.isoformat(), "end": datetime.now(UTC).isoformat()}
    )


def _flat_secrets(secrets: Any) -> dict[str, Any]:
    # Controls receive every secret scope ({"k8s": {...}}); the client wants one flat mapping.
    flat: dict[str, Any] = {}
    for value in (secrets or {}).values():
        if isinstance(value, dict):
            flat.update(value)
    return flat


def configure_control(
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    experiment: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Choose this run's id and share it with every activity through the configuration."""
    log_noise.quiet(logger)
    run_id = choose_run_id(configuration, new=True)
    set_run_id(run_id)
    if configuration is not None:
        configuration[RUN_ID_KEY] = str(run_id)
    _state.update(
        run_id=str(run_id),
        configuration=configuration,
        secrets=secrets,
        prepared=None,
        error=None,
        stopped=None,
        phases=[],
    )
    logger.info(
        f"chaosmesh: run id {run_id} (restore leftovers with: chaosmesh restore --run {run_id})"
    )
    started = datetime.now(UTC)
    try:
        prepared = mesh_target.prepare(configuration)
    except mesh_target.TargetError as exc:
        # Without its target no activity can mean anything: stop the run, say why. chaoslib
        # swallows this exception, so also make every Kubernetes client refuse to be built
        # (no fallback to ~/.kube/config) and raise it again before the experiment.
        message = f"chaosmesh: {exc}"
        _state["error"] = message
        if configuration is not None:
            configuration[TARGET_ERROR_KEY] = str(exc)
        logger.error(message)
        raise InterruptExecution(message) from exc
    _state["prepared"] = prepared
    if prepared.target == mesh_target.EMBEDDED:
        _phase("mesh start-up" if prepared.daemon else "mesh manifests", started)
        logger.info(f"chaosmesh: embedded mesh ready ({prepared.settings.get('kubeconfig_path')})")


def _extension(state: Any) -> dict[str, Any] | None:
    if not isinstance(state, dict):
        return None
    experiment = state.get("experiment")
    if not isinstance(experiment, dict):
        return None
    extensions = experiment.setdefault("extensions", [])
    for ext in extensions:
        if isinstance(ext, dict) and ext.get("name") == EXTENSION_NAME:
            return ext
    ext = {"name": EXTENSION_NAME, "run_id": _state["run_id"]}
    extensions.append(ext)
    return ext


def before_experiment_control(context: Any = None, state: Any = None, **kwargs: Any) -> None:
    """Stop the run if its target could not be prepared; note the run id in the journal."""
    if _state["error"]:
        raise InterruptExecution(_state["error"])
    if isinstance(context, dict) and _state["run_id"]:
        extensions = context.setdefault("extensions", [])
        if not any(isinstance(e, dict) and e.get("name") == EXTENSION_NAME for e in extensions):
            extensions.append({"name": EXTENSION_NAME, "run_id": _state["run_id"]})


def after_activity_control(
    context: Any = None,
    state: Any = None,
    experiment: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Stop the run when one of this extension's method activities failed (see
    ``chaosmesh_ext.stop_on_failure``); the safety net then restores what ran before it."""
    reason = stop_reason(context, state, experiment, configuration)
    if reason is None:
        return
    name = context.get("name") if isinstance(context, dict) else None
    _state["stopped"] = {"activity": name, "reason": reason}
    raise InterruptExecution(
        f"chaosmesh: stopping the run: {reason} (the experiment did not run as declared; "
        f"'{STOP_KEY}: false' in the configuration plays on)"
    )


def restore_run(
    configuration: dict[str, Any] | None, secrets: dict[str, Any] | None
) -> list[Outcome]:
    """Restore everything the current run left changed; never raises (a control must not)."""
    run_id = _state["run_id"] or (configuration or {}).get(RUN_ID_KEY)
    if not run_id:
        return []
    ledger = Ledger(str(run_id))
    if not ledger.outstanding():
        return []
    from chaosmesh_ext.kube.client import api_client
    from chaosmesh_ext.kube.objects import DEFAULT_TIMEOUT

    client = api_client(configuration, _flat_secrets(secrets))
    try:
        timeout = float((configuration or {}).get("kubernetes_request_timeout") or DEFAULT_TIMEOUT)
        return restore_ledger(ledger, objects_for(client, timeout))
    finally:
        client.close()


def _restore_and_record(state: Any, configuration: Any, secrets: Any, when: str) -> list[Outcome]:
    try:
        outcomes = restore_run(configuration, secrets)
    except Exception as exc:
        logger.error(
            f"chaosmesh safety net could not restore run {_state['run_id']}: {exc}; "
            f"run: chaosmesh restore --run {_state['run_id']}"
        )
        ext = _extension(state)
        if ext is not None:
            ext.setdefault("safety_net", []).append({"when": when, "error": str(exc)})
        return []
    for outcome in outcomes:
        log = logger.info if outcome.ok else logger.error
        log(f"chaosmesh safety net: {outcome.ref}: {outcome.result} {outcome.detail}")
    ext = _extension(state)
    if ext is not None and outcomes:
        ext.setdefault("safety_net", []).append(
            {"when": when, "restored": [o.summary() for o in outcomes]}
        )
    return outcomes


def after_experiment_control(
    context: Any = None,
    state: Any = None,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Restore what the run left changed, even when rollbacks were skipped; journal it."""
    ext = _extension(state)
    if ext is not None:
        if _state.get("stopped"):
            ext["stopped"] = dict(_state["stopped"])
        # The values the run's ${name} forms stood for, so a review shows them, not ${ns}.
        values = used_values(state.get("experiment"), configuration or _state["configuration"])
        if values:
            ext["values"] = values
    started = datetime.now(UTC)
    _restore_and_record(
        state,
        configuration or _state["configuration"],
        secrets or _state["secrets"],
        "after_experiment",
    )
    _phase("safety net", started)
    if ext is not None:
        # The same list: cleanup_control's "mesh stop" lands in it before the journal is saved.
        ext["phases"] = _state["phases"]


def cleanup_control() -> None:
    """Last chance in the process: restore anything still outstanding, then release the target."""
    _restore_and_record(None, _state["configuration"], _state["secrets"], "cleanup")
    prepared = _state.get("prepared")
    if prepared is None:
        return
    _state["prepared"] = None
    started = datetime.now(UTC)
    try:
        mesh_target.release(prepared)
    except mesh_target.TargetError as exc:
        logger.error(f"chaosmesh: {exc}")
    if prepared.daemon is not None:
        _phase("mesh stop", started)
