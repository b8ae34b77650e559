"""Our hand-written schema, the fidelity table and docs/FIDELITY.md against Istio's own CRDs.

The CRDs are Istio 1.31's (``tests/support/istio_upstream``, see its README): every field of
every served version (v1, v1beta1, v1alpha3) must be in ``istio.schema`` with the same type,
and classified exactly once in ``istio.fidelity``; a field Istio adds is a failure here, not
a surprise for a user.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaosmesh_ext.istio import fidelity, schema

UPSTREAM = Path(__file__).resolve().parent.parent / "support" / "istio_upstream"
CRDS = UPSTREAM / "crd-networking-1.31.yaml"
FIDELITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "FIDELITY.md"
KINDS = ("VirtualService", "DestinationRule", "Gateway")


@functools.cache
def _crds() -> dict[str, dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # 600 kB: the C parser if present
    docs = [d for d in yaml.load_all(CRDS.read_text(), Loader=loader) if d]
    return {d["spec"]["names"]["kind"]: d for d in docs}


def _crd_specs() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (kind, version["name"], version["schema"]["openAPIV3Schema"]["properties"]["spec"])
        for kind, crd in _crds().items()
        for version in crd["spec"]["versions"]
    ]


def _kind_of_crd(node: dict[str, Any]) -> str:
    if node.get("type") == "object" and node.get("properties"):
        return "object"
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        return "map"
    if node.get("type") == "string" and "enum" in node:
        return "enum"
    return str(node.get("type"))


def _kind_of_ours(spec: Any) -> str:
    if isinstance(spec, dict):
        return "object"
    if isinstance(spec, list):
        return "array"
    if isinstance(spec, tuple):
        return spec[0]  # "map" or "enum"
    return {
        "str": "string",
        "duration": "string",
        "int": "integer",
        "uint": "integer",
        "number": "number",
        "bool": "boolean",
        "strmap": "map",
    }[spec]


def differences(crd: dict[str, Any], ours: Any, path: str) -> list[str]:
    """Every way ``ours`` (istio.schema) differs from a CRD ``openAPIV3Schema`` node."""
    crd_kind, our_kind = _kind_of_crd(crd), _kind_of_ours(ours)
    if crd_kind != our_kind:
        return [f"{path}: the CRD has {crd_kind}, istio.schema has {our_kind}"]
    out: list[str] = []
    if crd_kind == "integer":
        non_negative = crd.get("minimum") is not None and crd["minimum"] >= 0
        if non_negative != (ours == "uint"):
            out.append(f"{path}: CRD minimum {crd.get('minimum')} but istio.schema says {ours}")
    elif crd_kind == "enum":
        if tuple(crd["enum"]) != tuple(ours[1]):
            out.append(f"{path}: CRD enum {crd['enum']}, istio.schema {list(ours[1])}")
    elif crd_kind == "object":
        for key, sub in crd["properties"].items():
            if key not in ours:
                out.append(f"{path}.{key}: in Istio's CRD, missing from istio.schema")
            else:
                out += differences(sub, ours[key], f"{path}.{key}")
        out += [
            f"{path}.{k}: in istio.schema, not in the CRD"
            for k in ours
            if k not in crd["properties"]
        ]
    elif crd_kind == "array":
        out += differences(crd["items"], ours[0], f"{path}[]")
    elif crd_kind == "map":
        values = crd["additionalProperties"]
        if ours == "strmap":
            if values.get("type") != "string":
                out.append(f"{path}: a map of {values.get('type')}, istio.schema has strmap")
        else:
            out += differences(values, ours[1], f"{path}{{}}")
    return out


def _crd_paths(node: dict[str, Any], path: str) -> list[str]:
    out = [path]
    for key, sub in (node.get("properties") or {}).items():
        out += _crd_paths(sub, f"{path}.{key}")
    if node.get("type") == "array":
        out += _crd_paths(node["items"], f"{path}[]")[1:]
    if isinstance(node.get("additionalProperties"), dict):
        out += _crd_paths(node["additionalProperties"], f"{path}{{}}")[1:]
    return out


def test_the_fixture_holds_all_three_kinds_in_all_three_versions():
    found = {(kind, version) for kind, version, _ in _crd_specs()}
    assert found == {(k, v) for k in KINDS for v in ("v1", "v1beta1", "v1alpha3")}


@pytest.mark.parametrize(("kind", "version", "crd"), _crd_specs(), ids=lambda x: str(x)[:20])
def test_istio_schema_has_every_field_of_the_crd_with_its_type(kind, version, crd):
    assert differences(crd, schema.SPECS[kind], "spec") == []


def test_a_field_istio_adds_is_reported_by_name():
    crd = {kind: spec for kind, version, spec in _crd_specs() if version == "v1"}["Gateway"]
    servers = crd["properties"]["servers"]["items"]["properties"]
    grown = {**crd, "properties": {**crd["properties"], "servers": {
        "type": "array",
        "items": {**crd["properties"]["servers"]["items"],
                  "properties": {**servers, "quicOptions": {"type": "boolean"}}},
    }}}  # fmt: skip
    assert differences(grown, schema.SPECS["Gateway"], "spec") == [
        "spec.servers[].quicOptions: in Istio's CRD, missing from istio.schema"
    ]


@pytest.mark.parametrize(("kind", "version", "crd"), _crd_specs(), ids=lambda x: str(x)[:20])
def test_every_crd_field_is_in_exactly_one_fidelity_class(kind, version, crd):
    for path in _crd_paths(crd, "spec"):
        row = fidelity.canonical_path(kind, path)
        assert row in fidelity.TABLES[kind], f"{kind} {version}: {path} is not classified"
        assert fidelity.TABLES[kind][row].cls in fidelity.CLASSES
        assert fidelity.TABLES[kind][row].reference, f"{row}: no istiod reference"


def test_the_fidelity_table_has_no_row_for_a_field_istio_lacks():
    for kind in KINDS:
        crd_rows = {
            fidelity.canonical_path(kind, p)
            for k, version, crd in _crd_specs()
            if k == kind
            for p in _crd_paths(crd, "spec")
        }
        assert set(fidelity.TABLES[kind]) == crd_rows


def test_docs_fidelity_md_is_the_table_for_each_kind():
    text = FIDELITY_DOC.read_text()
    for kind in KINDS:
        section = re.search(rf"^## {kind}\n\n(.*?)(?=\n## |\Z)", text, re.S | re.M)
        assert section is not None, f"docs/FIDELITY.md has no '## {kind}' section"
        table = "\n".join(line for line in section.group(1).splitlines() if line.startswith("|"))
        assert table == fidelity.markdown_table(kind), (
            f"docs/FIDELITY.md's {kind} table is stale: regenerate it with "
            "`python -m chaosmesh_ext.istio.fidelity`"
        )
