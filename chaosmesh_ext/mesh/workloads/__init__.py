"""Local stand-ins for a Deployment's pods on the embedded mesh.

- :func:`workload_kind` picks the kind (echo, httpbin, proxy, command, fortio) for a
  Deployment; :class:`WorkloadSpec` describes one replica (:func:`replica_specs` builds them
  from a manifest); :func:`launch` starts it as a process of its own and :func:`wait_ready`
  waits until its port accepts. The daemon starts echo, proxy, fortio and httpbin replicas
  in shared replica hosts instead, each with a holder process as its pid (``hosting``,
  ``host``, ``holder``; ``fortio_replica`` and ``httpbin_replica`` for the hosts of those).
- Each kind lives in its own module (``echo``, ``httpbin_app``, ``proxy``, ``command``); the
  fortio kind is the load layer's REST server, ``chaosmesh_ext.load.rest``.

The public names load on first use (PEP 562): every replica process starts with
``python -m chaosmesh_ext.mesh.workloads``, which imports this package, and an echo replica
must not pay for the launcher's and the manifest readers' imports (subprocess, shutil,
pathlib, typing, dataclasses: several MB of RSS in each of a mesh's processes).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from .kinds import (
        COMMAND_ANNOTATION,
        KINDS,
        PROXY_TIMEOUT_ANNOTATION,
        UPSTREAM_ANNOTATION,
        WORKLOAD_ANNOTATION,
        workload_kind,
    )
    from .launcher import WorkloadNotReady, WorkloadUnavailable, check, launch, wait_ready
    from .replicas import check_manifest, replica_count, replica_specs
    from .spec import WorkloadSpec

# Public name -> the submodule that defines it.
_LAZY = {
    "COMMAND_ANNOTATION": "kinds",
    "KINDS": "kinds",
    "PROXY_TIMEOUT_ANNOTATION": "kinds",
    "UPSTREAM_ANNOTATION": "kinds",
    "WORKLOAD_ANNOTATION": "kinds",
    "workload_kind": "kinds",
    "WorkloadNotReady": "launcher",
    "WorkloadUnavailable": "launcher",
    "check": "launcher",
    "launch": "launcher",
    "wait_ready": "launcher",
    "check_manifest": "replicas",
    "replica_count": "replicas",
    "replica_specs": "replicas",
    "WorkloadSpec": "spec",
}

__all__ = [
    "COMMAND_ANNOTATION",
    "KINDS",
    "PROXY_TIMEOUT_ANNOTATION",
    "UPSTREAM_ANNOTATION",
    "WORKLOAD_ANNOTATION",
    "WorkloadNotReady",
    "WorkloadSpec",
    "WorkloadUnavailable",
    "check",
    "check_manifest",
    "launch",
    "replica_count",
    "replica_specs",
    "wait_ready",
    "workload_kind",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
