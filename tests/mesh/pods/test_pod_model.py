"""Pods and Deployments from the replicas' state, as a kubelet and the controllers report
them; the API server's defaults; the scale-down ranking (pure)."""

from __future__ import annotations

import random
from typing import Any

from chaosmesh_ext.mesh.pods import defaults, model
from chaosmesh_ext.mesh.pods.model import Deletion
from tests.support.replicas import T0, FakeReplica

TEMPLATE = {
    "metadata": {"labels": {"app": "catalog"}},
    "spec": {"containers": [{"name": "catalog", "image": "example.com/catalog:1.0"}]},
}


def Pod(pod: str = "catalog-0", **fields: Any) -> FakeReplica:
    """A replica of the catalog Deployment."""
    fields.setdefault("labels", {"app": "catalog"})
    return FakeReplica(pod, namespace="default", deployment="catalog", **fields)


def _render(pod: FakeReplica) -> dict:
    return model.pod_object(pod, TEMPLATE, {"chaosmesh.io/workload": "echo"}, "x")


def _conditions(obj: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj["status"]["conditions"]}


def test_a_pod_goes_pending_running_then_terminating_and_ended() -> None:
    starting = _render(Pod(serving_since=None))
    assert starting["status"]["phase"] == "Pending"
    assert _conditions(starting)["Ready"] == "False"
    assert starting["status"]["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "ContainerCreating"}
    }

    serving = _render(Pod())
    assert serving["status"]["phase"] == "Running"
    assert _conditions(serving) == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    assert serving["metadata"]["creationTimestamp"] == "2027-01-15T08:00:00Z"
    assert "deletionTimestamp" not in serving["metadata"]

    # Deleted with a 30 s grace period 10 s after it started: still Ready until it ends.
    terminating = _render(Pod(deletion=Deletion(T0 + 10, 30)))
    assert terminating["metadata"]["deletionTimestamp"] == "2027-01-15T08:00:40Z"
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    assert terminating["status"]["phase"] == "Running"
    assert _conditions(terminating)["Ready"] == "True"

    ended = _render(Pod(deletion=Deletion(T0 + 10, 30), exit_code=0, ended_at=T0 + 10.1))
    assert ended["status"]["phase"] == "Succeeded"
    assert _conditions(ended)["Ready"] == "False"
    terminated = ended["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    killed = _render(Pod(deletion=Deletion(T0 + 10, 0), exit_code=-9, ended_at=T0 + 10))
    assert killed["status"]["phase"] == "Failed"


def test_a_pod_spec_carries_the_api_servers_defaults() -> None:
    spec = _render(Pod())["spec"]
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["restartPolicy"] == "Always"
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert defaults.image_pull_policy("nginx") == "Always"
    assert defaults.image_pull_policy("nginx:latest") == "Always"
    assert defaults.image_pull_policy("registry:5000/nginx") == "Always"
    assert defaults.image_pull_policy("nginx@sha256:abc") == "IfNotPresent"


def test_a_deployment_is_defaulted_like_the_api_server_does_it() -> None:
    shown = defaults.deployment({"metadata": {"name": "web"}, "spec": {"template": TEMPLATE}})
    assert shown["spec"]["replicas"] == 1
    assert shown["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert shown["spec"]["revisionHistoryLimit"] == 10
    assert shown["spec"]["progressDeadlineSeconds"] == 600
    assert shown["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    kept = defaults.deployment({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}})
    assert kept["spec"]["replicas"] == 0 and kept["spec"]["strategy"] == {"type": "Recreate"}


def test_deployment_status_counts_what_a_replicaset_counts() -> None:
    deployment = defaults.deployment({"metadata": {"name": "catalog"}, "spec": {"replicas": 3}})
    replicas = [
        Pod("catalog-0"),
        Pod("catalog-1", deletion=Deletion(T0 + 5, 30)),  # being deleted: not counted
        Pod("catalog-x2bcd", serving_since=None),  # its replacement, still starting
        Pod("catalog-2"),
    ]
    status = model.deployment_status(deployment, replicas, 4, T0 + 6)
    assert status["observedGeneration"] == 4
    assert status["replicas"] == 3 and status["updatedReplicas"] == 3
    assert status["readyReplicas"] == 2 and status["availableReplicas"] == 2
    assert status["unavailableReplicas"] == 1
    available = next(c for c in status["conditions"] if c["type"] == "Available")
    assert available["status"] == "False"  # maxUnavailable 25 % of 3 is 0

    whole = model.deployment_status(deployment, [Pod("a"), Pod("b"), Pod("c")], 4, T0 + 6)
    assert "unavailableReplicas" not in whole  # the API leaves counts of 0 out
    assert {c["type"]: c["reason"] for c in whole["conditions"]} == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "NewReplicaSetAvailable",
    }
    none = model.deployment_status(defaults.deployment({"spec": {"replicas": 0}}), [], 2, T0)
    assert none == {"observedGeneration": 2, "conditions": none["conditions"]}


def test_min_ready_seconds_delays_availability() -> None:
    deployment = defaults.deployment({"spec": {"replicas": 1, "minReadySeconds": 5}})
    fresh = [Pod(serving_since=T0)]
    assert "availableReplicas" not in model.deployment_status(deployment, fresh, 1, T0 + 4)
    assert model.deployment_status(deployment, fresh, 1, T0 + 5)["availableReplicas"] == 1


def test_a_scale_down_removes_pending_then_unready_then_the_newest_first() -> None:
    oldest = Pod("a", created_at=T0, serving_since=T0 + 1)
    newest = Pod("b", created_at=T0 + 50, serving_since=T0 + 51)
    unready = Pod("c", program_running=False)
    pending = Pod("d", serving_since=None)
    order = model.deletion_order([oldest, newest, unready, pending])
    assert [p.pod for p in order] == ["d", "c", "b", "a"]


def test_new_pod_names_are_the_deployment_and_five_safe_characters() -> None:
    rng = random.Random(7)
    taken = {"catalog-0"}
    names = set()
    for _ in range(50):
        name = model.new_pod_name("catalog", taken | names, rng)
        prefix, suffix = name.rsplit("-", 1)
        assert prefix == "catalog" and len(suffix) == 5
        assert set(suffix) <= set(model.NAME_ALPHABET)
        names.add(name)
    assert len(names) == 50
