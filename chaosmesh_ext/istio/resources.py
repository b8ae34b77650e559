"""Facts about the Istio networking resources this package edits: groups, versions, plurals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosmesh_ext._kobject import KObject

GROUP = "networking.istio.io"
VERSIONS: tuple[str, ...] = ("v1", "v1beta1", "v1alpha3")
DEFAULT_VERSION = "v1"
DEFAULT_API_VERSION = f"{GROUP}/{DEFAULT_VERSION}"

PLURALS: dict[str, str] = {
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "Gateway": "gateways",
    "ServiceEntry": "serviceentries",
}
KINDS: tuple[str, ...] = ("VirtualService", "DestinationRule", "Gateway")

INJECTED_ANNOTATION = "chaosmesh.io/injected"
FAULT_ROUTE_PREFIX = "chaosmesh-fault-"

# gRPC status codes by name (google.rpc.Code): a VirtualService's fault.abort.grpcStatus takes
# the name, Envoy's fault filter the number.
GRPC_STATUS_CODES: dict[str, int] = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
    "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}  # fmt: skip


def api_version(version: str = DEFAULT_VERSION) -> str:
    """``networking.istio.io/<version>`` for one of the served versions."""
    if version not in VERSIONS:
        raise ValueError(f"unknown {GROUP} version {version!r}; expected one of {VERSIONS}")
    return f"{GROUP}/{version}"


def split_api_version(value: str) -> tuple[str, str]:
    """``"networking.istio.io/v1beta1"`` -> ``("networking.istio.io", "v1beta1")``.

    The core group (``"v1"``) gives ``("", "v1")``.
    """
    group, _, version = value.rpartition("/")
    return group, version


def is_istio_api_version(value: object) -> bool:
    """Whether ``value`` is one of the networking.istio.io versions Istio serves."""
    if not isinstance(value, str):
        return False
    group, version = split_api_version(value)
    return group == GROUP and version in VERSIONS


def plural(kind: str) -> str:
    """The resource plural the Kubernetes API uses for ``kind``."""
    try:
        return PLURALS[kind]
    except KeyError:
        raise ValueError(f"not an Istio networking kind: {kind!r}") from None


def namespace_of(obj: Mapping[str, Any], default: str = "default") -> str:
    """The object's namespace, ``default`` when it names none."""
    return KObject(obj).namespace_or(default)


def name_of(obj: Mapping[str, Any]) -> str:
    return KObject(obj).name
