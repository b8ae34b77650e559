"""Route configurations in protobuf's binary format: Envoy reads exactly what the JSON says.

The oracle is Envoy itself: every route configuration the translator makes for the seed's
scenarios, the kitchen-sink VirtualService and istiod's rule cases is loaded by one Envoy
twice, from its JSON and from its binary file, and Envoy's own config dump of the two must be
the same. Bad input is refused with the field named, before anything is written.
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


def _route_configs(tmp_path: Path) -> list[dict]:
    """Every route configuration of the translator's richest inputs."""
    from chaosmesh_ext.mesh.api import tls
    from tests.mesh.translate.test_translate_routes import KITCHEN_SINK

    cert = tls.make(tmp_path / "cert")
    pem = (cert.cert_pem.decode(), cert.key_path.read_text())
    texts = [
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
    routes: list[dict] = []
    for text in texts:
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


def _dump(admin: str) -> dict[str, dict]:
    import http.client

    host, port = admin.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", "/config_dump?resource=dynamic_route_configs")
        body = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    out = {}
    for entry in body.get("configs") or []:
        config = entry["route_config"]
        out[config["name"]] = config
    return out


@pytest.mark.envoy
def test_envoy_reads_the_binary_route_configurations_as_their_json(tmp_path):
    routes = _route_configs(tmp_path)
    assert len(routes) >= 15
    listeners, expected = [], []
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
            expected.append(name)
    bootstrap = {
        "node": {"id": "proto-wire-test", "cluster": "proto-wire-test"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners},
    }
    (tmp_path / "bootstrap.json").write_text(json.dumps(bootstrap))
    admin_path = tmp_path / "admin.txt"
    log = (tmp_path / "envoy.log").open("wb")
    proc = subprocess.Popen(
        [envoy_binary(), "-c", str(tmp_path / "bootstrap.json"), "--admin-address-path",
         str(admin_path), "--disable-hot-restart", "-l", "error", "--concurrency", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + DUMP_TIMEOUT_S
        dumped: dict[str, dict] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            if admin_path.is_file() and admin_path.read_text().strip():
                dumped = _dump(admin_path.read_text().strip())
                if set(expected) <= set(dumped):
                    break
            time.sleep(0.1)
        assert set(expected) <= set(dumped), (tmp_path / "envoy.log").read_text()[-2000:]
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)
        log.close()
    for i in range(len(routes)):
        from_json = {**dumped[f"c{i}-json"], "name": ""}
        from_binary = {**dumped[f"c{i}-pb"], "name": ""}
        assert from_binary == from_json, routes[i]["name"]


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
