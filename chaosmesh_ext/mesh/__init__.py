"""The embedded mesh: the user's Istio YAML enforced by a real Envoy on one machine.

Parts, one role each: ``client`` (``MeshClient``: up, apply, down, status — what the CLI and
the experiments' target use), ``daemon`` (the daemon process and its signals), ``lifecycle``
(one mesh brought up, described and stopped), ``apply`` (the all-or-nothing change of what
runs, and the push to Envoy), ``views`` (the read-only kinds, ``mesh.json`` entries, status,
pure), ``daemon_api`` (the daemon's own endpoints), ``api`` (the Kubernetes-style API server
and its store), ``translate`` (istiod's mapping, pure), ``envoy`` (the supervised data plane),
``workloads`` (local stand-ins for pods), ``manifests`` (loading ``-f`` files),
``listener_name`` (listener names as values), ``paths``
(the state directory's settings and files), ``state`` (``mesh.json``, lock, pids) and
``kubeconfig``. Users drive it with ``chaosmesh mesh up/down/status/url``; experiments reach
it through the kubeconfig it writes.
"""

from __future__ import annotations

# Loaded on first use: every workload replica imports this package first, and needs no state.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from .state import DEFAULT_STATE_DIR, StateDir


def __getattr__(name: str) -> object:
    if name not in ("DEFAULT_STATE_DIR", "StateDir"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import state

    return getattr(state, name)


__all__ = ["DEFAULT_STATE_DIR", "StateDir"]
