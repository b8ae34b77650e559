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

This module reads files (``lint_paths``); the checks themselves (``lint_objects``,
:mod:`~chaosmesh_ext.istio.lint_checks`) are pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
from chaosmesh_ext.istio.lint_source import docs_from_objects, read_paths

__all__ = [
    "CLUSTER",
    "EMBEDDED",
    "ERROR",
    "INFO",
    "SEVERITIES",
    "TARGETS",
    "WARNING",
    "Finding",
    "has_errors",
    "lint_objects",
    "lint_paths",
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
    findings: list[Finding] = []
    docs = read_paths(paths, namespace, findings)
    findings.extend(analyze(docs, domain, target))
    return sort_findings(findings)


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
