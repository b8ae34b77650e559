"""Discovery documents (``/api``, ``/apis``, groups, resource lists, ``/version``).

Shaped as kube-apiserver answers them, with every field the official client's models
require, so ``kubectl`` finds ``vs``/``dr``/``gw`` and the Python client's discovery calls
validate.
"""

from __future__ import annotations

from typing import Any

from . import resources
from .resources import ResourceType

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-chaosmesh",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23 (embedded mesh: Python)",
    "compiler": "gc",
    "platform": "linux/amd64",
}

# Subresources the proxy serves (kube-apiserver lists them as "<plural>/proxy").
_PROXY_VERBS = ["create", "delete", "get", "patch", "update"]


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str, versions: tuple[str, ...]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def group_list() -> dict[str, Any]:
    groups = [_group(name, versions) for name, versions in sorted(resources.groups().items())]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(name: str) -> dict[str, Any] | None:
    versions = resources.groups().get(name)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    return entry


def resource_list(group_name: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in resources.ALL_TYPES if rt.group == group_name and version in rt.versions]
    if not types:
        return None
    listed = []
    for rt in types:
        listed.append(_resource(rt))
        if rt.plural in ("services", "pods"):
            listed.append(
                {
                    "name": f"{rt.plural}/proxy",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "ServiceProxyOptions" if rt.plural == "services" else "PodProxyOptions",
                    "verbs": _PROXY_VERBS,
                }
            )
    group_version = f"{group_name}/{version}" if group_name else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": listed,
    }
