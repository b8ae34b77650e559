"""What a run joining a running mesh may apply: objects absent from it or identical to what it
holds; anything else is a difference, shown as a diff and naming the run that changed it."""

from __future__ import annotations

import copy
from typing import Any

from chaosmesh_ext.mesh.joining import plan_join
from chaosmesh_ext.mesh.manifests import Manifest, classify, with_namespace
from chaosmesh_ext.mesh.views import key_of

VS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "canary"},
    "spec": {
        "hosts": ["canary"],
        "http": [
            {
                "route": [
                    {"destination": {"host": "canary", "subset": "v1"}, "weight": 90},
                    {"destination": {"host": "canary", "subset": "v2"}, "weight": 10},
                ]
            }
        ],
    },
}
SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "canary"},
    "spec": {"selector": {"app": "canary"}, "ports": [{"port": 80}]},
}
DR: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "DestinationRule",
    "metadata": {"name": "canary"},
    "spec": {"host": "canary"},
}


def _live(obj: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """``obj`` as the API serves it: server-set metadata added."""
    live = copy.deepcopy(with_namespace(obj, "default"))
    live["metadata"].update(
        resourceVersion="12", uid="u-1", creationTimestamp="2026-01-01T00:00:00Z", **metadata
    )
    return live


def _plan(objects: list[dict[str, Any]], live: list[dict[str, Any]], services: Any = None) -> Any:
    loaded = classify(
        [Manifest(o, "manifests/canary.yaml", i + 1, 1) for i, o in enumerate(objects)], "default"
    )
    by_key = {(o["kind"], *key_of(o)): o for o in live}
    return plan_join(
        loaded,
        "default",
        services=services or {},
        deployments={},
        secrets={},
        istio=lambda kind, ns, name: by_key.get((kind, ns, name)),
    )


def test_absent_objects_are_applied_and_identical_ones_left_alone() -> None:
    plan = _plan(
        [VS, DR, SERVICE],
        [_live(VS)],
        services={key_of(with_namespace(SERVICE, "default")): with_namespace(SERVICE, "default")},
    )
    assert plan.differences == []
    assert plan.identical == 2
    assert [m.obj["kind"] for m in plan.absent.istio] == ["DestinationRule"]
    assert plan.absent.services == []


def test_a_weight_the_user_changed_is_a_difference_with_a_diff() -> None:
    mine = copy.deepcopy(VS)
    mine["spec"]["http"][0]["route"][0]["weight"] = 50
    mine["spec"]["http"][0]["route"][1]["weight"] = 50
    plan = _plan([VS, DR], [_live(mine)])
    (difference,) = plan.differences
    assert (difference.kind, difference.namespace, difference.name) == (
        "VirtualService",
        "default",
        "canary",
    )
    assert difference.changed_by is None
    changed = [line.replace(" ", "") for line in difference.diff.splitlines()]
    assert '-"weight":50' in changed and '+"weight":90' in changed
    assert "manifests/canary.yaml" in difference.diff
    text = str(difference)
    assert text.startswith("VirtualService default/canary:")
    # Nothing is applied when anything differs; the absent DR waits with it.
    assert [m.obj["kind"] for m in plan.absent.istio] == ["DestinationRule"]


def test_an_object_another_run_changed_names_that_run() -> None:
    faulted = copy.deepcopy(VS)
    faulted["spec"]["http"][0]["fault"] = {"delay": {"fixedDelay": "1s"}}
    live = _live(faulted, annotations={"chaosmesh.io/ledger": "run-a-20261202#1"})
    (difference,) = _plan([VS], [live]).differences
    assert difference.changed_by == "run-a-20261202"
    assert "changed by run run-a-20261202" in str(difference)


def test_bookkeeping_annotations_do_not_make_a_difference_but_labels_do() -> None:
    marked = _live(
        VS,
        annotations={
            "chaosmesh.io/ledger": "run-b#3",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
        },
    )
    assert _plan([VS], [marked]).differences == []
    labelled = _live(VS, labels={"team": "payments"})
    assert len(_plan([VS], [labelled]).differences) == 1


def test_a_differing_service_is_a_difference_and_what_reapply_replaces() -> None:
    mine = with_namespace(copy.deepcopy(SERVICE), "default")
    mine["spec"]["ports"] = [{"port": 8080}]
    plan = _plan([SERVICE, VS], [], services={key_of(mine): mine})
    (difference,) = plan.differences
    assert difference.kind == "Service"
    assert [m.obj["kind"] for m in plan.reapplied().services] == ["Service"]
    assert [m.obj["kind"] for m in plan.reapplied().istio] == ["VirtualService"]
