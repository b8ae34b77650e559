"""The ``lint_mesh`` probe against a real API server (the embedded mesh's, over real HTTP).

The objects live on the server: Istio kinds through its store (validated as Istio would),
Services and Deployments as the daemon publishes them. The probe reads them with the official
client, as it would on a cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import probes
from chaosmesh_ext.istio import validate
from chaosmesh_ext.mesh import api as mesh_api
from chaosmesh_ext.mesh.api import resources


def _service(name: str, ns: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"ports": [{"name": "http", "port": 9080}], "selector": selector},
    }


def _deployment(name: str, ns: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}},
    }


REVIEWS_VS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "shop"},
    "spec": {
        "hosts": ["reviews"],
        "http": [{"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}],
    },
}
REVIEWS_DR: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "reviews", "namespace": "shop"},
    "spec": {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    store = mesh_api.Store(validate=validate.validate, apply=lambda state: "1")
    server = mesh_api.ApiServer(store).start()
    try:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster:\n"
            f"    server: {server.url}\ncontexts:\n- name: m\n  context:\n"
            "    cluster: m\n    user: m\ncurrent-context: m\nusers:\n- name: m\n  user: {}\n"
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        store.set_readonly(resources.SERVICES, [_service("reviews", "shop", {"app": "reviews"})])
        store.set_readonly(
            resources.DEPLOYMENTS,
            [_deployment("reviews-v1", "shop", {"app": "reviews", "version": "v1"})],
        )
        yield store
    finally:
        server.stop()


def test_a_sound_namespace_lints_clean(store: Any) -> None:
    store.load_istio([copy.deepcopy(REVIEWS_VS), copy.deepcopy(REVIEWS_DR)], "shop")
    result = probes.lint_mesh(ns="shop")
    assert result["ok"] is True and result["errors"] == 0, result["findings"]
    assert result["findings"] == [] and result["notes"] == []


def test_the_seeds_retry_mistake_on_the_cluster_is_an_error_naming_object_and_field(
    store: Any,
) -> None:
    """The runbook's retry VirtualServices name hosts no Service has: lint says so."""
    wrong = copy.deepcopy(REVIEWS_VS)
    wrong["metadata"]["name"] = "reviews-vs"
    wrong["spec"]["hosts"] = ["reviews-vs"]
    store.load_istio([wrong, copy.deepcopy(REVIEWS_DR)], "shop")
    result = probes.lint_mesh(ns="shop")
    assert result["ok"] is False and result["errors"] == 1
    (line,) = [f for f in result["findings"] if f.startswith("error")]
    assert line.startswith(
        "error: VirtualService shop/reviews-vs: spec.hosts[0]: host 'reviews-vs'"
    )


def test_a_subset_no_destination_rule_defines_and_one_selecting_no_pod(store: Any) -> None:
    vs = copy.deepcopy(REVIEWS_VS)
    vs["spec"]["http"][0]["route"] = [
        {"destination": {"host": "reviews", "subset": "v1"}, "weight": 50},
        {"destination": {"host": "reviews", "subset": "v3"}, "weight": 50},
    ]
    dr = copy.deepcopy(REVIEWS_DR)
    dr["spec"]["subsets"].append({"name": "v2", "labels": {"version": "v2"}})
    store.load_istio([vs, dr], "shop")
    result = probes.lint_mesh(ns="shop")
    text = "\n".join(result["findings"])
    assert "VirtualService shop/reviews: spec.http[0].route[1].destination.subset" in text
    assert "'v3'" in text
    assert "DestinationRule shop/reviews: spec.subsets[1].labels" in text  # v2 selects no pod
    assert result["errors"] >= 1 and result["warnings"] >= 1


def test_references_into_other_namespaces_are_resolved_there(store: Any) -> None:
    """A VirtualService in ``edge`` routing to ``reviews.shop``: its Service is read from shop."""
    edge = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews-edge", "namespace": "edge"},
        "spec": {
            "hosts": ["reviews.shop.svc.cluster.local"],
            "http": [{"route": [{"destination": {"host": "reviews.shop.svc.cluster.local"}}]}],
        },
    }
    store.load_istio([edge], "edge")
    result = probes.lint_mesh(ns="edge")
    assert result["ok"] is True, result["findings"]
    everywhere = probes.lint_mesh(all_namespaces=True)
    assert everywhere["ok"] is True and everywhere["namespace"] is None


def test_no_api_is_activity_failed_naming_the_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: m\n  cluster:\n"
        "    server: http://127.0.0.1:9\ncontexts:\n- name: m\n  context:\n"
        "    cluster: m\n    user: m\ncurrent-context: m\nusers:\n- name: m\n  user: {}\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with pytest.raises(ActivityFailed, match=r"lint_mesh: cannot read networking.istio.io"):
        probes.lint_mesh(ns="shop", configuration={"kubernetes_request_timeout": 2})
    with pytest.raises(ActivityFailed, match="'ns'"):
        probes.lint_mesh(ns="")
