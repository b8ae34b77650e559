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

Used by the safety-net control (``chaosmesh_ext.control``) and by ``chaosmesh run``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmesh_ext._parse import parse_bool
from chaosmesh_ext.errors import MeshError
from chaosmesh_ext.mesh.logs import CONFIG_KEY as LOG_CAP_KEY
from chaosmesh_ext.mesh.logs import log_cap_of
from chaosmesh_ext.mesh.state import alive

EMBEDDED = "embedded"
KUBERNETES = "kubernetes"
TARGETS = (EMBEDDED, KUBERNETES)

STATE_DIR_ENV = "CHAOSMESH_STATE_DIR"
KEEP_MESH_ENV = "CHAOSMESH_KEEP_MESH"
DEFAULT_STATE_DIR = ".chaosmesh"
# `mesh up` waits for every workload and Envoy itself; this bounds the whole command. The
# command's own wait (--timeout) is shorter by UP_SLACK_S, so that when the mesh is slow the
# command itself stops the daemon it started (SIGTERM, then SIGKILL after 5 s) and exits,
# instead of being killed by us first and leaving the daemon (its own session) orphaned.
MESH_UP_TIMEOUT_S = 90.0
UP_SLACK_S = 15.0
MESH_DOWN_TIMEOUT_S = 30.0

DaemonId = tuple[int, str | None]  # the mesh daemon's pid and kernel start time


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


def state_dir_of(configuration: Mapping[str, Any] | None) -> Path:
    """Where the embedded mesh keeps its state (kubeconfig, mesh.json, logs)."""
    raw = (configuration or {}).get("mesh_state_dir") or os.environ.get(STATE_DIR_ENV)
    return Path(raw or DEFAULT_STATE_DIR).resolve()


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


def daemon_of(state: Mapping[str, Any]) -> DaemonId | None:
    """The daemon a ``mesh.json`` names: its pid and recorded start time."""
    pid = state.get("pid")
    if not isinstance(pid, int):
        return None
    started = next(
        (
            p.get("started")
            for p in state.get("pids") or []
            if isinstance(p, dict) and p.get("pid") == pid
        ),
        None,
    )
    return pid, (str(started) if started is not None else None)


def read_mesh_state(state_dir: Path) -> dict[str, Any] | None:
    """The running mesh's ``mesh.json``, or None when no mesh is up there.

    The daemon must still be the recorded process (same pid and start time): a recycled pid
    is not a mesh.
    """
    path = state_dir / "mesh.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    daemon = daemon_of(state)
    if daemon is None or not alive(*daemon):
        return None
    return state


def _chaosmesh(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "chaosmesh_ext.cli", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TargetError(
            f"'chaosmesh {' '.join(args)}' did not finish within {timeout:.0f} s"
        ) from exc


def mesh_up(
    state_dir: Path,
    manifests: list[Path],
    namespace: str | None,
    prometheus: bool = False,
    timeout: float = MESH_UP_TIMEOUT_S,
    log_cap: int | None = None,
) -> DaemonId | None:
    """Start the embedded mesh (or update the running one) with these manifests.

    ``prometheus`` starts a real Prometheus with a new mesh, ``log_cap`` (bytes) bounds a new
    mesh's logs (a running mesh keeps what it has).
    Returns the daemon this call started, or None when it updated a mesh that was running.
    """
    args = ["mesh", "up", "--state-dir", str(state_dir), "--timeout", f"{timeout - UP_SLACK_S:g}"]
    if prometheus:
        args.append("--prometheus")
    if log_cap is not None:
        args += ["--log-cap", str(log_cap)]
    for manifest in manifests:
        args += ["-f", str(manifest)]
    if namespace:
        args += ["--namespace", namespace]
    before = read_mesh_state(state_dir)
    try:
        proc = _chaosmesh(*args, timeout=timeout)
    except TargetError:
        if before is None:
            # Backstop: whatever daemon the killed command left starting must not outlive us.
            with contextlib.suppress(TargetError):
                _chaosmesh(
                    "mesh", "down", "--state-dir", str(state_dir), timeout=MESH_DOWN_TIMEOUT_S
                )
        raise
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise TargetError(f"embedded mesh: 'chaosmesh {' '.join(args)}' failed: {detail}")
    after = read_mesh_state(state_dir)
    if after is None:
        raise TargetError(f"embedded mesh: 'mesh up' returned but no mesh runs in {state_dir}")
    # `mesh up` says "applied ... to the running mesh" when it only handed the manifests over,
    # even to a mesh another run started a moment ago; then it is not ours to stop.
    applied = proc.stdout.lstrip().startswith("applied ")
    daemon = daemon_of(after)
    if applied or (before is not None and daemon_of(before) == daemon):
        return None
    return daemon


def mesh_down(state_dir: Path) -> None:
    """Stop the embedded mesh at ``state_dir`` (no-op when none runs)."""
    if read_mesh_state(state_dir) is None:
        return
    proc = _chaosmesh("mesh", "down", "--state-dir", str(state_dir), timeout=MESH_DOWN_TIMEOUT_S)
    if proc.returncode != 0:
        raise TargetError(f"embedded mesh: 'chaosmesh mesh down' failed: {proc.stderr.strip()}")


def gateway_url(state: Mapping[str, Any], port: int | None = None) -> str | None:
    """The local URL of the mesh's ingress gateway (the first, or the one on ``port``)."""
    for gateway in state.get("gateways") or []:
        if port is None or gateway.get("port") == port:
            url = gateway.get("url")
            return str(url) if url else None
    return None


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
    running = read_mesh_state(state_dir)
    wants_prometheus = parse_bool(config.get("mesh_prometheus"), default=False)
    if running is not None and wants_prometheus and not running.get("prometheus_url"):
        raise TargetError(
            f"this experiment needs Prometheus (configuration mesh_prometheus) but the mesh in "
            f"{state_dir} runs without it: 'chaosmesh mesh down --state-dir {state_dir}', then "
            "'chaosmesh mesh up --prometheus', or let the experiment start its own mesh"
        )
    namespace = config.get("mesh_namespace") or config.get("ns")
    try:
        # Only an experiment that sets it overrides the command's own default (env or 64 MiB).
        log_cap = log_cap_of(config) if config.get(LOG_CAP_KEY) not in (None, "") else None
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    daemon = mesh_up(
        state_dir,
        manifests_of(config),
        str(namespace) if namespace else None,
        prometheus=wants_prometheus and running is None,
        log_cap=log_cap,
    )
    state = read_mesh_state(state_dir)
    if state is None:
        if daemon is not None:
            stop_daemon(state_dir, daemon)
        raise TargetError(f"embedded mesh: 'mesh up' returned but no mesh runs in {state_dir}")

    settings: dict[str, Any] = {"kubeconfig_path": str(state["kubeconfig"])}
    url = gateway_url(state)
    if url and not config.get("gateway_url"):
        settings["gateway_url"] = url
    if state.get("prometheus_url") and not config.get("prometheus_base_url"):
        settings["prometheus_base_url"] = state["prometheus_url"]
    config.update(settings)
    return PreparedTarget(
        target=target,
        state_dir=state_dir,
        started_mesh=daemon is not None,
        settings=settings,
        daemon=daemon,
    )


def stop_daemon(state_dir: Path, daemon: DaemonId) -> bool:
    """``mesh down`` in ``state_dir`` only while its mesh.json still names ``daemon``."""
    state = read_mesh_state(state_dir)
    if state is None or daemon_of(state) != daemon:
        return False
    mesh_down(state_dir)
    return True


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
