"""Pure patch appliers: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

Both take a document and a patch and return a new document; neither mutates its inputs.
Failures raise ``PatchError`` with a message naming the operation and path, which the store
turns into the Status a real kube-apiserver would answer (400 for an undecodable patch, 422
for a patch that does not apply, e.g. a failed ``test``).
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied; ``malformed`` means it could not even be read (400)."""

    def __init__(self, message: str, malformed: bool = False) -> None:
        super().__init__(message)
        self.malformed = malformed


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"path {pointer!r} is not a JSON pointer (must start with '/')")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _index(container: list[Any], token: str, pointer: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"path {pointer!r}: {token!r} is not an array index")
    index = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if index > limit:
        raise PatchError(f"path {pointer!r}: index {index} out of range")
    return index


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _parse_pointer(pointer)
    if not tokens:
        raise PatchError("the whole document cannot be the target of this operation")
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {pointer!r}: {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, pointer, allow_end=False)]
        else:
            raise PatchError(f"path {pointer!r}: {token!r} is inside a scalar")
    return node, tokens[-1]


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    for token in _parse_pointer(pointer):
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {pointer!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, pointer, allow_end=False)]
        else:
            raise PatchError(f"path {pointer!r} does not exist")
    return node


def _add(doc: Any, pointer: str, value: Any) -> Any:
    if pointer == "":
        return value
    parent, token = _parent(doc, pointer)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, pointer, allow_end=True), value)
    else:
        raise PatchError(f"path {pointer!r}: parent is not an object or array")
    return doc


def _remove(doc: Any, pointer: str) -> tuple[Any, Any]:
    parent, token = _parent(doc, pointer)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path {pointer!r} does not exist")
        return doc, parent.pop(token)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, token, pointer, allow_end=False))
    raise PatchError(f"path {pointer!r} does not exist")


def _field(op: dict[str, Any], name: str, number: int) -> Any:
    if name not in op:
        raise PatchError(f"operation {number} ({op.get('op')}) is missing {name!r}", malformed=True)
    return op[name]


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902: apply ``operations`` in order; all or nothing."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations", malformed=True)
    doc = copy.deepcopy(document)
    for number, op in enumerate(operations):
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"operation {number} has no 'op'", malformed=True)
        kind = op["op"]
        path = _field(op, "path", number)
        if not isinstance(path, str):
            raise PatchError(f"operation {number}: path must be a string", malformed=True)
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(_field(op, "value", number)))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            value = copy.deepcopy(_field(op, "value", number))
            if path == "":
                doc = value
            else:
                doc, _ = _remove(doc, path)
                doc = _add(doc, path, value)
        elif kind == "move":
            source = _field(op, "from", number)
            if path.startswith(source + "/"):
                raise PatchError(f"operation {number}: cannot move {source!r} into its own child")
            doc, value = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "copy":
            value = copy.deepcopy(_get(doc, _field(op, "from", number)))
            doc = _add(doc, path, value)
        elif kind == "test":
            expected = _field(op, "value", number)
            actual = _get(doc, path)
            # bool is an int in Python; JSON keeps them apart.
            if actual != expected or isinstance(actual, bool) != isinstance(expected, bool):
                raise PatchError(
                    f"testing value {path} failed: expected {expected!r}, found {actual!r}"
                )
        else:
            raise PatchError(f"operation {number}: unknown op {kind!r}", malformed=True)
    return doc
