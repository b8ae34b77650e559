"""``as=Table`` responses, the columns ``kubectl get`` prints for each kind.

Columns follow Istio's CRD printer columns (VirtualService: Gateways, Hosts, Age;
DestinationRule: Host, Age; Gateway: Age) and kube-apiserver's built-in printers for
Services, Pods, Deployments and Namespaces.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Column = tuple[str, str, Callable[[dict[str, Any]], Any]]  # (name, type, cell)


def human_age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl's short age: 45s, 12m, 3h, 2d."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600 * 3:
        return f"{seconds // 60}m"
    if seconds < 86400 * 2:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}


def _age(obj: dict[str, Any]) -> str:
    return human_age(_meta(obj).get("creationTimestamp"))


def _json_list(value: Any) -> str:
    return "[" + ",".join(f'"{v}"' for v in value) + "]" if value else ""


def _ports(obj: dict[str, Any]) -> str:
    return ",".join(
        f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in _spec(obj).get("ports") or []
    )


def _pod_ready(obj: dict[str, Any]) -> str:
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return f"{sum(1 for s in statuses if s.get('ready'))}/{len(statuses)}"


def _pod_status(obj: dict[str, Any]) -> str:
    """kubectl's STATUS column (printPod): a waiting or terminated container's reason over
    the phase, and ``Terminating`` for a pod being deleted."""
    status = obj.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for container in reversed(status.get("containerStatuses") or []):
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated")
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated is not None:
            reason = terminated.get("reason") or f"ExitCode:{terminated.get('exitCode', 0)}"
    if _meta(obj).get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _deploy_ready(obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{_spec(obj).get('replicas', 1)}"


COLUMNS: dict[str, list[Column]] = {
    "virtualservices": [
        ("Gateways", "string", lambda o: _json_list(_spec(o).get("gateways"))),
        ("Hosts", "string", lambda o: _json_list(_spec(o).get("hosts"))),
        ("Age", "date", _age),
    ],
    "destinationrules": [
        ("Host", "string", lambda o: _spec(o).get("host", "")),
        ("Age", "date", _age),
    ],
    "gateways": [("Age", "date", _age)],
    "services": [
        ("Type", "string", lambda o: _spec(o).get("type", "ClusterIP")),
        ("Cluster-IP", "string", lambda o: _spec(o).get("clusterIP", "None")),
        ("External-IP", "string", lambda o: "<none>"),
        ("Port(s)", "string", _ports),
        ("Age", "string", _age),
    ],
    "pods": [
        ("Ready", "string", _pod_ready),
        ("Status", "string", _pod_status),
        (
            "Restarts",
            "string",
            lambda o: str(
                sum(
                    s.get("restartCount", 0)
                    for s in (o.get("status") or {}).get("containerStatuses") or []
                )
            ),
        ),
        ("Age", "string", _age),
    ],
    "deployments": [
        ("Ready", "string", _deploy_ready),
        ("Up-to-date", "integer", lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
        ("Available", "integer", lambda o: (o.get("status") or {}).get("availableReplicas", 0)),
        ("Age", "string", _age),
    ],
    "namespaces": [("Status", "string", lambda o: "Active"), ("Age", "string", _age)],
}


def wants_table(accept: str) -> bool:
    """True when the client asked for ``application/json;as=Table;...;g=meta.k8s.io``."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")}
        if "as=Table" in params and "g=meta.k8s.io" in params:
            return True
    return False


def table_version(accept: str) -> str:
    return "v1beta1" if "v=v1beta1" in accept and "v=v1;" not in accept + ";" else "v1"


def to_table(
    plural: str,
    items: list[dict[str, Any]],
    resource_version: str,
    include_object: str = "Metadata",
    version: str = "v1",
) -> dict[str, Any]:
    columns = [
        ("Name", "string", lambda o: _meta(o).get("name", "")),
        *COLUMNS.get(plural, [("Age", "date", _age)]),
    ]
    definitions = [
        {
            "name": name,
            "type": kind,
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": 0,
        }
        for name, kind, _ in columns
    ]
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": [cell(obj) for _, _, cell in columns]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": f"meta.k8s.io/{version}",
                "metadata": _meta(obj),
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
