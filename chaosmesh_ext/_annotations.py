"""Annotations this package writes on Kubernetes objects, read by more than one layer.

- ``LEDGER_ANNOTATION`` (``chaosmesh.io/ledger``): the change-ledger entry (``<run id>#<n>``)
  of the last write a run made to the object and has not put back. The kube layer writes it
  (``kube.changes``) and reads it on restore; the embedded mesh reads it to name the run
  that changed an object a joining run would otherwise overwrite (``mesh.joining``).
"""

from __future__ import annotations

__all__ = ["LEDGER_ANNOTATION"]

LEDGER_ANNOTATION = "chaosmesh.io/ledger"
