"""Gateways + the VirtualServices bound to them -> ingress listeners and route configurations
(istiod's gateway.go: buildGatewayListeners, buildGatewayHTTPRouteConfig; model/gateway.go).

A listener ``gateway_<port>`` per distinct server port. Plain HTTP servers on a port share the
route configuration ``http.<port>``; each HTTPS server (``tls.mode: SIMPLE``) gets its own filter
chain, chosen by SNI, terminating TLS with the certificate of the ``kubernetes.io/tls`` Secret
its ``credentialName`` names, and its own route configuration
``https.<port>.<port name>.<gateway>.<namespace>``.

A virtual host per host in the intersection of a server's hosts (``ns/host`` entries count only
for VirtualServices of that namespace) and a bound VirtualService's hosts. VirtualServices for
one host are appended in age order and catch-all routes moved last (``SortVHostRoutes``).
``tls.httpsRedirect`` makes a virtual host answer 301 to ``https://`` before any routing
(``require_tls: ALL``), hosts without a VirtualService included.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from .context import RouteContext
from .facts import gateway_names, resolved_hosts
from .listeners import build_tls_listener, reused_listener
from .matches import is_catch_all
from .memo import Memo
from .model import JSON, ROUTE_TYPE, MeshSnapshot, TranslationWarning
from .names import (
    ListenerName,
    creation_key,
    hosts_intersect,
    name_of,
    namespace_of,
)
from .routes import routes_key, sort_vhost_routes, virtual_service_routes
from .sidecar import headers_to_strip
from .vs_index import vs_index

HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}
# istiod's DefaultMaxDirectResponseBodySizeBytes (Envoy alone allows 4 KiB).
MAX_DIRECT_RESPONSE_BYTES = 1024 * 1024
_TLS_VERSIONS = {"TLSV1_0": "TLSv1_0", "TLSV1_1": "TLSv1_1", "TLSV1_2": "TLSv1_2",
                 "TLSV1_3": "TLSv1_3"}  # fmt: skip
DOWNSTREAM_TLS_TYPE = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)


@dataclass(frozen=True)
class Server:
    """One Gateway server as istiod merges it: hosts with ``./`` and ``*/`` resolved."""

    gateway: JSON
    spec: JSON
    index: int
    hosts: tuple[str, ...]

    @property
    def gateway_name(self) -> str:
        return f"{namespace_of(self.gateway)}/{name_of(self.gateway)}"

    @property
    def port(self) -> int:
        return int((self.spec.get("port") or {})["number"])

    @property
    def protocol(self) -> str:
        return str((self.spec.get("port") or {}).get("protocol") or "").upper()

    @property
    def tls(self) -> JSON | None:
        tls = self.spec.get("tls")
        return tls if isinstance(tls, dict) else None

    @property
    def route_name(self) -> str:
        """istiod's gatewayRDSRouteName."""
        if self.protocol in HTTP_PROTOCOLS:
            return ListenerName.gateway(self.port).route_config
        port_name = (self.spec.get("port") or {}).get("name") or ""
        return f"https.{self.port}.{port_name}.{name_of(self.gateway)}.{namespace_of(self.gateway)}"

    def warning(self, field: str, message: str) -> TranslationWarning:
        return TranslationWarning(
            "Gateway",
            namespace_of(self.gateway),
            name_of(self.gateway),
            f"spec.servers[{self.index}].{field}" if field else f"spec.servers[{self.index}]",
            message,
        )


def sanitize_hosts(hosts: Iterable[str], namespace: str) -> tuple[str, ...]:
    """istiod's sanitizeServerHostNamespace: ``./h`` -> ``<gateway ns>/h``, ``*/h`` -> ``h``,
    ``*/*`` -> ``*``."""
    out: list[str] = []
    for host in hosts:
        ns, sep, name = str(host).partition("/")
        if not sep:
            out.append(host)
        elif ns == ".":
            out.append(f"{namespace}/{name}")
        elif ns == "*":
            if name == "*":
                return ("*",)
            out.append(name)
        else:
            out.append(host)
    return tuple(out)


