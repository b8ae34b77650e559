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
from .clusters import destination_rules_by_host
from .facts import ServiceFacts, snapshot_facts, vs_facts
from .matches import source_applies
from .memo import Memo
from .model import JSON, ROUTE_TYPE, MeshSnapshot
from .names import (
    ListenerName,
    cluster_name,
    host_matches,
    namespace_of,
)
from .routes import (
    RouteContext,
    default_route,
    service_hash_policy,
    virtual_service_routes,
)
from .vs_index import vs_index


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


class MeshIndex:
    """The VirtualServices bound to ``mesh``, oldest first (creationTimestamp, then name), by
    the hosts they name, so finding the VirtualServices of one Service does not go through
    all of them (``vs_index`` keeps them from one translation to the next)."""

    def __init__(self, snapshot: MeshSnapshot, memo: Memo) -> None:
        self._index = vs_index(snapshot, memo)
        self.virtual_services = self._index.mesh_virtual_services()

    @property
    def changes(self) -> int:
        """The number of the index's last change (``changed_since``)."""
        return self._index.changes

    def changed_since(self, number: int) -> set[str] | None:
        """The hosts whose ``covering`` may differ from what it was at change ``number``
        (None: any host)."""
        return self._index.mesh_hosts_changed_since(number)

    def covering(self, fqdn: str) -> list[JSON]:
        """The VirtualServices that cover ``fqdn``, in the order istiod tries them: exact
        hosts before wildcards, each oldest first."""
        exact = self._index.mesh_exact(fqdn)
        wildcard = [
            vs
            for vs, hosts in self._index.mesh_wildcards()
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


def _yields_for_all(vs: JSON, ctx: RouteContext, memo: Memo) -> bool | None:
    """``yields_routes_for`` when it is the same for every caller, else None."""
    if not vs_facts(vs, ctx.domain, memo).names_no_source:
        return None
    return memo.get(
        ("yields", id(vs), ctx.listen_port, ctx.gateway_names),
        vs,
        lambda: yields_routes_for(vs, ctx, Caller(None)),
    )


def domains_for(fqdn: str, port: int) -> list[str]:
    """fqdn, the absolute ``fqdn.``, short, short.ns, short.ns.svc — each also with ``:port``
    (istiod's generateVirtualHostDomains with PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN)."""
    short, ns = fqdn.split(".")[:2]
    names = [fqdn, f"{fqdn}.", short, f"{short}.{ns}", f"{short}.{ns}.svc"]
    return [d for name in names for d in (name, f"{name}:{port}")]


def label_keys(snapshot: MeshSnapshot, memo: Memo | None = None) -> set[str]:
    """Every pod label key a caller may send, and every key a sourceLabels match names."""
    memo = memo if memo is not None else Memo()
    keys = {k for e in snapshot.endpoints for k in e.labels}
    keys.update(vs_index(snapshot, memo).label_keys())
    return keys


def headers_to_strip(
    snapshot: MeshSnapshot, memo: Memo | None = None, keys: set[str] | None = None
) -> list[str]:
    """The mesh's identity headers: they tell Envoy who calls and must not reach the upstream
    (``keys``: ``label_keys``, computed when not given)."""
    headers = {SOURCE_WORKLOAD_HEADER, SOURCE_NAMESPACE_HEADER}
    headers |= {label_header(k) for k in (label_keys(snapshot, memo) if keys is None else keys)}
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


def _governing(
    candidates: list[JSON], ctx: RouteContext, callers: list[Caller], memo: Memo
) -> dict[int, list[Caller]]:
    """Index in ``candidates`` of the VirtualService governing each caller (``len``: none,
    the Service's default route), callers grouped by it. Candidates are tried in order, as
    istiod does, each only if all before it yield nothing."""
    for index, vs in enumerate(candidates):
        same_for_all = _yields_for_all(vs, ctx, memo)
        if same_for_all is None:
            break  # this one depends on the caller: decide caller by caller
        if same_for_all:
            return {index: list(callers)}  # the common case: one group
    else:
        return {len(candidates): list(callers)}
    governing: dict[int, list[Caller]] = {}
    for caller in callers:
        chosen = len(candidates)
        for index, vs in enumerate(candidates):
            yields = _yields_for_all(vs, ctx, memo)
            if yields is None:
                yields = yields_routes_for(vs, ctx, caller)
            if yields:
                chosen = index
                break
        governing.setdefault(chosen, []).append(caller)
    return governing


def host_routes(
    fqdn: str,
    port: int,
    ctx: RouteContext,
    snapshot: MeshSnapshot,
    callers: list[Caller],
    keys: set[str],
    mesh_vs: MeshIndex | None = None,
    memo: Memo | None = None,
) -> list[JSON]:
    """The routes of one virtual host: istiod's per-caller choice, merged for one Envoy."""
    memo = memo if memo is not None else Memo()
    candidates = (mesh_vs or MeshIndex(snapshot, memo)).covering(fqdn)
    governing = _governing(candidates, ctx, callers, memo)
    out: list[JSON] = []
    for position, index in enumerate(sorted(governing)):
        if index < len(candidates):
            routes = virtual_service_routes(candidates[index], ctx, memo)
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


Layout = dict[int, list[tuple[ServiceFacts, tuple[str, ...]]]]


def _port_layout(services: list[ServiceFacts]) -> Layout:
    """Service port -> its Services (by namespace, then name), each with the domains of its
    virtual host: two Services with one short name in different namespaces, the first keeps
    it."""
    by_port: dict[int, list[ServiceFacts]] = {}
    for service in sorted(services, key=lambda s: s.sort_key):
        for port in service.ports:
            by_port.setdefault(port, []).append(service)
    layout: Layout = {}
    for port in sorted(by_port):
        claimed: set[str] = set()
        layout[port] = []
        for service in by_port[port]:
            domains = tuple(d for d in domains_for(service.fqdn, port) if d not in claimed)
            claimed.update(domains)
            layout[port].append((service, domains))
    return layout


def outbound_route_configs(
    snapshot: MeshSnapshot,
    rules: dict[str, JSON] | None = None,
    memo: Memo | None = None,
    keys: set[str] | None = None,
) -> list[JSON]:
    """RouteConfigurations named after each distinct Service port, sorted by port
    (``rules``: ``destination_rules_by_host``, ``keys``: ``label_keys``, computed when not
    given). With a ``memo``, a port's configuration is the same object while its Services,
    the VirtualServices bound to ``mesh``, the callers and the DestinationRules are."""
    memo = memo if memo is not None else Memo()
    facts = snapshot_facts(snapshot, memo)
    layout = memo.get(
        ("sidecar ports", tuple(map(id, snapshot.services)), snapshot.domain),
        tuple(snapshot.services),
        lambda: _port_layout(facts.services),
    )
    if keys is None:
        keys = label_keys(snapshot, memo)
    strip = headers_to_strip(snapshot, memo, keys)
    callers = callers_of(snapshot)
    mesh_vs = MeshIndex(snapshot, memo)
    if rules is None:
        rules = destination_rules_by_host(snapshot, memo=memo)
    fqdn_ports = facts.fqdn_ports
    shared = (
        tuple(map(id, mesh_vs.virtual_services)), tuple(callers), frozenset(keys), tuple(strip),
        id(rules), id(fqdn_ports), snapshot.domain,
    )  # fmt: skip
    configs = []
    for port, hosts in layout.items():
        configs.append(
            memo.get(
                ("sidecar routes", port, id(layout), shared),
                (layout, mesh_vs.virtual_services, rules, fqdn_ports),
                lambda port=port, hosts=hosts: _route_config(  # type: ignore[misc]
                    port, hosts, snapshot, fqdn_ports, rules, callers, keys, strip, mesh_vs, memo
                ),
            )
        )
    return configs


class _PortHosts:
    """The virtual hosts of one port's route configuration, by name, as last computed: a
    change of mesh VirtualServices recomputes only the hosts whose VirtualServices changed."""

    def __init__(self) -> None:
        self.changes: int | None = None  # the index's change they reflect
        self.hosts: list[JSON] = []  # sorted by name
        self.at: dict[str, tuple[int, tuple[str, ...]]] = {}  # fqdn -> place, domains


def _route_config(
    port: int,
    layout: list[tuple[ServiceFacts, tuple[str, ...]]],
    snapshot: MeshSnapshot,
    fqdn_ports: dict[str, list[int]],
    rules: dict[str, JSON],
    callers: list[Caller],
    keys: set[str],
    strip: list[str],
    mesh_vs: MeshIndex,
    memo: Memo,
) -> JSON:
    ctx = RouteContext(port, fqdn_ports, snapshot.domain, rules=rules)
    # What every virtual host of this port reads besides its own VirtualServices, as one
    # object standing for them (hashing the callers once per port, not once per host).
    inputs = (port, tuple(callers), frozenset(keys), id(rules), id(fqdn_ports), snapshot.domain)
    shared = memo.get(("sidecar vhost inputs", inputs), (rules, fqdn_ports), object)

    def vhost(fqdn: str, domains: tuple[str, ...]) -> JSON:
        candidates = mesh_vs.covering(fqdn)
        return memo.get(
            ("sidecar vhost", fqdn, domains, tuple(map(id, candidates)), id(shared)),
            (tuple(candidates), shared),
            lambda: {
                "name": f"{fqdn}:{port}",
                "domains": list(domains),
                "routes": host_routes(fqdn, port, ctx, snapshot, callers, keys, mesh_vs, memo),
                "include_request_attempt_count": True,
            },
        )

    # The same Services (``layout``) and inputs (``shared``): the last virtual hosts hold
    # but for the hosts whose mesh VirtualServices changed since.
    last = memo.get(("sidecar vhosts", port, id(layout), id(shared)), (layout, shared), _PortHosts)
    changed = None if last.changes is None else mesh_vs.changed_since(last.changes)
    if changed is not None:
        hosts = list(last.hosts)
        for fqdn in changed & last.at.keys():
            place, domains = last.at[fqdn]
            hosts[place] = vhost(fqdn, domains)
    else:
        named = sorted(
            ((vhost(s.fqdn, domains), s.fqdn, domains) for s, domains in layout),
            key=lambda h: str(h[0]["name"]),
        )
        hosts = [h for h, _, _ in named]
        last.at = {fqdn: (place, domains) for place, (_, fqdn, domains) in enumerate(named)}
        if len(last.at) != len(layout):  # one Service listed twice: always from scratch
            last.at = {}
            last.changes = None
    if last.at:
        last.hosts, last.changes = hosts, mesh_vs.changes
    return {
        "@type": ROUTE_TYPE,
        "name": ListenerName.outbound(port).route_config,
        "virtual_hosts": hosts,
        "validate_clusters": False,
        "ignore_port_in_host_matching": True,
        # istiod's DefaultMaxDirectResponseBodySizeBytes (Envoy alone: 4 KiB).
        "max_direct_response_body_size_bytes": 1024 * 1024,
        "request_headers_to_remove": strip,
    }
