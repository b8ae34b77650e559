"""A large mesh configuration for the scale benchmark: the seed's canary among hundreds of
Services, a thousand VirtualServices and hundreds of DestinationRules.

``manifests()`` returns Kubernetes objects (dicts, ready for ``yaml.safe_dump_all``):

- the seed's canary (``experiments/manifests/canary.yaml``) in ``istio-test``: the object the
  benchmark changes;
- ``services`` Services ``svc-NNN`` spread over four team namespaces, each with two versions
  (Deployments ``svc-NNN-v1`` and ``-v2``); only the first ``live`` Services run replicas
  (one per version), the others' Deployments are scaled to zero, so the benchmark measures
  the configuration's size, not the cost of hundreds of processes;
- one mesh VirtualService per Service (a header match to v2, else 90/10 with a timeout and
  retries; every fifth one also injects a small delay), and the rest of the
  ``virtual_services`` bound to three ingress Gateways (ports 8080-8082, one host each:
  ``svc-NNN-K.<gateway>.example.com``), with prefix matches and rewrites;
- ``destination_rules`` DestinationRules, one per Service (v1/v2 subsets; every third one
  with a connection pool and outlier detection).

Deterministic: the same arguments give the same objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CANARY = Path(__file__).resolve().parent.parent / "experiments" / "manifests" / "canary.yaml"
CANARY_NAMESPACE = "istio-test"
NAMESPACES = ("team-a", "team-b", "team-c", "team-d")
GATEWAYS = (("public", 8080), ("partner", 8081), ("internal", 8082))

JSON = dict[str, Any]


def _meta(name: str, namespace: str, **extra: Any) -> JSON:
    return {"name": name, "namespace": namespace, **extra}


def canary() -> list[JSON]:
    """The seed's canary objects, in its namespace."""
    docs = [d for d in yaml.safe_load_all(CANARY.read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = CANARY_NAMESPACE
    return docs


def _service(i: int) -> tuple[str, str]:
    return f"svc-{i:03d}", NAMESPACES[i % len(NAMESPACES)]


def _workloads(i: int, live: bool) -> list[JSON]:
    name, ns = _service(i)
    out: list[JSON] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name, ns, labels={"app": name}),
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
        }
    ]
    for version in ("v1", "v2"):
        labels = {"app": name, "version": version}
        out.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": _meta(f"{name}-{version}", ns, labels=labels),
                "spec": {
                    "replicas": 1 if live else 0,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "containers": [
                                {"name": "app", "image": f"example/{name}:{version}"}
                            ]
                        },
                    },
                },
            }
        )
    return out


def _fqdn(i: int) -> str:
    name, ns = _service(i)
    return f"{name}.{ns}.svc.cluster.local"


def mesh_virtual_service(i: int, weight_v1: int = 90) -> JSON:
    """The mesh VirtualService of Service ``i`` (the sidecars' routes to it)."""
    name, ns = _service(i)
    fqdn = _fqdn(i)
    http: list[JSON] = [
        {
            "name": "canary-header",
            "match": [{"headers": {"x-canary": {"exact": "1"}}}],
            "route": [{"destination": {"host": fqdn, "subset": "v2"}}],
        },
        {
            "name": "split",
            "route": [
                {"destination": {"host": fqdn, "subset": "v1"}, "weight": weight_v1},
                {"destination": {"host": fqdn, "subset": "v2"}, "weight": 100 - weight_v1},
            ],
            "timeout": "5s",
            "retries": {"attempts": 2, "perTryTimeout": "2s", "retryOn": "5xx,connect-failure"},
        },
    ]
    if i % 5 == 0:
        http[1]["fault"] = {"delay": {"percentage": {"value": 1.0}, "fixedDelay": "10ms"}}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": _meta(name, ns),
        "spec": {"hosts": [name], "http": http},
    }


def gateway_virtual_service(k: int, i: int) -> JSON:
    """The ``k``-th ingress VirtualService, for Service ``i``, on one of the Gateways."""
    name, ns = _service(i)
    gateway, _ = GATEWAYS[k % len(GATEWAYS)]
    fqdn = _fqdn(i)
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": _meta(f"{name}-ingress-{k}", ns),
        "spec": {
            "hosts": [f"{name}-{k}.{gateway}.example.com"],
            "gateways": [f"{CANARY_NAMESPACE}/{gateway}-gateway"],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/api/v2/"}}],
                    "rewrite": {"uri": "/v2/"},
                    "route": [{"destination": {"host": fqdn, "subset": "v2"}}],
                },
                {
                    "match": [{"uri": {"prefix": "/"}}],
                    "route": [{"destination": {"host": fqdn, "subset": "v1"}}],
                    "timeout": "10s",
                },
            ],
        },
    }


def destination_rule(i: int) -> JSON:
    name, ns = _service(i)
    spec: JSON = {
        "host": _fqdn(i),
        "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}},
        ],
    }
    if i % 3 == 0:
        spec["trafficPolicy"] = {
            "connectionPool": {
                "tcp": {"maxConnections": 100},
                "http": {"http1MaxPendingRequests": 50, "maxRequestsPerConnection": 10},
            },
            "outlierDetection": {
                "consecutive5xxErrors": 5,
                "interval": "10s",
                "baseEjectionTime": "30s",
            },
        }
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": _meta(name, ns),
        "spec": spec,
    }


def gateways() -> list[JSON]:
    return [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": _meta(f"{name}-gateway", CANARY_NAMESPACE),
            "spec": {
                "selector": {"istio": "ingressgateway"},
                "servers": [
                    {
                        "port": {"number": port, "name": f"http-{name}", "protocol": "HTTP"},
                        "hosts": [f"*/*.{name}.example.com"],
                    }
                ],
            },
        }
        for name, port in GATEWAYS
    ]


def manifests(
    services: int = 200,
    virtual_services: int = 1000,
    destination_rules: int = 200,
    live: int = 10,
) -> list[JSON]:
    """The seed's canary plus the filler (counts include the canary's own VS and DR)."""
    objects = canary()
    for i in range(services):
        objects += _workloads(i, live=i < live)
    objects += gateways()
    filler_vs = virtual_services - 1
    mesh_vs = min(services, filler_vs)
    objects += [mesh_virtual_service(i) for i in range(mesh_vs)]
    objects += [gateway_virtual_service(k, k % services) for k in range(filler_vs - mesh_vs)]
    objects += [destination_rule(i) for i in range(min(services, destination_rules - 1))]
    return objects


def write(path: Path, **counts: int) -> Path:
    """``manifests(**counts)`` as one multi-document YAML file."""
    path.write_text(yaml.safe_dump_all(manifests(**counts), sort_keys=False))
    return path
