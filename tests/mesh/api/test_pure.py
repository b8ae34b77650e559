"""Pure parts of the API layer: patch appliers (RFC 7386 / RFC 6902), selectors, manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosmesh_ext.mesh import manifests
from chaosmesh_ext.mesh.api.patches import PatchError, json_patch, merge_patch
from chaosmesh_ext.mesh.api.selectors import field_selector, label_selector
from chaosmesh_ext.mesh.api.status import ApiError


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386 appendix A, a selection
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(target: object, patch: object, result: object) -> None:
    before = repr(target)
    assert merge_patch(target, patch) == result
    assert repr(target) == before  # input untouched


def test_json_patch_operations_and_atomicity() -> None:
    doc = {"spec": {"hosts": ["a"], "http": [{"route": [{"weight": 90}, {"weight": 10}]}]}}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/spec/hosts/-", "value": "b"},
            {"op": "replace", "path": "/spec/http/0/route/0/weight", "value": 50},
            {
                "op": "copy",
                "from": "/spec/http/0/route/0/weight",
                "path": "/spec/http/0/route/1/weight",
            },
            {"op": "move", "from": "/spec/hosts", "path": "/spec/gateways"},
            {"op": "add", "path": "/metadata", "value": {"annotations": {"a~b/c": "x"}}},
            {"op": "test", "path": "/metadata/annotations/a~0b~1c", "value": "x"},
            {"op": "remove", "path": "/spec/http/0/route/1"},
        ],
    )
    assert out == {
        "spec": {"gateways": ["a", "b"], "http": [{"route": [{"weight": 50}]}]},
        "metadata": {"annotations": {"a~b/c": "x"}},
    }
    assert doc["spec"]["hosts"] == ["a"]  # input untouched
    with pytest.raises(PatchError, match="testing value"):
        json_patch(doc, [{"op": "test", "path": "/spec/hosts/0", "value": "z"}])
    with pytest.raises(PatchError, match="does not exist"):
        json_patch(doc, [{"op": "remove", "path": "/spec/nope"}])
    with pytest.raises(PatchError, match="out of range"):
        json_patch(doc, [{"op": "add", "path": "/spec/hosts/5", "value": 1}])
    with pytest.raises(PatchError) as err:
        json_patch(doc, [{"op": "frobnicate", "path": "/a"}])
    assert err.value.malformed
    with pytest.raises(PatchError):  # JSON keeps true and 1 apart
        json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])


def test_label_and_field_selectors() -> None:
    labels = {"app": "canary", "version": "v1"}
    assert label_selector("app=canary,version in (v1,v2)")(labels)
    assert label_selector("app==canary,!tier")(labels)
    assert not label_selector("app!=canary")(labels)
    assert not label_selector("version notin (v1)")(labels)
    assert label_selector("")(labels)
    with pytest.raises(ApiError):
        label_selector("app=(")
    obj = {"metadata": {"name": "canary", "namespace": "istio-test"}}
    assert field_selector("metadata.name=canary")(obj)
    assert not field_selector("metadata.namespace!=istio-test")(obj)
    with pytest.raises(ApiError):
        field_selector("spec.hosts=x")


def test_manifest_positions_and_roles(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(
        "# comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: istio-test}\n"
        "---\n---\napiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Service, metadata: {name: s}, spec: {ports: [{port: 80}]}}\n"
    )
    (tmp_path / "a.json").write_text(
        '{"apiVersion": "networking.istio.io/v1", "kind": "Gateway",'
        ' "metadata": {"name": "gw"}, "spec": {}}'
    )
    found = manifests.load([tmp_path])
    assert [(Path(m.file).name, m.document, m.line, m.kind) for m in found] == [
        ("a.json", 1, 1, "Gateway"),
        ("b.yaml", 1, 3, "Namespace"),
        ("b.yaml", 3, 8, "Service"),
    ]
    loaded = manifests.classify(found, "default")
    assert len(loaded.istio) == 1 and len(loaded.services) == 1
    assert "Namespace default/istio-test accepted and ignored" in loaded.notes[0]
    with pytest.raises(manifests.ManifestError, match="no such file"):
        manifests.load([tmp_path / "missing.yaml"])
    (tmp_path / "c.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {}\n")
    with pytest.raises(
        manifests.ManifestError, match=r"c.yaml: document 1 \(line 1\): Service: metadata.name"
    ):
        manifests.load([tmp_path / "c.yaml"])
