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

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmesh_ext._fingerprint import file_fingerprint
from chaosmesh_ext._parse import parse_bool
from chaosmesh_ext.errors import MeshError
from chaosmesh_ext.mesh.client import (
    UP_TIMEOUT,
    Manifests,
    MeshClient,
    MeshInfo,
    ObjectsDiffer,
    UpResult,
)
from chaosmesh_ext.mesh.joining import Difference
from chaosmesh_ext.mesh.logs import CONFIG_KEY as LOG_CAP_KEY
from chaosmesh_ext.mesh.logs import log_cap_of
from chaosmesh_ext.mesh.paths import StatePaths, state_dir_of
from chaosmesh_ext.mesh.sharing import Membership, Sharing, User
from chaosmesh_ext.mesh.state import DaemonId

EMBEDDED = "embedded"
KUBERNETES = "kubernetes"
TARGETS = (EMBEDDED, KUBERNETES)

KEEP_MESH_ENV = "CHAOSMESH_KEEP_MESH"
# Joining a running mesh whose objects differ from the manifests: replace them for the run
# (the safety net puts the previous Istio objects back) instead of refusing.
REAPPLY_KEY = "mesh_reapply"
REAPPLY_ENV = "CHAOSMESH_REAPPLY"
# Bounds bringing the mesh up: waiting for every workload and Envoy, or the running mesh's
# answer. The wait for a new daemon is shorter by UP_SLACK_S, which leaves the time to stop
# a daemon that did not serve (SIGTERM, then SIGKILL after 5 s) within the bound.
UP_SLACK_S = 15.0
MESH_UP_TIMEOUT_S = UP_TIMEOUT + UP_SLACK_S
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
    # The daemon this run started or joined (pid, start time): release considers that one
    # and no other.
    daemon: DaemonId | None = None
    user: User | None = None  # this run, as the mesh's users record counts it
    api_ca_sha256: str | None = None  # the mesh instance's identity (its API certificate)
    kubeconfig: Path | None = None


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
    cancel: threading.Event | None = None,
) -> UpResult:
    """Start the embedded mesh (or update the running one) with these manifests.

    ``prometheus`` starts a real Prometheus with a new mesh, ``log_cap`` (bytes; None:
    ``CHAOSMESH_LOG_CAP``, else 64 MiB) bounds a new mesh's logs (a running mesh keeps what
    it has). ``UpResult.started`` says whether this call started the daemon
    (``UpResult.daemon``). Once ``cancel`` is set a mesh still starting is stopped.
    """
    client = MeshClient(state_dir)
    with _as_target_error(state_dir):
        found = client.load(manifests, namespace or "default")
        return client.up(
            found,
            prometheus=prometheus,
            log_cap=log_cap,
            timeout=timeout - UP_SLACK_S,
            apply_timeout=timeout,
            cancel=cancel,
        )


@contextlib.contextmanager
def _as_target_error(state_dir: Path) -> Iterator[None]:
    try:
        yield
    except TargetError:
        raise
    except MeshError as exc:
        raise TargetError(f"embedded mesh in {state_dir}: {exc}") from None
    except Exception as exc:
        # An unusable state directory, a missing interpreter, an interruption...: still a
        # TargetError, so the control ends the run before its method instead of letting it
        # fall back to the user's kubeconfig (the control interrupts the run either way).
        raise TargetError(f"embedded mesh in {state_dir}: {type(exc).__name__}: {exc}") from exc


@dataclass
class JoinHooks:
    """What the caller does with the mesh a run is about to use.

    ``before_use(mesh, fresh)``: before the run's manifests are applied to a running mesh
    (``fresh=False``; the control restores what runs that are no longer running left changed
    on it), or once a new mesh is up (``fresh=True``: changes recorded on earlier meshes in
    the directory are moot). ``reapply(mesh, manifests, differences)``: the run asked to
    replace objects that differ (``mesh_reapply``); the caller writes the Istio ones through
    its change ledger so the run's safety net puts the previous state back.
    """

    before_use: Callable[[MeshInfo, bool], None] = lambda mesh, fresh: None
    reapply: Callable[[MeshInfo, Manifests, Sequence[Difference]], None] | None = None


