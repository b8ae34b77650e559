"""Where lint's objects come from: YAML/JSON files (with line numbers) or plain dicts.

Each object becomes a :class:`Doc` that remembers its file and YAML node, so a finding about
``spec.http[0].fault`` can name the line it is on.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaosmesh_ext._kobject import KObject
from chaosmesh_ext.istio.lint_findings import ERROR, Finding

YAML_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Doc:
    obj: Mapping[str, Any]
    file: str = ""
    node: yaml.Node | None = None
    namespace: str = "default"

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def name(self) -> str:
        return KObject(self.obj).name

    @property
    def spec(self) -> Mapping[str, Any]:
        spec = self.obj.get("spec")
        return spec if isinstance(spec, Mapping) else {}


def read_paths(paths: Iterable[str | Path], namespace: str, findings: list[Finding]) -> list[Doc]:
    """The objects in ``paths`` (``-`` is standard input); problems reading go to ``findings``."""
    docs: list[Doc] = []
    paths = list(paths)
    if any(str(p) == "-" for p in paths):  # as kubectl: "-f -" reads standard input
        docs.extend(_parse(sys.stdin.read(), "<stdin>", namespace, findings))
    for path in _expand([p for p in paths if str(p) != "-"], findings):
        docs.extend(_load(path, namespace, findings))
    return docs


def docs_from_objects(objs: Iterable[Mapping[str, Any]], namespace: str) -> list[Doc]:
    docs: list[Doc] = []
    for obj in objs:
        if isinstance(obj, Mapping):
            docs.extend(unwrap(obj, "", None, namespace))
    return docs


def _expand(paths: Iterable[str | Path], findings: list[Finding]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
            )
        elif path.is_file():
            out.append(path)
        else:
            findings.append(Finding(ERROR, str(path), "", "", "", "", "no such file or directory"))
    return out


def _load(path: Path, namespace: str, findings: list[Finding]) -> list[Doc]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        findings.append(Finding(ERROR, str(path), "", "", "", "", f"cannot read: {exc}"))
        return []
    return _parse(text, str(path), namespace, findings)


def _parse(text: str, file: str, namespace: str, findings: list[Finding]) -> list[Doc]:
    docs: list[Doc] = []
    # libyaml's loader when present: same nodes and line marks, several times faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            obj = loader.construct_document(node)
            if isinstance(obj, Mapping):
                docs.extend(unwrap(obj, file, node, namespace))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" at line {line}, column {mark.column + 1}" if mark is not None else ""
        findings.append(
            Finding(ERROR, file, "", "", "", "", f"malformed YAML{where}: {problem}", line)
        )
    finally:
        loader.dispose()
    return docs


def unwrap(obj: Mapping[str, Any], file: str, node: yaml.Node | None, namespace: str) -> list[Doc]:
    """A document, or the items of a ``kind: List``."""
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        item_nodes = _child(node, "items")
        out = []
        for i, item in enumerate(obj["items"]):
            if isinstance(item, Mapping):
                out.extend(unwrap(item, file, _child(item_nodes, i), namespace))
        return out
    return [Doc(obj, file, node, KObject(obj).namespace_or(namespace))]


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode) and isinstance(key, str):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v if isinstance(v, yaml.Node) else None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        item = node.value[key]
        return item if isinstance(item, yaml.Node) else None
    return None


_PATH_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def duplicate_keys(node: yaml.Node | None, path: str) -> Iterable[tuple[str, str, int, int]]:
    """(path, key, first line, repeated line) for every key repeated in a mapping."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or key == "<<":
                continue
            here = f"{path}.{key}" if path else key
            if key in seen:
                yield here, key, seen[key], key_node.start_mark.line + 1
            else:
                seen[key] = key_node.start_mark.line + 1
            yield from duplicate_keys(value, here)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from duplicate_keys(item, f"{path}[{i}]")


def line_of(doc: Doc, path: str) -> int | None:
    """The line of ``path`` (``spec.http[0].fault``) in the document, or of its nearest parent."""
    node = doc.node
    if node is None:
        return None
    best = node.start_mark.line + 1
    for index, key in _PATH_TOKEN.findall(path):
        node = _child(node, int(index) if index else key)
        if node is None:
            break
        best = node.start_mark.line + 1
    return best
