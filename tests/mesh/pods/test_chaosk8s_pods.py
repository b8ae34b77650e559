"""chaostoolkit-kubernetes' pod activities, called as an experiment calls them, against the
embedded mesh: what terminating a pod does to its process, its Pod object, the watch, its
replacement and Envoy's endpoints; the pod probes; logs; exec."""

from __future__ import annotations

import os
import queue
import threading
import time

import pytest
from chaosk8s.deployment.probes import deployment_available_and_healthy, deployment_fully_available
from chaosk8s.pod.actions import delete_pods, exec_in_pods, terminate_pods
from chaosk8s.pod.probes import (
    all_pods_healthy,
    count_min_pods,
    count_pods,
    pod_is_not_available,
    pods_in_conditions,
    pods_in_phase,
    pods_not_in_phase,
    read_pod_logs,
    should_be_found_in_logs,
)
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, watch

from chaosmesh_ext.mesh.state import alive
from tests.support.embedded_mesh import RunningMesh

from .conftest import (
    list_pods,
    local_ports,
    pod_pid,
    program_pid,
    ready_status,
    settled,
    wait_for,
)

pytestmark = [pytest.mark.envoy, pytest.mark.slow]
T = 30
CATALOG = "|8000||catalog."
READY = [{"type": "Ready", "status": "True"}]


def test_the_pod_probes_see_the_replicas(k8s: RunningMesh, core: client.CoreV1Api) -> None:
    settled(core, "app=catalog", 3)
    assert count_pods("app=catalog") == 3
    assert count_pods("app=catalog", phase="Running") == 3
    assert count_pods("app=nothing") == 0
    assert pods_in_phase("app=catalog", "Running") is True
    assert pods_not_in_phase("app=catalog", "Pending") is True
    assert pods_in_conditions("app=catalog", [*READY, {"type": "PodScheduled", "status": "True"}])
    with pytest.raises(ActivityFailed, match="should be 'Pending'"):
        pods_in_phase("app=catalog", "Pending")
    assert pods_in_phase("app=catalog", "Pending", raise_on_invalid_phase=False) is False
    with pytest.raises(ActivityFailed, match="no pods 'app=nothing' were found"):
        pods_in_conditions("app=nothing", READY)
    assert count_min_pods("app=catalog", min_count=3) is True
    assert count_min_pods("app=catalog", min_count=4) is False
    settled(core, "app=stubborn", 1)
    settled(core, "app=web", 2)
    assert all_pods_healthy() is True
    # pod_is_not_available selects by a `name` label: the pods have none, so none runs.
    assert pod_is_not_available("catalog") is True
    with pytest.raises(ActivityFailed, match="is actually running"):
        pod_is_not_available("catalog", label_selector="app={name}")


