"""The resource types the embedded API serves, as kube-apiserver's discovery describes them.

One ``ResourceType`` per (group, plural): the Istio kinds are writable and served in three
versions (v1 is the storage version, as on Istio 1.22+); Services, Deployments, Pods and
Namespaces are views of what the daemon runs. Of those, the writes a workload controller
answers on a cluster (deleting a Pod, scaling a Deployment) are ``owned_writes``: the store
hands them to the daemon, which acts on its processes (``Store.set_owner``).
"""

from __future__ import annotations

from dataclasses import dataclass

ISTIO_GROUP = "networking.istio.io"
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")

READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    versions: tuple[str, ...]
    plural: str
    singular: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    writable: bool = False
    categories: tuple[str, ...] = ()
    # Write verbs served by the daemon's owner of this kind (not by the store's Istio path).
    owned_writes: tuple[str, ...] = ()

    @property
    def verbs(self) -> tuple[str, ...]:
        if self.writable:
            return WRITE_VERBS
        return tuple(sorted({*READ_VERBS, *self.owned_writes}))

    @property
    def key(self) -> str:
        return f"{self.group}/{self.plural}"

    def api_version(self, version: str | None = None) -> str:
        version = version or self.versions[0]
        return f"{self.group}/{version}" if self.group else version


VIRTUAL_SERVICES = ResourceType(
    ISTIO_GROUP,
    ISTIO_VERSIONS,
    "virtualservices",
    "virtualservice",
    "VirtualService",
    short_names=("vs",),
    writable=True,
    categories=("istio-io", "networking-istio-io"),
)
DESTINATION_RULES = ResourceType(
    ISTIO_GROUP,
    ISTIO_VERSIONS,
    "destinationrules",
    "destinationrule",
    "DestinationRule",
    short_names=("dr",),
    writable=True,
    categories=("istio-io", "networking-istio-io"),
)
GATEWAYS = ResourceType(
    ISTIO_GROUP,
    ISTIO_VERSIONS,
    "gateways",
    "gateway",
    "Gateway",
    short_names=("gw",),
    writable=True,
    categories=("istio-io", "networking-istio-io"),
)
SERVICES = ResourceType(
    "", ("v1",), "services", "service", "Service", short_names=("svc",), categories=("all",)
)
PODS = ResourceType(
    "",
    ("v1",),
    "pods",
    "pod",
    "Pod",
    short_names=("po",),
    categories=("all",),
    owned_writes=("delete", "deletecollection"),
)
NAMESPACES = ResourceType(
    "", ("v1",), "namespaces", "namespace", "Namespace", namespaced=False, short_names=("ns",)
)
DEPLOYMENTS = ResourceType(
    "apps",
    ("v1",),
    "deployments",
    "deployment",
    "Deployment",
    short_names=("deploy",),
    categories=("all",),
    owned_writes=("patch", "update"),
)

ISTIO_TYPES = (VIRTUAL_SERVICES, DESTINATION_RULES, GATEWAYS)
ALL_TYPES = (*ISTIO_TYPES, SERVICES, PODS, NAMESPACES, DEPLOYMENTS)


def find(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in ALL_TYPES:
        if rt.group == group and rt.plural == plural and version in rt.versions:
            return rt
    return None


def by_kind(kind: str) -> ResourceType | None:
    for rt in ALL_TYPES:
        if rt.kind == kind:
            return rt
    return None


def groups() -> dict[str, tuple[str, ...]]:
    """Named API groups (not the core group) and their versions, preferred first."""
    out: dict[str, tuple[str, ...]] = {}
    for rt in ALL_TYPES:
        if rt.group:
            out[rt.group] = rt.versions
    return out
