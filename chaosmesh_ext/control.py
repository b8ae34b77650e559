"""The safety net: an experiment-level control that restores whatever the run changed.

Chaos Toolkit skips rollbacks when a run ends ``failed`` or ``interrupted`` (a raising probe,
SIGTERM, a tripped safeguard), but still calls the experiment-level
``after_experiment_control`` and ``cleanup_control``. So this control:

- ``configure_control``: fixes the run id (``CHAOSMESH_RUN_ID``, or the configuration key
  ``chaosmesh_run_id``, or a new one) and puts it in the live configuration, so every action
  and the ``restore`` rollback of this run share one ledger; on the embedded target
  (``mesh_target``) it also starts the embedded mesh — or waits for the one another run is
  starting, or joins the one running (restoring first what runs no longer running left
  changed on it, refusing objects that differ from the manifests) — and points
  ``kubeconfig_path``, ``KUBECONFIG`` and the Kubernetes client's default file at it for the
  whole run (``mesh.target``, ``kube.environment``), so chaostoolkit-kubernetes activities
  reach it too. SIGTERM or Ctrl-C meanwhile stops the start-up (``signal_shield``): the
  mesh is stopped and the run ends before its method. If anything fails it sets
  ``chaosmesh_target_error`` in the configuration (no Kubernetes client is then built, so
  nothing falls back to the user's current kubeconfig) — chaoslib only logs an exception
  raised here, so the error is raised again from ``before_experiment_control``;
- ``before_experiment_control``: stops the run if the target could not be prepared; notes
  the run id in the journal;
- ``before_activity_control`` / ``after_activity_control``: stop the run when the embedded
  mesh died under it (a lost target is a failed run, never a deviation), and when one of
  this extension's method activities failed — a fault that was not injected must not let
  the run pass for a test of it (``stop_on_failure``; ``chaosmesh_stop_on_failure: false``
  plays on);
- ``after_experiment_control``: restores every object the run left changed and records what
  it restored in the journal (``experiment.extensions``, entry ``chaosmesh``);
- ``cleanup_control``: the same, for runs that never reached ``after_experiment_control``;
  then counts the run out of the embedded mesh (the last run using a mesh a run started
  stops it) and puts the environment back. A second Ctrl-C during the clean-up is held off
  until it is done, so the mesh is stopped and the journal written.

Restore is idempotent, so a run whose rollbacks already restored everything is a no-op.
Declare it in an experiment as::

    "controls": [{"name": "chaosmesh-safety-net",
                  "provider": {"type": "python", "module": "chaosmesh_ext.control"}}]

After a kill -9 nothing in the process runs: use ``chaosmesh restore`` (or just run again:
the next run on the same mesh restores what this one left).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from chaoslib.exceptions import InterruptExecution

from chaosmesh_ext import log_noise
from chaosmesh_ext.kube import environment as kube_environment
from chaosmesh_ext.kube.changes import apply_change
from chaosmesh_ext.kube.client import TARGET_ERROR_KEY, api_client, api_identity
from chaosmesh_ext.kube.ledger import (
    RUN_ID_KEY,
    Ledger,
    choose_run_id,
    content,
    set_run_id,
    with_content,
)
from chaosmesh_ext.kube.leftovers import Server, left_on
from chaosmesh_ext.kube.objects import DEFAULT_TIMEOUT, IstioObjects, KubeApiError, ObjectRef
from chaosmesh_ext.kube.restore import Outcome, mark_moot, objects_for, restore_ledger
from chaosmesh_ext.mesh import target as mesh_target
from chaosmesh_ext.mesh.client import Manifests, MeshInfo
from chaosmesh_ext.mesh.joining import Difference
from chaosmesh_ext.mesh.paths import StatePaths, state_dir_of
from chaosmesh_ext.signal_shield import shielded
from chaosmesh_ext.stop_on_failure import STOP_KEY, stop_reason
from chaosmesh_ext.substitutions import used_values

__all__ = [
    "after_activity_control",
    "after_experiment_control",
    "before_activity_control",
    "before_experiment_control",
    "before_rollback_control",
    "cleanup_control",
    "configure_control",
]

logger = logging.getLogger("chaostoolkit")
EXTENSION_NAME = "chaosmesh"


def _fresh_state() -> dict[str, Any]:
    return {
        "run_id": None,
        "configuration": None,
        "secrets": None,
        "prepared": None,
        "error": None,
        "interrupted": None,  # why the start-up was interrupted (a signal), if it was
        "stopped": None,  # {"activity", "reason"} when a control stopped the run
        "rolling_back": False,
        "kube_env": None,  # kube_environment.KubeEnvironment to put back in cleanup
        "before_run": [],  # safety-net batches: what runs no longer running had left
        "said": set(),  # errors already logged (each is printed once)
        # What the control itself spent time on, for the report's timeline: [{what, start, end}].
        "phases": [],
    }


# cleanup_control gets no arguments: keep what configure_control was given.
_state: dict[str, Any] = _fresh_state()


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


def _error_once(message: str) -> None:
    if message not in _state["said"]:
        _state["said"].add(message)
        logger.error(message)


def _timeout(configuration: Any) -> float:
    return float((configuration or {}).get("kubernetes_request_timeout") or DEFAULT_TIMEOUT)


# ---- joining a running mesh ------------------------------------------------------------------
def _restore_leftovers(mesh: MeshInfo, fresh: bool) -> None:
    """Before using a running mesh: put back what runs that are no longer running left
    changed on it (killed mid-method), recorded in this run's journal; refuse to start on
    top of changes that cannot be put back. On a new mesh (``fresh``) what earlier meshes
    in the directory held is gone: such entries are cleared as moot."""
    server = Server(mesh.kubeconfig, mesh.document.get("api_ca_sha256"))
    for left in left_on(server, exclude_run=_state["run_id"]):
        if fresh:
            left.moot, left.restorable = left.moot + left.restorable, []
        outcomes: list[Outcome] = []
        if left.moot:
            ids = {e["id"] for e in left.moot}
            outcomes += mark_moot(
                left.ledger,
                f"made on an earlier mesh in {mesh.state_dir} that has stopped",
                select=lambda e, ids=ids: e["id"] in ids,  # type: ignore[misc]
            )
        if left.restorable:
            logger.warning(
                f"chaosmesh: run {left.run_id} is no longer running and left "
                f"{len(left.restorable)} change(s) on the mesh in {mesh.state_dir}: "
                "restoring them before this run starts"
            )
            ids = {e["id"] for e in left.restorable}
            client = api_client({"kubeconfig_path": str(mesh.kubeconfig)})
            try:
                outcomes += restore_ledger(
                    left.ledger,
                    objects_for(client, _timeout(_state["configuration"])),
                    select=lambda e, ids=ids: e["id"] in ids,  # type: ignore[misc]
                )
            finally:
                client.close()
        for outcome in outcomes:
            log = logger.info if outcome.ok else logger.error
            log(f"chaosmesh: left by run {left.run_id}: {outcome.ref}: {outcome.result}")
        _state["before_run"].append(
            {
                "when": f"before the run (left by run {left.run_id})",
                "restored": [o.summary() for o in outcomes],
            }
        )
        failed = [o for o in outcomes if not o.ok]
        if failed:
            raise mesh_target.TargetError(
                f"run {left.run_id} left changes on the mesh in {mesh.state_dir} that could "
                "not be put back, so this run does not start on top of them: "
                + "; ".join(f"{o.ref}: {o.result} {o.detail}" for o in failed)
                + f" (see: chaosmesh restore --list --run {left.run_id})"
            )


def _reapply(mesh: MeshInfo, found: Manifests, differences: Sequence[Difference]) -> None:
    """``mesh_reapply``: write the manifests' form of the differing Istio objects through
    this run's ledger, so the safety net puts the running mesh's form back at the end."""
    wanted = {
        (
            str(m.obj.get("kind")),
            (m.obj.get("metadata") or {}).get("namespace") or found.namespace,
            (m.obj.get("metadata") or {}).get("name"),
        ): m.obj
        for m in found.loaded.istio
    }
    client = api_client({"kubeconfig_path": str(mesh.kubeconfig)})
    try:
        configuration = {"kubeconfig_path": str(mesh.kubeconfig)}
        ledger = Ledger(str(_state["run_id"]), api=api_identity(client, configuration))
        for difference in differences:
            obj = wanted.get((difference.kind, difference.namespace, difference.name))
            if obj is None:
                logger.warning(
                    f"chaosmesh: {difference.kind} {difference.namespace}/{difference.name} "
                    "replaced by the manifests' (the safety net does not put workloads back)"
                )
                continue
            objects = IstioObjects(client, str(obj.get("apiVersion")), _timeout(None))
            ref = ObjectRef(difference.kind, difference.namespace, difference.name)
            state = content(obj) or {}

            def edit(live: dict[str, Any] | None, state: dict[str, Any] = state) -> dict[str, Any]:
                return with_content(live or {}, state)

            try:
                apply_change(objects, ledger, ref, edit, "reapply manifests")
            except KubeApiError as exc:
                raise mesh_target.TargetError(f"mesh_reapply: {exc}") from None
    finally:
        client.close()


# ---- the controls ----------------------------------------------------------------------------
def configure_control(
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    experiment: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Choose this run's id and share it with every activity through the configuration;
    prepare the embedded mesh when the experiment's target is the embedded mesh."""
    log_noise.quiet(logger)
    _restore_environment()  # a previous run in this process (tests) left nothing behind
    run_id = choose_run_id(configuration, new=True)
    set_run_id(run_id)
    if configuration is not None:
        configuration[RUN_ID_KEY] = str(run_id)
    _state.clear()
    _state.update(_fresh_state(), run_id=str(run_id), configuration=configuration, secrets=secrets)
    logger.info(
        f"chaosmesh: run id {run_id} (restore leftovers with: chaosmesh restore --run {run_id})"
    )
    try:
        embedded = mesh_target.target_of(configuration) == mesh_target.EMBEDDED
    except mesh_target.TargetError:
        embedded = False  # prepare says why
    started = datetime.now(UTC)
    cancel = threading.Event()

    def on_signal(signum: int) -> None:
        if not cancel.is_set():
            cancel.set()
            logger.warning(
                "chaosmesh: signal received while the run's target was being prepared: "
                "stopping the mesh start-up; the run ends before its method"
            )

    prepared = None
    error: str | None = None
    with shielded(on_signal) as shield:
        try:
            prepared = mesh_target.prepare(
                configuration,
                cancel=cancel,
                hooks=mesh_target.JoinHooks(before_use=_restore_leftovers, reapply=_reapply),
                notify=logger.info,
                run_id=str(run_id),
            )
        except mesh_target.TargetError as exc:
            error = str(exc)
        except Exception as exc:
            # Nothing may escape into chaoslib, which would log it at DEBUG and play on.
            error = f"{type(exc).__name__}: {exc}"
        if shield.received and prepared is not None:
            # The signal came after the mesh was ready: undo what prepare did all the same.
            _release(prepared)
            prepared = None
    if embedded:
        # Whatever happened, nothing in this run may reach another cluster: KUBECONFIG and the
        # client's default file name the mesh's kubeconfig (a refused connection at worst).
        kubeconfig = StatePaths(state_dir_of(configuration)).kubeconfig
        _state["kube_env"] = kube_environment.point_at(kubeconfig)
    if shield.received:
        _state["interrupted"] = (
            f"interrupted by {shield.names} while the embedded mesh was being prepared; "
            "nothing of it was left running"
        )
        error = _state["interrupted"]
        shield.redeliver()  # chaostoolkit records the signal (what it raises is swallowed)
    if error is not None:
        # Without its target no activity can mean anything: stop the run, say why. chaoslib
        # swallows this exception, so also make every Kubernetes client refuse to be built
        # (no fallback to ~/.kube/config) and raise it again before the experiment.
        message = f"chaosmesh: {error}"
        _state["error"] = message
        if configuration is not None:
            configuration[TARGET_ERROR_KEY] = error
        _error_once(message)
        raise InterruptExecution(message)
    _state["prepared"] = prepared
    if prepared is not None and prepared.target == mesh_target.EMBEDDED:
        _phase("mesh start-up" if prepared.started_mesh else "mesh manifests", started)
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


