"""The daemon's pure views: what the API shows as Pods and Deployments, mesh.json's entries,
the ``mesh status`` report and what ``mesh up`` prints — from the state the daemon runs."""

from __future__ import annotations

from typing import Any

from chaosmesh_ext.mesh import views
from chaosmesh_ext.mesh.api.server import LOCAL_PORT_ANNOTATION
from chaosmesh_ext.mesh.listener_name import ListenerName
from chaosmesh_ext.mesh.pods.model import Deletion
from tests.support.replicas import T0, FakeReplica


def Running(pod: str, port: int, pid: int, **fields: Any) -> FakeReplica:
    """A replica of the reviews Deployment in namespace shop."""
    return FakeReplica(pod, port, pid, **fields)


def _ready(pod: dict) -> str:
    return next(c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready")


SERVICE = {
    "metadata": {"name": "reviews", "namespace": "shop"},
    "spec": {"selector": {"app": "reviews"}, "ports": [{"port": 9080}]},
}
DEPLOYMENT = {
    "metadata": {"name": "reviews", "namespace": "shop"},
    "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "reviews:1"}]}}},
}
GATEWAY = {
    "metadata": {"name": "ingress", "namespace": "shop"},
    "spec": {"servers": [{"port": {"number": 80}, "hosts": ["*", "shop/www.example.com"]}]},
}
KEY = ("shop", "reviews")


def test_pods_and_deployments_follow_their_replicas() -> None:
    replicas = {
        KEY: [
            Running("reviews-0", 31001, 501),
            Running("reviews-1", 31002, 502, serving_since=None),
        ]
    }

    pods = views.pod_objects({KEY: DEPLOYMENT}, replicas)
    assert [p["metadata"]["name"] for p in pods] == ["reviews-0", "reviews-1"]
    assert pods[1]["metadata"]["annotations"] == {
        LOCAL_PORT_ANNOTATION: "31002",
        "chaosmesh.io/workload": "echo",
        "chaosmesh.io/pid": "502",
    }
    assert [_ready(p) for p in pods] == ["True", "False"]
    assert pods[0]["status"]["containerStatuses"][0]["image"] == "reviews:1"

    (deployment,) = views.deployment_objects({KEY: DEPLOYMENT}, replicas, {KEY: 3}, T0 + 5)
    assert deployment["status"]["replicas"] == 2 and deployment["status"]["readyReplicas"] == 1
    # The API server's defaults and the controller's bookkeeping, as on a cluster.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["metadata"]["generation"] == 3
    assert deployment["status"]["observedGeneration"] == 3


def test_entries_name_the_local_url_of_each_listener_and_the_host_to_send() -> None:
    ports = {ListenerName.outbound(9080): 41000, ListenerName.gateway(80): 42000}

    (service,) = views.service_entries([SERVICE], ports)
    assert service["url"] == "http://127.0.0.1:41000/"
    assert service["host_header"] == "reviews.shop.svc.cluster.local"
    (gateway,) = views.gateway_entries([GATEWAY], ports)
    assert gateway["url"] == "http://127.0.0.1:42000/"
    assert gateway["host_header"] == "www.example.com"  # the first host that is no wildcard
    assert views.listener_names([SERVICE], [GATEWAY]) == list(ports)
    https = {
        "metadata": {"name": "secure", "namespace": "shop"},
        "spec": {"servers": [{"port": {"number": 443, "protocol": "HTTPS"}, "hosts": ["*"]}]},
    }
    (entry,) = views.gateway_entries([https], {ListenerName.gateway(443): 43000})
    assert entry["url"] == "https://127.0.0.1:43000/" and entry["host_header"] is None


def test_status_lists_only_the_endpoints_the_selector_picks_with_their_health() -> None:
    picked = Running("reviews-0", 31001, 501, restarts=2)
    crashed = Running("reviews-1", 31002, 502, kind="command", program_running=False, restarts=3)
    other_namespace = Running("reviews-0", 31003, 503, namespace="test")
    other_app = Running("ratings-0", 31004, 504, labels={"app": "ratings"})
    replicas = [picked, crashed, other_namespace, other_app]

    (entry,) = views.service_status(
        {KEY: SERVICE},
        {ListenerName.outbound(9080): 41000},
        replicas,
        {31001: "ejected (outlier detection)"},
    )
    assert entry["endpoints"] == [
        {
            "pod": "reviews-0",
            "address": "127.0.0.1:31001",
            "process": "running (2 restarts)",
            "health": "ejected (outlier detection)",
        },
        {
            "pod": "reviews-1",
            "address": "127.0.0.1:31002",
            "process": "restarting (3)",
            "health": "unknown",
        },
    ]


def test_describe_prints_one_line_per_way_in() -> None:
    ports = {ListenerName.outbound(9080): 41000, ListenerName.gateway(80): 42000}
    text = views.describe(
        {
            "api_url": "https://127.0.0.1:40000",
            "kubeconfig": "/tmp/x/kubeconfig",
            "services": views.service_entries([SERVICE], ports),
            "gateways": views.gateway_entries([GATEWAY], ports),
            "warnings": ["Gateway shop/ingress: spec.servers[0].tls: not served"],
        }
    )
    assert text.splitlines() == [
        "mesh up: API https://127.0.0.1:40000",
        "  kubeconfig: /tmp/x/kubeconfig",
        "  service shop/reviews:9080  http://127.0.0.1:41000/  "
        "(Host: reviews.shop.svc.cluster.local)",
        "  gateway shop/ingress:80  http://127.0.0.1:42000/  (Host: www.example.com)",
        "warning: Gateway shop/ingress: spec.servers[0].tls: not served",
    ]


def test_mesh_status_names_a_replica_starting_or_being_deleted() -> None:
    assert views.process_state(Running("reviews-0", 1, 1, serving_since=None)) == "starting"
    deleted = Running("reviews-0", 1, 1, deletion=Deletion(T0 + 5, 30))
    assert views.process_state(deleted) == "terminating"
    assert views.process_state(Running("reviews-0", 1, 1, exit_code=1)) == "exited"
