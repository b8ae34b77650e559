"""Route configurations and clusters in protobuf's binary format: Envoy reads exactly what
the JSON says.

The oracle is Envoy itself: every route configuration the translator makes for the seed's
scenarios, the kitchen-sink VirtualService and istiod's rule cases is loaded by one Envoy
twice, from its JSON and from its binary file, and Envoy's own config dump of the two must be
the same; every cluster of those inputs and of a kitchen-sink DestinationRule is loaded by two
Envoys, one reading CDS from JSON, one from binary, and their dumps must be the same. Bad
input is refused with the field named, before anything is written.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

from chaosmesh_ext.mesh import proto_wire
from chaosmesh_ext.mesh.envoy import EnvoyProcess, EnvoyRejected, envoy_binary
from chaosmesh_ext.mesh.translate import translate
from chaosmesh_ext.mesh.xds_files import (
    ROUTE_MESSAGE,
    XdsFiles,
    cluster_document,
    read_route_document,
    route_bytes,
    route_document,
)
from tests.support import istiod_cases as cases
from tests.support import mesh_seed as seed

ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
DUMP_TIMEOUT_S = 30.0


# Every traffic-policy field the translator maps onto a cluster, at the top level, per port
# and per subset (each subset replaces blocks of the top level, so each is its own cluster).
KITCHEN_SINK_RULE = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp:
        maxConnections: 7
        connectTimeout: 1.5s
        maxConnectionDuration: 30m
        idleTimeout: 90s
        tcpKeepalive: {probes: 3, time: 60s, interval: 10s}
      http:
        http1MaxPendingRequests: 5
        http2MaxRequests: 11
        maxRequestsPerConnection: 2
        maxRetries: 4
        idleTimeout: 45s
        h2UpgradePolicy: UPGRADE
        maxConcurrentStreams: 50
        http2KeepAlive: {interval: 5s, timeout: 2s}
    outlierDetection:
      consecutive5xxErrors: 3
      consecutiveGatewayErrors: 2
      interval: 2.5s
      baseEjectionTime: 1m
      maxEjectionPercent: 60
      minHealthPercent: 40
      splitExternalLocalOriginErrors: true
      consecutiveLocalOriginFailures: 6
    loadBalancer:
      simple: ROUND_ROBIN
      warmup: {duration: 30s, aggression: 2.5, minimumPercent: 15}
    retryBudget: {percent: 12.5, minRetryConcurrency: 2, budgetInterval: 2s}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {consistentHash: {useSourceIp: true, maglev: {tableSize: 65537}}}
      outlierDetection: {consecutive5xxErrors: 0, interval: 1s}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {simple: LEAST_REQUEST, warmupDurationSecs: 10s}
      connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}
  - name: v3
    labels: {version: v3}
    trafficPolicy:
      loadBalancer: {consistentHash: {httpCookie: {name: user, ttl: 0s}}}
  - name: v4
    labels: {version: v4}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer:
          consistentHash: {httpHeaderName: x-user, ringHash: {minimumRingSize: 128}}
        connectionPool:
          http: {useClientProtocol: true, maxRetries: 9}
"""


def _scenario_texts() -> list[str]:
    """The translator's richest inputs: the seed's scenarios and istiod's rule cases."""
    return [
        seed.CANARY,
        seed.BREAKER,
        seed.TIMEOUT + "\n---\n" + seed.RETRY,
        cases.BOOKINFO_SERVICES + "\n---\n" + cases.SOURCE_LABELS_ONLY,
        cases.BOOKINFO_SERVICES + "\n---\n" + cases.SPLIT_RULES,
        cases.BOOKINFO_SERVICES + "\n---\n" + cases.HASH_RULE,
        cases.PORT_LEVEL,
        cases.GATEWAY_MERGE,
        cases.NAMESPACED_HOSTS,
        cases.WEB_SERVICE + "\n---\n" + cases.REDIRECTS,
        cases.WEB_SERVICE + "\n---\n" + cases.HTTPS_GATEWAY,
    ]


def _route_configs(tmp_path: Path) -> list[dict]:
    """Every route configuration of the translator's richest inputs."""
    from chaosmesh_ext.mesh.api import tls
    from tests.mesh.translate.test_translate_routes import KITCHEN_SINK

    cert = tls.make(tmp_path / "cert")
    pem = (cert.cert_pem.decode(), cert.key_path.read_text())
    routes: list[dict] = []
    for text in _scenario_texts():
        snap = seed.snapshot(text, cases.bookinfo_endpoints(), access_log_dir=str(tmp_path))
        snap.fallback_certificate = pem
        routes += translate(snap).routes
    snap = seed.snapshot(seed.TIMEOUT + "\n---\n" + seed.BREAKER, access_log_dir=str(tmp_path))
    snap.virtual_services = [KITCHEN_SINK]
    routes += translate(snap).routes
    return routes