def _mesh_lost() -> str | None:
    """Why the run's embedded mesh is gone, or None while it runs (or there is none)."""
    prepared = _state["prepared"]
    if prepared is None or prepared.daemon is None or prepared.target != mesh_target.EMBEDDED:
        return None
    if prepared.daemon.alive():
        return None
    return (
        f"the embedded mesh died (its daemon, pid {prepared.daemon.pid}, in "
        f"{prepared.state_dir}, is gone): the run cannot tell anything about the system "
        "under test after that"
    )


def _stop_for_lost_mesh(context: Any, when: str) -> None:
    lost = _mesh_lost()
    if lost is None or _state["stopped"] is not None:
        return
    name = context.get("name") if isinstance(context, dict) else None
    reason = f"{lost} ({when} {name})" if name else lost
    _state["stopped"] = {"activity": name, "reason": reason}
    if _state["rolling_back"]:
        # In rollbacks an interruption would skip the journal: the safety net follows anyway.
        _error_once(f"chaosmesh: {reason}")
        return
    raise InterruptExecution(f"chaosmesh: stopping the run: {reason}")


def before_activity_control(context: Any = None, **kwargs: Any) -> None:
    """Stop the run before an activity when its embedded mesh is gone."""
    _stop_for_lost_mesh(context, "before")