def test_terminate_pods_stops_the_replica_and_a_new_pod_replaces_it_in_envoy(
    k8s: RunningMesh, core: client.CoreV1Api
) -> None:
    before = settled(core, "app=catalog", 3)
    assert k8s.envoy_endpoints(CATALOG) == local_ports(before)
    rv = core.list_namespaced_pod("default", _request_timeout=T).metadata.resource_version
    events: queue.Queue[tuple[str, client.V1Pod]] = queue.Queue()
    stop = threading.Event()

    def watch_pods() -> None:
        w = watch.Watch()
        for event in w.stream(
            core.list_namespaced_pod,
            "default",
            label_selector="app=catalog",
            resource_version=rv,
            timeout_seconds=T,
            _request_timeout=T,
        ):
            events.put((event["type"], event["object"]))
            if stop.is_set():
                w.stop()

    watcher = threading.Thread(target=watch_pods, daemon=True)
    watcher.start()

    killed = terminate_pods(label_selector="app=catalog", qty=1)
    assert killed == [before[0].metadata.name]  # alphabetic order, the first
    old_pid = pod_pid(before[0])
    wait_for(lambda: not alive(old_pid), "the killed replica's process to end", 10)

    after = settled(core, "app=catalog", 3)
    names = {p.metadata.name for p in after}
    assert killed[0] not in names
    (new,) = [p for p in after if p.metadata.name not in {b.metadata.name for b in before}]
    assert (
        new.metadata.name.startswith("catalog-") and len(new.metadata.name) == len("catalog-") + 5
    )
    wait_for(lambda: k8s.envoy_endpoints(CATALOG) == local_ports(after), "Envoy's endpoints")
    assert local_ports(before[:1]).isdisjoint(k8s.envoy_endpoints(CATALOG))
    assert deployment_available_and_healthy("catalog") is True

    # The watch's events, until the old pod's deletion and the new one's readiness arrived.
    seen: list[tuple[str, str, str, bool, str]] = []
    deadline = time.monotonic() + T
    while time.monotonic() < deadline and not (
        (("DELETED", killed[0]) in {s[:2] for s in seen})
        and any(s[1] == new.metadata.name and s[4] == "True" for s in seen)
    ):
        try:
            kind, pod = events.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(
            (
                kind,
                pod.metadata.name,
                pod.status.phase,
                bool(pod.metadata.deletion_timestamp),
                ready_status(pod),
            )
        )
    stop.set()
    old = [s for s in seen if s[1] == killed[0]]
    assert old[0][0] == "MODIFIED" and old[0][3]  # deletionTimestamp set first
    assert any(s[4] == "False" for s in old)  # then not ready, once its process ended
    assert old[-1][0] == "DELETED"
    fresh = [s for s in seen if s[1] == new.metadata.name]
    assert fresh[0][:3] == ("ADDED", new.metadata.name, "Pending")
    assert fresh[-1][2:] == ("Running", False, "True")


def test_terminate_pods_honours_its_selection_options(
    k8s: RunningMesh, core: client.CoreV1Api
) -> None:
    before = {p.metadata.name for p in settled(core, "app=catalog", 3)}
    picked = terminate_pods(label_selector="app=catalog", name_pattern="^catalog-", rand=True)
    assert len(picked) == 1 and picked[0] in before
    settled(core, "app=catalog", 3)
    half = terminate_pods(label_selector="app=catalog", mode="percentage", qty=50)
    assert len(half) == 2  # ceil(50 % of 3)
    settled(core, "app=catalog", 3)
    oldest = sorted(list_pods(core, "app=catalog"), key=lambda p: p.metadata.creation_timestamp)[0]
    assert terminate_pods(label_selector="app=catalog", order="oldest") == [oldest.metadata.name]
    settled(core, "app=catalog", 3)
    everything = terminate_pods(label_selector="app=web", all=True)
    assert len(everything) == 2
    after = settled(core, "app=web", 2)
    assert not {p.metadata.name for p in after} & set(everything)
    # The deprecated delete_pods is terminate_pods by name pattern.
    assert delete_pods(name=after[0].metadata.name, label_selector="app=web") == [
        after[0].metadata.name
    ]
    settled(core, "app=web", 2)


