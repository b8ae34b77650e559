"""Which mesh an experiment runs against, and bringing the embedded one up for it.

An experiment names its target in configuration (``mesh_target``: ``embedded`` or
``kubernetes``), usually as ``{"type": "env", "key": "MESH_TARGET", "default": "embedded"}``
so one file runs on a laptop and on a cluster. An experiment that declares no target (and
no ``MESH_TARGET`` in the environment) is left alone: its Kubernetes settings are used as
they are, so adding the safety-net control to an existing cluster experiment never starts
a mesh. For the embedded target this module makes sure a mesh is
running with the experiment's manifests (``mesh_manifests``) applied, and points the
experiment's Kubernetes settings at it (``kubeconfig_path``) — after that, actions and probes
take exactly the path they take on a cluster.

Used by the safety-net control (``chaosmesh_ext.control``) and by ``chaosmesh run``; the
mesh itself is driven through ``mesh.client.MeshClient``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmesh_ext._parse import parse_bool
from chaosmesh_ext.errors import MeshError
from chaosmesh_ext.mesh.client import MeshClient, UpResult
from chaosmesh_ext.mesh.logs import CONFIG_KEY as LOG_CAP_KEY
from chaosmesh_ext.mesh.logs import log_cap_of
from chaosmesh_ext.mesh.paths import state_dir_of
from chaosmesh_ext.mesh.state import DaemonId

EMBEDDED = "embedded"
KUBERNETES = "kubernetes"
TARGETS = (EMBEDDED, KUBERNETES)

KEEP_MESH_ENV = "CHAOSMESH_KEEP_MESH"
# Bounds bringing the mesh up: waiting for every workload and Envoy, or the running mesh's
# answer. The wait for a new daemon is shorter by UP_SLACK_S, which leaves the time to stop
# a daemon that did not serve (SIGTERM, then SIGKILL after 5 s) within the bound.
MESH_UP_TIMEOUT_S = 90.0
UP_SLACK_S = 15.0
# Bounds waiting for the daemon to stop on release (then SIGKILL).
MESH_DOWN_TIMEOUT_S = 30.0


class TargetError(MeshError, RuntimeError):
    """The experiment's target could not be prepared; the message says what to fix."""


@dataclass
class PreparedTarget:
    """What preparing the target did, so releasing it undoes exactly that."""

    target: str
    state_dir: Path | None = None
    started_mesh: bool = False
    settings: dict[str, Any] = field(default_factory=dict)
    # The daemon this run started (pid, start time): release stops that one and no other.
    daemon: DaemonId | None = None


def target_of(configuration: Mapping[str, Any] | None) -> str:
    """The experiment's target; ``kubernetes`` (settings as they are) when none is declared."""
    value = str(
        (configuration or {}).get("mesh_target") or os.environ.get("MESH_TARGET") or KUBERNETES
    )
    value = value.strip().lower()
    if value not in TARGETS:
        raise TargetError(
            f"configuration mesh_target: unknown target {value!r}; use one of {', '.join(TARGETS)}"
        )
    return value


def _experiment_dirs() -> list[Path]:
    """Directories of experiment files named on this process's command line (``chaos run X``).

    The control is not told where the experiment file is, and ``chaos run`` keeps the
    directory it was started in; manifests are written relative to the experiment, so look
    beside it too.
    """
    dirs: list[Path] = []
    for arg in sys.argv[1:]:
        path = Path(arg)
        if path.suffix.lower() in (".json", ".yaml", ".yml") and path.is_file():
            dirs.append(path.resolve().parent)
    return dirs


def manifests_of(configuration: Mapping[str, Any] | None) -> list[Path]:
    """The manifest files the experiment wants on the embedded mesh, checked to exist.

    Relative paths resolve against the working directory, then the experiment's directory.
    """
    raw = (configuration or {}).get("mesh_manifests") or []
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",") if part.strip()]
    bases = [Path.cwd(), *_experiment_dirs()]
    paths: list[Path] = []
    missing: list[str] = []
    for item in raw:
        path = Path(str(item))
        candidates = [path] if path.is_absolute() else [base / path for base in bases]
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            missing.append(str(item))
        else:
            paths.append(found)
    if missing:
        raise TargetError(
            f"configuration mesh_manifests: {', '.join(missing)} not found "
            f"(looked in {', '.join(str(b) for b in bases)})"
        )
    return paths


