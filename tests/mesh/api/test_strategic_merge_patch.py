"""Strategic merge patch as kube-apiserver applies it to Deployments (pure).

Cases from the Kubernetes docs' "Update API Objects in Place Using kubectl patch" task and
the strategic-merge-patch design document (k8s.io/community contributors/devel/sig-api-
machinery/strategic-merge-patch.md)."""

from __future__ import annotations

import pytest

from chaosmesh_ext.mesh.api.patches import PatchError, strategic_merge_patch

DEPLOYMENT = {
    "metadata": {"name": "patch-demo", "labels": {"app": "nginx"}},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "patch-demo-ctr",
                        "image": "nginx",
                        "env": [{"name": "A", "value": "1"}],
                    }
                ],
                "tolerations": [{"effect": "NoSchedule", "key": "dedicated", "value": "test"}],
            }
        },
    },
}


def test_containers_merge_by_name_where_a_merge_patch_would_replace_the_list() -> None:
    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}
        }
    }
    out = strategic_merge_patch(DEPLOYMENT, patch)
    names = [c["name"] for c in out["spec"]["template"]["spec"]["containers"]]
    assert names == ["patch-demo-ctr", "patch-demo-ctr-2"]  # the docs' example


def test_an_element_merges_into_its_namesake_and_lists_without_a_key_are_replaced() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "patch-demo-ctr", "env": [{"name": "B", "value": "2"}]}
                    ],
                    "tolerations": [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}],
                }
            }
        }
    }
    out = strategic_merge_patch(DEPLOYMENT, patch)
    (container,) = out["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    # tolerations has no merge key in Kubernetes: the docs show it replaced.
    assert out["spec"]["template"]["spec"]["tolerations"] == [
        {"effect": "NoSchedule", "key": "disktype", "value": "ssd"}
    ]
    assert DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "A", "value": "1"}
    ]  # the input is not mutated


def test_directives_delete_replace_and_retain_keys() -> None:
    deleted = strategic_merge_patch(
        DEPLOYMENT,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "patch-demo-ctr", "$patch": "delete"}]}
                }
            }
        },
    )
    assert deleted["spec"]["template"]["spec"]["containers"] == []
    replaced = strategic_merge_patch(
        DEPLOYMENT, {"metadata": {"labels": {"$patch": "replace", "tier": "web"}}}
    )
    assert replaced["metadata"]["labels"] == {"tier": "web"}
    retained = strategic_merge_patch(
        DEPLOYMENT, {"spec": {"$retainKeys": ["template"], "template": {}}}
    )
    assert set(retained["spec"]) == {"template"}
    ordered = strategic_merge_patch(
        DEPLOYMENT,
        {"spec": {"$setElementOrder/containers": [{"name": "patch-demo-ctr"}], "replicas": 3}},
    )
    assert ordered["spec"]["replicas"] == 3 and "$setElementOrder/containers" not in ordered["spec"]
    assert strategic_merge_patch(DEPLOYMENT, {"metadata": {"labels": None}})["metadata"] == {
        "name": "patch-demo"
    }


def test_an_unknown_directive_or_an_element_without_its_key_is_refused() -> None:
    with pytest.raises(PatchError) as unknown:
        strategic_merge_patch(DEPLOYMENT, {"spec": {"$deleteAll": True}})
    assert unknown.value.malformed
    with pytest.raises(PatchError, match="merge key 'name'"):
        strategic_merge_patch(
            DEPLOYMENT, {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}
        )
