"""Loading the Kubernetes YAML a user hands to ``mesh up -f``, with positions for errors.

Files or directories (``*.yaml``, ``*.yml``, ``*.json``, sorted), multi-document YAML and
``kind: List``. Every object remembers where it came from (file, document number, line), so
a malformed document, an unknown kind or an invalid field is reported as
``canary.yaml: document 2 (line 14): VirtualService istio-test/canary: spec.http[0]...``.
Pure apart from reading the files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaosmesh_ext.errors import MeshError

ISTIO_KINDS = ("VirtualService", "DestinationRule", "Gateway")
WORKLOAD_KINDS = ("Service", "Deployment")
# Accepted (with a note) so files written for a cluster load unchanged — a
# ServiceAccount, a ConfigMap holding nginx's config, RBAC for a CronJob — but nothing on the
# embedded mesh depends on them. Anything else, notably Istio kinds the mesh does not
# implement (ServiceEntry, EnvoyFilter...), is an error: ignoring it would misstate the traffic.
IGNORED_KINDS = (
    "Namespace",
    "ServiceAccount",
    "ConfigMap",
    "Secret",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
)
_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(MeshError, ValueError):
    """Bad input in a manifest; the message names file, document, object and field."""


@dataclass(frozen=True)
class Manifest:
    obj: dict[str, Any]
    file: str
    document: int  # 1-based
    line: int  # 1-based line where the document starts

    @property
    def where(self) -> str:
        return f"{self.file}: document {self.document} (line {self.line})"

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind"))

    def describe(self, namespace: str) -> str:
        meta = self.obj.get("metadata") or {}
        return f"{self.kind} {meta.get('namespace') or namespace}/{meta.get('name') or '<unnamed>'}"


@dataclass
class Loaded:
    """Objects by role, plus notes for what was accepted and ignored."""

    istio: list[Manifest] = field(default_factory=list)
    services: list[Manifest] = field(default_factory=list)
    deployments: list[Manifest] = field(default_factory=list)
    # kubernetes.io/tls Secrets: the certificates HTTPS Gateway servers name (credentialName).
    secrets: list[Manifest] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def expand(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise ManifestError(f"{path}: no such file or directory")
    return files


def _documents(text: str, name: str) -> list[tuple[int, int, Any]]:
    """(document number, start line, parsed) for each non-empty document."""
    out: list[tuple[int, int, Any]] = []
    # libyaml's loader when present: the same nodes and line marks, ten times faster (a
    # configuration of a thousand objects loads in well under a second).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    number = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            number += 1
            if node is None:
                continue
            start = node.start_mark.line + 1
            data = loader.construct_document(node)
            if data is not None:
                out.append((number, start, data))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(
            f"{name}: document {number + 1}{line}: malformed YAML: {problem}"
        ) from None
    finally:
        loader.dispose()
    return out


def load_text(text: str, name: str) -> list[Manifest]:
    manifests: list[Manifest] = []
    for number, line, data in _documents(text, name):
        items = [data]
        if isinstance(data, dict) and data.get("kind") == "List":
            items = data.get("items") or []
        for obj in items:
            where = f"{name}: document {number} (line {line})"
            if not isinstance(obj, dict):
                raise ManifestError(
                    f"{where}: expected a Kubernetes object (a mapping), got {type(obj).__name__}"
                )
            if not obj.get("kind"):
                raise ManifestError(f"{where}: kind: required")
            if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
                raise ManifestError(f"{where}: {obj.get('kind')}: metadata.name: required")
            manifests.append(Manifest(obj, name, number, line))
    return manifests


def load(paths: Sequence[str | Path]) -> list[Manifest]:
    out: list[Manifest] = []
    for path in expand(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{path}: cannot read: {exc}") from None
        out.extend(load_text(text, str(path)))
    return out


def is_tls_secret(obj: dict[str, Any]) -> bool:
    """A Secret an HTTPS Gateway server can serve (type kubernetes.io/tls, or Istio's
    generic layout with ``tls.crt``/``cert``)."""
    if obj.get("kind") != "Secret":
        return False
    keys = set(obj.get("data") or {}) | set(obj.get("stringData") or {})
    return obj.get("type") == "kubernetes.io/tls" or bool(keys & {"tls.crt", "cert"})


def classify(manifests: Iterable[Manifest], namespace: str) -> Loaded:
    """Sort objects by role; unknown kinds are an error naming file and document.

    Istio objects the embedded mesh accepts with a warning (istiod's validation warnings,
    fields with no effect on one machine: ``docs/FIDELITY.md``) get a note each.
    """
    from chaosmesh_ext.mesh import admission

    loaded = Loaded()
    for m in manifests:
        if m.kind in ISTIO_KINDS:
            loaded.istio.append(m)
            for text in admission.warnings(with_namespace(m.obj, namespace)):
                loaded.notes.append(f"{m.where}: {m.describe(namespace)}: warning: {text}")
        elif is_tls_secret(m.obj):
            loaded.secrets.append(m)
        elif m.kind == "Service":
            loaded.services.append(m)
        elif m.kind == "Deployment":
            loaded.deployments.append(m)
        elif m.kind in IGNORED_KINDS:
            loaded.notes.append(
                f"{m.where}: {m.describe(namespace)} accepted and ignored "
                "(the embedded mesh has no use for it)"
            )
        else:
            known = ", ".join((*ISTIO_KINDS, *WORKLOAD_KINDS))
            what = "unknown kind"
            if ".istio.io/" in str(m.obj.get("apiVersion", "")):
                what = "Istio kind not implemented by the embedded mesh:"
            raise ManifestError(
                f"{m.where}: {m.describe(namespace)}: kind: {what} {m.kind!r} "
                f"(the embedded mesh runs {known})"
            )
    return loaded


def with_namespace(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """A copy of ``obj`` with ``metadata.namespace`` filled in, as kubectl -n would."""
    meta = dict(obj.get("metadata") or {})
    meta.setdefault("namespace", namespace)
    if not meta["namespace"]:
        meta["namespace"] = namespace
    return {**obj, "metadata": meta}


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def as_applied(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """``obj`` as ``kubectl apply -n namespace`` would create it: its namespace filled in and
    the ``last-applied-configuration`` annotation holding the object as written, so a later
    ``kubectl apply`` of a changed file computes its patch from this one (a field removed from
    the file is removed from the object) and does not warn about a missing annotation."""
    applied = with_namespace(obj, namespace)
    meta = applied["metadata"]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    written = {**applied, "metadata": {**meta, "annotations": annotations}}
    if not annotations:
        del written["metadata"]["annotations"]
    # kubectl's encoding: compact JSON with sorted keys (Go's map order), then a newline.
    text = json.dumps(written, sort_keys=True, separators=(",", ":")) + "\n"
    return {**applied, "metadata": {**meta, "annotations": {**annotations, LAST_APPLIED: text}}}


def _destinations(spec: dict[str, Any]) -> Iterable[tuple[str, Any]]:
    for section in ("http", "tcp", "tls"):
        for i, route in enumerate(spec.get(section) or []):
            if not isinstance(route, dict):
                continue
            for j, dest in enumerate(route.get("route") or []):
                if isinstance(dest, dict) and isinstance(dest.get("destination"), dict):
                    yield (
                        f"spec.{section}[{i}].route[{j}].destination.host",
                        dest["destination"].get("host"),
                    )
            mirror = route.get("mirror")
            if isinstance(mirror, dict):
                yield f"spec.{section}[{i}].mirror.host", mirror.get("host")


def _workload_problem(deployment: dict[str, Any], namespace: str) -> str | None:
    """What the workloads layer would refuse at launch (unknown kind, missing annotation)."""
    from chaosmesh_ext.mesh.workloads import check_manifest

    try:
        check_manifest(with_namespace(deployment, namespace), namespace)
    except ValueError as exc:
        return str(exc)
    return None


def check(loaded: Loaded, namespace: str, known_services: Iterable[str] = ()) -> None:
    """Everything ``mesh up`` refuses before starting or changing anything.

    Istio's own validation and the fields the embedded mesh does not support
    (``mesh.admission``) for each Istio object, and a destination host
    that names no Service of the mesh (``istioctl analyze``'s IST0101: on a cluster the route
    would answer 503 for every request, which is never what the user meant).
    """
    from chaosmesh_ext.istio.hosts import fqdn, service_fqdn
    from chaosmesh_ext.mesh.admission import validate

    problems: list[str] = []
    services = set(known_services)
    for m in loaded.services:
        meta = m.obj.get("metadata") or {}
        services.add(service_fqdn(meta["name"], meta.get("namespace") or namespace))
        if not (m.obj.get("spec") or {}).get("ports"):
            problems.append(f"{m.where}: {m.describe(namespace)}: spec.ports: required")
    for m in loaded.deployments:
        spec = m.obj.get("spec") or {}
        template = spec.get("template") or {}
        if not (template.get("metadata") or {}).get("labels"):
            problems.append(
                f"{m.where}: {m.describe(namespace)}: spec.template.metadata.labels: required"
            )
        problem = _workload_problem(m.obj, namespace)
        if problem:
            problems.append(f"{m.where}: {problem}")
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or replicas < 0:
            problems.append(
                f"{m.where}: {m.describe(namespace)}: spec.replicas: must be a "
                f"non-negative integer, got {replicas!r}"
            )
    for m in loaded.istio:
        obj = with_namespace(m.obj, namespace)
        for cause in validate(obj):
            problems.append(f"{m.where}: {m.describe(namespace)}: {cause.field}: {cause.message}")
        if m.kind == "VirtualService":
            ns = obj["metadata"]["namespace"]
            for path, host in _destinations(obj.get("spec") or {}):
                if isinstance(host, str) and host and "*" not in host:
                    full = fqdn(host, ns)
                    if full.endswith(".svc.cluster.local") and full not in services:
                        problems.append(
                            f"{m.where}: {m.describe(namespace)}: {path}: host "
                            f"{host!r} ({full}) matches no Service of the mesh"
                        )
    if problems:
        raise ManifestError("\n".join(problems))
