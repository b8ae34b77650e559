"""The shape of VirtualService, DestinationRule and Gateway specs (field names and types).

Field names follow istio/api ``networking/v1alpha3`` (the same schema is served as v1 and
v1beta1). Types: ``str``, ``int`` (int32, may be negative), ``uint`` (>= 0), ``number``,
``bool``, ``duration`` (a string; its value is checked in ``validate``), ``strmap`` (string
to string). A dict is an object with exactly those fields, ``[spec]`` a list of ``spec``,
``("map", spec)`` a string-keyed map of ``spec``, ``("enum", (...))`` a string that must be one
of those values (the CRD's ``enum``, which kube-apiserver enforces).

``tests/istio/test_istio_schema_crd.py`` compares every field and type here with Istio's
published CRD ``openAPIV3Schema`` (all three versions), so a field Istio adds and this module
lacks fails the suite; ``istio.fidelity`` classifies each of these fields for the embedded mesh.
"""

from __future__ import annotations

from typing import Any

Spec = Any

STRING_MATCH: Spec = {"exact": "str", "prefix": "str", "regex": "str"}
PERCENT: Spec = {"value": "number"}
PORT_SELECTOR: Spec = {"number": "uint"}
DESTINATION: Spec = {"host": "str", "subset": "str", "port": PORT_SELECTOR}
HEADER_OPS: Spec = {"set": "strmap", "add": "strmap", "remove": ["str"]}
HEADERS: Spec = {"request": HEADER_OPS, "response": HEADER_OPS}

HTTP_MATCH: Spec = {
    "name": "str",
    "uri": STRING_MATCH,
    "scheme": STRING_MATCH,
    "method": STRING_MATCH,
    "authority": STRING_MATCH,
    "headers": ("map", STRING_MATCH),
    "port": "uint",
    "sourceLabels": "strmap",
    "gateways": ["str"],
    "queryParams": ("map", STRING_MATCH),
    "ignoreUriCase": "bool",
    "withoutHeaders": ("map", STRING_MATCH),
    "sourceNamespace": "str",
    "statPrefix": "str",
}
HTTP_ROUTE_DESTINATION: Spec = {"destination": DESTINATION, "weight": "int", "headers": HEADERS}
HTTP_RETRY: Spec = {
    "attempts": "int",
    "perTryTimeout": "duration",
    "retryOn": "str",
    "retryRemoteLocalities": "bool",
    "retryIgnorePreviousHosts": "bool",
    "backoff": "duration",
}
FAULT: Spec = {
    "delay": {
        "fixedDelay": "duration",
        "exponentialDelay": "duration",
        "percentage": PERCENT,
        "percent": "int",
    },
    "abort": {
        "httpStatus": "int",
        "grpcStatus": "str",
        "http2Error": "str",
        "percentage": PERCENT,
    },
}
CORS_POLICY: Spec = {
    "allowOrigin": ["str"],
    "allowOrigins": [STRING_MATCH],
    "allowMethods": ["str"],
    "allowHeaders": ["str"],
    "exposeHeaders": ["str"],
    "maxAge": "duration",
    "allowCredentials": "bool",
    "unmatchedPreflights": ("enum", ("UNSPECIFIED", "FORWARD", "IGNORE")),
}
HTTP_ROUTE: Spec = {
    "name": "str",
    "match": [HTTP_MATCH],
    "route": [HTTP_ROUTE_DESTINATION],
    "redirect": {
        "uri": "str",
        "authority": "str",
        "port": "uint",
        "derivePort": ("enum", ("FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT")),
        "scheme": "str",
        "redirectCode": "uint",
        "prefixRewrite": "str",
    },
    "directResponse": {"status": "uint", "body": {"string": "str", "bytes": "str"}},
    "delegate": {"name": "str", "namespace": "str"},
    "rewrite": {
        "uri": "str",
        "authority": "str",
        "uriRegexRewrite": {"match": "str", "rewrite": "str"},
    },
    "timeout": "duration",
    "retries": HTTP_RETRY,
    "fault": FAULT,
    "mirror": DESTINATION,
    "mirrors": [{"destination": DESTINATION, "percentage": PERCENT}],
    "mirrorPercent": "uint",
    "mirrorPercentage": PERCENT,
    "mirror_percent": "uint",
    "corsPolicy": CORS_POLICY,
    "headers": HEADERS,
}
L4_MATCH: Spec = {
    "destinationSubnets": ["str"],
    "port": "uint",
    "sourceLabels": "strmap",
    "gateways": ["str"],
    "sourceNamespace": "str",
}
ROUTE_DESTINATION: Spec = {"destination": DESTINATION, "weight": "int"}
VIRTUAL_SERVICE: Spec = {
    "hosts": ["str"],
    "gateways": ["str"],
    "http": [HTTP_ROUTE],
    "tls": [{"match": [dict(L4_MATCH, sniHosts=["str"])], "route": [ROUTE_DESTINATION]}],
    "tcp": [{"match": [dict(L4_MATCH, sourceSubnet="str")], "route": [ROUTE_DESTINATION]}],
    "exportTo": ["str"],
}