def _listener(name: str, path: Path, route_name: str) -> dict:
    source = {
        "resource_api_version": "V3",
        "path_config_source": {"path": str(path), "watched_directory": {"path": str(path.parent)}},
    }
    hcm = {
        "@type": HCM,
        "stat_prefix": name,
        "rds": {"route_config_name": route_name, "config_source": source},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
    }
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager",
                          "typed_config": hcm}]}
        ],
    }  # fmt: skip


def _dump(admin: str, resource: str, key: str) -> dict[str, dict]:
    """Envoy's config dump of one resource kind, by name."""
    import http.client

    host, port = admin.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", f"/config_dump?resource={resource}")
        body = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    out = {}
    for entry in body.get("configs") or []:
        config = entry[key]
        out[config["name"]] = config
    return out


def _loaded(
    directory: Path, bootstrap: dict, resource: str, key: str, expected: set[str]
) -> dict[str, dict]:
    """Start an Envoy on ``bootstrap`` and return its dump of ``resource`` once every name in
    ``expected`` is there (what it has after DUMP_TIMEOUT_S otherwise)."""
    directory.mkdir(parents=True, exist_ok=True)
    bootstrap = {
        "node": {"id": "proto-wire-test", "cluster": "proto-wire-test"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        **bootstrap,
    }
    (directory / "bootstrap.json").write_text(json.dumps(bootstrap))
    admin_path = directory / "admin.txt"
    with (directory / "envoy.log").open("wb") as log:
        proc = subprocess.Popen(
            [envoy_binary(), "-c", str(directory / "bootstrap.json"), "--admin-address-path",
             str(admin_path), "--disable-hot-restart", "-l", "error", "--concurrency", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + DUMP_TIMEOUT_S
        dumped: dict[str, dict] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            if admin_path.is_file() and admin_path.read_text().strip():
                dumped = _dump(admin_path.read_text().strip(), resource, key)
                if expected <= set(dumped):
                    break
            time.sleep(0.1)
        assert expected <= set(dumped), (directory / "envoy.log").read_text()[-2000:]
        return dumped
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)


@pytest.mark.envoy
def test_envoy_reads_the_binary_route_configurations_as_their_json(tmp_path):
    routes = _route_configs(tmp_path)
    assert len(routes) >= 15
    listeners, expected = [], set()
    for i, route in enumerate(routes):
        for form in ("json", "pb"):
            name = f"c{i}-{form}"
            copy = {**route, "name": name}
            path = tmp_path / "xds" / name / f"route.{form}"
            path.parent.mkdir(parents=True)
            if form == "json":
                path.write_text(json.dumps({"version_info": "1", "resources": [copy]}))
            else:
                path.write_bytes(route_document("1", route_bytes(copy)))
            listeners.append(_listener(name, path, name))
            expected.add(name)
    bootstrap = {"static_resources": {"listeners": listeners}}
    dumped = _loaded(tmp_path, bootstrap, "dynamic_route_configs", "route_config", expected)
    for i in range(len(routes)):
        from_json = {**dumped[f"c{i}-json"], "name": ""}
        from_binary = {**dumped[f"c{i}-pb"], "name": ""}
        assert from_binary == from_json, routes[i]["name"]


def _clusters(tmp_path: Path) -> list[dict]:
    """Every cluster of the translator's richest inputs and of the kitchen-sink rule, each
    under a name of its own."""
    clusters: list[dict] = []
    texts = [*_scenario_texts(), cases.BOOKINFO_SERVICES + "\n---\n" + KITCHEN_SINK_RULE]
    for i, text in enumerate(texts):
        snap = seed.snapshot(text, cases.bookinfo_endpoints(), access_log_dir=str(tmp_path))
        for cluster in translate(snap).clusters:
            name = f"s{i}-{cluster['name']}"
            assignment = {**cluster["load_assignment"], "cluster_name": name}
            clusters.append({**cluster, "name": name, "load_assignment": assignment})
    return clusters


@pytest.mark.envoy
def test_envoy_reads_the_binary_clusters_as_their_json(tmp_path):
    clusters = _clusters(tmp_path)
    assert len(clusters) >= 30
    names = {c["name"] for c in clusters}
    sink = [c for c in clusters if c["name"].startswith(f"s{len(_scenario_texts())}-")]
    # The kitchen sink reaches the fields it is there for.
    reached = {k for c in sink for k in c}
    assert {"typed_extension_protocol_options", "outlier_detection", "upstream_connection_options",
            "round_robin_lb_config", "ring_hash_lb_config", "maglev_lb_config",
            "least_request_lb_config", "common_lb_config"} <= reached  # fmt: skip
    dumps = {}
    for form in ("json", "pb"):
        path = tmp_path / form / "cds" / f"cds.{form}"
        path.parent.mkdir(parents=True)
        if form == "json":
            path.write_text(json.dumps({"version_info": "1", "resources": clusters}))
        else:
            path.write_bytes(cluster_document("1", clusters))
        source = {
            "resource_api_version": "V3",
            "path_config_source": {
                "path": str(path), "watched_directory": {"path": str(path.parent)}
            },
        }  # fmt: skip
        bootstrap = {"dynamic_resources": {"cds_config": source}}
        dumps[form] = _loaded(
            tmp_path / form, bootstrap, "dynamic_active_clusters", "cluster", names
        )
    for name in sorted(names):
        assert dumps["pb"][name] == dumps["json"][name], name


def test_unchanged_virtual_hosts_are_reused_and_the_bytes_are_those_of_a_fresh_encoding(tmp_path):
    files = XdsFiles(tmp_path)
    route = translate(seed.snapshot(seed.CANARY, seed.canary_endpoints())).routes[0]
    first = files.rds_document(route, "1")
    assert read_route_document(first) == ("1", [route_bytes(route)])
    changed = json.loads(json.dumps(route))  # new objects: every virtual host is encoded again
    changed["virtual_hosts"][0]["routes"][0]["name"] = "renamed"
    second = files.rds_document(changed, "2")
    assert read_route_document(second) == ("2", [route_bytes(changed)])
    assert route_bytes(changed) != route_bytes(route)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda r: r["virtual_hosts"][0]["routes"][0]["route"].update(bogus=1), "bogus"),
        (lambda r: r["virtual_hosts"][0]["routes"][0]["route"].update(timeout="5 s"), "timeout"),
        (lambda r: r["virtual_hosts"][0].update(domains="*"), "domains"),
        (
            lambda r: r["virtual_hosts"][0]["routes"][0].update(
                match={"prefix": "/", "case_sensitive": "yes"}
            ),
            "case_sensitive",
        ),
    ],
)
def test_a_field_envoy_cannot_take_is_refused_naming_it(edit, named):
    route = translate(seed.snapshot(seed.CANARY, seed.canary_endpoints())).routes[0]
    edit(route)
    with pytest.raises(ValueError, match=named):
        route_bytes(route)


