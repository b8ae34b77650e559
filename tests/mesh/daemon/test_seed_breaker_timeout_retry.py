"""The seed's circuit-breaker, timeout and abort + retry scenarios on the embedded mesh."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from .conftest import SEED, Mesh, request

pytestmark = pytest.mark.envoy

# The runbook edits nginx's config by hand on the cluster to proxy to tomcat (its step 5);
# on the embedded mesh that edit is these two annotations on the same Deployment.
NGINX_AS_PROXY = {
    "chaosmesh.io/workload": "proxy",
    "chaosmesh.io/upstream": "http://tomcat-svc:8080",
}


def _api_get(mesh: Mesh, path: str, timeout: float = 60) -> bytes:
    code, body = mesh.api("GET", path, timeout=timeout)
    assert code == 200, body
    return body


def _pending_overflow(mesh: Mesh) -> int:
    # How a probe reads the sidecar's breaker stats on a cluster: pilot-agent's port 15020.
    stats = _api_get(
        mesh,
        "/api/v1/namespaces/default/pods/fortio-deploy-0:15020/proxy/stats"
        "?filter=httpbin.*pending_overflow",
    ).decode()
    return sum(
        int(line.rsplit(":", 1)[1]) for line in stats.splitlines() if "outbound|8000" in line
    )


def test_circuit_breaker_trips_with_2_connections_and_20_requests(mesh_up) -> None:
    # One Envoy worker: the textbook numbers (each worker has its own connection pool).
    mesh = mesh_up(["circuit-breaker"], "--concurrency", "1")
    assert _pending_overflow(mesh) == 0
    codes: dict[str, int] = {}
    # fortio's REST API through the API server's service proxy, as the load probes use it.
    # The seed's c=2 n=20 sheds in some runs only (Istio's docs: 5 %, 15 %, sometimes none;
    # measured here: about one run in four to five), so repeat the 20-call run until it does
    # (each takes milliseconds; 40 runs make a miss with a working breaker vanishingly rare).
    for _ in range(40):
        result = json.loads(
            _api_get(
                mesh,
                "/api/v1/namespaces/default/services/fortio:8080/proxy/fortio/rest/run"
                "?url=http://httpbin:8000/get&c=2&n=20&qps=0&timeout=10s",
            )
        )
        for code, count in result["RetCodes"].items():
            codes[code] = codes.get(code, 0) + count
        if codes.get("503"):
            break
    assert codes.get("200") and codes.get("503"), codes
    assert _pending_overflow(mesh) >= codes["503"]

    # The 503 is Envoy's overflow answer, flagged as such to the client.
    service = mesh.service("httpbin")
    results: list[tuple[int, dict[str, str]]] = []

    def hit() -> None:
        status, headers, _ = request(service["url"], "/delay/1", host="httpbin:8000")
        results.append((status, headers))

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    overloaded = any(s == 503 and h.get("x-envoy-overloaded") == "true" for s, h in results)
    assert overloaded, results


def nginx_tomcat(istio_yaml: str) -> dict[str, str]:
    """The seed's nginx/tomcat Deployments and Services, plus ``istio_yaml``, as files."""
    docs = list(yaml.safe_load_all((SEED / "timeout" / "deployments.yaml").read_text()))
    for doc in docs:
        if doc["metadata"]["name"] == "nginx":
            doc["spec"]["template"]["metadata"]["annotations"] = dict(NGINX_AS_PROXY)
    return {
        "deployments.yaml": yaml.safe_dump_all(docs),
        "services.yaml": (SEED / "timeout" / "services.yaml").read_text(),
        "istio.yaml": istio_yaml,
    }


