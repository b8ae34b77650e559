"""``chaosmesh lint`` against a cluster: read the live objects, run the same checks as on files.

:func:`lint_cluster` (behind the probe ``chaosmesh_ext.probes.lint_mesh``) reads the
VirtualServices, DestinationRules and Gateways of a namespace (or of every namespace), plus
what they reference — the Services and Deployments of their own namespace and of every
namespace their hosts and gateways name — and returns the findings of
:func:`chaosmesh_ext.istio.lint.lint_objects` as plain JSON (counts with flat keys, for a
``range`` tolerance with ``target``). Use it in a steady-state hypothesis so an experiment
refuses to start on a mesh whose routing is already wrong (a VirtualService for a
host no Service has, a subset no DestinationRule defines...).

A namespace whose Services cannot be listed (403) is named in a warning: references into it
are then reported as missing. Services, Deployments and Pods are read as raw JSON (the typed
models reject fields some API servers leave null).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client as k8s

from chaosmesh_ext._interrupts import INTERRUPTS
from chaosmesh_ext._kobject import KObject
from chaosmesh_ext.istio.hosts import fqdn
from chaosmesh_ext.istio.lint import CLUSTER, Finding, has_errors, lint_objects, summary
from chaosmesh_ext.kube.objects import IstioObjects, KubeApiError, translate

__all__ = ["cluster_objects", "lint_cluster", "objects_for_files"]

ISTIO_KINDS = ("VirtualService", "DestinationRule", "Gateway")
Lister = Callable[..., Any]


def _raw_items(
    fn: Lister, what: str, timeout: float, *args: Any, kind: str, api_version: str
) -> list[dict[str, Any]]:
    try:
        response = fn(*args, _preload_content=False, _request_timeout=timeout)
        data = json.loads(response.data or b"{}")
    except ValueError as exc:
        raise KubeApiError(what, None, "BadResponse", f"list: not JSON: {exc}") from exc
    except INTERRUPTS:
        raise
    except Exception as exc:
        raise translate(exc, what, "list", timeout) from exc
    items = data.get("items") if isinstance(data, dict) else None
    # Items of a list carry no kind/apiVersion; lint needs them.
    return [dict(i, kind=kind, apiVersion=api_version) for i in items or [] if isinstance(i, dict)]


def _services(client: k8s.ApiClient, namespace: str | None, timeout: float) -> list[dict[str, Any]]:
    core = k8s.CoreV1Api(client)
    if namespace is None:
        args: tuple[Any, ...] = (core.list_service_for_all_namespaces,)
    else:
        args = (core.list_namespaced_service, namespace)
    where = f"Services in {namespace or 'all namespaces'}"
    return _raw_items(args[0], where, timeout, *args[1:], kind="Service", api_version="v1")


def _deployments(
    client: k8s.ApiClient, namespace: str | None, timeout: float
) -> list[dict[str, Any]]:
    apps = k8s.AppsV1Api(client)
    if namespace is None:
        args: tuple[Any, ...] = (apps.list_deployment_for_all_namespaces,)
    else:
        args = (apps.list_namespaced_deployment, namespace)
    where = f"Deployments in {namespace or 'all namespaces'}"
    return _raw_items(args[0], where, timeout, *args[1:], kind="Deployment", api_version="apps/v1")


def _istio(objects: IstioObjects, kind: str, namespace: str | None) -> list[dict[str, Any]]:
    items = objects.list(kind, namespace) if namespace else objects.list_all(kind)
    return [dict(i, kind=kind, apiVersion=objects.api_version) for i in items]


def _referenced_namespaces(istio: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(namespaces of Services the objects name, namespaces of Gateways they name)."""
    services: set[str] = set()
    gateways: set[str] = set()
    for obj in istio:
        view = KObject(obj)
        own, spec = view.namespace_or(), view.spec
        hosts = [spec.get("host"), *list(spec.get("hosts") or [])]
        for block in ("http", "tcp", "tls"):
            for route in spec.get(block) or []:
                for dest in (route.get("route") if isinstance(route, Mapping) else None) or []:
                    hosts.append(((dest or {}).get("destination") or {}).get("host"))
        for host in hosts:
            parts = fqdn(str(host), own).split(".") if isinstance(host, str) and host else []
            if len(parts) >= 3 and parts[2] == "svc":
                services.add(parts[1])
        for gateway in spec.get("gateways") or []:
            if isinstance(gateway, str) and gateway != "mesh":
                gateways.add(gateway.split("/", 1)[0] if "/" in gateway else own)
    return services, gateways


