"""Istio's checks of a Gateway spec: servers, ports, hosts, TLS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosmesh_ext.istio._checks import (
    DNS_LABEL,
    GATEWAY_PROTOCOLS,
    Cause,
    as_int,
    as_list,
    host_problem,
)


def gateway_causes(spec: Mapping[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    servers = as_list(spec.get("servers"))
    if not servers:
        out.append(Cause("spec.servers", "gateway must have at least one server"))
    port_names: set[str] = set()
    for i, server in enumerate(servers):
        path = f"spec.servers[{i}]"
        if not isinstance(server, Mapping):
            out.append(Cause(path, "server may not be nil"))
            continue
        hosts = as_list(server.get("hosts"))
        if not hosts:
            out.append(Cause(f"{path}.hosts", "server config must contain at least one host"))
        for j, host in enumerate(hosts):
            problem = _gateway_host_problem(host)
            if problem:
                out.append(Cause(f"{path}.hosts[{j}]", problem))
        port = server.get("port")
        if not isinstance(port, Mapping):
            out.append(Cause(f"{path}.port", "port is required"))
            continue
        protocol = str(port.get("protocol") or "").upper()
        if protocol not in GATEWAY_PROTOCOLS:
            out.append(
                Cause(
                    f"{path}.port.protocol",
                    f"invalid protocol {port.get('protocol')!r}, supported protocols are "
                    "HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP, HTTPS, TLS",
                )
            )
        number = as_int(port.get("number"))
        bind = server.get("bind")
        if (
            not (number == 0 and isinstance(bind, str) and bind.startswith("unix://"))
            and not 1 <= number <= 65535
        ):
            out.append(
                Cause(f"{path}.port.number", f"port number {number} must be in the range 1..65535")
            )
        if as_int(port.get("targetPort")) > 0:
            out.append(Cause(f"{path}.port.targetPort", "targetPort has no impact on Gateways"))
        name = port.get("name")
        if not name:
            out.append(Cause(f"{path}.port.name", "port name must be set"))
        elif str(name) in port_names:
            out.append(
                Cause(
                    f"{path}.port.name",
                    f"port names in servers must be unique: duplicate name {name}",
                )
            )
        else:
            port_names.add(str(name))
        tls = server.get("tls")
        if isinstance(tls, Mapping):
            out.extend(tls_options_causes(tls, f"{path}.tls"))
        if protocol in ("HTTPS", "TLS") and tls is None:
            out.append(
                Cause(f"{path}.tls", "server must have TLS settings for HTTPS/TLS protocols")
            )
        elif (
            protocol not in ("HTTPS", "TLS")
            and isinstance(tls, Mapping)
            and set(tls) - {"httpsRedirect"}
        ):
            out.append(
                Cause(
                    f"{path}.tls",
                    "server cannot have TLS settings for plain text HTTP ports"
                    if protocol in ("HTTP", "HTTP2", "GRPC", "GRPC-WEB")
                    else "server cannot have TLS settings for non HTTPS/TLS ports",
                )
            )
    return out


def _gateway_host_problem(host: Any) -> str | None:
    if not isinstance(host, str) or not host:
        return "host must not be empty"
    ns, sep, name = host.partition("/")
    if not sep:
        return host_problem(host)
    if ns not in ("*", ".", "~") and not DNS_LABEL.match(ns):
        return f"invalid namespace {ns!r} in host {host!r}"
    return host_problem(name)


def tls_options_causes(tls: Mapping[str, Any], path: str) -> list[Cause]:
    """istiod's validateTLSOptions (its errors; the warnings are in validate_warnings)."""
    out: list[Cause] = []
    mode = tls.get("mode")
    if mode == "ISTIO_MUTUAL":
        for field, words in (
            ("serverCertificate", "server certificate"),
            ("privateKey", "private key"),
            ("caCertificates", "CA bundle"),
            ("tlsCertificates", "tlsCertificates"),
            ("credentialName", "credentialName"),
            ("credentialNames", "credentialNames"),
        ):
            if tls.get(field):
                out.append(
                    Cause(f"{path}.{field}", f"ISTIO_MUTUAL TLS cannot have associated {words}")
                )
        return out
    sources = [
        bool(tls.get("serverCertificate") and tls.get("privateKey")),
        bool(tls.get("credentialName")),
        bool(as_list(tls.get("credentialNames"))),
        bool(as_list(tls.get("tlsCertificates"))),
    ]
    if sum(sources) > 1:
        out.append(
            Cause(
                path,
                "only one of credential_name, credential_names, server_certificate/private_key, "
                "tls_certificates should be specified",
            )
        )
    with_credential = bool(tls.get("credentialName") or as_list(tls.get("credentialNames")))
    if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL") and with_credential:
        return out  # the credential holds certificate, key and CA: nothing more to check
    if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL"):
        prefix = "SIMPLE TLS" if mode == "SIMPLE" else "MUTUAL TLS"
        if mode != "SIMPLE" and not tls.get("caCertificates"):
            out.append(Cause(f"{path}.caCertificates", f"{prefix} requires a client CA bundle"))
        for cert in as_list(tls.get("tlsCertificates")) or [tls]:
            cert = cert if isinstance(cert, Mapping) else {}
            if not cert.get("serverCertificate"):
                out.append(
                    Cause(f"{path}.serverCertificate", f"{prefix} requires a server certificate")
                )
            if not cert.get("privateKey"):
                out.append(Cause(f"{path}.privateKey", f"{prefix} requires a private key"))
    if tls.get("caCrl"):
        if tls.get("credentialName"):
            out.append(
                Cause(
                    f"{path}.caCrl",
                    "CRL is not supported with credentialName. CRL has to be specified in the "
                    "credential",
                )
            )
        if mode == "SIMPLE":
            out.append(Cause(f"{path}.caCrl", "CRL is not supported with SIMPLE TLS"))
    return out
