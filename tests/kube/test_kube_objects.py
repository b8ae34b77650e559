"""The custom-objects wrapper on the emulator: versions, errors that name the object."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from chaosmesh_ext.kube.client import api_client
from chaosmesh_ext.kube.objects import Conflict, IstioObjects, KubeApiError, NotFound, ObjectRef
from tests.support.kapi import RunningEmulator
from tests.support.kubefix import REVIEWS, seed

REF = ObjectRef("VirtualService", "default", "reviews")


@pytest.fixture
def client(kapi: RunningEmulator) -> Iterator[k8s.ApiClient]:
    c = api_client()
    try:
        yield c
    finally:
        c.close()


def test_v1_by_default(client: k8s.ApiClient) -> None:
    assert IstioObjects(client).version == "v1"


@pytest.mark.parametrize("emulator_options", [{"served_versions": ("v1beta1", "v1alpha3")}])
def test_falls_back_to_v1beta1_when_v1_is_not_served(
    kapi: RunningEmulator, client: k8s.ApiClient
) -> None:
    seed(kapi, REVIEWS)
    objects = IstioObjects(client)
    assert objects.version == "v1beta1"
    assert objects.get(REF)["apiVersion"] == "networking.istio.io/v1beta1"


@pytest.mark.parametrize("emulator_options", [{"served_versions": ("v1alpha3",)}])
def test_configured_version_is_used(kapi: RunningEmulator, client: k8s.ApiClient) -> None:
    seed(kapi, REVIEWS)
    objects = IstioObjects.from_configuration(
        client, {"istio_api_version": "networking.istio.io/v1alpha3"}
    )
    assert objects.get(REF)["apiVersion"] == "networking.istio.io/v1alpha3"
    with pytest.raises(NotFound):
        IstioObjects(client, "v1").get(REF)  # v1 is not served here


@pytest.mark.parametrize("emulator_options", [{"served_versions": ()}])
def test_no_istio_says_so(kapi: RunningEmulator, client: k8s.ApiClient) -> None:
    with pytest.raises(NotFound, match="is Istio installed"):
        _ = IstioObjects(client).version


def test_errors_name_the_object_and_what_happened(
    kapi: RunningEmulator, client: k8s.ApiClient
) -> None:
    seed(kapi, REVIEWS)
    objects = IstioObjects(client)
    live = objects.get(REF)
    with pytest.raises(NotFound, match="VirtualService default/nope: not found"):
        objects.get(ObjectRef("VirtualService", "default", "nope"))
    stale = dict(live, metadata=dict(live["metadata"], resourceVersion="1"))
    with pytest.raises(Conflict, match="VirtualService default/reviews: conflict on replace"):
        objects.replace(REF, stale)
    bad = dict(live, spec=dict(live["spec"], hosts="reviews"))
    with pytest.raises(KubeApiError) as info:
        objects.replace(REF, bad)
    assert (
        info.value.status == 422
        and "spec.hosts" in str(info.value)
        and "default/reviews" in str(info.value)
    )
    assert kapi.api is not None
    kapi.api.forbidden.add(("update", "virtualservices"))
    with pytest.raises(KubeApiError, match="VirtualService default/reviews: forbidden to replace"):
        objects.replace(REF, live)
    with pytest.raises(Conflict, match="already exists"):
        objects.create(REF, {"metadata": {"name": "reviews"}, "spec": {"hosts": ["reviews"]}})


@pytest.mark.parametrize("emulator_options", [{"delays": {"get": 5.0}}])
def test_a_slow_server_is_a_timeout_not_a_hang(
    kapi: RunningEmulator, client: k8s.ApiClient
) -> None:
    objects = IstioObjects(client, "v1", timeout=0.3)
    with pytest.raises(
        KubeApiError, match=r"no answer from the Kubernetes API within 0.3s \(get\)"
    ) as info:
        objects.get(REF)
    assert "VirtualService default/reviews" in str(info.value)


def test_delete_with_a_stale_version_is_refused(
    kapi: RunningEmulator, client: k8s.ApiClient
) -> None:
    seed(kapi, REVIEWS)
    objects = IstioObjects(client)
    with pytest.raises(Conflict):
        objects.delete(REF, resource_version="1")
    objects.delete(REF, resource_version=objects.get(REF)["metadata"]["resourceVersion"])
    assert objects.get_or_none(REF) is None
