"""EnvoyProcess: applied-means-enforced, rejections with rollback, supervision, xDS files."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from chaosmesh_ext.mesh.envoy import ADMIN_TIMEOUT, EnvoyProcess, EnvoyRejected
from chaosmesh_ext.mesh.translate import Endpoint, translate
from chaosmesh_ext.mesh.xds_files import (
    CLUSTER_TYPE_URL,
    cluster_bytes,
    read_document,
    read_route_document,
    route_bytes,
)
from tests.support import mesh_seed as seed

from .conftest import request

pytestmark = pytest.mark.envoy

_DOCS = seed.TIMEOUT.split("---")
TOMCAT_ONLY = _DOCS[1] + "---" + _DOCS[3]  # tomcat-svc and tomcat-vs (10 s delay)


def _tomcat_snapshot(port: int, **kwargs):
    ep = Endpoint("tomcat-0", "default", {"server": "tomcat"}, "127.0.0.1", port)
    return seed.snapshot(TOMCAT_ONLY, [ep], **kwargs)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_rejected_config_raises_with_envoys_reason_and_the_old_one_keeps_serving(
    envoy, upstreams, tmp_path
):
    tomcat = upstreams("tomcat")
    snap = _tomcat_snapshot(tomcat.port)
    delay_vs = snap.virtual_services.pop()
    good = translate(snap)
    proc = envoy(good)
    port = proc.listener_addresses()["0.0.0.0_8080"][1]
    version = proc.version

    bad = translate(snap)
    bad.route_config("8080")["virtual_hosts"][0]["routes"][0]["match"] = {
        "safe_regex": {"regex": "(("}
    }
    bad.clusters[0]["connect_timeout"] = "3s"  # a valid part that must be rolled back too
    with pytest.raises(EnvoyRejected) as caught:
        proc.apply(bad)
    assert "missing )" in caught.value.reason
    assert request(port, "tomcat-svc:8080")[0] == 200
    assert proc.applied is good and proc.version != version
    # The files on disk are the good config again, so a restart serves it too.
    _, on_disk = read_route_document(proc.files.rds_path("8080").read_bytes())
    assert on_disk == [route_bytes(good.route_config("8080"))]
    _, clusters = read_document(proc.files.cds_path.read_bytes(), CLUSTER_TYPE_URL)
    assert clusters == [cluster_bytes(c) for c in good.clusters]  # connect_timeout 10s again
    # ...and the next good change still goes through.
    delay_vs["spec"]["http"][0]["fault"] = {
        "abort": {"httpStatus": 418, "percentage": {"value": 100}}
    }
    snap.virtual_services = [delay_vs]
    proc.apply(translate(snap))
    assert request(port, "tomcat-svc:8080")[0] == 418


def test_apply_adds_and_removes_listeners_clusters_and_route_configs(envoy, upstreams, tmp_path):
    tomcat, nginx = upstreams("tomcat"), upstreams("nginx")
    snap = _tomcat_snapshot(tomcat.port)
    proc = envoy(translate(snap))
    assert set(proc.listener_addresses()) == {"0.0.0.0_8080"}

    bigger = seed.snapshot(
        seed.TIMEOUT,
        [
            Endpoint("tomcat-0", "default", {"server": "tomcat"}, "127.0.0.1", tomcat.port),
            Endpoint("nginx-0", "default", {"server": "nginx"}, "127.0.0.1", nginx.port),
        ],
    )
    proc.apply(translate(bigger))
    # apply() returned: the new listener is bound and routes to the new cluster right away.
    port_80 = proc.listener_addresses()["0.0.0.0_80"][1]
    assert request(port_80, "nginx-svc")[2] == "nginx\n"

    proc.apply(translate(snap))
    assert set(proc.listener_addresses()) == {"0.0.0.0_8080"}
    assert proc.files.route_names() == ["8080"]
    _, clusters = read_document(proc.files.cds_path.read_bytes(), CLUSTER_TYPE_URL)
    [tomcat_cluster] = translate(snap).clusters
    assert tomcat_cluster["name"] == "outbound|8080||tomcat-svc.default.svc.cluster.local"
    assert clusters == [cluster_bytes(tomcat_cluster)]


def test_a_listener_removed_and_added_again_serves_its_new_routes(envoy, upstreams, tmp_path):
    # A removed listener drains (keeping its route subscription) while the same listener is
    # added back, as when a Gateway is deleted and re-created: the new routes must apply.
    tomcat, nginx = upstreams("tomcat"), upstreams("nginx")
    endpoints = [
        Endpoint("tomcat-0", "default", {"server": "tomcat"}, "127.0.0.1", tomcat.port),
        Endpoint("nginx-0", "default", {"server": "nginx"}, "127.0.0.1", nginx.port),
    ]
    listen = _free_port()
    ports = {"0.0.0.0_80": listen, "0.0.0.0_8080": _free_port()}
    both = seed.snapshot(seed.TIMEOUT, endpoints, listener_ports=ports)
    proc = envoy(translate(both))
    assert request(listen, "nginx-svc")[2] == "nginx\n"
    proc.apply(translate(_tomcat_snapshot(tomcat.port, listener_ports=ports)))
    assert "0.0.0.0_80" not in proc.listener_addresses()

    again = seed.snapshot(seed.TIMEOUT, endpoints, listener_ports=ports)
    again.virtual_services = [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {"name": "nginx-abort", "namespace": "default"},
            "spec": {
                "hosts": ["nginx-svc"],
                "http": [
                    {
                        "fault": {"abort": {"httpStatus": 418, "percentage": {"value": 100}}},
                        "route": [{"destination": {"host": "nginx-svc"}}],
                    }
                ],
            },
        }
    ]
    proc.apply(translate(again), timeout=10)
    assert request(listen, "nginx-svc")[0] == 418


def test_envoy_is_restarted_with_its_current_config_after_kill_9(envoy, upstreams, tmp_path):
    tomcat = upstreams("tomcat")
    listen = _free_port()
    snap = _tomcat_snapshot(tomcat.port, listener_ports={"0.0.0.0_8080": listen})
    proc = envoy(translate(snap))
    snap.virtual_services[0]["spec"]["http"][0]["fault"]["delay"]["fixedDelay"] = "1ms"
    proc.apply(translate(snap))
    old_pid = proc.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while proc.restarts < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.restarts == 1
    assert proc.pid != old_pid
    assert request(listen, "tomcat-svc:8080")[0] == 200
    # It came back with the applied config (the 1 ms delay), not the first one (10 s).
    route = proc.applied.route_config("8080")
    fault = route["virtual_hosts"][0]["routes"][0]["typed_per_filter_config"]
    assert fault["envoy.filters.http.fault"]["delay"]["fixed_delay"] == "0.001s"
    _, on_disk = read_route_document(proc.files.rds_path("8080").read_bytes())
    assert on_disk == [route_bytes(route)]


def test_stop_ends_envoy_and_a_second_envoy_can_run_beside_the_first(tmp_path, upstreams):
    tomcat = upstreams("tomcat")
    res = translate(_tomcat_snapshot(tomcat.port))
    first = EnvoyProcess(tmp_path / "a", concurrency=1)
    second = EnvoyProcess(tmp_path / "b", concurrency=2)
    try:
        first.start(res)
        second.start(res)  # --disable-hot-restart: no shared-memory clash
        assert first.admin_url != second.admin_url
        pid = first.pid
        assert pid is not None
    finally:
        first.stop()
        second.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_listener_port_in_use_is_refused_with_envoys_reason(tmp_path, upstreams):
    tomcat = upstreams("tomcat")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        snap = _tomcat_snapshot(tomcat.port, listener_ports={"0.0.0.0_8080": port})
        proc = EnvoyProcess(tmp_path, concurrency=1)
        try:
            with pytest.raises(EnvoyRejected, match="Address already in use"):
                proc.start(translate(snap))
        finally:
            proc.stop()
        assert proc.pid is None


def test_pushing_the_same_resources_is_a_no_op(envoy, upstreams):
    tomcat = upstreams("tomcat")
    snap = _tomcat_snapshot(tomcat.port)
    proc = envoy(translate(snap))
    version = proc.version
    assert proc.apply(translate(snap)) == version


def test_a_change_waits_for_an_envoy_too_busy_to_answer_its_admin_api(envoy, upstreams):
    """An Envoy that answers nothing for longer than two admin timeouts (stopped here; on a
    loaded machine, one starting hundreds of clusters) still applies the change within the
    caller's timeout: the wait goes on until then instead of failing at the first silence."""
    tomcat = upstreams("tomcat")
    snap = _tomcat_snapshot(tomcat.port)
    proc = envoy(translate(snap))
    port = proc.listener_addresses()["0.0.0.0_8080"][1]
    snap.virtual_services[0]["spec"]["http"][0]["fault"] = {
        "abort": {"httpStatus": 418, "percentage": {"value": 100}}
    }
    changed = translate(snap)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGSTOP)
    resume = threading.Timer(2 * ADMIN_TIMEOUT + 1.0, os.kill, (proc.pid, signal.SIGCONT))
    resume.start()
    try:
        version = proc.apply(changed, timeout=60.0)
    finally:
        resume.cancel()
        os.kill(proc.pid, signal.SIGCONT)
    assert proc.version == version and proc.applied is changed
    assert request(port, "tomcat-svc:8080")[0] == 418


def test_a_config_envoy_cannot_load_at_start_fails_cleanly_and_start_can_be_retried(
    tmp_path, upstreams
):
    tomcat = upstreams("tomcat")
    snap = _tomcat_snapshot(tomcat.port)
    snap.virtual_services = []
    good = translate(snap)
    bad = translate(snap)
    bad.clusters[0]["connect_timeout"] = "-1s"
    proc = EnvoyProcess(tmp_path, concurrency=1)
    try:
        with pytest.raises(EnvoyRejected, match="Expected positive duration"):
            proc.start(bad)
        assert proc.pid is None
        proc.start(good)
        port = proc.listener_addresses()["0.0.0.0_8080"][1]
        assert request(port, "tomcat-svc:8080")[0] == 200
    finally:
        proc.stop()


def test_running_and_endpoint_health_read_envoy_itself(envoy, upstreams, tmp_path):
    tomcat = upstreams("tomcat")
    proc = envoy(translate(_tomcat_snapshot(tomcat.port)))
    assert proc.running
    assert proc.endpoint_health() == {tomcat.port: "healthy"}

    proc.stop()
    assert not proc.running
    assert proc.endpoint_health() == {}  # no Envoy to ask: nothing known, no error
