"""Watches read the store's event log (every change after a resourceVersion, in order, 410
once it is gone), and the writes a controller answers on a cluster — deleting a Pod,
patching or scaling a Deployment — reach the store's owner after kube-apiserver's checks.

The owner here records what it was asked and republishes the objects, as the daemon's pod
controller does (tests/mesh/pods drive the real one through chaostoolkit-kubernetes)."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from chaosmesh_ext.mesh.api import ApiError, ApiServer, Store, resources
from chaosmesh_ext.mesh.api import store as store_module
from chaosmesh_ext.mesh.api.resources import ResourceType
from chaosmesh_ext.mesh.api.status import Cause, invalid

from .conftest import Api
from .test_custom_objects import canary_vs, create, objects

T = 10


@dataclass
class RecordingOwner:
    """Publishes Pods and a Deployment from plain state, as the daemon does."""

    store: Store
    replicas: int = 2
    pods: list[str] = field(default_factory=lambda: ["web-0", "web-1"])
    deleted: list[tuple[str, int | None]] = field(default_factory=list)

    def publish(self) -> None:
        self.store.set_readonly(
            resources.DEPLOYMENTS,
            [
                {
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": {
                        "replicas": self.replicas,
                        "selector": {"matchLabels": {"app": "web"}},
                        "template": {
                            "metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
                        },
                    },
                    "status": {"replicas": self.replicas},
                }
            ],
        )
        self.store.set_readonly(
            resources.PODS,
            [
                {"metadata": {"name": p, "namespace": "default", "labels": {"app": "web"}}}
                for p in self.pods
            ],
        )

    def update(self, rt: ResourceType, current: dict[str, Any], wanted: dict[str, Any]) -> None:
        replicas = wanted["spec"]["replicas"]
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid("apps", "Deployment", "web", [Cause("spec.replicas", "must be >= 0")])
        self.replicas = replicas
        self.publish()

    def delete(
        self, rt: ResourceType, current: dict[str, Any], grace_seconds: int | None
    ) -> dict[str, Any]:
        name = current["metadata"]["name"]
        self.deleted.append((name, grace_seconds))
        self.pods.remove(name)
        self.publish()
        return current


def _label(kube: client.ApiClient, **labels: str) -> None:
    """Merge-patch labels onto the VirtualService ``canary``."""
    objects(kube).patch_namespaced_custom_object(
        "networking.istio.io",
        "v1",
        "default",
        "virtualservices",
        "canary",
        {"metadata": {"labels": labels}},
        _content_type="application/merge-patch+json",
        _request_timeout=T,
    )


def _watch_vs(kube: client.ApiClient, w: watch.Watch, **options: Any) -> Iterator[Any]:
    """The events of a watch of default's VirtualServices."""
    return w.stream(
        objects(kube).list_namespaced_custom_object,
        "networking.istio.io",
        "v1",
        "default",
        "virtualservices",
        _request_timeout=T,
        **options,
    )


@pytest.fixture
def owned(api: Api) -> RecordingOwner:
    owner = RecordingOwner(api.store)
    api.store.set_owner(resources.PODS, owner)
    api.store.set_owner(resources.DEPLOYMENTS, owner)
    owner.publish()
    return owner


def test_a_watch_from_a_resource_version_sees_every_later_change_in_order(
    api: Api, kube: client.ApiClient
) -> None:
    create(kube, canary_vs("other"))  # "0" would mean "any version": start past it
    listed = objects(kube).list_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "virtualservices", _request_timeout=T
    )
    start = listed["metadata"]["resourceVersion"]
    # Three changes land before the watch starts: a watch from `start` still sees them all.
    created = create(kube, canary_vs())
    _label(kube, tier="edge")
    objects(kube).delete_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "virtualservices", "canary", _request_timeout=T
    )
    seen = []
    w = watch.Watch()
    for event in _watch_vs(kube, w, resource_version=start, timeout_seconds=2):
        seen.append((event["type"], event["object"]["metadata"].get("labels", {}).get("tier")))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", None), ("MODIFIED", "edge"), ("DELETED", "edge")]
    assert int(created["metadata"]["resourceVersion"]) > int(start)


def test_a_watch_from_a_version_the_log_no_longer_holds_is_410_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "EVENT_LOG_SIZE", 3)
    store = Store()
    server = ApiServer(store).start()
    try:
        for name in ("a", "b", "c", "d", "e"):
            store.set_readonly(resources.NAMESPACES, [{"metadata": {"name": name}}])
        config = client.Configuration()
        config.host = server.url
        with client.ApiClient(config) as api_client, pytest.raises(ApiException) as failed:
            client.CoreV1Api(api_client).list_namespace(
                watch=True, resource_version="1", _request_timeout=T
            )
        assert failed.value.status == 410
        assert "too old resource version" in json.loads(failed.value.body)["message"]
    finally:
        server.stop()


