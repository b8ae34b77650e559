"""Pure patch appliers: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and, for the
built-in kinds, Kubernetes' strategic merge patch.

Each takes a document and a patch and returns a new document; none mutates its inputs.
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


# ---- strategic merge patch ----------------------------------------------------------------
# The list fields of a Deployment (and of the Pod it templates) that Kubernetes merges by a
# key (the Go structs' `patchMergeKey`); every other list is replaced whole, as on a server.
# Keyed by the field's name, which is unambiguous within these kinds.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "conditions": "type",
}
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def strategic_merge_patch(target: Any, patch: Any, merge_keys: dict[str, str] | None = None) -> Any:
    """Kubernetes' strategic merge patch for built-in kinds: maps merge as in a merge patch,
    lists named in ``merge_keys`` (default :data:`MERGE_KEYS`) merge element by element on
    their key, other lists are replaced. Directives: ``$patch: replace|delete`` (on a map or
    a list element), ``$retainKeys``, ``$setElementOrder/<list>``,
    ``$deleteFromPrimitiveList/<list>``; any other ``$`` key is refused."""
    keys = MERGE_KEYS if merge_keys is None else merge_keys
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object", malformed=True)
    result = _strategic_map(target if isinstance(target, dict) else {}, patch, keys, "")
    return {} if result is None else result


def _strategic_map(
    target: dict[str, Any], patch: dict[str, Any], keys: dict[str, str], where: str
) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive not in (None, "replace", "merge"):
        raise PatchError(f"{where or 'patch'}: unknown $patch directive {directive!r}")
    body = {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "replace":
        return _strip_directives(body)
    result = copy.deepcopy(target)
    retain = body.pop("$retainKeys", None)
    for key, value in body.items():
        path = f"{where}.{key}" if where else key
        if key.startswith(_ORDER):
            continue  # order only: a server keeps the merged order, which we do too
        if key.startswith(_DELETE_PRIMITIVES):
            field = key[len(_DELETE_PRIMITIVES) :]
            drop = value if isinstance(value, list) else []
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in drop]
            continue
        if key.startswith("$"):
            raise PatchError(f"{path}: unknown strategic merge directive", malformed=True)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _strategic_map(
                result[key] if isinstance(result.get(key), dict) else {}, value, keys, path
            )
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and key in keys and isinstance(result.get(key), list):
            result[key] = _strategic_list(result[key], value, keys[key], keys, path)
        else:
            result[key] = _strip_directives(copy.deepcopy(value))
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError(f"{where or 'patch'}: $retainKeys must be a list", malformed=True)
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _strategic_list(
    target: list[Any], patch: list[Any], merge_key: str, keys: dict[str, str], where: str
) -> list[Any]:
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [_strip_directives(i) for i in patch if not _is_directive(i, "replace")]
    result = copy.deepcopy(target)
    for index, item in enumerate(patch):
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchError(
                f"{where}[{index}]: an element of this list needs its merge key {merge_key!r}"
            )
        position = next(
            (
                i
                for i, e in enumerate(result)
                if isinstance(e, dict) and e.get(merge_key) == item[merge_key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                result.pop(position)
            continue
        if position is None:
            result.append(_strip_directives(item))
        else:
            merged = _strategic_map(result[position], item, keys, f"{where}[{index}]")
            if merged is not None:
                result[position] = merged
    return result


def _is_directive(item: Any, name: str) -> bool:
    return isinstance(item, dict) and item.get("$patch") == name and len(item) == 1


def _strip_directives(value: Any) -> Any:
    """A value added whole: no ``$`` directive may reach the stored object."""
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value