def names_for_namespace(hosts: Iterable[str], namespace: str) -> list[str]:
    """istiod's host.NamesForNamespace: ``ns/host`` counts only for that namespace."""
    out = []
    for host in hosts:
        ns, sep, name = host.partition("/")
        if sep:
            if ns not in (namespace, "*"):
                continue
            host = name
        out.append(host)
    return out


def served_servers(
    snapshot: MeshSnapshot, notes: list[TranslationWarning]
) -> dict[int, list[Server]]:
    """port -> the HTTP and HTTPS servers the gateway serves on it (istiod's MergeGateways,
    for the servers the embedded mesh carries)."""
    ports: dict[int, list[Server]] = {}
    for gateway in sorted(snapshot.gateways, key=creation_key):
        for index, spec in enumerate((gateway.get("spec") or {}).get("servers") or []):
            hosts = sanitize_hosts(spec.get("hosts") or [], namespace_of(gateway))
            server = Server(gateway, spec, index, hosts)
            mode = (server.tls or {}).get("mode")
            if server.protocol not in HTTP_PROTOCOLS and (
                server.protocol != "HTTPS" or mode != "SIMPLE"
            ):
                if server.protocol == "HTTPS" and not mode:
                    notes.append(
                        server.warning(
                            "tls.mode",
                            "no effect on the embedded mesh: unset means PASSTHROUGH, which "
                            "forwards TLS to TLS routes; the server is not served (set SIMPLE "
                            "to terminate TLS at the gateway)",
                        )
                    )
                continue  # not HTTP: the fidelity table says so when the object is written
            same_port = ports.setdefault(server.port, [])
            plain = [s for s in same_port if s.protocol in HTTP_PROTOCOLS]
            tls = [s for s in same_port if s.protocol not in HTTP_PROTOCOLS]
            if (server.protocol in HTTP_PROTOCOLS and tls) or (
                server.protocol not in HTTP_PROTOCOLS and plain
            ):
                # MergeGateways: plain-text and TLS servers cannot share a port.
                first = (tls or plain)[0]
                notes.append(
                    server.warning(
                        "port",
                        f"not served: port {server.port} already has a "
                        f"{first.protocol} server (Gateway {first.gateway_name}); istiod skips "
                        "this one too",
                    )
                )
                continue
            same_port.append(server)
    return ports


def bound_to(vs: JSON, gateway_name: str) -> bool:
    """Does ``spec.gateways`` name this Gateway (any of istiod's spellings)?"""
    return gateway_name in gateway_names(vs)


Bound = dict[str, list[JSON]]


def bound_virtual_services(snapshot: MeshSnapshot, memo: Memo) -> Bound:
    """Gateway ``ns/name`` -> the VirtualServices bound to it, oldest first."""
    return vs_index(snapshot, memo).bound()


def _server_context(
    server: Server,
    port: int,
    snapshot: MeshSnapshot,
    fqdn_ports: dict[str, list[int]],
    rules: dict[str, JSON],
) -> RouteContext:
    return RouteContext(
        port,
        fqdn_ports,
        snapshot.domain,
        frozenset({server.gateway_name}),
        rules,
        is_tls=server.tls is not None,
    )


def route_config(
    name: str,
    port: int,
    servers: list[Server],
    snapshot: MeshSnapshot,
    fqdn_ports: dict[str, list[int]],
    rules: dict[str, JSON],
    strip: list[str],
    bound: Bound | None = None,
    memo: Memo | None = None,
) -> JSON:
    """istiod's buildGatewayHTTPRouteConfig for the servers sharing one route name, reused
    (``memo``) while its servers, their VirtualServices and what those read are the same."""
    memo = memo if memo is not None else Memo()
    if bound is None:
        bound = bound_virtual_services(snapshot, memo)
    # While the Services and DestinationRules are the same objects (the usual change: one
    # VirtualService), the servers and their VirtualServices say it all.
    served = [bound.get(server.gateway_name, []) for server in servers]
    common = (name, port, snapshot.domain, tuple(strip))
    coarse = (
        "gateway route config", common, id(rules), id(fqdn_ports),
        tuple(
            (id(s.gateway), s.index, tuple(map(id, vs)))
            for s, vs in zip(servers, served, strict=True)
        ),
    )  # fmt: skip
    pins = (rules, fqdn_ports, tuple(s.gateway for s in servers), tuple(map(tuple, served)))
    return memo.get(
        coarse,
        pins,
        lambda: _reusing_routes(
            name, port, servers, snapshot, fqdn_ports, rules, strip, bound, memo
        ),
    )


