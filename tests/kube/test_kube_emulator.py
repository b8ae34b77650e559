"""The test API behaves like kube-apiserver where our code relies on it (official client, HTTP)."""

from __future__ import annotations

import json
import threading
import urllib.request
from typing import Any

import kubernetes
import pytest
from kubernetes.client.rest import ApiException

from tests.support.kapi import RunningEmulator, wait_until
from tests.support.kubefix import REVIEWS, seed

G, V, NS, P = "networking.istio.io", "v1", "default", "virtualservices"


def _api(emu: RunningEmulator) -> kubernetes.client.CustomObjectsApi:
    client = kubernetes.config.new_client_from_config(str(emu.kubeconfig), persist_config=False)
    return kubernetes.client.CustomObjectsApi(client)


def _status(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def test_create_answers_201_with_server_fields_and_409_on_duplicate(kapi: RunningEmulator) -> None:
    api = _api(kapi)
    body = {
        "apiVersion": f"{G}/{V}",
        "kind": "VirtualService",
        "metadata": {"name": "r"},
        "spec": {"hosts": ["r"]},
    }
    created, code, _ = api.create_namespaced_custom_object_with_http_info(
        G, V, NS, P, body, _request_timeout=5
    )
    assert code == 201
    meta = created["metadata"]
    assert (
        meta["namespace"] == NS
        and meta["uid"]
        and meta["resourceVersion"]
        and meta["generation"] == 1
    )
    assert meta["creationTimestamp"]
    with pytest.raises(ApiException) as info:
        api.create_namespaced_custom_object(G, V, NS, P, body, _request_timeout=5)
    assert info.value.status == 409
    assert _status(info.value)["reason"] == "AlreadyExists"
    assert _status(info.value)["kind"] == "Status"


def test_stale_replace_is_409_and_fresh_replace_bumps_version(kapi: RunningEmulator) -> None:
    seed(kapi, REVIEWS)
    api = _api(kapi)
    read = api.get_namespaced_custom_object(G, V, NS, P, "reviews", _request_timeout=5)
    read["spec"]["hosts"] = ["reviews", "reviews.default"]
    written = api.replace_namespaced_custom_object(G, V, NS, P, "reviews", read, _request_timeout=5)
    assert written["metadata"]["resourceVersion"] != read["metadata"]["resourceVersion"]
    assert written["metadata"]["generation"] == read["metadata"]["generation"] + 1
    with pytest.raises(ApiException) as info:
        api.replace_namespaced_custom_object(G, V, NS, P, "reviews", read, _request_timeout=5)
    assert info.value.status == 409 and _status(info.value)["reason"] == "Conflict"
    del read["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as info:
        api.replace_namespaced_custom_object(G, V, NS, P, "reviews", read, _request_timeout=5)
    assert info.value.status == 422


def test_patch_type_comes_from_the_content_type(kapi: RunningEmulator) -> None:
    seed(kapi, REVIEWS)
    api = _api(kapi)
    ops = [{"op": "replace", "path": "/spec/hosts", "value": ["x"]}]
    # Without _content_type the client sends the list as a merge patch: a real server says 422.
    with pytest.raises(ApiException) as info:
        api.patch_namespaced_custom_object(G, V, NS, P, "reviews", ops, _request_timeout=5)
    assert info.value.status == 422
    patched = api.patch_namespaced_custom_object(
        G, V, NS, P, "reviews", ops, _request_timeout=5, _content_type="application/json-patch+json"
    )
    assert patched["spec"]["hosts"] == ["x"]
    merged = api.patch_namespaced_custom_object(
        G,
        V,
        NS,
        P,
        "reviews",
        {"metadata": {"labels": {"app": None, "tier": "web"}}},
        _request_timeout=5,
        _content_type="application/merge-patch+json",
    )
    assert merged["metadata"]["labels"] == {"tier": "web"}
    with pytest.raises(ApiException) as info:
        api.patch_namespaced_custom_object(
            G,
            V,
            NS,
            P,
            "reviews",
            {"spec": {}},
            _request_timeout=5,
            _content_type="application/strategic-merge-patch+json",
        )
    assert info.value.status == 415


def test_invalid_spec_is_422_with_causes_and_nothing_stored(kapi: RunningEmulator) -> None:
    seed(kapi, REVIEWS)
    api = _api(kapi)
    read = api.get_namespaced_custom_object(G, V, NS, P, "reviews", _request_timeout=5)
    read["spec"]["hosts"] = "reviews"
    with pytest.raises(ApiException) as info:
        api.replace_namespaced_custom_object(G, V, NS, P, "reviews", read, _request_timeout=5)
    assert info.value.status == 422
    assert _status(info.value)["details"]["causes"][0]["field"] == "spec.hosts"
    assert kapi.api is not None
    assert kapi.api.get_object(P, NS, "reviews")["spec"]["hosts"] == ["reviews"]  # type: ignore[index]


def test_discovery_with_and_without_trailing_slashes(kapi: RunningEmulator) -> None:
    for path in ("/apis", "/apis/", f"/apis/{G}/", f"/apis/{G}/{V}", f"/apis/{G}/{V}/"):
        with urllib.request.urlopen(kapi.url + path, timeout=5) as response:
            assert response.status == 200, path
    client = kubernetes.config.new_client_from_config(str(kapi.kubeconfig), persist_config=False)
    groups = kubernetes.client.ApisApi(client).get_api_versions(_request_timeout=5)
    assert {v.version for g in groups.groups for v in g.versions if g.name == G} == {
        "v1",
        "v1beta1",
        "v1alpha3",
    }
    resources = kubernetes.client.CustomObjectsApi(client).get_api_resources(
        G, V, _request_timeout=5
    )
    short = {r.name: r.short_names for r in resources.resources}
    assert short["virtualservices"] == ["vs"] and short["destinationrules"] == ["dr"]


def test_list_is_a_kind_list_and_honours_label_selectors(kapi: RunningEmulator) -> None:
    seed(kapi, REVIEWS)
    api = _api(kapi)
    listed = api.list_namespaced_custom_object(G, V, NS, P, _request_timeout=5)
    assert listed["kind"] == "VirtualServiceList" and listed["metadata"]["resourceVersion"]
    assert [o["metadata"]["name"] for o in listed["items"]] == ["reviews"]
    none = api.list_namespaced_custom_object(
        G, V, NS, P, label_selector="app=other", _request_timeout=5
    )
    assert none["items"] == []


def test_delete_honours_resource_version_precondition(kapi: RunningEmulator) -> None:
    seed(kapi, REVIEWS)
    api = _api(kapi)
    stale = kubernetes.client.V1DeleteOptions(
        preconditions=kubernetes.client.V1Preconditions(resource_version="1")
    )
    with pytest.raises(ApiException) as info:
        api.delete_namespaced_custom_object(G, V, NS, P, "reviews", body=stale, _request_timeout=5)
    assert info.value.status == 409
    api.delete_namespaced_custom_object(G, V, NS, P, "reviews", _request_timeout=5)
    with pytest.raises(ApiException) as info:
        api.get_namespaced_custom_object(G, V, NS, P, "reviews", _request_timeout=5)
    assert info.value.status == 404 and _status(info.value)["reason"] == "NotFound"


def test_watch_is_a_stream_of_later_changes_closed_after_timeout_seconds(
    kapi: RunningEmulator,
) -> None:
    seed(kapi, REVIEWS)
    assert kapi.api is not None
    start_rv = kapi.api.get_object(P, NS, "reviews")["metadata"]["resourceVersion"]  # type: ignore[index]
    received: list[tuple[str, str]] = []

    def watch() -> None:
        stream = kubernetes.watch.Watch()
        for event in stream.stream(
            _api(kapi).list_namespaced_custom_object, G, V, NS, P,
            field_selector="metadata.name=reviews", resource_version=start_rv,
            timeout_seconds=3, _request_timeout=10,
        ):  # fmt: skip
            received.append((event["type"], event["object"]["metadata"]["resourceVersion"]))

    watcher = threading.Thread(target=watch)
    watcher.start()
    # Changes made while the watch is open arrive on it, in order, and nothing from before.
    assert wait_until(lambda: any(r.params.get("watch") for r in kapi.api._requests), 10)
    kapi.api.edit_object(P, NS, "reviews", lambda o: o["spec"].update(hosts=["reviews.default"]))
    kapi.api.put_object({**REVIEWS, "metadata": {"name": "other", "namespace": NS}})  # not watched
    kapi.api.edit_object(P, NS, "reviews", lambda o: o["metadata"].update(labels={"v": "2"}))
    watcher.join(15)
    assert not watcher.is_alive()  # the server closed the stream after timeoutSeconds
    last = kapi.api.get_object(P, NS, "reviews")["metadata"]["resourceVersion"]  # type: ignore[index]
    assert [t for t, _ in received] == ["MODIFIED", "MODIFIED"] and received[-1][1] == last
