"""The warnings istiod's validation gives for objects it accepts (``AppendWarningf``,
``WrapWarning`` in ``pkg/config/validation/validation.go``).

On a cluster the webhook returns them and kubectl prints them as ``Warning:`` lines; the
embedded API does the same (``Warning: 299`` headers) and ``lint`` reports them. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chaosmesh_ext.istio._checks import Cause, as_list, as_map, objects_in

__all__ = ["validation_warnings"]

_DIRECT_RESPONSE_WARN_BYTES = 100 * 1024


def validation_warnings(obj: Mapping[str, Any]) -> list[Cause]:
    """istiod's validation warnings for a VirtualService, DestinationRule or Gateway."""
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return []
    kind = obj.get("kind")
    if kind == "VirtualService":
        return _virtual_service(spec)
    if kind == "DestinationRule":
        return _destination_rule(spec)
    if kind == "Gateway":
        return _gateway(spec)
    return []


def _name(item: Mapping[str, Any], index: int) -> str:
    """istiod's routeName / requestName: the quoted name, else ``#index``."""
    return f'"{item["name"]}"' if item.get("name") else f"#{index}"


def _virtual_service(spec: Mapping[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    routes = list(objects_in(spec.get("http")))
    for i, route in routes:
        abort = as_map(as_map(route.get("fault")).get("abort"))
        if as_map(route.get("fault")).get("abort") is not None and not any(
            abort.get(k) is not None for k in ("httpStatus", "grpcStatus", "http2Error")
        ):
            # validateHTTPFaultInjectionAbort; TranslateFault then drops the abort.
            out.append(
                Cause(f"spec.http[{i}].fault.abort", "abort configured, but error type not set")
            )
        body = as_map(as_map(route.get("directResponse")).get("body"))
        text = body.get("string") or body.get("bytes") or ""
        if isinstance(text, str) and len(text) > _DIRECT_RESPONSE_WARN_BYTES:
            out.append(
                Cause(
                    f"spec.http[{i}].directResponse.body",
                    "large direct_responses may impact control plane performance",
                )
            )
    out.extend(_unreachable_http_rules(routes))
    return out


def _unreachable_http_rules(routes: list[tuple[int, Mapping[str, Any]]]) -> list[Cause]:
    """istiod's analyzeUnreachableHTTPRules (without its prefix-overlap part)."""
    out: list[Cause] = []
    seen: dict[str, str] = {}  # match as JSON -> name of the rule that has it first
    catch_all = False

    def unused(i: int, name: str, reason: str) -> None:
        out.append(Cause(f"spec.http[{i}]", f"virtualService rule {name} not used ({reason})"))

    for i, route in routes:
        name = _name(route, i)
        if not as_list(route.get("match")):
            if catch_all:
                unused(i, name, "only the last rule can have no matches")
            catch_all = True
            continue
        matches = list(objects_in(route.get("match")))
        duplicates = 0
        for j, match in matches:
            if catch_all:
                unused(i, name, "route without matches defined before")
                continue
            key = json.dumps(match, sort_keys=True)
            if key in seen:
                out.append(
                    Cause(
                        f"spec.http[{i}].match[{j}]",
                        f"virtualService rule {name} match {_name(match, j)} is not used "
                        f"(duplicate/overlapping match in rule {seen[key]})",
                    )
                )
                duplicates += 1
                continue
            seen[key] = name
        if matches and duplicates == len(matches):
            unused(i, name, "all matches used by prior rules")
    return out


def _traffic_policies(spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every traffic policy body of a DestinationRule with its path (port levels included)."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    tops = [("spec.trafficPolicy", spec.get("trafficPolicy"))]
    for i, subset in objects_in(spec.get("subsets")):
        tops.append((f"spec.subsets[{i}].trafficPolicy", subset.get("trafficPolicy")))
    for path, policy in tops:
        if not isinstance(policy, Mapping):
            continue
        out.append((path, policy))
        for j, level in objects_in(policy.get("portLevelSettings")):
            out.append((f"{path}.portLevelSettings[{j}]", level))
    return out


def _destination_rule(spec: Mapping[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    for path, policy in _traffic_policies(spec):
        outlier = as_map(policy.get("outlierDetection"))
        if outlier.get("consecutiveErrors"):
            out.append(
                Cause(
                    f"{path}.outlierDetection.consecutiveErrors",
                    "outlier detection consecutive errors is deprecated, use "
                    "consecutiveGatewayErrors or consecutive5xxErrors instead",
                )
            )
        hashing = as_map(as_map(policy.get("loadBalancer")).get("consistentHash"))
        if hashing.get("minimumRingSize"):
            out.append(
                Cause(
                    f"{path}.loadBalancer.consistentHash.minimumRingSize",
                    "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's "
                    "RingHash configuration instead",
                )
            )
    selector = spec.get("workloadSelector")
    if isinstance(selector, Mapping) and not as_map(selector.get("matchLabels")):
        out.append(Cause("spec.workloadSelector", "workload selector specified without labels"))
    return out


_HTTP_PROTOCOLS = ("HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTP_PROXY")


def _gateway(spec: Mapping[str, Any]) -> list[Cause]:
    out: list[Cause] = []
    for i, server in objects_in(spec.get("servers")):
        tls = server.get("tls")
        if not isinstance(tls, Mapping):
            continue
        path = f"spec.servers[{i}].tls"
        protocol = str(as_map(server.get("port")).get("protocol") or "").upper()
        if tls.get("httpsRedirect") and protocol not in _HTTP_PROTOCOLS:
            out.append(
                Cause(
                    f"{path}.httpsRedirect",
                    "tls.httpsRedirect should only be used with http servers",
                )
            )
        if tls.get("minProtocolVersion") in ("TLSV1_0", "TLSV1_1") and not as_list(
            tls.get("cipherSuites")
        ):
            out.append(
                Cause(
                    f"{path}.minProtocolVersion",
                    "TLS version below TLSV1_2 require setting compatible ciphers as by default "
                    "they no longer include compatible ciphers.",
                )
            )
        ciphers = [c for c in as_list(tls.get("cipherSuites")) if isinstance(c, str)]
        duplicates = sorted({c for c in ciphers if ciphers.count(c) > 1})
        if duplicates:
            out.append(
                Cause(f"{path}.cipherSuites", f"ignoring duplicate cipher suites: {duplicates}")
            )
        mode = tls.get("mode")
        if mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH") and any(
            tls.get(k)
            for k in (
                "caCrl",
                "serverCertificate",
                "privateKey",
                "caCertificates",
                "tlsCertificates",
                "credentialName",
                "credentialNames",
            )
        ):
            out.append(Cause(path, f"{mode} mode does not use certificates, they will be ignored"))
        if (
            mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL")
            and len(as_list(tls.get("tlsCertificates"))) > 2
        ):
            prefix = "SIMPLE TLS" if mode == "SIMPLE" else "MUTUAL TLS"
            words = f"{prefix} can support up to 2 server certificates"
            out.append(Cause(f"{path}.tlsCertificates", words))
    return out
