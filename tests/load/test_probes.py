"""The probes and the slo tolerance, over real HTTP.

``via="mesh"`` goes through the embedded mesh's Kubernetes-style API server (real HTTP, the
official client, a kubeconfig) to our fortio REST server, exactly the path used on a
cluster; the Envoy admin behind the pod proxy is a plain local server serving stats text.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import probes
from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.kube.client import api_client
from chaosmesh_ext.load import remote
from chaosmesh_ext.load.envoy_stats import breaker_summary, parse_cluster_stats
from chaosmesh_ext.load.rest import serve
from chaosmesh_ext.mesh import api as api_mod
from chaosmesh_ext.mesh.api import resources
from chaosmesh_ext.tolerances import slo
from tests.support.load_target import Reply, Target

HTTPBIN = "outbound|8000||httpbin.default.svc.cluster.local"
REVIEWS_V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
PROM_STATS = f"""# TYPE envoy_cluster_upstream_rq_pending_overflow counter
envoy_cluster_upstream_rq_pending_overflow{{cluster_name="{HTTPBIN}"}} 3
envoy_cluster_upstream_rq_pending_overflow{{cluster_name="{REVIEWS_V1}"}} 7
envoy_cluster_upstream_cx_overflow{{cluster_name="{HTTPBIN}"}} 2
envoy_cluster_upstream_rq_active_overflow{{cluster_name="{HTTPBIN}"}} 5
envoy_cluster_upstream_rq_total{{cluster_name="{HTTPBIN}"}} 20
envoy_cluster_outlier_detection_ejections_active{{cluster_name="{HTTPBIN}"}} 1
envoy_cluster_upstream_rq_retry_overflow{{cluster_name="{HTTPBIN}"}} 0
envoy_server_uptime 12
"""
# Envoy's /stats text, as Istio's task greps it (pilot-agent request GET stats).
# Istio's sidecars name cluster stats "<cluster>;." (alt_stat_name); older ones without ";".
TEXT_STATS = f"""cluster.{HTTPBIN};.upstream_rq_pending_overflow: 21
cluster.{HTTPBIN};.upstream_rq_total: 30
cluster.{HTTPBIN}.outlier_detection.ejections_active: 0
cluster.outbound|9080|v2|reviews.default.svc.cluster.local.upstream_cx_overflow: 4
server.live: 1
"""


def test_envoy_stats_in_both_formats() -> None:
    summary = breaker_summary(PROM_STATS, "httpbin")
    assert summary["clusters"] == [HTTPBIN]
    assert (summary["pending_overflow"], summary["cx_overflow"], summary["rq_total"]) == (3, 2, 20)
    assert summary["ejections_active"] == 1 and summary["retry_overflow"] == 0
    # http2MaxRequests sheds into its own counter since Envoy 1.38; "shed" counts both.
    assert (summary["rq_active_overflow"], summary["shed"]) == (5, 3 + 5)
    text = breaker_summary(TEXT_STATS, "httpbin.default", port=8000)
    assert text["pending_overflow"] == 21 and text["rq_total"] == 30 and text["shed"] == 21
    # subset narrows, and other hosts' clusters are never mixed in
    assert breaker_summary(PROM_STATS, "reviews", subset="v1")["pending_overflow"] == 7
    assert breaker_summary(PROM_STATS, "reviews", subset="v2")["clusters"] == []
    assert set(parse_cluster_stats(TEXT_STATS)) == {
        HTTPBIN,
        "outbound|9080|v2|reviews.default.svc.cluster.local",
    }


def test_slo_logs_which_bound_failed_and_by_how_much(caplog: pytest.LogCaptureFixture) -> None:
    value = {
        "count": 100,
        "qps": 90.0,
        "error_rate": 0.05,
        "p50_ms": 2.0,
        "p90_ms": 5.0,
        "p99_ms": 140.0,
        "max_ms": 200.0,
        "codes": {200: 95, 503: 5},
    }
    assert slo(value, max_error_rate=0.1, max_p99_ms=150, min_qps=50, expect_codes=[200, 503])
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        assert not slo(value, max_p99_ms=100, min_qps=100, expect_codes=[200])
    text = caplog.text
    assert "p99_ms 140 ms > 100 ms (over by 40 ms)" in text
    assert "qps 90 < 100 (short by 10)" in text
    assert "unexpected codes 503 x5" in text


# --- via="local" ----------------------------------------------------------------------------


def test_local_fortio_load_returns_fortio_json_plus_flat_keys(
    make_target: Callable[..., Target],
) -> None:
    t = make_target(lambda i, *_: Reply(503 if i % 10 == 9 else 200))
    res = probes.fortio_load(t.url + "/get", c=2, qps=0, n=20, via="local")
    assert res["codes"] == {200: 18, 503: 2} and res["RetCodes"] == {"200": 18, "503": 2}
    assert res["count"] == 20 and res["error_rate"] == pytest.approx(0.1)
    assert res["p50_ms"] <= res["p90_ms"] <= res["p99_ms"] <= res["max_ms"]
    assert res["Via"] == "local" and "through a gateway" in res["Note"]
    assert probes.response_codes(t.url, n=10, via="local") == {200: 9, 503: 1}
    assert probes.error_rate(t.url, n=10, via="local") == pytest.approx(0.1)


def test_latency_probe_sees_a_delay(make_target: Callable[..., Target]) -> None:
    t = make_target(lambda i, *_: Reply(delay=0.1 if i % 10 == 5 else 0.0))
    p99 = probes.latency_ms(t.url, percentile=99, qps=100, n=100, open_loop=True, via="local")
    assert p99 >= 100.0


def test_unreachable_and_bad_input_are_activity_failed(target: Target) -> None:
    with pytest.raises(ActivityFailed, match=r"cannot reach http://127\.0\.0\.1:1/get: .*refused"):
        probes.fortio_load("http://127.0.0.1:1/get", n=2, via="local")
    with pytest.raises(ActivityFailed, match="not both"):
        probes.fortio_load(target.url, n=2, t="1s", via="local")
    with pytest.raises(ActivityFailed, match="c: number of connections"):
        probes.fortio_load(target.url, c=0, n=2, via="local")
    with pytest.raises(ActivityFailed, match="via must be"):
        probes.fortio_load(target.url, n=2, via="elsewhere")
    assert target.connections == 0


def test_traffic_split_by_body_regex_and_by_header(make_target: Callable[..., Target]) -> None:
    def versions(i: int, *_: Any) -> Reply:
        v = "v2" if i % 10 == 0 else "v1"
        return Reply(body=f'{{"version": "{v}"}}'.encode(), headers={"x-version": v})

    t = make_target(versions)
    split = probes.traffic_split(t.url, n=100, via="local")
    assert split == {"v1": 0.9, "v2": 0.1}
    split = probes.traffic_split(t.url, n=50, classify="header:x-version", via="local")
    assert split == {"v1": 0.9, "v2": 0.1}
    with pytest.raises(ActivityFailed, match="bad classify regex"):
        probes.traffic_split(t.url, classify="(", via="local")


def test_traffic_split_counts_error_answers_by_status(make_target: Callable[..., Target]) -> None:
    def aborting(i: int, *_: Any) -> Reply:
        if i % 5 == 0:
            return Reply(503, body=b"fault filter abort")  # what Envoy's abort answers
        return Reply(body=b"v1" if i % 5 != 1 else b"no version here")

    target = make_target(aborting)
    split = probes.traffic_split(target.url, n=50, via="local")
    assert target.count == 50
    assert split == {"503": 0.2, "unclassified": 0.2, "v1": 0.6}


# --- via="mesh": the Kubernetes API's service proxy and pod proxy ---------------------------


class _Stats(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = PROM_STATS.encode() if self.path == "/stats/prometheus" else b"not found"
        self.send_response(200 if self.path == "/stats/prometheus" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def httpbin_listener(make_target: Callable[..., Target]) -> Target:
    """Stands in for Envoy's outbound listener on port 8000 (where httpbin:8000 goes)."""
    return make_target(lambda i, *_: Reply(body=b'{"url": "http://httpbin:8000/get"}'))