@pytest.mark.envoy
def test_envoy_process_refuses_such_a_change_and_keeps_serving_the_last_one(tmp_path):
    snap = seed.snapshot(seed.TIMEOUT, access_log_dir=str(tmp_path))
    good = translate(snap)
    with EnvoyProcess(tmp_path / "state") as proc:
        proc.start(good)
        bad = translate(snap)
        bad.routes[0]["virtual_hosts"][0]["routes"][0]["route"]["bogus"] = 1
        with pytest.raises(EnvoyRejected, match="bogus"):
            proc.apply(bad)
        assert proc.applied is good
        on_disk = read_route_document(proc.files.rds_path(good.routes[0]["name"]).read_bytes())
        assert on_disk[1] == [route_bytes(good.routes[0])]


def test_well_known_types_follow_protobufs_json_mapping():
    # Duration: seconds (1) and nanos (2); negative values as 64-bit two's complement.
    assert proto_wire._duration("1.5s", "d") == b"\x08\x01\x10" + proto_wire.varint(500_000_000)
    assert proto_wire._duration("0s", "d") == b""
    assert proto_wire._duration("-2s", "d") == b"\x08" + b"\xfe" + b"\xff" * 8 + b"\x01"
    with pytest.raises(ValueError, match="duration"):
        proto_wire._duration("5", "d")
    # A wrapper is the bare value in JSON, a message of one field on the wire.
    assert proto_wire.encode(ROUTE_MESSAGE, {"validate_clusters": False}) == b"\x3a\x02\x08\x00"
    # Struct / Value: any JSON, doubles as fixed64.
    value = proto_wire._json_value({"a": [1, "x", True, None]}, "v")
    number = b"\x11" + struct.pack("<d", 1.0)
    items = b"".join(proto_wire.field_bytes(1, v) for v in (
        number, b"\x1a\x01x", b"\x20\x01", b"\x08\x00"))  # fmt: skip
    entry = proto_wire.field_bytes(1, b"a") + proto_wire.field_bytes(
        2, proto_wire.field_bytes(6, items))  # fmt: skip
    assert value == proto_wire.field_bytes(5, proto_wire.field_bytes(1, entry))
    # Enums by name or number; integers as numbers or strings; out of range refused.
    percent = "envoy.type.v3.FractionalPercent"
    assert proto_wire.encode(percent, {"numerator": 5, "denominator": "MILLION"}) == (
        proto_wire.encode(percent, {"numerator": "5", "denominator": 2})
    )
    with pytest.raises(ValueError, match="out of range"):
        proto_wire.encode(percent, {"numerator": -1})
    assert proto_wire.varint(300) == b"\xac\x02"