def _differences_message(state_dir: Path, differences: Sequence[Difference]) -> str:
    shown = "\n".join(str(d) for d in differences)
    runs = sorted({d.changed_by for d in differences if d.changed_by})
    if runs:
        advice = (
            f"another run's change is never replaced: wait until run {', '.join(runs)} ends "
            "(if it no longer runs, the next run restores what it left first)"
        )
    else:
        advice = (
            "to replace yours for this run and have the safety net put them back afterwards, "
            f"set '{REAPPLY_KEY}: true' in the configuration, {REAPPLY_ENV}=1, or pass "
            "'chaosmesh run --reapply'"
        )
    return (
        f"the mesh running in {state_dir} holds {len(differences)} object(s) in another form "
        "than this experiment's manifests; nothing was applied and the run stops here (a run "
        f"joins a running mesh only with objects it lacks or holds identically; {advice}):"
        f"\n{shown}"
    )


def _reapply_wanted(config: Mapping[str, Any]) -> bool:
    return parse_bool(config.get(REAPPLY_KEY), default=False) or parse_bool(
        os.environ.get(REAPPLY_ENV), default=False
    )


def prepare(
    configuration: MutableMapping[str, Any] | None,
    *,
    cancel: threading.Event | None = None,
    hooks: JoinHooks | None = None,
    notify: Callable[[str], None] = lambda line: None,
    run_id: str = "",
) -> PreparedTarget:
    """Make the experiment's target ready and point ``configuration`` at it.

    On the embedded target: starts the mesh in the state directory — or waits for the one
    another run is starting, or joins the one running (``JoinHooks``; objects that differ
    stop the run, see ``mesh.joining``) — applies ``mesh_manifests``, counts this run among
    the mesh's users (``mesh.sharing``), and sets ``kubeconfig_path`` (and ``gateway_url`` /
    ``prometheus_base_url`` when the experiment left them empty) in the live configuration,
    so every later activity reaches the mesh like a cluster. ``cancel`` (a signal) stops
    every wait, and a mesh this call started is stopped again. ``notify`` gets what a user
    should read (reusing a mesh, waiting for one).
    """
    config: MutableMapping[str, Any] = configuration if configuration is not None else {}
    target = target_of(config)
    if target == KUBERNETES:
        return PreparedTarget(target=target)

    hooks = hooks or JoinHooks()
    state_dir = state_dir_of(config)
    client = MeshClient(state_dir)
    wants_prometheus = parse_bool(config.get("mesh_prometheus"), default=False)
    namespace = config.get("mesh_namespace") or config.get("ns")
    manifest_files = manifests_of(config)
    user = User.me(run_id)
    sharing = Sharing(client.state)
    try:
        # Only an experiment that sets it overrides the mesh's own default (env or 64 MiB).
        log_cap = log_cap_of(config) if config.get(LOG_CAP_KEY) not in (None, "") else None
    except ValueError as exc:
        raise TargetError(str(exc)) from None

    def waiting() -> None:
        notify(
            f"chaosmesh: the other mesh in {state_dir} is still starting (another run started "
            f"it); waiting for it, up to {MESH_UP_TIMEOUT_S:.0f}s"
        )

    with _as_target_error(state_dir), sharing.turn(MESH_UP_TIMEOUT_S, cancel, waiting):
        found = client.load(manifest_files, str(namespace) if namespace else "default")
        running = client.wait_started(MESH_UP_TIMEOUT_S, cancel)
        if running is None:
            with_prometheus = " with Prometheus" if wants_prometheus else ""
            notify(f"chaosmesh: starting the embedded mesh in {state_dir}{with_prometheus} ...")
            result = client.start(
                found,
                prometheus=wants_prometheus,
                log_cap=log_cap,
                timeout=MESH_UP_TIMEOUT_S - UP_SLACK_S,
                cancel=cancel,
            )
            daemon = result.daemon
            try:
                membership = sharing.join(daemon, user, started=True)
                hooks.before_use(result.mesh, True)
            except BaseException:
                stop_daemon(state_dir, daemon)
                sharing.forget(daemon)
                raise
            notify(f"chaosmesh: started the embedded mesh in {state_dir} (pid {daemon.pid})")
        else:
            if wants_prometheus and not running.prometheus_url:
                raise TargetError(
                    "this experiment needs Prometheus (configuration mesh_prometheus) but the "
                    f"mesh in {state_dir} runs without it: 'chaosmesh mesh down --state-dir "
                    f"{state_dir}', then 'chaosmesh mesh up --prometheus', or let the "
                    "experiment start its own mesh"
                )
            hooks.before_use(running, False)
            try:
                result = client.join(running, found)
            except ObjectsDiffer as exc:
                if not _reapply_wanted(config) or hooks.reapply is None:
                    raise TargetError(_differences_message(state_dir, exc.differences)) from None
                notify(
                    f"chaosmesh: replacing {len(exc.differences)} object(s) of the running mesh "
                    f"for this run ({REAPPLY_KEY}); the safety net puts them back afterwards"
                )
                hooks.reapply(running, found, exc.differences)
                # The Istio objects are the hook's (written through its ledger, so they are
                # put back); differing workloads are replaced, absent objects added.
                result = client.join(running, found, reapply=True)
            daemon = running.daemon
            membership = sharing.join(daemon, user, started=False)
            notify(_reuse_message(state_dir, daemon, membership))

    if client.current() is None:  # the daemon died right after answering
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
        started_mesh=result.started,
        settings=settings,
        daemon=daemon,
        user=user,
        api_ca_sha256=mesh.document.get("api_ca_sha256"),
        kubeconfig=mesh.kubeconfig,
    )


