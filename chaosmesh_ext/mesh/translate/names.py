"""Names and small value conversions istiod uses: host resolution, cluster names, durations.

Durations go through the istio layer's parser (``istio.durations``, no dependencies of its
own), so the translator accepts exactly what validation accepted (``"1m30s"`` included).
"""

from __future__ import annotations

from typing import Any

from chaosmesh_ext._kobject import KObject
from chaosmesh_ext.errors import MeshError
from chaosmesh_ext.istio import durations

# Listener names are istiod's too; the value lives in a leaf module so that code outside the
# translator (the CLI, mesh.json views) reads it without loading the translator.
from ..listener_name import GATEWAY as GATEWAY
from ..listener_name import OUTBOUND as OUTBOUND
from ..listener_name import ListenerName as ListenerName

# Envoy's "unlimited" for circuit-breaker thresholds: istiod sets 2^32-1 when a field is unset.
MAX_UINT32 = 4294967295


class TranslationError(MeshError, ValueError):
    """Input the translator cannot map; the message names the object and the field."""


def namespace_of(obj: dict[str, Any]) -> str:
    """A Kubernetes object's namespace (``default`` when the manifest leaves it out)."""
    return KObject(obj).namespace_or()


def name_of(obj: dict[str, Any]) -> str:
    return KObject(obj).name


def resolve_host(host: str, namespace: str, domain: str) -> str:
    """Istio's ResolveShortnameToFQDN: a name without dots is a Service in ``namespace``."""
    if host == "*" or "." in host:
        return host
    return f"{host}.{namespace}.svc.{domain}"


def resolve_gateway_name(ref: str, namespace: str) -> str:
    """istiod's resolveGatewayName: ``name`` -> ``ns/name`` in the VirtualService's namespace,
    ``./name`` likewise, the legacy ``name.ns.svc.cluster.local`` -> ``ns/name``; ``mesh`` and
    ``ns/name`` stay as they are."""
    if ref == "mesh":
        return ref
    if "/" not in ref:
        if "." not in ref:
            return f"{namespace}/{ref}"
        name, _, rest = ref.partition(".")
        return f"{rest.split('.', 1)[0]}/{name}"
    prefix, _, name = ref.partition("/")
    return f"{namespace}/{name}" if prefix == "." else ref


def host_matches(pattern: str, fqdn: str) -> bool:
    """Does a VirtualService/Gateway host (possibly ``*`` or ``*.suffix``) cover ``fqdn``?"""
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return fqdn.endswith(pattern[1:])
    return pattern == fqdn


def hosts_intersect(a: str, b: str) -> str | None:
    """The more specific of two hosts when they overlap (Istio's gateway host intersection)."""
    if host_matches(a, b):
        return b
    if host_matches(b, a):
        return a
    return None


def cluster_name(port: int, subset: str, fqdn: str) -> str:
    """istiod's BuildSubsetKey: ``outbound|<port>|<subset>|<fqdn>``."""
    return f"outbound|{port}|{subset}|{fqdn}"


def parse_duration(value: Any, where: str) -> float:
    """Seconds from an Istio/protobuf duration string (``"2s"``, ``"100ms"``, ``"1m30s"``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return durations.parse_duration(value)
    except ValueError as exc:
        raise TranslationError(f"{where}: not a duration: {value!r} ({exc})") from None


def format_duration(seconds: float) -> str:
    """Protobuf JSON duration: ``"2s"``, ``"0.100s"`` (Envoy's admin prints the same)."""
    return durations.format_duration(seconds)


def duration(value: Any, where: str) -> str:
    """An Istio duration re-spelt for Envoy."""
    return format_duration(parse_duration(value, where))


def labels_match(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """Kubernetes equality-based selection (an empty selector selects nothing, as for Services)."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def creation_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    """istiod's conflict order (sortConfigByCreationTime): oldest first, then name, namespace."""
    view = KObject(obj)
    return (view.creation_timestamp, view.name, view.namespace_or())
