"""The shape of VirtualService, DestinationRule and Gateway specs (field names and types).

Field names follow istio/api ``networking/v1alpha3`` (the same schema is served as v1 and
v1beta1). Types: ``str``, ``int`` (int32, may be negative), ``uint`` (>= 0), ``number``,
``bool``, ``duration`` (a string; its value is checked in ``validate``), ``strmap`` (string
to string), ``any`` (not modelled: any JSON). A dict is an object with exactly those fields,
``[spec]`` a list of ``spec``, ``("map", spec)`` a string-keyed map of ``spec``.
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
HTTP_ROUTE: Spec = {
    "name": "str",
    "match": [HTTP_MATCH],
    "route": [HTTP_ROUTE_DESTINATION],
    "redirect": {
        "uri": "str",
        "authority": "str",
        "port": "uint",
        "derivePort": "str",
        "scheme": "str",
        "redirectCode": "uint",
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
    "corsPolicy": "any",
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
    "tcp": [{"match": [L4_MATCH], "route": [ROUTE_DESTINATION]}],
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
        "h2UpgradePolicy": "str",
        "useClientProtocol": "bool",
        "maxConcurrentStreams": "int",
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
}
_POLICY_BODY: Spec = {
    "loadBalancer": "any",
    "connectionPool": CONNECTION_POOL,
    "outlierDetection": OUTLIER_DETECTION,
    "tls": "any",
}
TRAFFIC_POLICY: Spec = dict(
    _POLICY_BODY,
    portLevelSettings=[dict(_POLICY_BODY, port=PORT_SELECTOR)],
    tunnel="any",
    proxyProtocol="any",
)
DESTINATION_RULE: Spec = {
    "host": "str",
    "trafficPolicy": TRAFFIC_POLICY,
    "subsets": [{"name": "str", "labels": "strmap", "trafficPolicy": TRAFFIC_POLICY}],
    "exportTo": ["str"],
    "workloadSelector": {"matchLabels": "strmap"},
}

GATEWAY: Spec = {
    "selector": "strmap",
    "servers": [
        {
            "port": {"number": "uint", "protocol": "str", "name": "str", "targetPort": "uint"},
            "bind": "str",
            "hosts": ["str"],
            "tls": "any",
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