@pytest.fixture
def mesh_api(tmp_path: Path, httpbin_listener: Target) -> Iterator[dict[str, Any]]:
    # The fortio workload's sidecar, as the embedded mesh describes it: port 8000 goes to the
    # outbound listener; mesh.json beside the outbound file lists the Services.
    (tmp_path / "outbound.json").write_text(f'{{"8000": "127.0.0.1:{httpbin_listener.port}"}}')
    (tmp_path / "mesh.json").write_text(
        '{"services": [{"name": "httpbin", "namespace": "default", "port": 8000}]}'
    )
    sidecar = Sidecar(
        workload="fortio-deploy", namespace="default", outbound_file=str(tmp_path / "outbound.json")
    )
    rest = serve(data_dir=tmp_path / "data", sidecar=sidecar)
    admin = ThreadingHTTPServer(("127.0.0.1", 0), _Stats)
    threading.Thread(target=admin.serve_forever, daemon=True).start()
    store = api_mod.Store()
    server = api_mod.ApiServer(
        store, admin_url=f"http://127.0.0.1:{admin.server_address[1]}"
    ).start()
    store.set_readonly(
        resources.SERVICES,
        [
            {
                "metadata": {"name": "fortio", "namespace": "default"},
                "spec": {"selector": {"app": "fortio"}, "ports": [{"name": "http", "port": 8080}]},
            }
        ],
    )
    store.set_readonly(
        resources.PODS,
        [
            {
                "metadata": {
                    "name": "fortio-deploy-0",
                    "namespace": "default",
                    "labels": {"app": "fortio"},
                    "annotations": {"chaosmesh.io/local-port": str(rest.port)},
                },
                "status": {
                    "phase": "Running",
                    "podIP": "127.0.0.1",
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        ],
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster:\n"
        f"    server: {server.url}\ncontexts:\n- name: m\n  context:\n    cluster: m\n"
        "    user: m\n    namespace: default\ncurrent-context: m\nusers:\n- name: m\n  user: {}\n"
    )
    try:
        yield {"configuration": {"kubeconfig_path": str(kubeconfig)}}
    finally:
        server.stop()
        rest.shutdown()
        admin.shutdown()
        admin.server_close()


def test_fortio_load_via_the_service_proxy(
    mesh_api: dict[str, Any], make_target: Callable[..., Target]
) -> None:
    t = make_target(lambda i, *_: Reply(503 if i in (3, 9, 15) else 200))
    res = probes.fortio_load(t.url + "/get", c=2, qps=0, n=20, **mesh_api)
    assert res["Via"] == "mesh: service default/fortio:8080"
    assert res["codes"] == {200: 17, 503: 3} and res["error_rate"] == pytest.approx(0.15)
    assert res["RequestedQPS"] == "max"  # qps=0 became fortio REST's -1, not its default 8
    assert t.seen[0].headers["user-agent"].startswith("fortio")


def test_traffic_split_and_open_loop_via_the_service_proxy(
    mesh_api: dict[str, Any], make_target: Callable[..., Target]
) -> None:
    t = make_target(lambda i, *_: Reply(body=b"v2" if i % 5 == 0 else b"v1"))
    assert probes.traffic_split(t.url, n=20, classify=r"(v\d)", **mesh_api) == {
        "v1": 0.8,
        "v2": 0.2,
    }
    res = probes.fortio_load(t.url, qps=200, n=40, open_loop=True, **mesh_api)
    assert res["OpenLoop"]["RateKept"] in (True, False) and res["count"] == 40


def test_breaker_stats_via_the_pod_proxy(mesh_api: dict[str, Any]) -> None:
    stats = probes.breaker_stats("httpbin", port=8000, **mesh_api)
    assert stats["pending_overflow"] == 3 and stats["cx_overflow"] == 2
    assert stats["clusters"] == [HTTPBIN]
    with pytest.raises(ActivityFailed, match=r"no outbound cluster for nosuch\.default"):
        probes.breaker_stats("nosuch", **mesh_api)


def test_breaker_stats_expect_says_whether_the_breaker_showed(mesh_api: dict[str, Any]) -> None:
    seen = probes.breaker_stats(
        "httpbin", port=8000, expect={"min_pending_overflow": 1}, **mesh_api
    )
    assert seen["pending_overflow"] == 3
    with pytest.raises(
        ActivityFailed,
        match=r"breaker_stats httpbin: the fault did not show: pending_overflow 3 < 5 \(short",
    ):
        probes.breaker_stats("httpbin", port=8000, expect={"min_pending_overflow": 5}, **mesh_api)
    with pytest.raises(ActivityFailed, match=r"no counter 'pendng_overflow' in the reading"):
        probes.breaker_stats("httpbin", port=8000, expect={"min_pendng_overflow": 1}, **mesh_api)


def test_unreachable_target_via_the_mesh_names_the_url(mesh_api: dict[str, Any]) -> None:
    with pytest.raises(ActivityFailed, match=r"http://127\.0\.0\.1:1/x.*cannot reach"):
        probes.fortio_load("http://127.0.0.1:1/x", n=2, **mesh_api)


def test_missing_fortio_service_reports_both_attempts(mesh_api: dict[str, Any]) -> None:
    with pytest.raises(ActivityFailed, match=r"service proxy failed.*exec fallback failed"):
        probes.fortio_load("http://httpbin:8000/get", n=2, fortio_service="nofortio", **mesh_api)


def test_service_names_go_through_the_sidecar_and_unknown_ones_fail(
    mesh_api: dict[str, Any], httpbin_listener: Target
) -> None:
    codes = probes.response_codes("http://httpbin:8000/get", c=2, n=10, **mesh_api)
    assert codes == {200: 10} and httpbin_listener.count == 10
    assert httpbin_listener.seen[0].headers["host"] == "httpbin:8000"
    # A pod's DNS knows no "nosuch": fortio fails before sending anything, on a cluster and
    # here, where the sidecar would otherwise take any host on port 8000 to Envoy.
    with pytest.raises(
        ActivityFailed, match=r"^fortio_load http://nosuch:8000/get: .*no such host 'nosuch'"
    ):
        probes.fortio_load("http://nosuch:8000/get", n=5, **mesh_api)
    assert httpbin_listener.count == 10


def test_api_server_down_is_activity_failed_naming_url_and_reason(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on that port any more.
    conf = {"kubeconfig_path": str(_kubeconfig(tmp_path, f"http://127.0.0.1:{port}"))}
    with pytest.raises(
        ActivityFailed,
        match=rf"fortio_load http://httpbin:8000/get: .*cannot reach the Kubernetes API at"
        rf" http://127\.0\.0\.1:{port}: .*refused",
    ):
        probes.fortio_load("http://httpbin:8000/get", n=2, configuration=conf)
    with pytest.raises(ActivityFailed, match=r"breaker_stats httpbin: .*cannot reach"):
        probes.breaker_stats("httpbin", configuration=conf)


def test_a_silent_api_server_is_bounded(tmp_path: Path) -> None:
    # Accepts connections and never answers: every call carries its own read timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        api = api_client({"kubeconfig_path": str(_kubeconfig(tmp_path, url))})
        try:
            with pytest.raises(remote.RemoteError, match="did not answer in time"):
                remote.run_via_service_proxy(api, {"url": "http://httpbin:8000/"}, timeout=0.5)
            with pytest.raises(remote.RemoteError, match="did not answer in time"):
                remote.find_pod(api, "default", "app=fortio", timeout=0.5)
        finally:
            api.close()


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig-extra"
    path.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster:\n"
        f"    server: {server}\ncontexts:\n- name: m\n  context:\n    cluster: m\n"
        "    user: m\ncurrent-context: m\nusers:\n- name: m\n  user: {}\n"
    )
    return path