def mesh_up(
    state_dir: Path,
    manifests: list[Path],
    namespace: str | None,
    prometheus: bool = False,
    timeout: float = MESH_UP_TIMEOUT_S,
    log_cap: int | None = None,
) -> UpResult:
    """Start the embedded mesh (or update the running one) with these manifests.

    ``prometheus`` starts a real Prometheus with a new mesh, ``log_cap`` (bytes; None:
    ``CHAOSMESH_LOG_CAP``, else 64 MiB) bounds a new mesh's logs (a running mesh keeps what
    it has). ``UpResult.started`` says whether this call started the daemon
    (``UpResult.daemon``).
    """
    client = MeshClient(state_dir)
    try:
        found = client.load(manifests, namespace or "default")
        return client.up(
            found,
            prometheus=prometheus,
            log_cap=log_cap,
            timeout=timeout - UP_SLACK_S,
            apply_timeout=timeout,
        )
    except MeshError as exc:
        raise TargetError(f"embedded mesh in {state_dir}: {exc}") from None
    except Exception as exc:
        # An unusable state directory, a missing interpreter, an interruption...: still a
        # TargetError, so the control ends the run before its method instead of letting it
        # fall back to the user's kubeconfig (the control interrupts the run either way).
        raise TargetError(f"embedded mesh in {state_dir}: {type(exc).__name__}: {exc}") from exc


def prepare(configuration: MutableMapping[str, Any] | None) -> PreparedTarget:
    """Make the experiment's target ready and point ``configuration`` at it.

    On the embedded target: brings the mesh up if needed, applies ``mesh_manifests``, and
    sets ``kubeconfig_path`` (and ``gateway_url`` when the experiment left it empty) in the
    live configuration, so every later activity reaches the mesh like a cluster.
    """
    config: MutableMapping[str, Any] = configuration if configuration is not None else {}
    target = target_of(config)
    if target == KUBERNETES:
        return PreparedTarget(target=target)

    state_dir = state_dir_of(config)
    client = MeshClient(state_dir)
    running = client.current()
    wants_prometheus = parse_bool(config.get("mesh_prometheus"), default=False)
    if running is not None and wants_prometheus and not running.prometheus_url:
        raise TargetError(
            f"this experiment needs Prometheus (configuration mesh_prometheus) but the mesh in "
            f"{state_dir} runs without it: 'chaosmesh mesh down --state-dir {state_dir}', then "
            "'chaosmesh mesh up --prometheus', or let the experiment start its own mesh"
        )
    namespace = config.get("mesh_namespace") or config.get("ns")
    try:
        # Only an experiment that sets it overrides the mesh's own default (env or 64 MiB).
        log_cap = log_cap_of(config) if config.get(LOG_CAP_KEY) not in (None, "") else None
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    result = mesh_up(
        state_dir,
        manifests_of(config),
        str(namespace) if namespace else None,
        prometheus=wants_prometheus and running is None,
        log_cap=log_cap,
    )
    daemon = result.daemon if result.started else None
    if client.current() is None:  # the daemon died right after answering
        if daemon is not None:
            stop_daemon(state_dir, daemon)
        raise TargetError(f"embedded mesh: 'mesh up' returned but no mesh runs in {state_dir}")

    mesh = result.mesh
    settings: dict[str, Any] = {"kubeconfig_path": str(mesh.kubeconfig)}
    url = mesh.gateway_url()
    if url and not config.get("gateway_url"):
        settings["gateway_url"] = url
    if mesh.prometheus_url and not config.get("prometheus_base_url"):
        settings["prometheus_base_url"] = mesh.prometheus_url
    config.update(settings)
    return PreparedTarget(
        target=target,
        state_dir=state_dir,
        started_mesh=daemon is not None,
        settings=settings,
        daemon=daemon,
    )


def stop_daemon(state_dir: Path, daemon: DaemonId) -> bool:
    """Stop the mesh in ``state_dir`` only while its mesh.json still names ``daemon``."""
    try:
        result = MeshClient(state_dir).down(only=daemon, stop_timeout=MESH_DOWN_TIMEOUT_S)
    except MeshError as exc:
        raise TargetError(f"embedded mesh in {state_dir}: {exc}") from None
    except OSError as exc:
        raise TargetError(f"embedded mesh in {state_dir}: {exc}") from exc
    return result.outcome == "stopped"


def release(prepared: PreparedTarget) -> None:
    """Stop the embedded mesh if ``prepare`` started it (unless asked to keep it).

    Only the very daemon ``prepare`` started is stopped: if it is gone and another mesh now
    runs in the state directory (another run's), that one is left alone.
    """
    if prepared.target != EMBEDDED or not prepared.started_mesh or prepared.state_dir is None:
        return
    if prepared.daemon is None:
        return
    if parse_bool(os.environ.get(KEEP_MESH_ENV), default=False):
        return
    stop_daemon(prepared.state_dir, prepared.daemon)
