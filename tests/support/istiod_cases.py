"""Small meshes, one per istiod rule the translator reproduces (issue 17's items), shared by
the translator tests (exact Envoy JSON) and the Envoy tests (the traffic it decides).

Each builder returns a ``MeshSnapshot``; endpoints get the ports the caller passes (real
upstreams in the Envoy tests, made-up ones in the unit tests).
"""

from __future__ import annotations

import textwrap

from chaosmesh_ext.mesh.translate import Endpoint, MeshSnapshot
from tests.support import mesh_seed as seed

BOOKINFO_SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  ports: [{name: http, port: 9080}]
  selector: {app: reviews}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  ports: [{name: http, port: 9080}]
  selector: {app: ratings}
---
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: default}
spec:
  ports: [{name: http, port: 9080}]
  selector: {app: productpage}
"""

# Item 1: every route limited to callers labelled app=productpage.
SOURCE_LABELS_ONLY = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-for-productpage, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - sourceLabels: {app: productpage}
    route:
    - destination: {host: ratings}
"""

TCP_ONLY = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-tcp, namespace: default}
spec:
  hosts: [reviews]
  tcp:
  - route:
    - destination: {host: ratings}
"""

OTHER_PORT_ONLY = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-9999, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - port: 9999
    route:
    - destination: {host: ratings}
"""


def bookinfo_endpoints(
    reviews: int = 10001, ratings: int = 10002, productpage: int = 10003
) -> list[Endpoint]:
    return [
        Endpoint(
            "reviews-v1-0", "default", {"app": "reviews", "version": "v1"}, "127.0.0.1", reviews
        ),
        Endpoint(
            "ratings-v1-0", "default", {"app": "ratings", "version": "v1"}, "127.0.0.1", ratings
        ),
        Endpoint(
            "productpage-v1-0",
            "default",
            {"app": "productpage", "version": "v1"},
            "127.0.0.1",
            productpage,
        ),
    ]


def bookinfo(extra: str, endpoints: list[Endpoint] | None = None, **kwargs) -> MeshSnapshot:
    return seed.snapshot(
        BOOKINFO_SERVICES + "\n---\n" + extra, endpoints or bookinfo_endpoints(), **kwargs
    )


# Item 2: a port-level policy replaces the top-level one for its port.
PORT_LEVEL = """
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: default}
spec:
  ports: [{name: http, port: 8000}, {name: http-alt, port: 8001}]
  selector: {app: httpbin}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s}
    retryBudget: {percent: 10}
    portLevelSettings:
    - port: {number: 8000}
      loadBalancer: {simple: ROUND_ROBIN}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      connectionPool:
        http: {http2MaxRequests: 7}
      portLevelSettings:
      - port: {number: 8001}
        outlierDetection: {consecutiveGatewayErrors: 2}
"""

# Item 3: two VirtualServices on one gateway host; the older one has the catch-all.
GATEWAY_MERGE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80}]
  selector: {app: web}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: default}
spec:
  ports: [{name: http, port: 80}]
  selector: {app: api}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  hosts: ["*"]
  gateways: [public]
  http:
  - route:
    - destination: {host: web}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  hosts: ["*"]
  gateways: [public.default.svc.cluster.local]
  http:
  - match:
    - uri: {prefix: /api}
    route:
    - destination: {host: api}
"""


def web_api_endpoints(web: int = 10001, api: int = 10002) -> list[Endpoint]:
    return [
        Endpoint("web-0", "default", {"app": "web"}, "127.0.0.1", web),
        Endpoint("api-0", "default", {"app": "api"}, "127.0.0.1", api),
    ]


# Item 4: namespace-scoped gateway hosts.
NAMESPACED_HOSTS = """
apiVersion: v1
kind: Service
metadata: {name: a, namespace: team-a}
spec:
  ports: [{name: http, port: 80}]
  selector: {app: a}
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: team-b}
spec:
  ports: [{name: http, port: 80}]
  selector: {app: b}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: shared, namespace: ingress}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [team-a/shop.example.com, "*/docs.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: team-a, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  hosts: [shop.example.com]
  gateways: [ingress/shared]
  http:
  - route:
    - destination: {host: a}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop-hijack, namespace: team-b, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  hosts: [shop.example.com, docs.example.com]
  gateways: [ingress/shared]
  http:
  - route:
    - destination: {host: b}
"""


def team_endpoints(a: int = 10001, b: int = 10002) -> list[Endpoint]:
    return [
        Endpoint("a-0", "team-a", {"app": "a"}, "127.0.0.1", a),
        Endpoint("b-0", "team-b", {"app": "b"}, "127.0.0.1", b),
    ]


# Item 5: two DestinationRules for one host in one namespace.
SPLIT_RULES = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-v1, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  host: reviews
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 3}}
  subsets:
  - name: v1
    labels: {version: v1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-v2, namespace: default, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  host: reviews.default.svc.cluster.local
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 99}}
  subsets:
  - name: v2
    labels: {version: v2}
  - name: v1
    labels: {version: none}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
"""


def reviews_versions(v1: int = 10001, v2: int = 10002) -> list[Endpoint]:
    return [
        Endpoint("reviews-v1-0", "default", {"app": "reviews", "version": "v1"}, "127.0.0.1", v1),
        Endpoint("reviews-v2-0", "default", {"app": "reviews", "version": "v2"}, "127.0.0.1", v2),
    ]


def reviews_vs(http: str) -> str:
    """A VirtualService for reviews with ``http`` (YAML of its http list, any indentation)."""
    body = textwrap.indent(textwrap.dedent(http).strip("\n"), "  ")
    return (
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        "metadata: {name: reviews, namespace: default}\n"
        f"spec:\n  hosts: [reviews]\n  http:\n{body}\n"
    )


# Item 9: redirects and HTTPS on the gateway.
REDIRECTS = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: public, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: moves, namespace: default}
spec:
  hosts: ["*"]
  gateways: [public]
  http:
  - match: [{uri: {prefix: /same-port}}]
    redirect: {authority: new.example.com, derivePort: FROM_REQUEST_PORT}
  - match: [{uri: {prefix: /default-port}}]
    redirect: {authority: new.example.com, derivePort: FROM_PROTOCOL_DEFAULT}
  - match: [{uri: {prefix: /to-8443}}]
    redirect: {scheme: https, port: 8443}
  - match: [{uri: {prefix: /to-443}}]
    redirect: {scheme: https, port: 443}
  - match: [{uri: {prefix: /old}}]
    redirect: {prefixRewrite: /new, redirectCode: 308}
  - route:
    - destination: {host: web}
"""

WEB_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80}]
  selector: {app: web}
"""

HTTPS_GATEWAY = """
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: secure, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: [shop.example.com]
    tls: {mode: SIMPLE, credentialName: shop-credential}
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [shop.example.com, legacy.example.com]
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop, namespace: default}
spec:
  hosts: [shop.example.com]
  gateways: [secure]
  http:
  - route:
    - destination: {host: web}
"""

# Item 8: a consistent hash on a header, and a connection pool to fill in.
HASH_RULE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpHeaderName: x-user
        ringHash: {minimumRingSize: 64}
"""


POOL_RULE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: default}}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      {pool}
"""