def _reusing_routes(
    name: str,
    port: int,
    servers: list[Server],
    snapshot: MeshSnapshot,
    fqdn_ports: dict[str, list[int]],
    rules: dict[str, JSON],
    strip: list[str],
    bound: Bound,
    memo: Memo,
) -> JSON:
    """The route configuration, reused while every input of every route it holds is the
    same: a DestinationRule changed, the configurations that do not route to its host stay."""
    parts = []
    pins: list[object] = []
    for server in servers:
        ctx = _server_context(server, port, snapshot, fqdn_ports, rules)
        keys = []
        for vs in bound.get(server.gateway_name, ()):
            found = routes_key(vs, ctx, memo)
            if found is None:
                return _route_config(
                    name, port, servers, snapshot, fqdn_ports, rules, strip, bound, memo
                )
            keys.append(found[0])
            pins.append(found[1])
        parts.append((id(server.gateway), server.index, tuple(keys)))
        pins.append(server.gateway)
    key = ("gateway routes", name, port, snapshot.domain, tuple(strip), tuple(parts))
    return memo.get(
        key,
        tuple(pins),
        lambda: _route_config(name, port, servers, snapshot, fqdn_ports, rules, strip, bound, memo),
    )


def _route_config(
    name: str,
    port: int,
    servers: list[Server],
    snapshot: MeshSnapshot,
    fqdn_ports: dict[str, list[int]],
    rules: dict[str, JSON],
    strip: list[str],
    bound: Bound,
    memo: Memo,
) -> JSON:
    vhosts: dict[str, JSON] = {}
    # Per virtual host its routes as SortVHostRoutes orders them: catch-all routes last,
    # each group in the order the VirtualServices were appended.
    routes_of: dict[str, tuple[list[JSON], list[JSON]]] = {}
    cache: dict[tuple[str, int], tuple[list[JSON], list[JSON]]] = {}
    for server in servers:
        ctx = _server_context(server, port, snapshot, fqdn_ports, rules)
        redirect = bool((server.tls or {}).get("httpsRedirect"))
        for vs in bound.get(server.gateway_name, ()):
            hosts = memo.get(
                ("gateway hosts", id(server.gateway), server.index, id(vs), snapshot.domain),
                (server.gateway, vs),
                lambda server=server, vs=vs: _vhost_names(server, vs, snapshot.domain),  # type: ignore[misc]
            )
            if not hosts:
                continue
            key = (server.gateway_name, id(vs))
            if key not in cache:
                routes = virtual_service_routes(vs, ctx, memo)
                cache[key] = memo.of(routes, "catch-all last", _split_catch_all)
            plain, catch_all = cache[key]
            if not plain and not catch_all:
                continue  # BuildHTTPRoutesForVirtualService: "no routes matched"
            for host in hosts:
                vhost = vhosts.get(host)
                if vhost is None:
                    vhost = vhosts[host] = {
                        "name": f"{host}:{port}",
                        "domains": [host],
                        "routes": [],
                        "include_request_attempt_count": True,
                    }
                    routes_of[host] = ([], [])
                routes_of[host][0].extend(plain)
                routes_of[host][1].extend(catch_all)
                if redirect:
                    vhost["require_tls"] = "ALL"
        if redirect:
            for host in server.hosts:
                host = host.lower()
                if host in vhosts:
                    vhosts[host]["require_tls"] = "ALL"
                else:
                    vhosts[host] = {
                        "name": f"{host}:{port}",
                        "domains": [host],
                        "include_request_attempt_count": True,
                        "require_tls": "ALL",
                    }
    if vhosts:
        virtual_hosts = []
        for host, vhost in vhosts.items():
            if "routes" in vhost:
                plain, catch_all = routes_of[host]
                vhost["routes"] = plain + catch_all
            virtual_hosts.append(vhost)
        virtual_hosts.sort(key=lambda h: str(h["name"]))
    else:
        # No virtual host: istiod serves a blackhole one, and Envoy answers 404 NR.
        virtual_hosts = [{"name": f"blackhole:{port}", "domains": ["*"], "routes": []}]
    return {
        "@type": ROUTE_TYPE,
        "name": name,
        "virtual_hosts": virtual_hosts,
        "validate_clusters": False,
        "ignore_port_in_host_matching": True,
        "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BYTES,
        "request_headers_to_remove": strip,
    }