def _reuse_message(state_dir: Path, daemon: DaemonId, membership: Membership) -> str:
    text = f"chaosmesh: reusing the embedded mesh running in {state_dir} (pid {daemon.pid})"
    if membership.others:
        text += "; also used by " + ", ".join(str(u) for u in membership.others)
    if membership.gone:
        text += "; started by " + ", ".join(str(u) for u in membership.gone)
        text += ", no longer running"
    if membership.stop_when_unused:
        text += "; the last run using it stops it"
    else:
        text += "; it was started outside a run and is left running"
    return text


def stop_daemon(state_dir: Path, daemon: DaemonId) -> bool:
    """Stop the mesh in ``state_dir`` only while its mesh.json still names ``daemon``."""
    try:
        result = MeshClient(state_dir).down(only=daemon, stop_timeout=MESH_DOWN_TIMEOUT_S)
    except MeshError as exc:
        raise TargetError(f"embedded mesh in {state_dir}: {exc}") from None
    except OSError as exc:
        raise TargetError(f"embedded mesh in {state_dir}: {exc}") from exc
    return result.outcome == "stopped"


def release(prepared: PreparedTarget, notify: Callable[[str], None] = lambda line: None) -> bool:
    """Count this run out of the mesh it used; stop the mesh if it was the last run using a
    mesh a run started (``mesh.sharing``), unless ``CHAOSMESH_KEEP_MESH`` keeps it. True when
    this call stopped the mesh; ``notify`` says what happened to it.

    Only the very daemon ``prepare`` found or started is considered: if it is gone and
    another mesh now runs in the state directory (another run's), that one is left alone.
    """
    if prepared.target != EMBEDDED or prepared.state_dir is None or prepared.daemon is None:
        return False
    state_dir, daemon = prepared.state_dir, prepared.daemon
    client = MeshClient(state_dir)
    sharing = Sharing(client.state)
    with _as_target_error(state_dir), sharing.turn(MESH_DOWN_TIMEOUT_S + UP_SLACK_S):
        membership = sharing.leave(daemon, prepared.user)
        if not daemon.alive():
            # It died under the run: clear what it left (mesh.json) for the next one.
            sharing.forget(daemon)
            current = client.current()
            if current is None and (client.state.read() or {}).get("pid") == daemon.pid:
                client.clear_dead()
            return False
        if parse_bool(os.environ.get(KEEP_MESH_ENV), default=False):
            if prepared.started_mesh:
                notify(
                    f"chaosmesh: leaving the embedded mesh in {state_dir} running ({KEEP_MESH_ENV})"
                )
            return False
        if not membership.stop_when_unused:
            notify(
                f"chaosmesh: leaving the embedded mesh in {state_dir} running (started outside "
                f"this run; 'chaosmesh mesh down --state-dir {state_dir}' stops it)"
            )
            return False
        if membership.others:
            notify(
                f"chaosmesh: leaving the embedded mesh in {state_dir} running: "
                + ", ".join(str(u) for u in membership.others)
                + " still uses it (the last run stops it)"
            )
            return False
        notify(f"chaosmesh: stopping the embedded mesh in {state_dir} (pid {daemon.pid})")
        stopped = stop_daemon(state_dir, daemon)
        sharing.forget(daemon)
        return stopped