def test_many_changes_of_one_kind_leave_the_watches_of_another_kind_going(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each kind keeps its own events, as kube-apiserver's watch cache does: a watcher of
    # Namespaces that saw nothing for a while resumes, however many Pods changed meanwhile.
    monkeypatch.setattr(store_module, "EVENT_LOG_SIZE", 3)
    store = Store()
    server = ApiServer(store).start()
    try:
        store.set_readonly(resources.NAMESPACES, [{"metadata": {"name": "shop"}}])
        _, seen = store.list_objects(resources.NAMESPACES, None)
        for n in range(10):  # more Pod events than the log holds per kind
            store.set_readonly(
                resources.PODS, [{"metadata": {"name": f"web-{n}", "namespace": "shop"}}]
            )
        store.set_readonly(
            resources.NAMESPACES, [{"metadata": {"name": "shop"}}, {"metadata": {"name": "ops"}}]
        )
        config = client.Configuration()
        config.host = server.url
        with client.ApiClient(config) as api_client:
            stream = watch.Watch().stream(
                client.CoreV1Api(api_client).list_namespace,
                resource_version=seen,
                timeout_seconds=2,
                _request_timeout=T,
            )
            names = [(e["type"], e["object"].metadata.name) for e in stream]
        assert names == [("ADDED", "ops")]
    finally:
        server.stop()


def test_an_object_leaving_a_label_selection_is_deleted_from_that_watch(
    api: Api, kube: client.ApiClient
) -> None:
    create(kube, {**canary_vs(), "metadata": {"name": "canary", "labels": {"app": "canary"}}})
    rv = objects(kube).list_namespaced_custom_object(
        "networking.istio.io", "v1", "default", "virtualservices", _request_timeout=T
    )["metadata"]["resourceVersion"]
    events: list[str] = []
    done = threading.Event()

    def watch_it() -> None:
        w = watch.Watch()
        for event in _watch_vs(
            kube, w, label_selector="app=canary", resource_version=rv, timeout_seconds=3
        ):
            events.append(event["type"])
            w.stop()
        done.set()

    thread = threading.Thread(target=watch_it, daemon=True)
    thread.start()
    _label(kube, app="other")
    assert done.wait(T)
    assert events == ["DELETED"]


def test_pods_and_deployments_refuse_writes_without_an_owner(api: Api) -> None:
    api.store.set_readonly(resources.PODS, [{"metadata": {"name": "web-0"}}])
    with pytest.raises(ApiError) as refused:
        api.store.delete(resources.PODS, "default", "web-0")
    assert refused.value.code == 405
    assert "only delete, deletecollection" in refused.value.message


def test_a_pod_delete_reaches_the_owner_with_its_grace_period(
    api: Api, kube: client.ApiClient, owned: RecordingOwner
) -> None:
    core = client.CoreV1Api(kube)
    core.delete_namespaced_pod(
        "web-0", "default", body=client.V1DeleteOptions(grace_period_seconds=0), _request_timeout=T
    )
    core.delete_namespaced_pod("web-1", "default", grace_period_seconds=7, _request_timeout=T)
    assert owned.deleted == [("web-0", 0), ("web-1", 7)]
    assert core.list_namespaced_pod("default", _request_timeout=T).items == []


def test_a_stale_precondition_is_refused_before_the_owner_acts(
    api: Api, kube: client.ApiClient, owned: RecordingOwner
) -> None:
    core = client.CoreV1Api(kube)
    with pytest.raises(ApiException) as refused:
        core.delete_namespaced_pod(
            "web-0",
            "default",
            body=client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1")),
            _request_timeout=T,
        )
    assert refused.value.status == 409
    assert owned.deleted == []


def test_a_strategic_merge_patch_and_the_scale_subresource_reach_the_deployment(
    api: Api, kube: client.ApiClient, owned: RecordingOwner
) -> None:
    apps = client.AppsV1Api(kube)
    # The official client sends a dict body to a built-in kind as a strategic merge patch.
    apps.patch_namespaced_deployment(
        "web", "default", {"spec": {"replicas": 4}}, _request_timeout=T
    )
    assert owned.replicas == 4
    scale = apps.patch_namespaced_deployment_scale(
        "web", "default", {"spec": {"replicas": 1}}, _request_timeout=T
    )
    assert scale.spec.replicas == 1 and owned.replicas == 1
    assert scale.status.selector == "app=web"
    read = apps.read_namespaced_deployment_scale("web", "default", _request_timeout=T)
    read.spec.replicas = 3
    assert (
        apps.replace_namespaced_deployment_scale(
            "web", "default", read, _request_timeout=T
        ).spec.replicas
        == 3
    )
    # A Scale from before that write is stale: 409, and nothing changes.
    with pytest.raises(ApiException) as stale:
        apps.replace_namespaced_deployment_scale("web", "default", read, _request_timeout=T)
    assert stale.value.status == 409 and owned.replicas == 3


def test_a_bad_replica_count_is_422_naming_the_field(
    api: Api, kube: client.ApiClient, owned: RecordingOwner
) -> None:
    before = copy.deepcopy(api.store.get(resources.DEPLOYMENTS, "default", "web"))
    with pytest.raises(ApiException) as refused:
        client.AppsV1Api(kube).patch_namespaced_deployment(
            "web", "default", {"spec": {"replicas": -1}}, _request_timeout=T
        )
    assert refused.value.status == 422
    assert json.loads(refused.value.body)["details"]["causes"][0]["field"] == "spec.replicas"
    after = api.store.get(resources.DEPLOYMENTS, "default", "web")
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)


def test_istio_kinds_still_refuse_a_strategic_merge_patch(api: Api, kube: client.ApiClient) -> None:
    create(kube, canary_vs())
    with pytest.raises(ApiException) as refused:
        objects(kube).patch_namespaced_custom_object(
            "networking.istio.io",
            "v1",
            "default",
            "virtualservices",
            "canary",
            {"spec": {"hosts": ["x"]}},
            _content_type="application/strategic-merge-patch+json",
            _request_timeout=T,
        )
    assert refused.value.status == 415
