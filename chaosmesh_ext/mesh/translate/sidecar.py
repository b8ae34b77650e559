"""Sidecar outbound route configurations: one per Service port, one virtual host per Service.

istiod's BuildSidecarOutboundVirtualHosts, for one Envoy standing in for every sidecar: a
virtual host ``fqdn:port`` answering to every name a pod could use for the Service, with the
routes of the VirtualService bound to ``mesh`` that covers the host, else the default route.

istiod builds routes per caller: a VirtualService that yields no route for a caller (every
route limited by ``sourceLabels`` it lacks, by ``match.port``, or only ``tcp``/``tls`` routes)
does not claim the host for that caller, who keeps the next VirtualService for the host or
the Service's default route (``buildSidecarVirtualHostsForVirtualService`` returns nil). Here
one route list serves every caller, so the callers (the mesh's workloads, told apart by the
identity headers their sidecar sends, and callers without them) are grouped by which
VirtualService governs them, and every group after the first gets its routes behind matchers
on its identity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..._sidecar import SOURCE_NAMESPACE_HEADER, SOURCE_WORKLOAD_HEADER, label_header
from .clusters import destination_rules_by_host, service_fqdn, service_ports
from .matches import source_applies
from .model import JSON, ROUTE_TYPE, MeshSnapshot
from .names import (
    ListenerName,
    cluster_name,
    creation_key,
    host_matches,
    name_of,
    namespace_of,
    resolve_host,
)
from .routes import (
    RouteContext,
    default_route,
    routes_for_virtual_service,
    service_hash_policy,
)


@dataclass(frozen=True)
class Caller:
    """A calling workload as istiod sees its proxy: namespace and pod labels.

    ``namespace=None`` is a request that carries no identity headers (not from a workload of
    the mesh): as a proxy with no labels, in no namespace.
    """

    namespace: str | None
    labels: tuple[tuple[str, str], ...] = ()

    def guard(self, label_keys: Iterable[str]) -> list[JSON]:
        """Header matchers true for this caller's requests and no other caller's."""
        if self.namespace is None:
            return [{"name": SOURCE_NAMESPACE_HEADER, "present_match": True, "invert_match": True}]
        own = dict(self.labels)
        out: list[JSON] = [
            {"name": SOURCE_NAMESPACE_HEADER, "string_match": {"exact": self.namespace}}
        ]
        out += [
            {"name": label_header(k), "string_match": {"exact": v}} for k, v in sorted(own.items())
        ]
        # A caller with more labels must not pass for this one.
        out += [
            {"name": label_header(k), "present_match": True, "invert_match": True}
            for k in sorted(set(label_keys) - set(own))
        ]
        return out


def callers_of(snapshot: MeshSnapshot) -> list[Caller]:
    """Every distinct caller of the mesh, and the caller without identity, in a fixed order."""
    known = {(e.namespace, tuple(sorted(e.labels.items()))) for e in snapshot.endpoints}
    return [Caller(ns, labels) for ns, labels in sorted(known)] + [Caller(None)]


def applies_to_mesh(vs: JSON) -> bool:
    """``gateways`` empty means the sidecars; otherwise only if it lists ``mesh``."""
    gateways = (vs.get("spec") or {}).get("gateways") or []
    return not gateways or "mesh" in gateways


def resolved_hosts(vs: JSON, domain: str) -> list[str]:
    ns = namespace_of(vs)
    return [resolve_host(str(h), ns, domain) for h in (vs.get("spec") or {}).get("hosts") or []]


MeshIndex = list[tuple[JSON, list[str]]]


def mesh_index(snapshot: MeshSnapshot) -> MeshIndex:
    """The VirtualServices bound to ``mesh`` with their resolved hosts, oldest first
    (creationTimestamp, then name): computed once per translation."""
    candidates = sorted(
        (vs for vs in snapshot.virtual_services if applies_to_mesh(vs)), key=creation_key
    )
    return [(vs, resolved_hosts(vs, snapshot.domain)) for vs in candidates]


def mesh_virtual_services_for(
    fqdn: str, snapshot: MeshSnapshot, index: MeshIndex | None = None
) -> list[JSON]:
    """The VirtualServices bound to ``mesh`` that cover ``fqdn``, in the order istiod tries
    them: exact hosts before wildcards, each oldest first."""
    entries = mesh_index(snapshot) if index is None else index
    exact = [vs for vs, hosts in entries if fqdn in hosts]
    wildcard = [
        vs
        for vs, hosts in entries
        if all(vs is not e for e in exact) and any(host_matches(h, fqdn) for h in hosts)
    ]
    return exact + wildcard


def yields_routes_for(vs: JSON, ctx: RouteContext, caller: Caller) -> bool:
    """Would BuildHTTPRoutesForVirtualService give ``caller``'s sidecar any route?"""
    ns = namespace_of(vs)
    labels = dict(caller.labels)
    for http in (vs.get("spec") or {}).get("http") or []:
        for match in http.get("match") or [None]:
            if ctx.match_applies(match, ns) and source_applies(match, labels, caller.namespace):
                return True
    return False


