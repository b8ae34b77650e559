"""``chaos discover`` for this package: chaoslib's discovery, with the argument types resolved.

chaoslib reads ``inspect.signature(func)`` annotations. Under ``from __future__ import
annotations`` those are strings (``"int | None"``), which chaoslib reports as ``object`` — and
``chaos init`` then asks click to convert the user's answer with ``object(text)``, which
crashes. Here the annotations are resolved with :func:`typing.get_type_hints` and named the
way chaoslib names types (``string``, ``integer``, ``number``, ``boolean``, ``mapping``,
``list``), ``X | None`` unwrapped to ``X``.
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

# A union of several types is named after the most general of them that a user can type in:
# headers as {"k": "v"} or ["k: v"] -> mapping; a delay as "2s" or 2.0 -> string.
_UNION_PREFERENCE = ("mapping", "list", "string", "number", "integer", "boolean")


def portable_type(annotation: Any, default: Any = None) -> str:
    """chaoslib's portable name for a resolved annotation; for a union, the member the
    ``default`` value belongs to, if any."""
    if annotation is None or annotation is type(None):
        return "null"
    if annotation is Any:
        return "object"
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        names = {portable_type(member) for member in members}
        if len(names) == 1:
            return names.pop()
        if default is not None and portable_type(type(default)) in names:
            return portable_type(type(default))
        for name in _UNION_PREFERENCE:
            if name in names:
                return name
        return "object"
    if origin is typing.Literal:
        return portable_type(type(typing.get_args(annotation)[0]))
    base = origin or annotation
    if base is bool:
        return "boolean"
    if base is int:
        return "integer"
    if base is float:
        return "number"
    if base is str:
        return "string"
    if base is bytes:
        return "byte"
    if isinstance(base, type):
        if issubclass(base, Mapping):
            return "mapping"
        if issubclass(base, Iterable):
            return "list"
    return "object"


def discover_activities(module_name: str, activity_type: str) -> list[dict[str, Any]]:
    """chaoslib's ``discover_activities``, with each ``type`` and ``return_type`` resolved."""
    from chaoslib.discovery.discover import discover_activities as chaoslib_discover

    activities: list[dict[str, Any]] = chaoslib_discover(module_name, activity_type)
    module = importlib.import_module(module_name)
    for activity in activities:
        func = getattr(module, activity["name"])
        hints = typing.get_type_hints(func)
        signature = inspect.signature(func)
        for argument in activity["arguments"]:
            if argument["name"] in hints:
                hint = hints[argument["name"]]
                argument["type"] = portable_type(hint, argument.get("default"))
        if "return" in hints and signature.return_annotation is not inspect.Signature.empty:
            activity["return_type"] = portable_type(hints["return"])
    return activities
