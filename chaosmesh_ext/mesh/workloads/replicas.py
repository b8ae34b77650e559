"""From a Deployment manifest to the specs of its replicas (pure).

The daemon owns ports, the outbound map and the state directory; everything else a replica
needs (kind, pod name, labels, version, annotations, sidecar identity) comes from the
manifest, and is read here so every replica of every Deployment is described the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chaosmesh_ext._sidecar import Sidecar

from .container_env import PodFacts, container_env
from .kinds import workload_kind
from .spec import WorkloadSpec, command_line

# Label keys that name a pod's version, first found wins. Istio's convention is `version`;
# some canary Deployments use `app: v1` / `app: v2` instead.
VERSION_LABELS = ("version", "app.kubernetes.io/version", "app")


def _template(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    return (deployment.get("spec") or {}).get("template") or {}


def replica_count(deployment: Mapping[str, Any]) -> int:
    """``spec.replicas`` (Kubernetes' default 1); ValueError naming the field if invalid."""
    replicas = (deployment.get("spec") or {}).get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        meta = deployment.get("metadata") or {}
        raise ValueError(
            f"Deployment {meta.get('namespace') or 'default'}/{meta.get('name')}: spec.replicas: "
            f"must be a whole number >= 0, got {replicas!r}"
        )
    return replicas


def pod_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    labels = (_template(deployment).get("metadata") or {}).get("labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def version_of(labels: Mapping[str, str]) -> str | None:
    return next((labels[key] for key in VERSION_LABELS if key in labels), None)


def merged_annotations(deployment: Mapping[str, Any]) -> dict[str, str]:
    """The Deployment's annotations overlaid with its pod template's (the pods' win)."""
    outer = (deployment.get("metadata") or {}).get("annotations") or {}
    inner = (_template(deployment).get("metadata") or {}).get("annotations") or {}
    return {str(k): str(v) for k, v in {**outer, **inner}.items()}


def _program_env(
    deployment: Mapping[str, Any], kind: str, pod: str, namespace: str, labels: Mapping[str, str]
) -> dict[str, str]:
    """The container's resolved ``env`` for a command replica (other kinds run no user code)."""
    if kind != "command":
        return {}
    template = _template(deployment)
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    account = (template.get("spec") or {}).get("serviceAccountName") or "default"
    facts = PodFacts(
        pod, namespace, labels, {str(k): str(v) for k, v in annotations.items()}, str(account)
    )
    return container_env(deployment, facts)


def _grace_seconds(deployment: Mapping[str, Any]) -> float | None:
    """The pod template's ``terminationGracePeriodSeconds``, when it gives a valid one."""
    value = (_template(deployment).get("spec") or {}).get("terminationGracePeriodSeconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def replica_specs(
    deployment: Mapping[str, Any],
    ports: Sequence[int],
    outbound: Mapping[int, tuple[str, int]],
    log_dir: Path,
    default_namespace: str = "default",
    pods: Sequence[str] | None = None,
) -> list[WorkloadSpec]:
    """One spec per replica, one port each: the Deployment's ``spec.replicas`` pods named
    ``<deployment>-<index>``, or one per name in ``pods`` (replacements, scaling up)."""
    meta = deployment.get("metadata") or {}
    name = str(meta.get("name") or "")
    namespace = str(meta.get("namespace") or default_namespace)
    count = replica_count(deployment) if pods is None else len(pods)
    if len(ports) != count:
        raise ValueError(
            f"Deployment {namespace}/{name}: {count} replicas need {count} ports, got {len(ports)}"
        )
    names = list(pods) if pods is not None else [f"{name}-{index}" for index in range(count)]
    kind = workload_kind(deployment)
    labels = pod_labels(deployment)
    sidecar = Sidecar(outbound=dict(outbound), workload=name, namespace=namespace, labels=labels)
    return [
        WorkloadSpec(
            kind=kind,
            deployment=name,
            namespace=namespace,
            pod=pod,
            port=port,
            log_path=log_dir / f"{namespace}.{pod}.log",
            labels=labels,
            version=version_of(labels),
            annotations=merged_annotations(deployment),
            sidecar=sidecar,
            env=_program_env(deployment, kind, pod, namespace, labels),
            grace_seconds=_grace_seconds(deployment),
        )
        for pod, port in zip(names, ports, strict=True)
    ]


def check_manifest(deployment: Mapping[str, Any], default_namespace: str = "default") -> None:
    """Raise ``ValueError`` (naming Deployment and field) for whatever :func:`launch` would
    refuse in this Deployment's replicas, without starting anything or binding a port."""
    one = {**deployment, "spec": {**(deployment.get("spec") or {}), "replicas": 1}}
    (spec,) = replica_specs(one, [1], {}, Path("/dev/null"), default_namespace)
    command_line(spec)