def _secret_pem(secret: JSON) -> tuple[str, str] | None:
    """(certificate, key) of a ``kubernetes.io/tls`` Secret (``data`` base64, ``stringData``
    plain; Istio's generic ``cert``/``key`` keys too)."""
    plain = secret.get("stringData") or {}
    data = secret.get("data") or {}
    for cert_key, key_key in (("tls.crt", "tls.key"), ("cert", "key")):
        if plain.get(cert_key) and plain.get(key_key):
            return str(plain[cert_key]), str(plain[key_key])
        if data.get(cert_key) and data.get(key_key):
            try:
                return (
                    base64.b64decode(str(data[cert_key])).decode(),
                    base64.b64decode(str(data[key_key])).decode(),
                )
            except (ValueError, UnicodeDecodeError):
                return None
    return None


def find_secret(name: str, gateway_namespace: str, secrets: list[JSON]) -> JSON | None:
    """The Secret a ``credentialName`` names: in the Gateway's namespace, else in
    ``istio-system`` (where the ingress gateway runs on a cluster), else anywhere."""
    name = name.removeprefix("kubernetes://")
    named = [s for s in secrets if name_of(s) == name]
    for namespace in (gateway_namespace, "istio-system"):
        for secret in named:
            if namespace_of(secret) == namespace:
                return secret
    return sorted(named, key=lambda s: namespace_of(s))[0] if named else None


def tls_context(
    server: Server, snapshot: MeshSnapshot, notes: list[TranslationWarning]
) -> JSON | None:
    """istiod's BuildListenerTLSContext for a SIMPLE server, the certificates inline (no SDS
    here); None when there is no certificate to serve."""
    tls = server.tls or {}
    names = [str(n) for n in tls.get("credentialNames") or []] or [
        str(tls.get("credentialName") or "")
    ]
    certificates: list[JSON] = []
    for credential in names:
        secret = find_secret(credential, namespace_of(server.gateway), snapshot.secrets)
        pem = _secret_pem(secret) if secret is not None else None
        if pem is None:
            why = (
                f"no kubernetes.io/tls Secret {credential!r} in the manifests"
                if secret is None
                else f"Secret {namespace_of(secret)}/{name_of(secret)} has no tls.crt/tls.key"
            )
            if snapshot.fallback_certificate is None:
                notes.append(server.warning("tls.credentialName", f"{why}: not served"))
                return None
            notes.append(
                server.warning(
                    "tls.credentialName",
                    f"{why}: serving a generated self-signed certificate instead (clients "
                    "must not verify it, e.g. curl -k)",
                )
            )
            pem = snapshot.fallback_certificate
        certificates.append(
            {
                "certificate_chain": {"inline_string": pem[0]},
                "private_key": {"inline_string": pem[1]},
            }
        )
    common: JSON = {"alpn_protocols": ["h2", "http/1.1"], "tls_certificates": certificates}
    params: JSON = {}
    if tls.get("minProtocolVersion") in _TLS_VERSIONS:
        params["tls_minimum_protocol_version"] = _TLS_VERSIONS[tls["minProtocolVersion"]]
    if tls.get("cipherSuites"):
        params["cipher_suites"] = [str(c) for c in tls["cipherSuites"]]
    if tls.get("maxProtocolVersion") in _TLS_VERSIONS:
        params["tls_maximum_protocol_version"] = _TLS_VERSIONS[tls["maxProtocolVersion"]]
    if params:
        common["tls_params"] = params
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": DOWNSTREAM_TLS_TYPE,
            "common_tls_context": common,
            "require_client_certificate": False,
        },
    }


