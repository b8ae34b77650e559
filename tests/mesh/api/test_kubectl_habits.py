"""kubectl habits against the embedded API: server-side dry run, ``kubectl diff``, and objects
that ``mesh up -f`` created carrying kubectl's last-applied annotation."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from chaosmesh_ext.mesh import manifests

from .conftest import Api
from .test_discovery_and_kubectl import CANARY

T = 10
GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"


def _stored(api: Api) -> str:
    """Everything the store holds, as canonical text (nothing may change on a dry run)."""
    return json.dumps(api.store.all_istio(), sort_keys=True)


def test_kubectl_diff_works_and_changes_nothing(api: Api, kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=CANARY.format(v1=90, v2=10))
    before, pushes = _stored(api), len(api.plane.pushes)
    # kubectl diff exits 1 when there are differences, 0 when none
    diff = kubectl("diff", "-f", "-", stdin=CANARY.format(v1=50, v2=50), check=False)
    assert diff.returncode == 1, diff.stderr
    assert "-      weight: 90" in diff.stdout and "+      weight: 50" in diff.stdout
    assert "generation" in diff.stdout  # the server bumps it, as a real dry run shows
    same = kubectl("diff", "-f", "-", stdin=CANARY.format(v1=90, v2=10), check=False)
    assert same.returncode == 0 and same.stdout == "", same.stderr
    new = CANARY.format(v1=90, v2=10).replace("name: canary", "name: canary-two")
    created = kubectl("diff", "-f", "-", stdin=new, check=False)
    assert created.returncode == 1 and "+  name: canary-two" in created.stdout
    assert _stored(api) == before and len(api.plane.pushes) == pushes
    dry = kubectl("apply", "--dry-run=server", "-f", "-", stdin=CANARY.format(v1=10, v2=90))
    assert "(server dry run)" in dry.stdout and _stored(api) == before


def test_dry_run_still_validates(api: Api, kubectl, kube: client.ApiClient) -> None:
    bad = kubectl("diff", "-f", "-", stdin=CANARY.format(v1=90, v2=-1), check=False)
    assert bad.returncode > 1 and "spec.http[0].route[1].weight" in bad.stderr
    objects = client.CustomObjectsApi(kube)
    body = json.loads(kubectl("create", "--dry-run=client", "-o", "json", "-f", "-",
                              stdin=CANARY.format(v1=90, v2=10)).stdout)  # fmt: skip
    made = objects.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, body, dry_run="All", _request_timeout=T
    )
    assert made["metadata"]["name"] == "canary" and "resourceVersion" not in made["metadata"]
    assert api.store.all_istio()[PLURAL] == []
    with pytest.raises(ApiException) as refused:
        objects.create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, body, dry_run="Some", _request_timeout=T
        )
    message = json.loads(refused.value.body)["message"]
    assert refused.value.status == 400 and 'supported values: "All"' in message
    objects.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, body, _request_timeout=T
    )
    before = _stored(api)
    objects.delete_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "canary", dry_run="All", _request_timeout=T
    )
    assert _stored(api) == before


def test_mesh_up_objects_carry_last_applied_so_kubectl_apply_patches_right(
    api: Api, kubectl
) -> None:
    with_retries = CANARY.format(v1=90, v2=10) + "    retries:\n      attempts: 3\n"
    (obj,) = manifests.load_text(with_retries, "canary.yaml")  # what `mesh up -f` reads
    api.store.load_istio([manifests.as_applied(obj.obj, "default")], "default")
    stored = api.store.all_istio()[PLURAL][0]
    recorded = json.loads(stored["metadata"]["annotations"][manifests.LAST_APPLIED])
    assert recorded["spec"]["http"][0]["retries"] == {"attempts": 3}
    assert recorded["metadata"] == {"name": "canary", "namespace": "default"}

    # The file changes: retries removed, weights moved. kubectl apply neither warns nor keeps
    # the removed field (it would without the annotation: a merge patch only sets fields).
    applied = kubectl("apply", "-f", "-", stdin=CANARY.format(v1=50, v2=50))
    assert "configured" in applied.stdout
    assert "last-applied-configuration" not in applied.stderr, applied.stderr
    got = json.loads(kubectl("get", "vs", "canary", "-o", "json").stdout)
    assert "retries" not in got["spec"]["http"][0]
    assert [r["weight"] for r in got["spec"]["http"][0]["route"]] == [50, 50]
