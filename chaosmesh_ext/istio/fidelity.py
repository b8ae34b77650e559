"""What the embedded mesh does with each field of VirtualService, DestinationRule and Gateway.

Every field of the three kinds (all of ``istio.schema``, which a test keeps equal to Istio's
published CRDs) is in exactly one class:

- ``enforced``: translated to Envoy as istiod does (the reference names the istiod function);
- ``no effect``: accepted, but it cannot act on one machine; the API answers with a Kubernetes
  ``Warning:`` header naming the field, and ``mesh up`` prints it;
- ``not supported``: refused (422 naming the field; ``mesh up -f`` fails before anything
  starts), so no experiment runs whose outcome would differ on a cluster.

A few fields change class with their value (``tls.mode``, ``loadBalancer.simple``, a Gateway
port's ``protocol``, ``exportTo``); their value rules are part of the table.
``embedded_causes(obj)`` gives the refusals, ``no_effect_warnings(obj)`` the warnings, and
``table_rows()`` the rows of ``docs/FIDELITY.md``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chaosmesh_ext.istio import schema
from chaosmesh_ext.istio._checks import Cause

__all__ = [
    "CLASSES",
    "ENFORCED",
    "NOT_SUPPORTED",
    "NO_EFFECT",
    "FieldClass",
    "canonical_path",
    "classify_path",
    "embedded_causes",
    "no_effect_warnings",
    "schema_paths",
    "table_rows",
]

ENFORCED, NO_EFFECT, NOT_SUPPORTED = "enforced", "no effect", "not supported"
CLASSES = (ENFORCED, NO_EFFECT, NOT_SUPPORTED)

# A value rule: the field's value -> (class, why) when the value changes the field's class.
ValueRule = Callable[[Any], "tuple[str, str] | None"]


@dataclass(frozen=True)
class FieldClass:
    """One row of the table: the class, where istiod does it, why (for the other classes)."""

    cls: str
    reference: str
    why: str = ""
    rule: ValueRule | None = None
    rule_text: str = ""  # how the value rule reads in the table


def _e(reference: str, why: str = "") -> FieldClass:
    return FieldClass(ENFORCED, reference, why)


def _ne(reference: str, why: str) -> FieldClass:
    return FieldClass(NO_EFFECT, reference, why)


def _ns(reference: str, why: str) -> FieldClass:
    return FieldClass(NOT_SUPPORTED, reference, why)


def _by_value(base: FieldClass, rule: ValueRule, text: str) -> FieldClass:
    return FieldClass(base.cls, base.reference, base.why, rule, text)


# ---- value rules -------------------------------------------------------------------------


def _export_to(value: Any) -> tuple[str, str] | None:
    if isinstance(value, list) and value and value != ["*"]:
        return (
            NO_EFFECT,
            "one Envoy serves every namespace on the embedded mesh, so the object is visible "
            "to all of them (on a cluster only the namespaces listed see it)",
        )
    return None


def _client_tls_mode(value: Any) -> tuple[str, str] | None:
    if value in ("SIMPLE", "MUTUAL"):
        return (
            NOT_SUPPORTED,
            f"tls.mode {value} originates TLS to the destination; the embedded mesh's "
            "workloads serve plain HTTP, so every request would fail differently than on a "
            "cluster",
        )
    return None


def _lb_simple(value: Any) -> tuple[str, str] | None:
    if value == "PASSTHROUGH":
        return (
            NOT_SUPPORTED,
            "PASSTHROUGH sends each connection to the address the caller dialled (an "
            "ORIGINAL_DST cluster; kube-proxy then picks the pod); the embedded mesh has no "
            "kube-proxy or Service IPs",
        )
    return None


_HTTP_SERVER_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB", "HTTPS"})


def _server_protocol(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str) and value.upper() not in _HTTP_SERVER_PROTOCOLS:
        return (
            NO_EFFECT,
            f"the embedded gateway serves HTTP and HTTPS servers only; a {value} server is not "
            "served (the embedded mesh carries no non-HTTP traffic)",
        )
    return None


def _server_tls_mode(value: Any) -> tuple[str, str] | None:
    if value in ("PASSTHROUGH", "AUTO_PASSTHROUGH"):
        return (
            NO_EFFECT,
            f"a {value} server forwards TLS by SNI to TLS routes; the embedded mesh carries "
            "HTTP only, so the server is not served",
        )
    if value in ("MUTUAL", "OPTIONAL_MUTUAL", "ISTIO_MUTUAL"):
        return (
            NOT_SUPPORTED,
            f"tls.mode {value} needs client certificates the embedded mesh cannot check the "
            "way the gateway does; use SIMPLE",
        )
    return None


def _status_600(value: Any) -> tuple[str, str] | None:
    if value == 600:
        return (
            NOT_SUPPORTED,
            "Istio's validation lets 600 through but Envoy accepts 200-599 only: on a cluster "
            "every proxy rejects the route update and keeps its previous routes",
        )
    return None


def _redirect_code(value: Any) -> tuple[str, str] | None:
    if isinstance(value, int) and value not in (0, 301, 302, 303, 307, 308):
        return (
            NOT_SUPPORTED,
            f"Envoy has no redirect code {value} (301, 302, 303, 307, 308): istiod sends the "
            "route without an action and every proxy rejects the route update",
        )
    return None


def _claims_header(key: str) -> str | None:
    if key.startswith("@request.auth.claims"):
        return "JWT claim matches need a RequestAuthentication, which the embedded mesh lacks"
    return None


def _paths(spec: Any) -> Iterator[str]:
    """Every field path below ``spec`` (``.a``, ``.a[].b``, ``.m{}.x``), depth first."""
    if isinstance(spec, dict):
        for key, sub in spec.items():
            yield f".{key}"
            yield from (f".{key}{p}" for p in _paths(sub))
    elif isinstance(spec, list):
        yield from (f"[]{p}" for p in _paths(spec[0]))
    elif isinstance(spec, tuple) and spec[0] == "map":
        yield from (f"{{}}{p}" for p in _paths(spec[1]))


# ---- the table ---------------------------------------------------------------------------

_ROUTE = "pilot/pkg/networking/core/route/route.go"
_CTP = "pilot/pkg/networking/core/cluster_traffic_policy.go"
_GW = "pilot/pkg/networking/core/gateway.go"
_L4 = (
    "the embedded mesh carries HTTP only: {what} routes apply to non-HTTP traffic, which "
    "never reaches them"
)
_FILES = "files mounted into the gateway pod; use credentialName with a kubernetes.io/tls Secret"
_MTLS = "client certificates are checked only by MUTUAL servers, which the embedded mesh refuses"
_DEST = _e(f"{_ROUTE} GetDestinationCluster")
_HEADERS = _e(f"{_ROUTE} TranslateHeadersOperations")
_STRING_MATCH = _e(f"{_ROUTE} TranslateRouteMatch / translateHeaderMatch")


def _subtree(prefix: str, spec: Any, fc: FieldClass) -> dict[str, FieldClass]:
    """``fc`` for ``prefix`` and every field below it in ``spec``."""
    return {path: fc for path in [prefix, *(prefix + p for p in _paths(spec))]}


def _dest(prefix: str) -> dict[str, FieldClass]:
    return _subtree(prefix, schema.DESTINATION, _DEST)


def _headers(prefix: str) -> dict[str, FieldClass]:
    return _subtree(prefix, schema.HEADERS, _HEADERS)


def _matches(prefix: str) -> dict[str, FieldClass]:
    return _subtree(prefix, schema.STRING_MATCH, _STRING_MATCH)


_VS_HTTP = "spec.http[]"
VIRTUAL_SERVICE: dict[str, FieldClass] = {
    "spec": _e("pilot/pkg/model/virtualservice.go"),
    "spec.hosts": _e(f"{_ROUTE} buildSidecarVirtualHostsForVirtualService, {_GW}"),
    "spec.gateways": _e("pilot/pkg/model/virtualservice.go resolveGatewayName"),
    "spec.exportTo": _by_value(
        _e("pilot/pkg/model/push_context.go initVirtualServices"),
        _export_to,
        'no effect unless ["*"]',
    ),
    "spec.http": _e(f"{_ROUTE} BuildHTTPRoutesForVirtualService"),
    f"{_VS_HTTP}.name": _e(f"{_ROUTE} TranslateRoute"),
    f"{_VS_HTTP}.match": _e(f"{_ROUTE} TranslateRouteMatch"),
    f"{_VS_HTTP}.match[].name": _e(f"{_ROUTE} TranslateRoute"),
    **_matches(f"{_VS_HTTP}.match[].uri"),
    **_matches(f"{_VS_HTTP}.match[].scheme"),
    **_matches(f"{_VS_HTTP}.match[].method"),
    **_matches(f"{_VS_HTTP}.match[].authority"),
    **_subtree(f"{_VS_HTTP}.match[].headers", ("map", schema.STRING_MATCH), _STRING_MATCH),
    **_subtree(f"{_VS_HTTP}.match[].withoutHeaders", ("map", schema.STRING_MATCH), _STRING_MATCH),
    **_subtree(
        f"{_VS_HTTP}.match[].queryParams",
        ("map", schema.STRING_MATCH),
        _e(f"{_ROUTE} translateQueryParamMatch"),
    ),
    f"{_VS_HTTP}.match[].port": _e(f"{_ROUTE} TranslateRoute"),
    f"{_VS_HTTP}.match[].sourceLabels": _e(f"{_ROUTE} sourceMatchHTTP"),
    f"{_VS_HTTP}.match[].gateways": _e(f"{_ROUTE} sourceMatchHTTP"),
    f"{_VS_HTTP}.match[].sourceNamespace": _e(f"{_ROUTE} sourceMatchHTTP"),
    f"{_VS_HTTP}.match[].ignoreUriCase": _e(f"{_ROUTE} TranslateRouteMatch"),
    f"{_VS_HTTP}.match[].statPrefix": _e(f"{_ROUTE} TranslateRoute"),
    f"{_VS_HTTP}.route": _e(f"{_ROUTE} applyHTTPRouteDestination"),
    **_dest(f"{_VS_HTTP}.route[].destination"),
    f"{_VS_HTTP}.route[].weight": _e(f"{_ROUTE} processWeightedDestination"),
    **_headers(f"{_VS_HTTP}.route[].headers"),
    **_subtree(
        f"{_VS_HTTP}.redirect", schema.HTTP_ROUTE["redirect"], _e(f"{_ROUTE} ApplyRedirect")
    ),
    f"{_VS_HTTP}.redirect.redirectCode": _by_value(
        _e(f"{_ROUTE} ApplyRedirect"),
        _redirect_code,
        "other than 301, 302, 303, 307, 308: not supported",
    ),
    **_subtree(
        f"{_VS_HTTP}.directResponse",
        schema.HTTP_ROUTE["directResponse"],
        _e(f"{_ROUTE} ApplyDirectResponse"),
    ),
    f"{_VS_HTTP}.directResponse.status": _by_value(
        _e(f"{_ROUTE} ApplyDirectResponse"), _status_600, "600: not supported"
    ),
    **_subtree(
        f"{_VS_HTTP}.delegate",
        schema.HTTP_ROUTE["delegate"],
        _ns(
            "pilot/pkg/model/virtualservice.go mergeVirtualServicesIfNeeded",
            "delegate VirtualServices are not merged by the embedded mesh",
        ),
    ),
    **_subtree(
        f"{_VS_HTTP}.rewrite",
        schema.HTTP_ROUTE["rewrite"],
        _e(f"{_ROUTE} applyHTTPRouteDestination"),
    ),
    f"{_VS_HTTP}.timeout": _e(f"{_ROUTE} setTimeout"),
    **_subtree(
        f"{_VS_HTTP}.retries",
        schema.HTTP_RETRY,
        _e("pilot/pkg/networking/core/route/retry/retry.go ConvertPolicy"),
    ),
    **_subtree(f"{_VS_HTTP}.fault", schema.FAULT, _e(f"{_ROUTE} TranslateFault")),
    f"{_VS_HTTP}.fault.abort.httpStatus": _by_value(
        _e(f"{_ROUTE} TranslateFault"), _status_600, "600: not supported"
    ),
    f"{_VS_HTTP}.fault.delay.exponentialDelay": _e(
        "pkg/config/validation/validation.go validateHTTPFaultInjectionDelay",
        "refused by Istio's own validation (not supported yet)",
    ),
    f"{_VS_HTTP}.fault.abort.http2Error": _e(
        "pkg/config/validation/validation.go validateHTTPFaultInjectionAbort",
        "refused by Istio's own validation (not supported yet)",
    ),
    **_dest(f"{_VS_HTTP}.mirror"),
    f"{_VS_HTTP}.mirrorPercent": _e(f"{_ROUTE} MirrorPercent"),
    f"{_VS_HTTP}.mirror_percent": _e(f"{_ROUTE} MirrorPercent"),
    **_subtree(f"{_VS_HTTP}.mirrorPercentage", schema.PERCENT, _e(f"{_ROUTE} MirrorPercent")),
    f"{_VS_HTTP}.mirrors": _e(f"{_ROUTE} MirrorPercentByPolicy"),
    **_dest(f"{_VS_HTTP}.mirrors[].destination"),
    **_subtree(
        f"{_VS_HTTP}.mirrors[].percentage", schema.PERCENT, _e(f"{_ROUTE} MirrorPercentByPolicy")
    ),
    **_subtree(f"{_VS_HTTP}.corsPolicy", schema.CORS_POLICY, _e(f"{_ROUTE} TranslateCORSPolicy")),
    **_headers(f"{_VS_HTTP}.headers"),
    **_subtree(
        "spec.tls",
        schema.VIRTUAL_SERVICE["tls"],
        _ne("pilot/pkg/networking/core/tls.go", _L4.format(what="TLS (SNI)")),
    ),
    **_subtree(
        "spec.tcp",
        schema.VIRTUAL_SERVICE["tcp"],
        _ne(
            "pilot/pkg/networking/core/tls.go buildSidecarOutboundTCPTLSFilterChainOpts",
            _L4.format(what="TCP"),
        ),
    ),
}

_TP = "spec.trafficPolicy"
_POOL = f"{_CTP} applyConnectionPool"
DESTINATION_RULE: dict[str, FieldClass] = {
    "spec": _e("pilot/pkg/model/destination_rule.go"),
    "spec.host": _e("pilot/pkg/model/destination_rule.go mergeDestinationRule"),
    "spec.exportTo": _by_value(
        _e("pilot/pkg/model/push_context.go setDestinationRules"),
        _export_to,
        'no effect unless ["*"]',
    ),
    **_subtree(
        "spec.workloadSelector",
        schema.DESTINATION_RULE["workloadSelector"],
        _ns(
            "pilot/pkg/model/sidecar.go DestinationRule (workload selector)",
            "a DestinationRule with a workloadSelector applies to the selected callers only, "
            "and one Envoy plays every caller on the embedded mesh",
        ),
    ),
    "spec.subsets": _e("pilot/pkg/networking/core/cluster_builder.go buildSubsetCluster"),
    "spec.subsets[].name": _e("pilot/pkg/model/service.go BuildSubsetKey"),
    "spec.subsets[].labels": _e("pilot/pkg/networking/core/cluster_builder.go buildSubsetCluster"),
    _TP: _e("pilot/pkg/networking/util/util.go MergeSubsetTrafficPolicy"),
    f"{_TP}.portLevelSettings": _e("pilot/pkg/networking/util/util.go GetPortLevelTrafficPolicy"),
    f"{_TP}.portLevelSettings[].port": _e(
        "pilot/pkg/networking/util/util.go GetPortLevelTrafficPolicy"
    ),
    f"{_TP}.portLevelSettings[].port.number": _e(
        "pilot/pkg/networking/util/util.go GetPortLevelTrafficPolicy"
    ),
    **_subtree(f"{_TP}.connectionPool", schema.CONNECTION_POOL, _e(_POOL)),
    f"{_TP}.connectionPool.tcp.tcpKeepalive": _e(f"{_CTP} applyTCPKeepalive"),
    f"{_TP}.connectionPool.tcp.tcpKeepalive.probes": _e(f"{_CTP} applyTCPKeepalive"),
    f"{_TP}.connectionPool.tcp.tcpKeepalive.time": _e(f"{_CTP} applyTCPKeepalive"),
    f"{_TP}.connectionPool.tcp.tcpKeepalive.interval": _e(f"{_CTP} applyTCPKeepalive"),
    f"{_TP}.connectionPool.http.h2UpgradePolicy": _e(f"{_CTP} shouldH2Upgrade"),
    f"{_TP}.connectionPool.http.useClientProtocol": _e(
        "pilot/pkg/networking/core/cluster_builder.go setUseDownstreamProtocol"
    ),
    f"{_TP}.loadBalancer": _e(f"{_CTP} applyLoadBalancer"),
    f"{_TP}.loadBalancer.simple": _by_value(
        _e(f"{_CTP} applyLoadBalancer"), _lb_simple, "PASSTHROUGH: not supported"
    ),
    **_subtree(
        f"{_TP}.loadBalancer.consistentHash",
        schema.LOAD_BALANCER["consistentHash"],
        _e(f"{_CTP} ApplyRingHashLoadBalancer, {_ROUTE} ConsistentHashToHashPolicy"),
    ),
    f"{_TP}.loadBalancer.consistentHash.useSourceIp": _e(
        f"{_ROUTE} ConsistentHashToHashPolicy",
        "every workload of the embedded mesh calls from 127.0.0.1, so all callers hash alike",
    ),
    **_subtree(
        f"{_TP}.loadBalancer.localityLbSetting",
        schema.LOAD_BALANCER["localityLbSetting"],
        _ne(
            "pilot/pkg/networking/core/loadbalancer/loadbalancer.go",
            "one machine is one locality: locality failover and weights cannot act",
        ),
    ),
    **_subtree(
        f"{_TP}.loadBalancer.zoneAwareLbSetting",
        schema.LOAD_BALANCER["zoneAwareLbSetting"],
        _ne(
            "pilot/pkg/networking/core/loadbalancer/loadbalancer.go",
            "one machine is one zone: zone-aware routing cannot act",
        ),
    ),
    f"{_TP}.loadBalancer.warmupDurationSecs": _e(f"{_CTP} setSlowStartConfig"),
    **_subtree(
        f"{_TP}.loadBalancer.warmup", schema.LOAD_BALANCER["warmup"], _e(f"{_CTP} setWarmup")
    ),
    **_subtree(
        f"{_TP}.outlierDetection", schema.OUTLIER_DETECTION, _e(f"{_CTP} applyOutlierDetection")
    ),
    f"{_TP}.outlierDetection.consecutiveErrors": _e(
        f"{_CTP} applyOutlierDetection",
        "ignored by istiod since 1.7 (validation warns), and so here",
    ),
    f"{_TP}.outlierDetection.outlierDetectionHttpErrorCodes": _e(
        f"{_CTP} applyOutlierDetection", "istiod 1.31 does not read it, and neither do we"
    ),
    **_subtree(
        f"{_TP}.tls",
        schema.CLIENT_TLS,
        _ne(
            f"{_CTP} buildUpstreamTLSSettings",
            "mutual TLS between sidecars is invisible to requests; the embedded mesh's "
            "traffic is plain HTTP on 127.0.0.1",
        ),
    ),
    f"{_TP}.tls.mode": FieldClass(
        NO_EFFECT,
        f"{_CTP} buildUpstreamTLSSettings",
        "ISTIO_MUTUAL and DISABLE change the transport, not the requests; the embedded "
        "mesh's traffic is plain HTTP on 127.0.0.1",
        _client_tls_mode,
        "SIMPLE, MUTUAL: not supported",
    ),
    **_subtree(
        f"{_TP}.tunnel",
        schema.TRAFFIC_POLICY["tunnel"],
        _ns(
            "pilot/pkg/networking/core/cluster_builder.go (tunnel settings)",
            "tunnelling to a destination through an HTTP proxy is not available",
        ),
    ),
    **_subtree(
        f"{_TP}.proxyProtocol",
        schema.TRAFFIC_POLICY["proxyProtocol"],
        _ns(
            f"{_CTP} applyUpstreamProxyProtocol",
            "the embedded mesh's workloads do not read the PROXY protocol header",
        ),
    ),
    **_subtree(
        f"{_TP}.retryBudget", schema.TRAFFIC_POLICY["retryBudget"], _e(f"{_CTP} applyRetryBudget")
    ),
}

_SRV = "spec.servers[]"
_GW_TLS = f"{_GW} buildGatewayListenerTLSContext"
GATEWAY: dict[str, FieldClass] = {
    "spec": _e(f"{_GW} buildGatewayListeners"),
    "spec.selector": _ne(
        "pilot/pkg/model/gateway.go MergeGateways",
        "one gateway proxy serves every Gateway here, whatever its selector",
    ),
    "spec.servers": _e(f"{_GW} buildGatewayListeners"),
    f"{_SRV}.port": _e(f"{_GW} buildGatewayListeners"),
    f"{_SRV}.port.number": _e(f"{_GW} buildGatewayListeners"),
    f"{_SRV}.port.protocol": _by_value(
        _e(f"{_GW} buildGatewayListeners"),
        _server_protocol,
        "other than HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB: no effect",
    ),
    f"{_SRV}.port.name": _e("pilot/pkg/model/gateway.go gatewayRDSRouteName"),
    f"{_SRV}.port.targetPort": _e(
        "pkg/config/validation/validation.go validateServerPort",
        "refused by Istio's own validation (no impact on Gateways)",
    ),
    f"{_SRV}.bind": _ne(
        f"{_GW} buildGatewayListeners",
        "every listener of the embedded mesh binds 127.0.0.1 on a port of its own",
    ),
    f"{_SRV}.hosts": _e(f"{_GW} buildGatewayHTTPRouteConfig (host.NamesForNamespace)"),
    f"{_SRV}.defaultEndpoint": _e(
        "networking/v1alpha3/gateway.proto", "istiod ignores it for Gateways (Sidecar only)"
    ),
    f"{_SRV}.name": _e(f"{_GW} createGatewayHTTPFilterChainOpts (stat prefix)"),
    f"{_SRV}.tls": _e(_GW_TLS),
    f"{_SRV}.tls.httpsRedirect": _e(f"{_GW} buildGatewayHTTPRouteConfig (require_tls)"),
    f"{_SRV}.tls.mode": _by_value(
        _e(_GW_TLS),
        _server_tls_mode,
        "PASSTHROUGH, AUTO_PASSTHROUGH: no effect; MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL: "
        "not supported",
    ),
    f"{_SRV}.tls.credentialName": _e(
        "pilot/pkg/model/credentials (kubernetes:// Secret)", "from a Secret in the manifests"
    ),
    f"{_SRV}.tls.credentialNames": _e(
        "pilot/pkg/model/credentials (kubernetes:// Secret)", "from Secrets in the manifests"
    ),
    f"{_SRV}.tls.minProtocolVersion": _e(_GW_TLS),
    f"{_SRV}.tls.maxProtocolVersion": _e(_GW_TLS),
    f"{_SRV}.tls.cipherSuites": _e(_GW_TLS),
    **{
        f"{_SRV}.tls.{field}": _ns(_GW_TLS, _FILES)
        for field in (
            "serverCertificate",
            "privateKey",
            "caCertificates",
            "caCrl",
            "caCertCredentialName",
        )
    },
    **_subtree(
        f"{_SRV}.tls.tlsCertificates",
        schema.SERVER_TLS["tlsCertificates"],
        _ns(_GW_TLS, _FILES),
    ),
    **{
        f"{_SRV}.tls.{field}": _ne(_GW_TLS, _MTLS)
        for field in (
            "subjectAltNames",
            "verifyCertificateSpki",
            "verifyCertificateHash",
            "insecureSkipVerify",
        )
    },
}

TABLES: dict[str, dict[str, FieldClass]] = {
    "VirtualService": VIRTUAL_SERVICE,
    "DestinationRule": DESTINATION_RULE,
    "Gateway": GATEWAY,
}
# Header-name rules of HTTP matches (a key, not a field, decides).
KEY_RULES: dict[str, Callable[[str], str | None]] = {
    f"{_VS_HTTP}.match[].headers": _claims_header,
    f"{_VS_HTTP}.match[].withoutHeaders": _claims_header,
}


# ---- paths -------------------------------------------------------------------------------


def schema_paths(kind: str) -> list[str]:
    """Every field of ``kind`` in ``istio.schema``, as ``spec.http[].match[].uri.exact``."""
    return ["spec", *(f"spec{p}" for p in _paths(schema.SPECS[kind]))]


def canonical_path(kind: str, path: str) -> str:
    """The table row that classifies ``path``: a DestinationRule's subset and port-level
    policies share the rows of the top-level ``trafficPolicy``."""
    if kind != "DestinationRule":
        return path
    for prefix in ("spec.subsets[].trafficPolicy", _TP):
        if path.startswith(prefix + ".portLevelSettings[]."):
            rest = path[len(prefix + ".portLevelSettings[]") :]
            if rest.startswith(".port"):
                return f"{_TP}.portLevelSettings[]{rest}"
            return _TP + rest
        if path == prefix or path.startswith(prefix + "."):
            return _TP + path[len(prefix) :]
    return path


def classify_path(kind: str, path: str) -> FieldClass:
    """The class of one field (KeyError for a field the table lacks: a bug the tests catch)."""
    return TABLES[kind][canonical_path(kind, path)]


# ---- objects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Finding:
    cls: str
    path: str
    why: str
    reference: str


def _walk(
    kind: str, value: Any, spec: Any, path: str, shape: str, quiet: bool = False
) -> Iterator[_Finding]:
    """Findings for a present field and the fields below it.

    Below a ``no effect`` field only refusals are reported (``quiet``): the field itself was
    warned about once, but a value under it may still be one the mesh must refuse
    (``tls.mode: SIMPLE`` under a DestinationRule's ``tls``).
    """
    if value is None:
        return
    fc = TABLES[kind].get(canonical_path(kind, shape))
    if fc is None:
        return  # a field the schema does not know: validation reports it
    cls, why = fc.cls, fc.why
    if fc.rule is not None:
        override = fc.rule(value)
        if override is not None:
            cls, why = override
    if cls == NOT_SUPPORTED:
        yield _Finding(cls, path, why, fc.reference)
        return
    if cls == NO_EFFECT:
        if not quiet:
            yield _Finding(cls, path, why, fc.reference)
        quiet = True
    yield from _children(kind, value, spec, path, shape, quiet, fc)


def _children(
    kind: str, value: Any, spec: Any, path: str, shape: str, quiet: bool, fc: FieldClass
) -> Iterator[_Finding]:
    """The fields inside a value: an object's fields, a list's items' fields, a map's
    values' fields (list items and map values have no row of their own)."""
    if isinstance(spec, dict) and isinstance(value, Mapping):
        for key, sub in spec.items():
            if key in value:
                yield from _walk(kind, value[key], sub, f"{path}.{key}", f"{shape}.{key}", quiet)
    elif isinstance(spec, list) and isinstance(value, list):
        for i, item in enumerate(value):
            yield from _children(kind, item, spec[0], f"{path}[{i}]", f"{shape}[]", quiet, fc)
    elif isinstance(spec, tuple) and spec[0] == "map" and isinstance(value, Mapping):
        key_rule = KEY_RULES.get(canonical_path(kind, shape))
        for key, item in value.items():
            problem = key_rule(str(key)) if key_rule else None
            if problem:
                yield _Finding(NOT_SUPPORTED, f"{path}.{key}", problem, fc.reference)
                continue
            yield from _children(kind, item, spec[1], f"{path}.{key}", f"{shape}{{}}", quiet, fc)


def _findings(obj: Mapping[str, Any]) -> list[_Finding]:
    kind = obj.get("kind")
    spec = obj.get("spec")
    if kind not in TABLES or not isinstance(spec, Mapping):
        return []
    return list(_walk(str(kind), spec, schema.SPECS[kind], "spec", "spec"))


def embedded_causes(obj: Mapping[str, Any]) -> list[Cause]:
    """Fields the embedded mesh refuses (the API answers 422 with these)."""
    return [
        Cause(
            f.path,
            f"not supported by the embedded mesh: {f.why}; an experiment using it would not "
            "behave as on a cluster",
        )
        for f in _findings(obj)
        if f.cls == NOT_SUPPORTED
    ]


def no_effect_warnings(obj: Mapping[str, Any]) -> list[Cause]:
    """Fields accepted with no effect on one machine (the API warns about each)."""
    return [
        Cause(f.path, f"no effect on the embedded mesh: {f.why}")
        for f in _findings(obj)
        if f.cls == NO_EFFECT
    ]


def table_rows(kind: str) -> list[tuple[str, str, str, str]]:
    """``(field, class, istiod reference, note)`` for every field of ``kind``, schema order;
    a DestinationRule's subset and port-level policies are listed once, under trafficPolicy."""
    rows: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    for path in schema_paths(kind):
        row = canonical_path(kind, path)
        if row in seen:
            continue
        seen.add(row)
        fc = TABLES[kind][row]
        note = fc.why
        if fc.rule_text:
            note = f"{fc.rule_text}. {note}" if note else fc.rule_text
        rows.append((row, fc.cls, fc.reference, note))
    return rows


def markdown_table(kind: str) -> str:
    """The ``docs/FIDELITY.md`` table for ``kind`` (a test keeps the document equal to it)."""
    lines = ["| field | class | istiod | note |", "|---|---|---|---|"]
    for row, cls, reference, note in table_rows(kind):
        cells = [f"`{row}`", cls, reference, note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m chaosmesh_ext.istio.fidelity: the tables, for the doc
    for _kind in TABLES:
        print(f"## {_kind}\n\n{markdown_table(_kind)}\n")
