"""The seed runbook's Istio and Kubernetes objects, for the translator and Envoy tests.

``snapshot(scenario, ...)`` returns a MeshSnapshot for one scenario, with endpoints on the
ports the caller gives (real upstreams in the Envoy tests, made-up ones in unit tests).
"""

from __future__ import annotations

from typing import Any

import yaml

from chaosmesh_ext.mesh.translate import Endpoint, MeshSnapshot

CANARY = """
apiVersion: v1
kind: Service
metadata: {name: canary, namespace: istio-test, labels: {apply: canary}}
spec:
  selector: {apply: canary}
  ports: [{protocol: TCP, port: 80, targetPort: 80}]
---
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: canary-gateway, namespace: istio-test}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: canary, namespace: istio-test}
spec:
  hosts: ["*"]
  gateways: [canary-gateway]
  http:
  - route:
    - destination: {host: canary.istio-test.svc.cluster.local, subset: v1}
      weight: 90
    - destination: {host: canary.istio-test.svc.cluster.local, subset: v2}
      weight: 10
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: canary, namespace: istio-test}
spec:
  host: canary.istio-test.svc.cluster.local
  subsets:
  - name: v1
    labels: {app: v1}
  - name: v2
    labels: {app: v2}
"""

BREAKER = """
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: default, labels: {app: httpbin, service: httpbin}}
spec:
  ports: [{name: http, port: 8000, targetPort: 80}]
  selector: {app: httpbin}
---
apiVersion: v1
kind: Service
metadata: {name: fortio, namespace: default, labels: {app: fortio, service: fortio}}
spec:
  ports: [{port: 8080, name: http}]
  selector: {app: fortio}
---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
    outlierDetection:
      baseEjectionTime: 3m
      consecutiveGatewayErrors: 1
      interval: 1s
      maxEjectionPercent: 100
"""

TIMEOUT = """
apiVersion: v1
kind: Service
metadata: {name: nginx-svc, namespace: default}
spec:
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 80}]
  selector: {server: nginx}
---
apiVersion: v1
kind: Service
metadata: {name: tomcat-svc, namespace: default}
spec:
  ports: [{name: http, protocol: TCP, port: 8080, targetPort: 8080}]
  selector: {server: tomcat}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: nginx-vs, namespace: default}
spec:
  hosts: [nginx-svc]
  http:
  - route:
    - destination: {host: nginx-svc}
    timeout: 2s
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: tomcat-vs, namespace: default}
spec:
  hosts: [tomcat-svc]
  http:
  - fault:
      delay:
        percentage: {value: 100}
        fixedDelay: 10s
    route:
    - destination: {host: tomcat-svc}
"""

# The seed's retry section with its slip fixed (hosts name the Services, not the VS names).
RETRY = """
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: nginx-svc, namespace: default}
spec:
  hosts: [nginx-svc]
  http:
  - route:
    - destination: {host: nginx-svc}
    retries:
      attempts: 3
      perTryTimeout: 2s
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: tomcat-svc, namespace: default}
spec:
  hosts: [tomcat-svc]
  http:
  - route:
    - destination: {host: tomcat-svc}
    fault:
      abort:
        percentage: {value: 100}
        httpStatus: 503
"""


def objects(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def snapshot(
    text: str,
    endpoints: list[Endpoint] | None = None,
    listener_ports: dict[str, int] | None = None,
    access_log_dir: str | None = None,
) -> MeshSnapshot:
    docs = objects(text)
    return MeshSnapshot(
        services=by_kind(docs, "Service"),
        virtual_services=by_kind(docs, "VirtualService"),
        destination_rules=by_kind(docs, "DestinationRule"),
        gateways=by_kind(docs, "Gateway"),
        endpoints=list(endpoints or []),
        listener_ports=dict(listener_ports or {}),
        access_log_dir=access_log_dir,
    )


def canary_endpoints(v1_port: int = 10001, v2_port: int = 10002) -> list[Endpoint]:
    return [
        Endpoint("appv1-0", "istio-test", {"app": "v1", "apply": "canary"}, "127.0.0.1", v1_port),
        Endpoint("appv2-0", "istio-test", {"app": "v2", "apply": "canary"}, "127.0.0.1", v2_port),
    ]
