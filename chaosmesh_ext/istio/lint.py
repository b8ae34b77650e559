"""``istioctl analyze``-style checks over Kubernetes YAML, or over objects from a cluster.

Reads VirtualService, DestinationRule, Gateway (networking.istio.io), Service,
ServiceEntry and workload objects (Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod);
everything else is ignored. Reports, each naming file, line, object and field:

- schema: whatever Istio's webhook would reject, plus unknown fields (typos such as
  ``reties``), as errors;
- references: VirtualService hosts and destination hosts that match no Service, subsets no
  DestinationRule defines, DestinationRule hosts with no Service, gateways that do not
  exist (errors); subsets whose labels select no workload (warning);
- two VirtualServices for one host on the mesh gateway (error: sidecars use only one);
- istiod's validation warnings (an abort without an error type, rules no request reaches...);
- fields the embedded mesh does not support (``docs/FIDELITY.md``): an error for
  ``target="embedded"`` (the default), an info note for ``target="cluster"``;
- faults that never fire (no percentage: Istio injects them for 0 % of requests);
- retries that will not retry an injected 503 (info: since Istio 1.24 a 503 is retried only
  when ``retryOn`` names ``5xx``, ``gateway-error`` or ``503``).

This module reads files (``lint_paths``, ``read_files``); the checks themselves
(``lint_objects``, ``lint_files`` with what a cluster already holds,
:mod:`~chaosmesh_ext.istio.lint_checks`) are pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosmesh_ext.istio.hosts import DEFAULT_DOMAIN
from chaosmesh_ext.istio.lint_checks import CLUSTER, EMBEDDED, TARGETS, analyze
from chaosmesh_ext.istio.lint_findings import (
    ERROR,
    INFO,
    SEVERITIES,
    WARNING,
    Finding,
    has_errors,
    sort_findings,
    summary,
)
from chaosmesh_ext.istio.lint_source import Doc, docs_from_objects, read_paths

__all__ = [
    "CLUSTER",
    "EMBEDDED",
    "ERROR",
    "INFO",
    "SEVERITIES",
    "TARGETS",
    "WARNING",
    "Files",
    "Finding",
    "has_errors",
    "lint_files",
    "lint_objects",
    "lint_paths",
    "read_files",
    "summary",
]


def lint_paths(
    paths: Iterable[str | Path],
    namespace: str = "default",
    domain: str = DEFAULT_DOMAIN,
    target: str = EMBEDDED,
) -> list[Finding]:
    """Lint YAML/JSON files and directories (searched recursively for *.yaml, *.yml, *.json).

    Objects that name no namespace are taken to be in ``namespace`` (as ``kubectl -n``);
    ``-`` reads standard input.
    """
    return lint_files(read_files(paths, namespace), namespace, domain, target=target)


@dataclass
class Files:
    """What :func:`read_files` found: the objects, and problems reading them (as findings)."""

    docs: list[Doc]
    problems: list[Finding]

    @property
    def objects(self) -> list[Mapping[str, Any]]:
        """Each object with its namespace filled in (``-n`` for those that name none)."""
        return [_with_namespace(doc) for doc in self.docs]


def read_files(paths: Iterable[str | Path], namespace: str = "default") -> Files:
    """Read ``paths`` once (``-`` is standard input, which can be read only once)."""
    problems: list[Finding] = []
    docs = read_paths(paths, namespace, problems)
    return Files(docs, problems)


def lint_files(
    files: Files,
    namespace: str = "default",
    domain: str = DEFAULT_DOMAIN,
    existing: Iterable[Mapping[str, Any]] = (),
    target: str = EMBEDDED,
) -> list[Finding]:
    """Lint the files' objects together with ``existing`` ones (what a cluster already holds),
    as ``istioctl analyze`` does with a kubeconfig: a VirtualService is checked against the
    cluster's Services and DestinationRules. A file's object replaces the existing one of the
    same kind, namespace and name (it is what will be applied). Reported: every finding on the
    files' objects, and those on existing objects that the files bring about (not there when
    the existing objects are linted alone)."""
    findings = list(files.problems)
    in_files = {_identity(doc) for doc in files.docs}
    context = [d for d in docs_from_objects(existing, namespace) if _identity(d) not in in_files]
    if not context:
        findings.extend(analyze(files.docs, domain, target))
        return sort_findings(findings)
    already = {_key(f) for f in analyze(context, domain, target)}
    for finding in analyze([*files.docs, *context], domain, target):
        if finding.file or _key(finding) not in already:
            findings.append(finding)
    return sort_findings(findings)


def _with_namespace(doc: Doc) -> Mapping[str, Any]:
    meta = dict(doc.obj.get("metadata") or {})
    meta["namespace"] = meta.get("namespace") or doc.namespace
    return {**doc.obj, "metadata": meta}


def _identity(doc: Doc) -> tuple[str, str, str]:
    meta = doc.obj.get("metadata") or {}
    return doc.kind, str(meta.get("namespace") or doc.namespace), doc.name


def _key(finding: Finding) -> tuple[str, ...]:
    return (finding.severity, finding.kind, finding.namespace, finding.name, finding.field,
            finding.message)  # fmt: skip


def lint_objects(
    objs: Iterable[Mapping[str, Any]],
    namespace: str = "default",
    domain: str = DEFAULT_DOMAIN,
    target: str = EMBEDDED,
) -> list[Finding]:
    """Lint resource dicts (e.g. listed from a cluster); findings carry no file.

    Each object needs its ``kind`` (and ``apiVersion`` for Gateways): items of a list the
    Kubernetes API returns lack them, so set them before calling.
    """
    return sort_findings(analyze(docs_from_objects(objs, namespace), domain, target))
