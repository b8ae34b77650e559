"""Istio objects through the official kubernetes client: kube-apiserver's write semantics."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import Api

GROUP = "networking.istio.io"
T = 10  # every call carries its own timeout


def canary_vs(name: str = "canary", v1: int = 90, v2: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name, "labels": {"app": "canary"}},
        "spec": {
            "hosts": ["*"],
            "gateways": ["canary-gateway"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "canary", "subset": "v1"}, "weight": v1},
                        {"destination": {"host": "canary", "subset": "v2"}, "weight": v2},
                    ]
                }
            ],
        },
    }


def objects(kube: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube)


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def create(
    kube: client.ApiClient,
    body: dict[str, Any],
    ns: str = "default",
    version: str = "v1beta1",
    plural: str = "virtualservices",
) -> dict[str, Any]:
    created: dict[str, Any] = objects(kube).create_namespaced_custom_object(
        GROUP, version, ns, plural, body, _request_timeout=T
    )
    return created


def test_create_fills_server_metadata_and_namespace_from_url(kube: client.ApiClient) -> None:
    created = create(kube, canary_vs(), ns="istio-test")
    meta = created["metadata"]
    assert meta["namespace"] == "istio-test"
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"]
    assert meta["generation"] == 1
    # Status 201 is what makes kubernetes 37's create return the object at all.
    _, code, _ = objects(kube).create_namespaced_custom_object_with_http_info(
        GROUP, "v1", "istio-test", "virtualservices", canary_vs("other"), _request_timeout=T
    )
    assert code == 201


def test_duplicate_create_is_409_already_exists(kube: client.ApiClient) -> None:
    create(kube, canary_vs())
    with pytest.raises(ApiException) as err:
        create(kube, canary_vs())
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "AlreadyExists"


def test_nameless_create_is_422_naming_metadata_name(kube: client.ApiClient) -> None:
    body = canary_vs()
    del body["metadata"]["name"]
    with pytest.raises(ApiException) as err:
        create(kube, body)
    status = status_of(err.value)
    assert err.value.status == 422
    assert status["details"]["causes"][0]["field"] == "metadata.name"


def test_get_missing_is_404_status(kube: client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        objects(kube).get_namespaced_custom_object(
            GROUP, "v1", "default", "virtualservices", "nope", _request_timeout=T
        )
    status = status_of(err.value)
    assert (err.value.status, status["kind"], status["reason"]) == (404, "Status", "NotFound")
    assert status["details"]["name"] == "nope"


def test_every_served_version_reads_the_same_object(kube: client.ApiClient) -> None:
    create(kube, canary_vs(), version="v1beta1")
    for version in ("v1", "v1beta1", "v1alpha3"):
        got = objects(kube).get_namespaced_custom_object(
            GROUP, version, "default", "virtualservices", "canary", _request_timeout=T
        )
        assert got["apiVersion"] == f"{GROUP}/{version}"
        assert got["spec"]["http"][0]["route"][0]["weight"] == 90


def test_replace_with_stale_resource_version_is_409_and_changes_nothing(
    kube: client.ApiClient,
) -> None:
    first = create(kube, canary_vs())
    stale = copy.deepcopy(first)
    fresh = copy.deepcopy(first)
    fresh["spec"]["http"][0]["route"][0]["weight"] = 50
    updated = objects(kube).replace_namespaced_custom_object(
        GROUP, "v1", "default", "virtualservices", "canary", fresh, _request_timeout=T
    )
    assert updated["metadata"]["generation"] == 2
    assert updated["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    stale["spec"]["http"][0]["route"][0]["weight"] = 1
    with pytest.raises(ApiException) as err:
        objects(kube).replace_namespaced_custom_object(
            GROUP, "v1", "default", "virtualservices", "canary", stale, _request_timeout=T
        )
    assert err.value.status == 409 and status_of(err.value)["reason"] == "Conflict"
    got = objects(kube).get_namespaced_custom_object(
        GROUP, "v1", "default", "virtualservices", "canary", _request_timeout=T
    )
    assert got["spec"]["http"][0]["route"][0]["weight"] == 50


def test_replace_missing_is_404_and_without_resource_version_is_422(kube: client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        objects(kube).replace_namespaced_custom_object(
            GROUP, "v1", "default", "virtualservices", "canary", canary_vs(), _request_timeout=T
        )
    assert err.value.status == 404
    create(kube, canary_vs())
    with pytest.raises(ApiException) as err:
        objects(kube).replace_namespaced_custom_object(
            GROUP, "v1", "default", "virtualservices", "canary", canary_vs(), _request_timeout=T
        )
    assert err.value.status == 422
    assert status_of(err.value)["details"]["causes"][0]["field"] == "metadata.resourceVersion"


def test_merge_patch_replaces_lists_and_null_deletes(kube: client.ApiClient) -> None:
    create(kube, canary_vs())
    patched = objects(kube).patch_namespaced_custom_object(
        GROUP,
        "v1",
        "default",
        "virtualservices",
        "canary",
        {"metadata": {"labels": {"app": None, "team": "sre"}}, "spec": {"hosts": ["canary"]}},
        _content_type="application/merge-patch+json",
        _request_timeout=T,
    )
    assert patched["metadata"]["labels"] == {"team": "sre"}
    assert patched["spec"]["hosts"] == ["canary"]
    assert patched["spec"]["gateways"] == ["canary-gateway"]


def test_json_patch_with_failing_test_op_is_422_and_atomic(kube: client.ApiClient) -> None:
    created = create(kube, canary_vs())
    rv = created["metadata"]["resourceVersion"]
    ops = [
        {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 0},
        {"op": "test", "path": "/metadata/resourceVersion", "value": "stale"},
    ]
    with pytest.raises(ApiException) as err:
        objects(kube).patch_namespaced_custom_object(
            GROUP,
            "v1",
            "default",
            "virtualservices",
            "canary",
            ops,
            _content_type="application/json-patch+json",
            _request_timeout=T,
        )
    assert err.value.status == 422
    got = objects(kube).get_namespaced_custom_object(
        GROUP, "v1", "default", "virtualservices", "canary", _request_timeout=T
    )
    assert got["spec"]["http"][0]["route"][0]["weight"] == 90
    ops[1]["value"] = rv
    patched = objects(kube).patch_namespaced_custom_object(
        GROUP,
        "v1",
        "default",
        "virtualservices",
        "canary",
        ops,
        _content_type="application/json-patch+json",
        _request_timeout=T,
    )
    assert patched["spec"]["http"][0]["route"][0]["weight"] == 0


def test_json_patch_list_sent_as_merge_patch_is_422(kube: client.ApiClient) -> None:
    create(kube, canary_vs())
    ops = [{"op": "replace", "path": "/spec/hosts", "value": ["x"]}]
    with pytest.raises(ApiException) as err:
        objects(kube).patch_namespaced_custom_object(
            GROUP,
            "v1",
            "default",
            "virtualservices",
            "canary",
            ops,
            _content_type="application/merge-patch+json",
            _request_timeout=T,
        )
    assert err.value.status == 422


def test_strategic_merge_and_apply_patches_are_415(kube: client.ApiClient) -> None:
    create(kube, canary_vs())
    for content_type in ("application/strategic-merge-patch+json", "application/apply-patch+yaml"):
        with pytest.raises(ApiException) as err:
            objects(kube).patch_namespaced_custom_object(
                GROUP,
                "v1",
                "default",
                "virtualservices",
                "canary",
                {"spec": {"hosts": ["x"]}},
                _content_type=content_type,
                _request_timeout=T,
            )
        assert err.value.status == 415
        assert status_of(err.value)["reason"] == "UnsupportedMediaType"


def test_invalid_spec_is_422_with_causes_and_nothing_changes(
    api: Api, kube: client.ApiClient
) -> None:
    create(kube, canary_vs())
    pushes = len(api.plane.pushes)
    with pytest.raises(ApiException) as err:
        objects(kube).patch_namespaced_custom_object(
            GROUP,
            "v1",
            "default",
            "virtualservices",
            "canary",
            {"spec": {"http": [{"route": [{"destination": {"host": "canary"}, "weight": -1}]}]}},
            _content_type="application/merge-patch+json",
            _request_timeout=T,
        )
    status = status_of(err.value)
    assert err.value.status == 422 and status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "spec.http[0].route[0].weight"
    assert "VirtualService" in status["message"] and "canary" in status["message"]
    assert len(api.plane.pushes) == pushes  # never reached the data plane


def test_data_plane_rejection_is_422_with_reason_and_rolls_back(
    api: Api, kube: client.ApiClient
) -> None:
    create(kube, canary_vs())
    api.plane.reject_with = "Proto constraint validation failed: weight overflow"
    with pytest.raises(ApiException) as err:
        objects(kube).patch_namespaced_custom_object(
            GROUP,
            "v1",
            "default",
            "virtualservices",
            "canary",
            {"spec": {"hosts": ["x"]}},
            _content_type="application/merge-patch+json",
            _request_timeout=T,
        )
    assert err.value.status == 422
    assert "weight overflow" in status_of(err.value)["message"]
    got = objects(kube).get_namespaced_custom_object(
        GROUP, "v1", "default", "virtualservices", "canary", _request_timeout=T
    )
    assert got["spec"]["hosts"] == ["*"]


def test_write_is_answered_after_the_push_with_the_new_state(
    api: Api, kube: client.ApiClient
) -> None:
    create(kube, canary_vs())
    objects(kube).patch_namespaced_custom_object(
        GROUP,
        "v1",
        "default",
        "virtualservices",
        "canary",
        [{"op": "replace", "path": "/spec/http/0/route/1/weight", "value": 30}],
        _content_type="application/json-patch+json",
        _request_timeout=T,
    )
    pushed = api.plane.pushes[-1]["virtualservices"]
    assert [o["spec"]["http"][0]["route"][1]["weight"] for o in pushed] == [30]
    assert api.store.config_version == str(len(api.plane.pushes))


def test_delete_returns_the_object_then_404(api: Api, kube: client.ApiClient) -> None:
    create(kube, canary_vs())
    deleted = objects(kube).delete_namespaced_custom_object(
        GROUP, "v1", "default", "virtualservices", "canary", _request_timeout=T
    )
    assert deleted["metadata"]["name"] == "canary"
    assert api.plane.pushes[-1]["virtualservices"] == []
    with pytest.raises(ApiException) as err:
        objects(kube).delete_namespaced_custom_object(
            GROUP, "v1", "default", "virtualservices", "canary", _request_timeout=T
        )
    assert err.value.status == 404


def test_lists_by_namespace_all_namespaces_and_label_selector(kube: client.ApiClient) -> None:
    create(kube, canary_vs("a"), ns="one")
    other = canary_vs("b")
    other["metadata"]["labels"] = {"app": "other"}
    create(kube, other, ns="two")
    listed = objects(kube).list_namespaced_custom_object(
        GROUP, "v1", "one", "virtualservices", _request_timeout=T
    )
    assert listed["kind"] == "VirtualServiceList"
    assert [o["metadata"]["name"] for o in listed["items"]] == ["a"]
    everywhere = objects(kube).list_cluster_custom_object(
        GROUP, "v1", "virtualservices", _request_timeout=T
    )
    assert sorted(o["metadata"]["name"] for o in everywhere["items"]) == ["a", "b"]
    selected = objects(kube).list_cluster_custom_object(
        GROUP, "v1", "virtualservices", label_selector="app!=canary", _request_timeout=T
    )
    assert [o["metadata"]["name"] for o in selected["items"]] == ["b"]


def test_destination_rules_and_gateways_are_served_too(kube: client.ApiClient) -> None:
    dr = {
        "apiVersion": f"{GROUP}/v1alpha3",
        "kind": "DestinationRule",
        "metadata": {"name": "httpbin"},
        "spec": {"host": "httpbin"},
    }
    gw = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gateway",
        "metadata": {"name": "gw"},
        "spec": {
            "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
            ]
        },
    }
    assert (
        create(kube, dr, version="v1alpha3", plural="destinationrules")["metadata"]["generation"]
        == 1
    )
    assert create(kube, gw, version="v1", plural="gateways")["kind"] == "Gateway"
    with pytest.raises(ApiException) as err:
        create(kube, gw, version="v1", plural="destinationrules")
    assert err.value.status == 400  # kind does not match the URL