def before_rollback_control(**kwargs: Any) -> None:
    """Note that rollbacks run: a control must not interrupt them."""
    _state["rolling_back"] = True


def after_activity_control(
    context: Any = None,
    state: Any = None,
    experiment: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Stop the run when its embedded mesh died during the activity, or when one of this
    extension's method activities failed (see ``chaosmesh_ext.stop_on_failure``); the safety
    net then restores what ran before it."""
    _stop_for_lost_mesh(context, "during")
    reason = stop_reason(context, state, experiment, configuration)
    if reason is None or _state["rolling_back"]:
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
    prepared = _state["prepared"]
    if prepared is not None and prepared.target == mesh_target.EMBEDDED:
        gone = mesh_target.mesh_gone(prepared.kubeconfig, prepared.api_ca_sha256)
        if gone:
            # Its objects died with it: nothing to put back, nothing left outstanding.
            kubeconfig = str(prepared.kubeconfig.resolve()) if prepared.kubeconfig else None
            return mark_moot(
                ledger,
                gone,
                select=lambda e: (e.get("api") or {}).get("kubeconfig") == kubeconfig,
            )
    client = api_client(configuration, _flat_secrets(secrets))
    try:
        return restore_ledger(ledger, objects_for(client, _timeout(configuration)))
    finally:
        client.close()


def _restore_and_record(state: Any, configuration: Any, secrets: Any, when: str) -> list[Outcome]:
    try:
        outcomes = restore_run(configuration, secrets)
    except Exception as exc:
        _error_once(
            f"chaosmesh safety net could not restore run {_state['run_id']}: {exc}; "
            f"run: chaosmesh restore --run {_state['run_id']}"
        )
        ext = _extension(state)
        if ext is not None:
            ext.setdefault("safety_net", []).append({"when": when, "error": str(exc)})
        return []
    for outcome in outcomes:
        line = f"chaosmesh safety net: {outcome.ref}: {outcome.result}"
        line += f" ({outcome.detail})" if outcome.detail else ""
        if outcome.ok:
            logger.info(line)
        else:
            _error_once(line)
    ext = _extension(state)
    if ext is not None and outcomes:
        ext.setdefault("safety_net", []).append(
            {"when": when, "restored": [o.summary() for o in outcomes]}
        )
    return outcomes


def _cleanup_signal(signum: int) -> None:
    logger.warning(
        "chaosmesh: signal received during the clean-up: finishing it first (restore and "
        "mesh stop are bounded), so that nothing is left behind and the journal is written"
    )


def after_experiment_control(
    context: Any = None,
    state: Any = None,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Restore what the run left changed, even when rollbacks were skipped; journal it."""
    with shielded(_cleanup_signal):
        ext = _extension(state)
        if ext is not None:
            if _state.get("stopped"):
                ext["stopped"] = dict(_state["stopped"])
            elif _state.get("error") and not _state.get("interrupted"):
                ext["stopped"] = {"activity": None, "reason": _state["error"]}
            if _state.get("interrupted"):
                ext["interrupted"] = _state["interrupted"]
            if _state["before_run"]:
                ext.setdefault("safety_net", []).extend(_state["before_run"])
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
            # The same list: cleanup_control's "mesh stop" lands in it before the journal is
            # saved.
            ext["phases"] = _state["phases"]


def _release(prepared: mesh_target.PreparedTarget) -> bool:
    try:
        return mesh_target.release(prepared, notify=logger.info)
    except mesh_target.TargetError as exc:
        _error_once(f"chaosmesh: {exc}")
        return False


def _restore_environment() -> None:
    saved = _state.get("kube_env")
    if saved is not None:
        saved.restore()
        _state["kube_env"] = None


def cleanup_control() -> None:
    """Last chance in the process: restore anything still outstanding, release the target,
    put the environment back."""
    with shielded(_cleanup_signal):
        try:
            _restore_and_record(None, _state["configuration"], _state["secrets"], "cleanup")
            prepared = _state.get("prepared")
            if prepared is None:
                return
            _state["prepared"] = None
            started = datetime.now(UTC)
            if _release(prepared):
                _phase("mesh stop", started)
        finally:
            _restore_environment()