def sni_hosts(server: Server) -> list[str]:
    """istiod's GetSNIHostsForServer (a ``*`` host: every SNI, so no SNI match at all)."""
    hosts = sorted({h.partition("/")[2] or h for h in server.hosts})
    return [] if "*" in hosts else hosts


def _vhost_names(server: Server, vs: JSON, domain: str) -> list[str]:
    """The virtual hosts a bound VirtualService gets on a server: the intersections of their
    hosts, lower-cased, in order, once each."""
    server_hosts = names_for_namespace(server.hosts, namespace_of(vs))
    hosts: list[str] = []
    for vs_host in resolved_hosts(vs, domain):
        for server_host in server_hosts:
            both = hosts_intersect(server_host, vs_host)
            if both is not None and both.lower() not in hosts:
                hosts.append(both.lower())
    return hosts


def _split_catch_all(routes: list[JSON]) -> tuple[list[JSON], list[JSON]]:
    """(routes, catch-all routes): ``sort_vhost_routes`` of several route lists is the
    concatenation of their first parts, then of their second parts."""
    ordered = sort_vhost_routes(routes)
    plain = sum(1 for r in routes if not is_catch_all(r))
    return ordered[:plain], ordered[plain:]


def build_gateways(
    snapshot: MeshSnapshot,
    fqdn_ports: dict[str, list[int]],
    rules: dict[str, JSON],
    notes: list[TranslationWarning],
    memo: Memo | None = None,
    strip: list[str] | None = None,
) -> tuple[list[JSON], list[JSON]]:
    """(route configurations, listeners) of the ingress gateway, sorted by name
    (``strip``: ``headers_to_strip``, computed when not given; ``memo``: results of the
    previous translation to reuse)."""
    memo = memo if memo is not None else Memo()
    if strip is None:
        strip = headers_to_strip(snapshot, memo)
    bound = bound_virtual_services(snapshot, memo)
    configs: list[JSON] = []
    listeners: list[JSON] = []
    for port, servers in sorted(served_servers(snapshot, notes).items()):
        listener = ListenerName.gateway(port)
        name = str(listener)
        listen = snapshot.listener_ports.get(name, 0)
        if servers[0].protocol in HTTP_PROTOCOLS:
            route_name = listener.route_config
            configs.append(
                route_config(
                    route_name, port, servers, snapshot, fqdn_ports, rules, strip, bound, memo
                )
            )
            log_dir, prefix = snapshot.access_log_dir, listener.stat_prefix
            listeners.append(reused_listener(name, listen, route_name, prefix, log_dir, memo))
            continue
        chains = []
        for server in servers:
            transport = tls_context(server, snapshot, notes)
            if transport is None:
                continue
            configs.append(
                route_config(
                    server.route_name,
                    port,
                    [server],
                    snapshot,
                    fqdn_ports,
                    rules,
                    strip,
                    bound,
                    memo,
                )
            )
            stat_prefix = str(server.spec.get("name") or name)
            chains.append((sni_hosts(server), transport, server.route_name, stat_prefix))
        if chains:
            listeners.append(build_tls_listener(name, listen, chains, snapshot.access_log_dir))
    configs.sort(key=lambda c: str(c["name"]))
    return configs, listeners


def needs_fallback_certificate(gateways: list[JSON], secrets: list[JSON]) -> bool:
    """Does an HTTPS (SIMPLE) server name a credential the Secrets do not hold? The daemon
    then makes the self-signed certificate ``MeshSnapshot.fallback_certificate`` carries."""
    for gateway in gateways:
        for spec in (gateway.get("spec") or {}).get("servers") or []:
            tls = spec.get("tls") or {}
            protocol = str((spec.get("port") or {}).get("protocol") or "").upper()
            if protocol != "HTTPS" or tls.get("mode") != "SIMPLE":
                continue
            names = [str(n) for n in tls.get("credentialNames") or []] or [
                str(tls.get("credentialName") or "")
            ]
            for name in names:
                secret = find_secret(name, namespace_of(gateway), secrets)
                if secret is None or _secret_pem(secret) is None:
                    return True
    return False