def test_the_grace_period_decides_when_a_replica_that_ignores_sigterm_is_killed(
    k8s: RunningMesh, core: client.CoreV1Api
) -> None:
    """The template's 60 s, then a second delete asking 2 s (a shorter grace period wins, as
    on a cluster), then 0: gone from the API at once. Each kill is waited for well under 60 s,
    so it can only have come from the grace period asked."""
    (pod,) = settled(core, "app=stubborn", 1)
    assert pod.spec.termination_grace_period_seconds == 60
    pid, program = pod_pid(pod), program_pid(core, pod)
    asked = time.time()
    assert terminate_pods(label_selector="app=stubborn") == [pod.metadata.name]
    terminating = core.read_namespaced_pod(pod.metadata.name, "default", _request_timeout=T)
    assert terminating.metadata.deletion_grace_period_seconds == 60
    deadline = terminating.metadata.deletion_timestamp.timestamp()
    assert asked + 59 <= deadline <= time.time() + 60  # now plus the template's 60 s
    time.sleep(1)
    assert alive(program), "SIGTERM is ignored: the program runs until its grace period ends"
    assert terminate_pods(name_pattern=pod.metadata.name, grace_period=2) == [pod.metadata.name]
    wait_for(lambda: not alive(pid) and not alive(program), "SIGKILL after 2 s", 20)

    # Grace period 0: the Pod is gone from the API at once, the process killed at once.
    (pod,) = settled(core, "app=stubborn", 1)
    pid, program = pod_pid(pod), program_pid(core, pod)
    assert terminate_pods(label_selector="app=stubborn", grace_period=0) == [pod.metadata.name]
    assert pod.metadata.name not in {p.metadata.name for p in list_pods(core, "app=stubborn")}
    wait_for(lambda: not alive(pid) and not alive(program), "SIGKILL at once", 20)
    settled(core, "app=stubborn", 1)


def test_read_pod_logs_serves_each_replicas_log(k8s: RunningMesh, core: client.CoreV1Api) -> None:
    pods = settled(core, "app=catalog", 3)
    logs = read_pod_logs(label_selector="app=catalog")
    assert set(logs) == {p.metadata.name for p in pods}
    for pod in pods:
        port = pod.metadata.annotations["chaosmesh.io/local-port"]
        # chaosk8s asks for timestamps: RFC 3339 with nanoseconds, then the line.
        stamp, _, line = logs[pod.metadata.name].splitlines()[0].partition(" ")
        assert stamp.endswith("Z") and len(stamp) == len("2026-01-01T00:00:00.000000000Z")
        assert line == f"echo default/{pod.metadata.name}: listening on 127.0.0.1:{port}"
    recent = read_pod_logs(label_selector="app=catalog", last="1 hour")
    assert set(recent) == set(logs)
    assert should_be_found_in_logs("listening on 127.0.0.1:", value=logs) is True
    with pytest.raises(Exception, match="previous terminated container"):
        read_pod_logs(label_selector="app=catalog", from_previous=True)
    plain = core.read_namespaced_pod_log(pods[0].metadata.name, "default", _request_timeout=T)
    assert plain.startswith(f"echo default/{pods[0].metadata.name}: listening on")


def test_exec_in_pods_is_refused_with_the_reason(k8s: RunningMesh, core: client.CoreV1Api) -> None:
    settled(core, "app=catalog", 3)
    with pytest.raises(Exception) as refused:
        exec_in_pods("echo hi", label_selector="app=catalog", container_name="catalog")
    message = str(refused.value)
    assert "400" in message
    assert "pods/exec is not supported by the embedded mesh" in message
    assert "local echo process, not a container" in message


def test_a_replica_killed_outside_the_api_leaves_envoys_endpoints(
    k8s: RunningMesh, core: client.CoreV1Api
) -> None:
    pods = settled(core, "app=web", 2)
    victim = pods[0]
    os.kill(pod_pid(victim), 9)  # an OOM kill, say: no API call at all
    wait_for(
        lambda: k8s.envoy_endpoints("|80||web.") == local_ports(pods[1:]),
        "Envoy to drop the endpoint",
    )

    def shown() -> client.V1Pod:
        return core.read_namespaced_pod(victim.metadata.name, "default", _request_timeout=T)

    # The pod's status and Envoy's endpoints follow the death separately: on a busy machine
    # the status can land a moment after Envoy's update, so it is waited for as well.
    wait_for(lambda: shown().status.phase == "Failed", "the pod to show Failed")
    assert ready_status(shown()) == "False"
    assert deployment_fully_available("web", timeout=1, raise_on_not_fully_available=False) is False
    # Deleting it (as an operator would) brings the Deployment back to two.
    terminate_pods(name_pattern=f"^{victim.metadata.name}$", label_selector="app=web")
    settled(core, "app=web", 2)