CONNECTION_POOL: Spec = {
    "tcp": {
        "maxConnections": "int",
        "connectTimeout": "duration",
        "tcpKeepalive": {"probes": "uint", "time": "duration", "interval": "duration"},
        "maxConnectionDuration": "duration",
        "idleTimeout": "duration",
    },
    "http": {
        "http1MaxPendingRequests": "int",
        "http2MaxRequests": "int",
        "maxRequestsPerConnection": "int",
        "maxRetries": "int",
        "idleTimeout": "duration",
        "h2UpgradePolicy": ("enum", ("DEFAULT", "DO_NOT_UPGRADE", "UPGRADE")),
        "useClientProtocol": "bool",
        "maxConcurrentStreams": "int",
        "http2KeepAlive": {"interval": "duration", "timeout": "duration"},
    },
}
OUTLIER_DETECTION: Spec = {
    "splitExternalLocalOriginErrors": "bool",
    "consecutiveLocalOriginFailures": "uint",
    "consecutiveGatewayErrors": "uint",
    "consecutive5xxErrors": "uint",
    "interval": "duration",
    "baseEjectionTime": "duration",
    "maxEjectionPercent": "int",
    "minHealthPercent": "int",
    "consecutiveErrors": "int",
    "outlierDetectionHttpErrorCodes": ["uint"],
}
_FAILOVER: Spec = [{"from": "str", "to": "str"}]
LOAD_BALANCER: Spec = {
    "simple": (
        "enum",
        ("UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"),
    ),
    "consistentHash": {
        "httpHeaderName": "str",
        "httpCookie": {
            "name": "str",
            "path": "str",
            "ttl": "duration",
            "attributes": [{"name": "str", "value": "str"}],
        },
        "useSourceIp": "bool",
        "httpQueryParameterName": "str",
        "ringHash": {"minimumRingSize": "uint"},
        "maglev": {"tableSize": "uint"},
        "minimumRingSize": "uint",
    },
    "localityLbSetting": {
        "distribute": [{"from": "str", "to": ("map", "uint")}],
        "failover": _FAILOVER,
        "failoverPriority": ["str"],
        "enabled": "bool",
    },
    "zoneAwareLbSetting": {
        "enabled": "bool",
        "failover": _FAILOVER,
        "failoverPriority": ["str"],
        "minClusterSize": "uint",
    },
    "warmupDurationSecs": "duration",
    "warmup": {"duration": "duration", "minimumPercent": "number", "aggression": "number"},
}
CLIENT_TLS: Spec = {
    "mode": ("enum", ("DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL")),
    "clientCertificate": "str",
    "privateKey": "str",
    "caCertificates": "str",
    "credentialName": "str",
    "subjectAltNames": ["str"],
    "sni": "str",
    "insecureSkipVerify": "bool",
    "caCrl": "str",
}
_POLICY_BODY: Spec = {
    "loadBalancer": LOAD_BALANCER,
    "connectionPool": CONNECTION_POOL,
    "outlierDetection": OUTLIER_DETECTION,
    "tls": CLIENT_TLS,
}
TRAFFIC_POLICY: Spec = dict(
    _POLICY_BODY,
    portLevelSettings=[dict(_POLICY_BODY, port=PORT_SELECTOR)],
    tunnel={"protocol": "str", "targetHost": "str", "targetPort": "uint"},
    proxyProtocol={"version": ("enum", ("V1", "V2"))},
    retryBudget={"percent": "number", "minRetryConcurrency": "uint", "budgetInterval": "duration"},
)
DESTINATION_RULE: Spec = {
    "host": "str",
    "trafficPolicy": TRAFFIC_POLICY,
    "subsets": [{"name": "str", "labels": "strmap", "trafficPolicy": TRAFFIC_POLICY}],
    "exportTo": ["str"],
    "workloadSelector": {"matchLabels": "strmap"},
}

_TLS_VERSIONS = ("TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3")
SERVER_TLS: Spec = {
    "httpsRedirect": "bool",
    "mode": (
        "enum",
        ("PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"),
    ),
    "serverCertificate": "str",
    "privateKey": "str",
    "caCertificates": "str",
    "tlsCertificates": [{"serverCertificate": "str", "privateKey": "str", "caCertificates": "str"}],
    "credentialName": "str",
    "credentialNames": ["str"],
    "caCertCredentialName": "str",
    "subjectAltNames": ["str"],
    "verifyCertificateSpki": ["str"],
    "verifyCertificateHash": ["str"],
    "minProtocolVersion": ("enum", _TLS_VERSIONS),
    "maxProtocolVersion": ("enum", _TLS_VERSIONS),
    "cipherSuites": ["str"],
    "caCrl": "str",
    "insecureSkipVerify": "bool",
}
GATEWAY: Spec = {
    "selector": "strmap",
    "servers": [
        {
            "port": {"number": "uint", "protocol": "str", "name": "str", "targetPort": "uint"},
            "bind": "str",
            "hosts": ["str"],
            "tls": SERVER_TLS,
            "defaultEndpoint": "str",
            "name": "str",
        }
    ],
}

SPECS: dict[str, Spec] = {
    "VirtualService": VIRTUAL_SERVICE,
    "DestinationRule": DESTINATION_RULE,
    "Gateway": GATEWAY,
}
