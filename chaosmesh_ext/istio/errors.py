"""The one exception of the Istio domain: which object, which field, and why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosmesh_ext._kobject import KObject
from chaosmesh_ext.errors import ChaosMeshError


class IstioError(ChaosMeshError, ValueError):
    """Bad input to an Istio edit or an invalid result.

    ``str()`` reads ``VirtualService default/reviews: spec.http[0].fault...: reason`` so a
    Chaos Toolkit journal names the object and the field without further context.
    """

    def __init__(self, kind: str, name: str, field: str, reason: str) -> None:
        self.kind = kind
        self.name = name
        self.field = field
        self.reason = reason
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.kind} {self.name}".strip()
        if self.field:
            return f"{where}: {self.field}: {self.reason}"
        return f"{where}: {self.reason}"

    def __str__(self) -> str:
        return self._text()

    @classmethod
    def for_object(
        cls, obj: Mapping[str, Any] | None, field: str, reason: str, kind: str = ""
    ) -> IstioError:
        """An error about ``obj`` (a resource dict), named ``namespace/name``."""
        return cls(object_kind(obj, kind), object_name(obj), field, reason)


def object_kind(obj: Mapping[str, Any] | None, default: str = "") -> str:
    if isinstance(obj, Mapping) and isinstance(obj.get("kind"), str):
        return str(obj["kind"])
    return default


def object_name(obj: Mapping[str, Any] | None) -> str:
    """``namespace/name`` of a resource dict (``default`` when it names no namespace)."""
    view = KObject(obj)
    if not view.metadata:
        return ""
    return f"{view.namespace_or()}/{view.name}"
