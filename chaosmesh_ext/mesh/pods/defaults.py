"""Kubernetes' defaults for Deployments and the pods they template, as the API server fills
them in (``SetDefaults_Deployment``, ``SetDefaults_PodSpec``, ``SetDefaults_Container`` in
``k8s.io/kubernetes/pkg/apis/{apps,core}/v1/defaults.go``), pure.

What a client reads back from the embedded API is then what it reads from a cluster:
``spec.replicas`` is 1 when the manifest leaves it out, the rolling-update strategy is 25 %
/ 25 %, a pod's grace period is 30 s, and so on. Only absent fields are filled in.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

JSON = dict[str, Any]

DEFAULT_GRACE_SECONDS = 30
DEFAULT_MAX_SURGE = "25%"
DEFAULT_MAX_UNAVAILABLE = "25%"


def _fill(target: JSON, defaults: Mapping[str, Any]) -> None:
    for key, value in defaults.items():
        target.setdefault(key, copy.deepcopy(value))


def image_pull_policy(image: str) -> str:
    """``Always`` for an image without a tag or tagged ``latest``, else ``IfNotPresent``."""
    if "@" in image:
        return "IfNotPresent"  # pinned by digest
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def container(given: Mapping[str, Any]) -> JSON:
    out = copy.deepcopy(dict(given))
    _fill(
        out,
        {
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": image_pull_policy(str(out.get("image") or "")),
            "resources": {},
        },
    )
    for port in out.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    return out


def pod_spec(given: Mapping[str, Any]) -> JSON:
    out = copy.deepcopy(dict(given))
    _fill(
        out,
        {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": DEFAULT_GRACE_SECONDS,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
        },
    )
    for field in ("containers", "initContainers"):
        if isinstance(out.get(field), list):
            out[field] = [container(c) if isinstance(c, dict) else c for c in out[field]]
    return out


def deployment(given: Mapping[str, Any]) -> JSON:
    """A Deployment as the API server stores it: every absent default filled in."""
    out = copy.deepcopy(dict(given))
    spec = out.setdefault("spec", {})
    if not isinstance(spec, dict):
        return out
    _fill(spec, {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600})
    strategy = spec.setdefault("strategy", {})
    if isinstance(strategy, dict):
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            if isinstance(rolling, dict):
                _fill(
                    rolling,
                    {"maxUnavailable": DEFAULT_MAX_UNAVAILABLE, "maxSurge": DEFAULT_MAX_SURGE},
                )
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        template["spec"] = pod_spec(template["spec"])
    return out


def grace_seconds(deployment_obj: Mapping[str, Any]) -> int:
    """The pods' ``terminationGracePeriodSeconds`` (30 unless the template says otherwise)."""
    template = (deployment_obj.get("spec") or {}).get("template") or {}
    value = (template.get("spec") or {}).get("terminationGracePeriodSeconds")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return DEFAULT_GRACE_SECONDS
    return value


def min_ready_seconds(deployment_obj: Mapping[str, Any]) -> float:
    """``spec.minReadySeconds``: how long a ready pod must stay ready to count as available."""
    value = (deployment_obj.get("spec") or {}).get("minReadySeconds") or 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return 0.0
    return float(value)


def _scaled(value: Any, replicas: int, round_up: bool) -> int:
    """An int-or-percent field of the rolling update against ``replicas``."""
    text = str(value).strip()
    if text.endswith("%"):
        try:
            percent = float(text[:-1])
        except ValueError:
            return 0
        amount = percent * replicas / 100
        whole = int(amount)
        return whole + 1 if round_up and amount > whole else whole
    try:
        return int(text)
    except ValueError:
        return 0


def max_unavailable(deployment_obj: Mapping[str, Any], replicas: int) -> int:
    """How many of ``replicas`` may be unavailable and the Deployment still Available
    (``maxUnavailable``, rounded down; 0 for the Recreate strategy)."""
    strategy = (deployment_obj.get("spec") or {}).get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", DEFAULT_MAX_SURGE), replicas, round_up=True)
    unavailable = _scaled(
        rolling.get("maxUnavailable", DEFAULT_MAX_UNAVAILABLE), replicas, round_up=False
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1  # as the deployment controller: both 0 would never progress
    return min(unavailable, replicas)
