"""What every Chaos Toolkit activity of this package needs, in one place.

The activity modules (``actions``, ``probes``, ``canary``, ``prometheus``, ``tolerances``) only
wire: check their arguments, call the domain code, and turn its errors into chaoslib's
``ActivityFailed``. The pieces they share live here:

- :data:`Configuration` / :data:`Secrets`, chaoslib's types for the two mappings every
  activity takes;
- :func:`kube_client` / :func:`istio_objects`: the experiment's Kubernetes client (chaosk8s'
  settings, see :mod:`chaosmesh_ext.kube.client`), closed when the activity is done — on
  the embedded target only one that reaches the mesh prepared for the run
  (``mesh.target.verify_client``), never a fallback;
- :func:`check_target`: the same check for activities that need no client (a load from this
  process, a Prometheus query);
- :func:`check_name`: a Kubernetes name argument, refused before anything is read;
- :func:`run_id_for`: which run's ledger a change goes to;
- :func:`failures_as_activity_failed`: any :class:`~chaosmesh_ext.errors.ChaosMeshError` as
  ``ActivityFailed``, prefixed with what the activity was doing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes import client as k8s

from chaosmesh_ext.errors import ChaosMeshError
from chaosmesh_ext.kube.client import KubeSettingsError, api_client
from chaosmesh_ext.kube.ledger import choose_run_id
from chaosmesh_ext.kube.objects import IstioObjects
from chaosmesh_ext.mesh import target as mesh_target

__all__ = [
    "Configuration",
    "Secrets",
    "check_name",
    "check_target",
    "failures_as_activity_failed",
    "istio_objects",
    "kube_client",
    "run_id_for",
]


def run_id_for(configuration: Mapping[str, Any] | None) -> str:
    """The run this call belongs to (``CHAOSMESH_RUN_ID``, else the control's, else the
    process's): see :func:`chaosmesh_ext.kube.ledger.choose_run_id`."""
    return choose_run_id(configuration)


@contextlib.contextmanager
def kube_client(
    configuration: Configuration | None, secrets: Secrets | None, *, doing: str = ""
) -> Iterator[k8s.ApiClient]:
    """The experiment's Kubernetes client; ``ActivityFailed`` when none can be built.

    ``doing`` (e.g. ``"fortio_load http://..."``) starts the message, else it reads
    ``Kubernetes configuration: ...``.
    """
    where = f"{doing}: no Kubernetes client" if doing else "Kubernetes configuration"
    try:
        client = api_client(configuration, secrets)
    except (KubeSettingsError, ValueError) as exc:
        raise ActivityFailed(f"{where}: {exc}") from exc
    try:
        settings = client.configuration
        mesh_target.verify_client(
            configuration,
            host=settings.host,
            ca_file=settings.ssl_ca_cert,
            verify_ssl=bool(settings.verify_ssl),
        )
    except mesh_target.TargetError as exc:
        client.close()  # type: ignore[no-untyped-call]
        raise ActivityFailed(f"{where}: {exc}") from None
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def istio_objects(
    configuration: Configuration | None, secrets: Secrets | None
) -> Iterator[IstioObjects]:
    """Istio objects of the experiment's cluster, in the configured ``istio_api_version``."""
    with kube_client(configuration, secrets) as client:
        try:
            objects = IstioObjects.from_configuration(client, configuration)
        except ValueError as exc:
            raise ActivityFailed(f"configuration: {exc}") from exc
        yield objects


def check_target(configuration: Configuration | None, doing: str) -> None:
    """``ActivityFailed`` when the experiment's target is the embedded mesh and the mesh
    prepared for the run is not there (never prepared, or gone)."""
    try:
        mesh_target.verify_prepared(configuration)
    except mesh_target.TargetError as exc:
        raise ActivityFailed(f"{doing}: {exc}") from None


def check_name(value: Any, argument: str, kind: str) -> str:
    """``value`` when it is a non-empty name, else ``ActivityFailed`` naming the argument."""
    if not isinstance(value, str) or not value.strip():
        raise ActivityFailed(
            f"{kind}: argument '{argument}' must be a non-empty name, got {value!r}"
        )
    return value


@contextlib.contextmanager
def failures_as_activity_failed(doing: str = "") -> Iterator[None]:
    """Re-raise any :class:`ChaosMeshError` as ``ActivityFailed`` (``"<doing>: <error>"``).

    Errors already name their object and field; ``doing`` says which activity and target
    (``"fortio_load http://httpbin:8000/get"``) when the error cannot know it.
    """
    try:
        yield
    except ChaosMeshError as exc:
        raise ActivityFailed(f"{doing}: {exc}" if doing else str(exc)) from None
