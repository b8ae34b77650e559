"""Local stand-ins for a Deployment's pods on the embedded mesh: one process per replica.

- :func:`workload_kind` picks the kind (echo, httpbin, proxy, command, fortio) for a
  Deployment; :class:`WorkloadSpec` describes one replica (:func:`replica_specs` builds them
  from a manifest); :func:`launch` starts it and :func:`wait_ready` waits until its port
  accepts.
- Each kind lives in its own module (``echo``, ``httpbin_app``, ``proxy``, ``command``); the
  fortio kind is the load layer's REST server, ``chaosmesh_ext.load.rest``.
"""

from __future__ import annotations

from .kinds import (
    COMMAND_ANNOTATION,
    KINDS,
    PROXY_TIMEOUT_ANNOTATION,
    UPSTREAM_ANNOTATION,
    WORKLOAD_ANNOTATION,
    workload_kind,
)
from .launcher import WorkloadNotReady, WorkloadUnavailable, check, launch, wait_ready
from .replicas import replica_count, replica_specs
from .spec import WorkloadSpec

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
    "launch",
    "replica_count",
    "replica_specs",
    "wait_ready",
    "workload_kind",
]