def wait_for_log(
    mesh: Mesh, predicate: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Envoy flushes access logs asynchronously: poll (bounded) until ``predicate`` holds."""
    deadline = time.monotonic() + 10
    records = mesh.access_log()
    while not predicate(records) and time.monotonic() < deadline:
        time.sleep(0.05)
        records = mesh.access_log()
    return records


def test_timeout_nginx_gives_504_after_about_2s_despite_tomcat_10s_delay(mesh_up) -> None:
    mesh = mesh_up([], extra=nginx_tomcat((SEED / "timeout" / "virtualservices.yaml").read_text()))
    nginx = mesh.service("nginx-svc")
    started = time.monotonic()
    status, _, body = request(nginx["url"], host="nginx-svc")
    elapsed = time.monotonic() - started
    assert status == 504, body
    assert b"upstream request timeout" in body
    # The band, derived: Envoy arms the route timeout (2 s, on nginx-svc's route) when it has
    # read the whole request, which is after `started`. Its event loop reads the clock once
    # per wake-up (libevent's cached time), so the timer may be measured from a moment just
    # before the request arrived: seen 0.16 ms early under load. 10 ms of allowance below
    # 2.0 s still fails a timeout taken as 1 s, or applied per try.
    # Above: the 504 travels back over loopback; 1.5 s of slack covers a loaded 2-core machine
    # and is still far below tomcat's 10 s delay (a timeout not programmed lands at >= 10 s).
    assert 2.0 - 0.01 <= elapsed < 2.0 + 1.5, elapsed
    records = wait_for_log(mesh, lambda rs: any(r.get("response_flags") == "UT" for r in rs))
    assert any(r.get("response_code") == 504 and r.get("response_flags") == "UT" for r in records)


RETRY_FIXED = """\
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: nginx-svc
spec:
  hosts:
  - nginx-svc
  http:
  - route:
    - destination:
        host: nginx-svc
    retries:
      attempts: 3
      perTryTimeout: 2s
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: tomcat-svc
spec:
  hosts:
  - tomcat-svc
  http:
  - route:
    - destination:
        host: tomcat-svc
    fault:
      abort:
        percentage:
          value: 100
        httpStatus: 503
"""


def test_abort_and_retry_503_retried_only_when_retry_on_names_it(mesh_up) -> None:
    # The runbook's retry YAML with its slip fixed: hosts nginx-vs/tomcat-vs name no Service
    # (nothing would apply); here they are nginx-svc/tomcat-svc.
    as_written = (SEED / "retry" / "virtualservices-as-written.yaml").read_text()
    assert "- nginx-vs" in as_written and RETRY_FIXED.count("hosts:") == 2
    mesh = mesh_up([], extra=nginx_tomcat(RETRY_FIXED))
    nginx = mesh.service("nginx-svc")

    def nginx_attempts(records: list[dict[str, Any]]) -> list[int]:
        return [
            int(r.get("attempts") or 1)
            for r in records
            if str(r.get("upstream_cluster", "")).endswith("nginx-svc.default.svc.cluster.local")
        ]

    status, _, _ = request(nginx["url"], host="nginx-svc")
    assert status == 503
    records = wait_for_log(mesh, lambda rs: len(nginx_attempts(rs)) >= 1)
    assert nginx_attempts(records) == [1]  # current Istio: 503 is not in the default retry_on

    mesh.kubectl(
        "patch",
        "vs",
        "nginx-svc",
        "--type",
        "json",
        "-p",
        json.dumps([{"op": "add", "path": "/spec/http/0/retries/retryOn", "value": "5xx"}]),
    )
    status, _, _ = request(nginx["url"], host="nginx-svc")
    assert status == 503  # still failing: every attempt meets tomcat's abort
    records = wait_for_log(
        mesh,
        lambda rs: (
            len(nginx_attempts(rs)) >= 2 and sum(r.get("response_flags") == "FI" for r in rs) >= 5
        ),
    )
    assert nginx_attempts(records)[-1] == 4  # the first try plus 3 retries
    tomcat_aborts = [r for r in records if r.get("response_flags") == "FI"]
    assert len(tomcat_aborts) == 1 + 4  # each attempt met tomcat's abort once


def test_status_shows_the_endpoint_outlier_detection_ejected(mesh_up) -> None:
    from .conftest import chaosmesh

    mesh = mesh_up(["circuit-breaker"], "--concurrency", "1")
    service = mesh.service("httpbin")

    def health() -> list[str]:
        report = json.loads(chaosmesh("mesh", "status", "--json", cwd=mesh.workdir).stdout)
        entry = next(s for s in report["services"] if s["name"] == "httpbin")
        return [e["health"] for e in entry["endpoints"]]

    assert health() == ["healthy"]
    # consecutiveGatewayErrors: 1 and maxEjectionPercent: 100 — one 502 ejects the only host
    # (for baseEjectionTime 3m), and Envoy then answers 503 "no healthy upstream" itself.
    assert request(service["url"], "/status/502", host="httpbin:8000")[0] == 502
    deadline = time.monotonic() + 10
    while health() != ["ejected (outlier detection)"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert health() == ["ejected (outlier detection)"]
    status, _, body = request(service["url"], "/get", host="httpbin:8000")
    assert status == 503 and b"no healthy upstream" in body