def domains_for(fqdn: str, port: int) -> list[str]:
    """fqdn, the absolute ``fqdn.``, short, short.ns, short.ns.svc — each also with ``:port``
    (istiod's generateVirtualHostDomains with PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN)."""
    short, ns = fqdn.split(".")[:2]
    names = [fqdn, f"{fqdn}.", short, f"{short}.{ns}", f"{short}.{ns}.svc"]
    return [d for name in names for d in (name, f"{name}:{port}")]


def label_keys(snapshot: MeshSnapshot) -> set[str]:
    """Every pod label key a caller may send, and every key a sourceLabels match names."""
    keys = {k for e in snapshot.endpoints for k in e.labels}
    for vs in snapshot.virtual_services:
        for http in (vs.get("spec") or {}).get("http") or []:
            for match in http.get("match") or []:
                keys.update((match or {}).get("sourceLabels") or {})
    return keys


def headers_to_strip(snapshot: MeshSnapshot) -> list[str]:
    """The mesh's identity headers: they tell Envoy who calls and must not reach the upstream."""
    headers = {SOURCE_WORKLOAD_HEADER, SOURCE_NAMESPACE_HEADER}
    headers |= {label_header(k) for k in label_keys(snapshot)}
    return sorted(headers)


def _guarded(routes: list[JSON], guards: list[list[JSON]]) -> list[JSON]:
    """Each route once per caller of the group, behind that caller's identity matchers."""
    out = []
    for guard in guards:
        for route in routes:
            match = dict(route["match"])
            match["headers"] = list(match.get("headers") or []) + guard
            out.append({**route, "match": match})
    return out


def host_routes(
    fqdn: str,
    port: int,
    ctx: RouteContext,
    snapshot: MeshSnapshot,
    callers: list[Caller],
    keys: set[str],
    mesh_vs: MeshIndex | None = None,
) -> list[JSON]:
    """The routes of one virtual host: istiod's per-caller choice, merged for one Envoy."""
    candidates = mesh_virtual_services_for(fqdn, snapshot, mesh_vs)
    governing: dict[int, list[Caller]] = {}  # index in candidates (len: default) -> callers
    for caller in callers:
        index = next(
            (i for i, vs in enumerate(candidates) if yields_routes_for(vs, ctx, caller)),
            len(candidates),
        )
        governing.setdefault(index, []).append(caller)
    out: list[JSON] = []
    for position, index in enumerate(sorted(governing)):
        if index < len(candidates):
            routes = routes_for_virtual_service(candidates[index], ctx)
        else:
            route = default_route(cluster_name(port, "", fqdn), f"{fqdn}:{port}/*")
            hash_policy = service_hash_policy(fqdn, port, ctx.rules)
            if hash_policy is not None:
                route["route"]["hash_policy"] = [hash_policy]
            routes = [route]
        if position == 0:
            # Callers of later groups get no route from this one, and no caller has a group
            # before it: no guard needed (the common case: one group).
            out += routes
        else:
            out += _guarded(routes, [c.guard(keys) for c in governing[index]])
    return out


def outbound_route_configs(
    snapshot: MeshSnapshot, rules: dict[str, JSON] | None = None
) -> list[JSON]:
    """RouteConfigurations named after each distinct Service port, sorted by port
    (``rules``: ``destination_rules_by_host``, computed when not given)."""
    by_port: dict[int, list[JSON]] = {}
    fqdn_ports: dict[str, list[int]] = {}
    for service in sorted(snapshot.services, key=lambda s: (namespace_of(s), name_of(s))):
        fqdn_ports[service_fqdn(service, snapshot.domain)] = service_ports(service)
        for port in service_ports(service):
            by_port.setdefault(port, []).append(service)
    strip = headers_to_strip(snapshot)
    callers = callers_of(snapshot)
    keys = label_keys(snapshot)
    mesh_vs = mesh_index(snapshot)
    if rules is None:
        rules = destination_rules_by_host(snapshot)
    configs = []
    for port in sorted(by_port):
        ctx = RouteContext(port, fqdn_ports, snapshot.domain, rules=rules)
        claimed: set[str] = set()
        hosts = []
        for service in by_port[port]:
            fqdn = service_fqdn(service, snapshot.domain)
            # Two Services with one short name in different namespaces: the first keeps it.
            domains = [d for d in domains_for(fqdn, port) if d not in claimed]
            claimed.update(domains)
            hosts.append(
                {
                    "name": f"{fqdn}:{port}",
                    "domains": domains,
                    "routes": host_routes(fqdn, port, ctx, snapshot, callers, keys, mesh_vs),
                    "include_request_attempt_count": True,
                }
            )
        configs.append(
            {
                "@type": ROUTE_TYPE,
                "name": ListenerName.outbound(port).route_config,
                "virtual_hosts": sorted(hosts, key=lambda h: str(h["name"])),
                "validate_clusters": False,
                "ignore_port_in_host_matching": True,
                # istiod's DefaultMaxDirectResponseBodySizeBytes (Envoy alone: 4 KiB).
                "max_direct_response_body_size_bytes": 1024 * 1024,
                "request_headers_to_remove": strip,
            }
        )
    return configs
