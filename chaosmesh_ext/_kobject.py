"""A typed, read-only view of a Kubernetes object as the API (or a manifest) gives it: a dict.

``KObject(obj).name``, ``.namespace``, ``.labels``, ``.annotations``, ``.resource_version``,
``.spec`` read ``metadata``/``spec`` the same way everywhere, whatever is missing or of the
wrong type (a manifest can say ``metadata: null``): text fields read ``""`` or ``None``, maps
read ``{}``. Every layer uses it (Istio resources, the kube client's objects, the embedded
mesh's manifests, the fortio pod list), so it belongs to none; it never changes the object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["KObject"]

_EMPTY: Mapping[str, Any] = {}


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else _EMPTY


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class KObject:
    """Accessors over one Kubernetes object dict (``None`` reads as an empty object)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Mapping[str, Any] | None) -> None:
        self.obj: Mapping[str, Any] = obj if isinstance(obj, Mapping) else _EMPTY

    @property
    def kind(self) -> str:
        return _text(self.obj.get("kind")) or ""

    @property
    def metadata(self) -> Mapping[str, Any]:
        return _map(self.obj.get("metadata"))

    @property
    def name(self) -> str:
        return _text(self.metadata.get("name")) or ""

    @property
    def namespace(self) -> str | None:
        """The namespace the object names, or None (a manifest may leave it out)."""
        return _text(self.metadata.get("namespace"))

    def namespace_or(self, default: str = "default") -> str:
        return self.namespace or default

    @property
    def labels(self) -> Mapping[str, Any]:
        return _map(self.metadata.get("labels"))

    @property
    def annotations(self) -> Mapping[str, Any]:
        return _map(self.metadata.get("annotations"))

    @property
    def resource_version(self) -> str | None:
        return _text(self.metadata.get("resourceVersion"))

    @property
    def creation_timestamp(self) -> str:
        return _text(self.metadata.get("creationTimestamp")) or ""

    @property
    def deleting(self) -> bool:
        """Whether the object is being deleted (``metadata.deletionTimestamp`` is set)."""
        return bool(self.metadata.get("deletionTimestamp"))

    @property
    def spec(self) -> Mapping[str, Any]:
        return _map(self.obj.get("spec"))

    def __repr__(self) -> str:
        return f"KObject({self.kind} {self.namespace_or()}/{self.name})"
