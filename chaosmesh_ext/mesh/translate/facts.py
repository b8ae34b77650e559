"""What the translator reads of one VirtualService or Service, read once per object.

Every translation asks each VirtualService which hosts it names, which Gateways it binds to,
where its routes send, how old it is...; each Service its FQDN and ports. ``vs_facts`` and
``service_facts`` answer from a record made the first time an object is seen (kept by the
``Memo`` while the object is the same), each answer computed on first use: a malformed field
fails where the translation first reads it, as it would without the record.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from .memo import Memo
from .model import JSON, MeshSnapshot
from .names import creation_key, name_of, namespace_of, resolve_gateway_name, resolve_host


def service_fqdn(service: JSON, domain: str) -> str:
    return f"{name_of(service)}.{namespace_of(service)}.svc.{domain}"


def service_ports(service: JSON) -> list[int]:
    ports = (service.get("spec") or {}).get("ports") or []
    return sorted({int(p["port"]) for p in ports if "port" in p})


def applies_to_mesh(vs: JSON) -> bool:
    """``gateways`` empty means the sidecars; otherwise only if it lists ``mesh``."""
    gateways = (vs.get("spec") or {}).get("gateways") or []
    return not gateways or "mesh" in gateways


def resolved_hosts(vs: JSON, domain: str) -> list[str]:
    ns = namespace_of(vs)
    return [resolve_host(str(h), ns, domain) for h in (vs.get("spec") or {}).get("hosts") or []]


def gateway_names(vs: JSON) -> tuple[str, ...]:
    """The Gateways ``spec.gateways`` names, each as ``ns/name`` (any of istiod's spellings)."""
    ns = namespace_of(vs)
    refs = (vs.get("spec") or {}).get("gateways") or []
    return tuple(dict.fromkeys(resolve_gateway_name(str(ref), ns) for ref in refs))


def source_label_keys(vs: JSON) -> frozenset[str]:
    """The label keys the ``sourceLabels`` matches of ``vs`` name."""
    keys: set[str] = set()
    for http in (vs.get("spec") or {}).get("http") or []:
        for match in http.get("match") or []:
            keys.update((match or {}).get("sourceLabels") or {})
    return frozenset(keys)


def names_no_source(vs: JSON) -> bool:
    """No match of ``vs`` looks at the caller (``sourceLabels``, ``sourceNamespace``; a match
    with ``gateways`` never does): it yields routes for every caller or for none."""
    for http in (vs.get("spec") or {}).get("http") or []:
        for match in http.get("match") or []:
            looks = match and not match.get("gateways")
            if looks and (match.get("sourceLabels") or match.get("sourceNamespace")):
                return False
    return True


def destination_hosts(vs: JSON, domain: str) -> tuple[str, ...] | None:
    """Every host the routes and mirrors of ``vs`` send to, resolved as the route translation
    resolves them (their Service ports and DestinationRules are what it reads besides ``vs``);
    None for a malformed VirtualService (its translation says what is wrong)."""
    ns = namespace_of(vs)
    destinations: list[Any] = []
    try:
        for http in (vs.get("spec") or {}).get("http") or []:
            destinations += [d.get("destination") or {} for d in http.get("route") or []]
            if http.get("mirror"):
                destinations.append(http["mirror"])
            for mirror in http.get("mirrors") or []:
                if mirror.get("destination"):
                    destinations.append(mirror["destination"])
        hosts = (resolve_host(str(d.get("host") or ""), ns, domain) for d in destinations)
        return tuple(dict.fromkeys(hosts))
    except (AttributeError, TypeError, KeyError):
        return None


class VirtualServiceFacts:
    """One VirtualService's answers to the translator's recurring questions."""

    def __init__(self, vs: JSON, domain: str) -> None:
        self.vs = vs
        self.domain = domain

    @cached_property
    def age(self) -> tuple[str, str, str]:
        return creation_key(self.vs)

    @cached_property
    def for_mesh(self) -> bool:
        return applies_to_mesh(self.vs)

    @cached_property
    def hosts(self) -> list[str]:
        return resolved_hosts(self.vs, self.domain)

    @cached_property
    def gateways(self) -> tuple[str, ...]:
        return gateway_names(self.vs)

    @cached_property
    def source_label_keys(self) -> frozenset[str]:
        return source_label_keys(self.vs)

    @cached_property
    def names_no_source(self) -> bool:
        return names_no_source(self.vs)

    @cached_property
    def destination_hosts(self) -> tuple[str, ...] | None:
        return destination_hosts(self.vs, self.domain)


class ServiceFacts:
    """One Service's FQDN and ports."""

    def __init__(self, service: JSON, domain: str) -> None:
        self.service = service
        self.domain = domain

    @cached_property
    def fqdn(self) -> str:
        return service_fqdn(self.service, self.domain)

    @cached_property
    def ports(self) -> list[int]:
        return service_ports(self.service)

    @cached_property
    def sort_key(self) -> tuple[str, str]:
        return (namespace_of(self.service), name_of(self.service))


def vs_facts(vs: JSON, domain: str, memo: Memo) -> VirtualServiceFacts:
    return memo.get(("vs facts", id(vs), domain), vs, lambda: VirtualServiceFacts(vs, domain))


def service_facts(service: JSON, domain: str, memo: Memo) -> ServiceFacts:
    return memo.get(
        ("service facts", id(service), domain), service, lambda: ServiceFacts(service, domain)
    )


class SnapshotFacts:
    """One snapshot's Services with their facts, read once per translation (the
    VirtualServices are indexed across translations: ``vs_index``)."""

    def __init__(self, snapshot: MeshSnapshot, memo: Memo) -> None:
        self.snapshot = snapshot
        self.memo = memo

    @cached_property
    def services(self) -> list[ServiceFacts]:
        domain = self.snapshot.domain
        return [service_facts(s, domain, self.memo) for s in self.snapshot.services]

    @cached_property
    def fqdn_ports(self) -> dict[str, list[int]]:
        """Service FQDN -> its ports: the same object while the Services are the same ones,
        so what was computed from it can be reused by identity."""
        services = self.snapshot.services
        return self.memo.get(
            ("fqdn ports", tuple(map(id, services)), self.snapshot.domain),
            tuple(services),
            lambda: {s.fqdn: s.ports for s in self.services},
        )


def snapshot_facts(snapshot: MeshSnapshot, memo: Memo) -> SnapshotFacts:
    return memo.of(snapshot, "snapshot facts", lambda s: SnapshotFacts(s, memo))