def verify_prepared(configuration: Mapping[str, Any] | None) -> MeshInfo | None:
    """For an experiment whose target is the embedded mesh: the mesh prepared for it, still
    running (``TargetError`` otherwise: never prepared, or stopped/died since). None for
    any other target."""
    config = configuration or {}
    if target_of(config) != EMBEDDED:
        return None
    state_dir = state_dir_of(config)
    given = config.get("kubeconfig_path")
    if not given:
        raise TargetError(
            f"this experiment's target is the embedded mesh (in {state_dir}) but none was "
            "prepared for this run: declare the safety-net control (chaosmesh_ext.control) "
            "so it starts or joins the mesh; refusing to use KUBECONFIG or ~/.kube/config"
        )
    mesh = MeshClient(state_dir).current()
    if mesh is None:
        raise TargetError(
            f"the embedded mesh in {state_dir} is not running (it stopped or died during the "
            "run); refusing to reach any other API server"
        )
    if Path(str(given)).expanduser().resolve() != mesh.kubeconfig.resolve():
        raise TargetError(
            f"configuration kubeconfig_path {given} is not the embedded mesh's kubeconfig "
            f"({mesh.kubeconfig}); refusing to reach another API server"
        )
    return mesh


def verify_client(
    configuration: Mapping[str, Any] | None,
    *,
    host: str | None,
    ca_file: str | None,
    verify_ssl: bool,
) -> None:
    """Refuse (``TargetError``) a Kubernetes client for an experiment whose target is the
    embedded mesh unless it reaches that very mesh: built from the kubeconfig in the
    experiment's state directory (``verify_prepared``), to the URL its running daemon
    serves, trusting the certificate that daemon made (``mesh.json`` ``api_ca_sha256``),
    with TLS verification on. No fallback: a run whose mesh is gone or was never prepared
    reaches nothing."""
    mesh = verify_prepared(configuration)
    if mesh is None:
        return
    expected = mesh.document.get("api_ca_sha256")
    if (
        not verify_ssl
        or (host or "").rstrip("/") != (mesh.api_url or "").rstrip("/")
        or not expected
        or file_fingerprint(ca_file) != expected
    ):
        raise TargetError(
            f"the Kubernetes client of this run does not reach the embedded mesh in "
            f"{mesh.state_dir} (server {host}, not the mesh's {mesh.api_url} with its own "
            "certificate); refusing it"
        )


def mesh_gone(kubeconfig: str | Path | None, ca_sha256: str | None) -> str | None:
    """Why changes recorded through ``kubeconfig`` have nowhere to go back to, or None.

    They were made on an embedded mesh (the kubeconfig lies in a mesh state directory) that
    no longer runs — stopped, died, or replaced by a newer mesh (``ca_sha256``, the API
    certificate's fingerprint the change recorded, is not the running mesh's). A mesh's
    objects live only in its daemon's memory and die with it.
    """
    if not kubeconfig:
        return None
    path = Path(kubeconfig)
    state = StatePaths(path.parent)
    if not state.is_state_dir() or path.name != state.kubeconfig.name:
        return None  # not an embedded mesh's kubeconfig
    current = MeshClient(state.root).current()
    if current is None:
        return f"the embedded mesh in {state.root} is not running any more"
    running = current.document.get("api_ca_sha256")
    if ca_sha256 and running and ca_sha256 != running:
        return (
            f"the embedded mesh in {state.root} that held them has stopped (a newer mesh "
            f"runs there, pid {current.daemon.pid})"
        )
    return None
