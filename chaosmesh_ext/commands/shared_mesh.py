"""One embedded mesh for a whole set of experiments, in the state directory ``make run`` uses.

The surroundings ``chaosmesh run`` and ``chaosmesh gameday run|schedule`` give the game-day
runner (``gameday.runner.Surround``); the runner itself knows nothing of meshes.

``chaosmesh run`` and ``chaosmesh gameday run`` run each experiment in its own ``chaos run``,
in the experiment's directory. Left alone, each experiment's safety-net control would start
and stop a mesh of its own in ``.chaosmesh/`` *of that directory*. Instead the set gets one
mesh, in the state directory of the directory the command was started in (``--state-dir``,
``CHAOSMESH_STATE_DIR``, default ``./.chaosmesh`` — where ``make run`` and ``chaosmesh mesh``
look): started before the first experiment when any of them runs on the embedded target
with the safety-net control (the part that uses the mesh) — or joined, when one runs there
already — and stopped after the last if this started it and no other run still uses it
(``mesh.sharing``). Each experiment's control loads its own manifests into it (joining:
objects that differ are refused unless ``--reapply``).

Every experiment's ``chaos run`` gets ``KUBECONFIG`` set to the mesh's kubeconfig and the
settings that would point a client elsewhere (``KUBERNETES_CONTEXT``, ``KUBERNETES_HOST``,
...) emptied, so chaostoolkit-kubernetes activities reach the mesh too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosmesh_ext._parse import parse_bool
from chaosmesh_ext.kube.environment import OVERRIDES
from chaosmesh_ext.mesh import paths
from chaosmesh_ext.mesh import target as mesh_target
from chaosmesh_ext.mesh.sharing import Sharing
from chaosmesh_ext.mesh.state import DaemonId
from chaosmesh_ext.signal_shield import shielded


@dataclass
class SharedMesh:
    """What the experiments of the set need to use the shared mesh."""

    state_dir: Path
    # For every experiment: where the mesh is, and that its control must leave it running.
    env: dict[str, str] = field(default_factory=dict)
    # For `chaosmesh restore` after a time limit: this mesh, never ~/.kube/config.
    restore_env: dict[str, str] = field(default_factory=dict)
    started: DaemonId | None = None


CONTROL_MODULE = "chaosmesh_ext.control"


def _document(experiment: Path) -> dict[str, Any]:
    try:
        document = json.loads(experiment.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # chaos run reports an unreadable experiment itself
    return document if isinstance(document, dict) else {}


def _configuration(experiment: Path) -> dict[str, Any]:
    configuration = _document(experiment).get("configuration")
    return configuration if isinstance(configuration, dict) else {}


def uses_embedded_mesh(experiment: Path, environ: Mapping[str, str]) -> bool:
    """Whether the experiment's safety-net control will want the embedded mesh."""
    controls = _document(experiment).get("controls")
    declared = any(
        isinstance(c, dict) and (c.get("provider") or {}).get("module") == CONTROL_MODULE
        for c in (controls if isinstance(controls, list) else [])
    )
    return declared and experiment_target(experiment, environ) == mesh_target.EMBEDDED


def experiment_target(experiment: Path, environ: Mapping[str, str]) -> str:
    """The target the experiment's control will choose (``mesh.target.target_of``) when
    ``chaos run`` resolves its configuration in ``environ``."""
    value = _configuration(experiment).get("mesh_target")
    if isinstance(value, dict) and value.get("type") == "env":
        value = environ.get(str(value.get("key")), value.get("default"))
    text = str(value or environ.get("MESH_TARGET") or mesh_target.KUBERNETES)
    return text.strip().lower()


def wants_prometheus(experiment: Path) -> bool:
    """Whether an experiment asks the embedded mesh for Prometheus (``mesh_prometheus``)."""
    return parse_bool(_configuration(experiment).get("mesh_prometheus"), default=False)


@contextmanager
def shared_mesh(
    state_dir: Path,
    experiments: Iterable[Path],
    environ: Mapping[str, str],
    keep: bool = False,
    echo: Callable[[str], None] = print,
    run_id: str = "",
    reapply: bool = False,
) -> Iterator[SharedMesh]:
    """The set's mesh while the block runs (raises ``mesh.target.TargetError`` when it cannot
    start). With no experiment on the embedded target, nothing is started or set.

    ``run_id`` names this set among the mesh's users; ``reapply`` lets each experiment
    replace objects of a running mesh that differ from its manifests (``mesh_reapply``).
    """
    state_dir = state_dir.resolve()
    embedded = [p for p in experiments if uses_embedded_mesh(p, environ)]
    if not embedded:
        yield SharedMesh(state_dir)
        return
    kubeconfig = str(paths.StatePaths(state_dir).kubeconfig)
    env = {paths.STATE_DIR_ENV: str(state_dir), mesh_target.KEEP_MESH_ENV: "1"}
    # Each chaos run reaches this mesh only, whatever its own environment said.
    env.update({name: "" for name in OVERRIDES}, KUBECONFIG=kubeconfig)
    if reapply:
        env[mesh_target.REAPPLY_ENV] = "1"
    shared = SharedMesh(state_dir, env=env, restore_env={"KUBECONFIG": kubeconfig})
    prometheus = any(wants_prometheus(p) for p in embedded)
    configuration = {
        "mesh_target": mesh_target.EMBEDDED,
        paths.CONFIG_KEY: str(state_dir),
        "mesh_prometheus": prometheus,
    }
    prepared = mesh_target.prepare(configuration, notify=echo, run_id=run_id)
    shared.started = prepared.daemon if prepared.started_mesh else None
    try:
        yield shared
    finally:
        # A second Ctrl-C must not cut the mesh's stop short (it is bounded).
        with shielded(lambda signum: echo("stopping the embedded mesh first ...")):
            _release(prepared, state_dir, keep, echo)


def _release(
    prepared: mesh_target.PreparedTarget, state_dir: Path, keep: bool, echo: Callable[[str], None]
) -> None:
    say = echo
    if keep and prepared.daemon is not None:
        sharing = Sharing(paths.StatePaths(state_dir))
        with sharing.turn(mesh_target.MESH_DOWN_TIMEOUT_S):
            sharing.keep(prepared.daemon)
        echo(f"leaving the embedded mesh in {state_dir} running (--keep-mesh)")
        say = lambda line: None  # noqa: E731 - nothing more to say about it
    try:
        mesh_target.release(prepared, notify=say)
    except mesh_target.TargetError as exc:
        echo(f"warning: {exc}")
