"""The pure Istio domain: durations, host names, validation, edits and lint — no I/O.

Every edit takes a Kubernetes resource dict and returns a new one; errors are
:class:`~chaosmesh_ext.istio.errors.IstioError` naming the object and the field. The layers
that talk to a cluster (``kube``) or to Envoy (``mesh``) build on these functions.
"""

from __future__ import annotations

from chaosmesh_ext.istio.errors import IstioError

__all__ = ["IstioError"]