def cluster_objects(
    objects: IstioObjects, namespace: str | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The objects to lint (``namespace=None``: every namespace), and notes on what is missing.

    Raises :class:`KubeApiError` when the Istio objects of the namespace cannot be read.
    """
    client, timeout = objects.api_client, objects.timeout
    istio = [o for kind in ISTIO_KINDS for o in _istio(objects, kind, namespace)]
    if namespace is None:
        return [*istio, *_services(client, None, timeout), *_deployments(client, None, timeout)], []
    service_ns, gateway_ns = _referenced_namespaces(istio)
    found: list[dict[str, Any]] = list(istio)
    notes: list[str] = []
    for ns in sorted(service_ns | {namespace}):
        try:
            found.extend(_services(client, ns, timeout))
        except KubeApiError as exc:
            notes.append(
                f"cannot list Services in namespace {ns} ({exc.reason}): hosts in it are "
                "reported as having no Service"
            )
            continue
        try:
            found.extend(_deployments(client, ns, timeout))
        except KubeApiError as exc:
            notes.append(
                f"cannot list Deployments in namespace {ns} ({exc.reason}): subsets "
                "are not checked against its workloads"
            )
    for ns in sorted(gateway_ns - {namespace}):
        try:
            found.extend(_istio(objects, "Gateway", ns))
        except KubeApiError as exc:
            notes.append(
                f"cannot list Gateways in namespace {ns} ({exc.reason}): gateways in it are "
                "reported as missing"
            )
    return found, notes


def objects_for_files(
    objects: IstioObjects, file_objects: list[dict[str, Any]], namespace: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """What the cluster holds that files about to be applied are checked against: the Istio
    objects, Services and Deployments of every namespace the files' objects live in or refer
    to (``chaosmesh lint -f`` with a kubeconfig). Notes name what could not be read; raises
    :class:`KubeApiError` when the API cannot be reached at all."""
    service_ns, gateway_ns = _referenced_namespaces(file_objects)
    own = {KObject(o).namespace_or(namespace) for o in file_objects} | {namespace}
    client, timeout = objects.api_client, objects.timeout
    found: list[dict[str, Any]] = []
    notes: list[str] = []
    for ns in sorted(own | service_ns | gateway_ns):
        for kind in ISTIO_KINDS:
            try:
                found.extend(_istio(objects, kind, ns))
            except KubeApiError as exc:
                if exc.status in (403, 404):
                    notes.append(f"cannot list {kind}s in namespace {ns} ({exc.reason})")
                    continue
                raise
        for what, read in (("Services", _services), ("Deployments", _deployments)):
            try:
                found.extend(read(client, ns, timeout))
            except KubeApiError as exc:
                notes.append(f"cannot list {what} in namespace {ns} ({exc.reason})")
    return found, notes


def _line(finding: Finding) -> str:
    """``error: VirtualService default/x: spec.hosts[0]: ...`` (cluster objects have no file)."""
    obj = f"{finding.kind} {finding.namespace}/{finding.name}" if finding.kind else ""
    parts = (finding.severity, obj, finding.field, finding.message)
    return ": ".join(p for p in parts if p)


def lint_cluster(
    objects: IstioObjects, namespace: str, *, all_namespaces: bool = False
) -> dict[str, Any]:
    """Lint what :func:`cluster_objects` reads; the counts, findings and notes as plain JSON.

    ``{"namespace", "errors", "warnings", "info", "ok", "findings": [text...], "notes":
    [text...]}``; ``ok`` is true when there is no error. Raises :class:`KubeApiError` when
    the Istio objects cannot be read.
    """
    objs, notes = cluster_objects(objects, None if all_namespaces else namespace)
    # Objects read from an API server already run there (the embedded mesh refuses what it
    # does not support), so fields the embedded mesh lacks are info notes, never errors.
    findings = lint_objects(objs, namespace=namespace, target=CLUSTER)
    counts = summary(findings)
    return {
        "namespace": None if all_namespaces else namespace,
        "errors": counts["error"],
        "warnings": counts["warning"],
        "info": counts["info"],
        "ok": not has_errors(findings),
        "findings": [_line(f) for f in findings],
        "notes": notes,
    }
