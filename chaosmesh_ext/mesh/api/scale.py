"""The ``deployments/{name}/scale`` subresource (``autoscaling/v1`` Scale), as kube-apiserver
serves it: ``kubectl scale``, ``read/replace/patch_namespaced_deployment_scale``.

A Scale is a view of its Deployment: reading it shows ``spec.replicas`` and the status'
count and selector; writing it is a write of the Deployment's ``spec.replicas`` with the
same preconditions (``resourceVersion``), so the store's owner of Deployments acts on it.
"""

from __future__ import annotations

import copy
from typing import Any

from . import resources
from .status import bad_request, conflict
from .store import BUILTIN_PATCHES, Store, apply_patch, read_patch

SCALE_API_VERSION = "autoscaling/v1"


def selector_text(selector: Any) -> str:
    """A LabelSelector as the text form Scale's ``status.selector`` carries (``a=b,c in (d)``)."""
    if not isinstance(selector, dict):
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), str(expression.get("operator") or "")
        values = ",".join(expression.get("values") or [])
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def scale_of(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Scale view of a Deployment as the API shows it."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": SCALE_API_VERSION,
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {
            "replicas": status.get("replicas", 0),
            "selector": selector_text(spec.get("selector")),
        },
    }


def read(store: Store, namespace: str, name: str) -> dict[str, Any]:
    return scale_of(store.get(resources.DEPLOYMENTS, namespace, name))


def replace(store: Store, namespace: str, name: str, body: Any) -> dict[str, Any]:
    """PUT a Scale: its ``spec.replicas`` becomes the Deployment's."""
    if not isinstance(body, dict):
        raise bad_request("the body of a Scale must be a JSON object")
    with store.writing():
        return _write(store, namespace, name, body)


def patch(store: Store, namespace: str, name: str, content_type: str, raw: bytes) -> dict[str, Any]:
    """PATCH a Scale (merge, JSON or strategic merge patch), then write it as PUT does."""
    media, patch_doc = read_patch(content_type, raw, BUILTIN_PATCHES)
    with store.writing():
        current = read(store, namespace, name)
        return _write(store, namespace, name, apply_patch(media, patch_doc, current))


def _write(store: Store, namespace: str, name: str, scale: dict[str, Any]) -> dict[str, Any]:
    deployment = store.get(resources.DEPLOYMENTS, namespace, name)
    current_rv = deployment["metadata"]["resourceVersion"]
    wanted_rv = str((scale.get("metadata") or {}).get("resourceVersion") or "")
    if wanted_rv and wanted_rv != current_rv:
        raise conflict(
            resources.DEPLOYMENTS.group,
            resources.DEPLOYMENTS.plural,
            name,
            "the object has been modified; "
            "please apply your changes to the latest version and try again",
        )
    wanted = copy.deepcopy(deployment)
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    wanted.setdefault("spec", {})["replicas"] = replicas
    wanted.pop("status", None)
    return scale_of(store.replace(resources.DEPLOYMENTS, namespace, name, wanted))
