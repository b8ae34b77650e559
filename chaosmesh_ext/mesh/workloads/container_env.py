"""The ``env`` a pod template gives its container, as the kubelet would resolve it (pure).

A ``command`` replica runs the user's own program in place of the container's image, so it
gets what that container would see on a cluster: each ``env`` entry's ``value`` (with
``$(NAME)`` references to earlier entries expanded, ``$$`` escaping a ``$``) and the
downward API's ``valueFrom.fieldRef`` for the pod's name, namespace, labels, annotations,
IPs and service account. Secrets, ConfigMaps and ``resourceFieldRef`` do not exist on the
embedded mesh: such an entry (or ``envFrom``) is refused naming the field, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# metadata.labels['app'] / metadata.annotations['x'] (the quotes are part of the syntax).
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
LOOPBACK = "127.0.0.1"


class PodFacts:
    """What the downward API can tell a replica about its pod."""

    __slots__ = ("annotations", "labels", "name", "namespace", "service_account")

    def __init__(
        self,
        name: str,
        namespace: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        service_account: str = "default",
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        self.service_account = service_account

    def field(self, path: str) -> str | None:
        """The value of a ``fieldRef.fieldPath``; None for a path this mesh cannot answer."""
        simple = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "spec.serviceAccountName": self.service_account,
            # Every replica runs on this machine, on loopback.
            "status.podIP": LOOPBACK,
            "status.podIPs": LOOPBACK,
            "status.hostIP": LOOPBACK,
            "status.hostIPs": LOOPBACK,
        }
        if path in simple:
            return simple[path]
        match = _SUBSCRIPT.match(path)
        if match:
            source = self.labels if match.group(1) == "labels" else self.annotations
            return source.get(match.group(2), "")
        return None


def expand(value: str, defined: Mapping[str, str]) -> str:
    """Kubernetes' ``$(NAME)`` expansion: defined names replaced, others left as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return defined[name] if name in defined else match.group(0)

    return _REFERENCE.sub(replace, value)


def container_env(deployment: Mapping[str, Any], pod: PodFacts) -> dict[str, str]:
    """The first container's ``env`` for ``pod``; ``ValueError`` naming an unsupported field."""
    meta = deployment.get("metadata") or {}
    where = f"Deployment {pod.namespace}/{meta.get('name')}: spec.template.spec.containers[0]"
    pod_spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod_spec.get("containers") or []
    container = containers[0] if containers and isinstance(containers[0], Mapping) else {}
    if container.get("envFrom"):
        raise ValueError(
            f"{where}.envFrom: the embedded mesh has no ConfigMaps or Secrets to read; "
            "give the variables as env[].value"
        )
    env: dict[str, str] = {}
    for index, entry in enumerate(container.get("env") or []):
        at = f"{where}.env[{index}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ValueError(f"{at}.name: required")
        source = entry.get("valueFrom")
        if source is None:
            env[entry["name"]] = expand(str(entry.get("value") or ""), env)
            continue
        field_ref = source.get("fieldRef") if isinstance(source, Mapping) else None
        path = field_ref.get("fieldPath") if isinstance(field_ref, Mapping) else None
        value = pod.field(path) if isinstance(path, str) else None
        if value is None:
            kinds = ", ".join(sorted(source)) if isinstance(source, Mapping) else repr(source)
            raise ValueError(
                f"{at}.valueFrom: the embedded mesh resolves only fieldRef (metadata.name, "
                "metadata.namespace, metadata.labels['k'], metadata.annotations['k'], "
                f"status.podIP, status.hostIP, spec.serviceAccountName), got {kinds}"
                + (f" {path!r}" if isinstance(path, str) else "")
            )
        env[entry["name"]] = value
    return env
