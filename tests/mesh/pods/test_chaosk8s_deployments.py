"""chaostoolkit-kubernetes' Deployment activities against the embedded mesh: scaling adds and
removes replicas (and Envoy's endpoints follow), the probes read the status a cluster would
give, Deployments carry the API server's defaults, and what the mesh cannot do is refused
with 422 naming the field, leaving the object as it was. kubectl watches it all happen."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time

import pytest
from chaosk8s.deployment.actions import (
    create_deployment,
    delete_deployment,
    rollout_deployment,
    scale_deployment,
)
from chaosk8s.deployment.probes import (
    deployment_available_and_healthy,
    deployment_fully_available,
    deployment_not_fully_available,
    deployment_partially_available,
)
from chaosk8s.pod.actions import terminate_pods
from chaosk8s.pod.probes import count_pods
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, watch

from tests.support.embedded_mesh import RunningMesh
from tests.support.kubefix import canonical
from tests.support.tools import require_tool

from .conftest import local_ports, settled, wait_for

pytestmark = [pytest.mark.envoy, pytest.mark.slow]
T = 30
WEB = "|80||web."


def _apps(core: client.CoreV1Api) -> client.AppsV1Api:
    return client.AppsV1Api(core.api_client)


def test_scale_deployment_adds_and_removes_replicas_and_envoy_follows(
    k8s: RunningMesh, core: client.CoreV1Api
) -> None:
    apps = _apps(core)
    first = settled(core, "app=web", 2)
    before = apps.read_namespaced_deployment("web", "default", _request_timeout=T).metadata
    generation = before.generation
    try:
        _scale_and_follow(k8s, core, apps, first, before.resource_version, generation)
    finally:
        # The package's tests share this Deployment: a failure here must not leave it at 4.
        scale_deployment("web", 2)
        settled(core, "app=web", 2)


def _ready_counts(apps: client.AppsV1Api, since: str) -> list[tuple[int, int]]:
    """(spec.replicas, status.readyReplicas) of ``web`` in every change after ``since``, until
    four of four are ready (what chaosk8s's readiness probes read, from a watch)."""
    seen: list[tuple[int, int]] = []
    stream = watch.Watch().stream(
        apps.list_namespaced_deployment,
        "default",
        field_selector="metadata.name=web",
        resource_version=since,
        timeout_seconds=20,
        _request_timeout=T,
    )
    for event in stream:
        shown = event["object"]
        seen.append((shown.spec.replicas, shown.status.ready_replicas or 0))
        if seen[-1] == (4, 4):
            break
    return seen


def _scale_and_follow(
    k8s: RunningMesh,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    first: list[client.V1Pod],
    before: str,
    generation: int,
) -> None:
    scale_deployment("web", 4)
    # Two of four ready while the new ones start. The history from before the scale shows it
    # whenever this looks: chaosk8s's deployment_not_fully_available watches from the moment
    # it is called, which on a busy machine can come after the new replicas are ready.
    seen = _ready_counts(apps, before)
    assert seen[-1] == (4, 4) and (4, 2) in seen, seen
    assert deployment_not_fully_available("web", timeout=1, raise_on_fully_available=False) is False
    assert deployment_partially_available("web") is True
    assert deployment_fully_available("web", timeout=20) is True
    grown = settled(core, "app=web", 4)
    assert {p.metadata.name for p in first} <= {p.metadata.name for p in grown}
    wait_for(lambda: k8s.envoy_endpoints(WEB) == local_ports(grown), "4 endpoints in Envoy")
    assert count_pods("app=web", phase="Running") == 4
    shown = apps.read_namespaced_deployment("web", "default", _request_timeout=T)
    assert shown.spec.replicas == 4
    assert shown.metadata.generation == generation + 1
    assert shown.status.observed_generation == generation + 1
    assert (shown.status.replicas, shown.status.ready_replicas) == (4, 4)
    assert deployment_available_and_healthy("web") is True

    scale_deployment("web", 1)
    (kept,) = settled(core, "app=web", 1)
    assert kept.metadata.name in {p.metadata.name for p in first}  # the newest went first
    wait_for(lambda: k8s.envoy_endpoints(WEB) == local_ports([kept]), "1 endpoint in Envoy")


def test_deployments_carry_the_api_servers_defaults(
    k8s: RunningMesh, core: client.CoreV1Api
) -> None:
    stubborn = _apps(core).read_namespaced_deployment("stubborn", "default", _request_timeout=T)
    assert stubborn.spec.replicas == 1  # the manifest has no spec.replicas
    assert stubborn.spec.strategy.type == "RollingUpdate"
    assert stubborn.spec.strategy.rolling_update.max_surge == "25%"
    assert stubborn.spec.revision_history_limit == 10
    assert stubborn.spec.template.spec.restart_policy == "Always"
    assert stubborn.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert deployment_available_and_healthy("stubborn") is True


def test_changes_the_mesh_cannot_make_are_refused_and_change_nothing(
    k8s: RunningMesh, core: client.CoreV1Api
) -> None:
    settled(core, "app=web", 2)
    apps = _apps(core)
    before = canonical(
        apps.api_client.sanitize_for_serialization(
            apps.read_namespaced_deployment("web", "default", _request_timeout=T)
        )
    )
    with pytest.raises(ActivityFailed) as refused:
        rollout_deployment("web")
    assert "422" in str(refused.value)
    assert "spec.template.metadata.annotations" in str(refused.value)
    assert "only spec.replicas" in str(refused.value)
    with pytest.raises(ActivityFailed, match="must be greater than or equal to 0"):
        scale_deployment("web", -1)
    manifest = k8s.workdir / "another.json"
    template = {"metadata": {"labels": {"app": "another"}}, "spec": {"containers": [{"name": "a"}]}}
    spec = {"selector": {"matchLabels": {"app": "another"}}, "template": template}
    manifest.write_text(json.dumps({"metadata": {"name": "another"}, "spec": spec}))
    with pytest.raises(Exception, match="deployments cannot be created"):
        create_deployment(str(manifest))
    with pytest.raises(Exception, match="deployments cannot be deleted"):
        delete_deployment("web")
    after = canonical(
        apps.api_client.sanitize_for_serialization(
            apps.read_namespaced_deployment("web", "default", _request_timeout=T)
        )
    )
    assert after == before


def test_kubectl_scales_and_its_watch_shows_pods_come_and_go(
    k8s: RunningMesh, core: client.CoreV1Api
) -> None:
    kubectl = require_tool("kubectl")
    settled(core, "app=web", 2)
    env = {"HOME": str(k8s.workdir), "PATH": "/usr/bin:/bin"}
    watcher = subprocess.Popen(
        [kubectl, "--kubeconfig", k8s.kubeconfig, "get", "pods", "-l", "app=web", "-w",
         "--output-watch-events", "--no-headers"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in watcher.stdout or []], daemon=True
    ).start()
    try:
        scaled = subprocess.run(
            [kubectl, "--kubeconfig", k8s.kubeconfig, "scale", "deployment", "web", "--replicas=3"],
            capture_output=True, text=True, timeout=T, env=env, check=False,
        )  # fmt: skip
        assert scaled.returncode == 0, scaled.stderr
        assert "deployment.apps/web scaled" in scaled.stdout
        new = {p.metadata.name for p in settled(core, "app=web", 3)}
        terminate_pods(label_selector="app=web", qty=1)
        settled(core, "app=web", 3)
        seen: list[list[str]] = []
        deadline = time.monotonic() + T
        while time.monotonic() < deadline and not any(row[0] == "DELETED" for row in seen):
            try:
                seen.append(lines.get(timeout=1).split())
            except queue.Empty:
                pass
    finally:
        watcher.kill()
        watcher.wait(timeout=T)
    # EVENT NAME READY STATUS RESTARTS AGE
    statuses = {(row[0], row[3]) for row in seen}
    assert ("ADDED", "ContainerCreating") in statuses  # a new pod, before it serves
    assert ("MODIFIED", "Running") in statuses
    assert ("MODIFIED", "Terminating") in statuses
    assert any(row[0] == "DELETED" for row in seen)
    assert any(row[1] in new for row in seen)
    scale_deployment("web", 2)
    settled(core, "app=web", 2)


def test_the_deployment_watch_chaosk8s_waits_on_ends_when_the_replicas_are_back(
    k8s: RunningMesh, core: client.CoreV1Api
) -> None:
    settled(core, "app=catalog", 3)
    scale_deployment("catalog", 0)
    wait_for(lambda: count_pods("app=catalog") == 0, "no catalog pods")
    shown = _apps(core).read_namespaced_deployment("catalog", "default", _request_timeout=T)
    assert shown.status.ready_replicas is None  # left out at 0, as the API does
    assert json.loads(json.dumps(shown.status.to_dict(), default=str))["replicas"] is None
    scale_deployment("catalog", 3)
    assert deployment_fully_available("catalog", timeout=20) is True
    settled(core, "app=catalog", 3)
