"""Kubernetes label and field selectors (``labelSelector=app=v1,tier!=db``), pure.

Supports the set-based grammar kubectl and the client send: ``k=v``, ``k==v``, ``k!=v``,
``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists) and ``!k`` (absent). Field selectors cover
``metadata.name`` and ``metadata.namespace`` (``=``, ``==``, ``!=``), which is what kubectl
uses to wait on one object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .status import ApiError, bad_request

Predicate = Callable[[Mapping[str, str]], bool]

_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split(selector: str) -> list[str]:
    # Commas separate requirements, except inside "in (a,b)".
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def _requirement(text: str) -> Predicate:
    eq = _EQ.match(text)
    if eq:
        key, op, value = eq.groups()
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    match = _SET.match(text)
    if not match:
        raise bad_request(f"unable to parse requirement: {text.strip()!r}")
    negate, key, op, values = match.groups()
    if op:
        if negate:
            raise bad_request(f"unable to parse requirement: {text.strip()!r}")
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in allowed
        return lambda labels: labels.get(key) not in allowed
    if negate:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def label_selector(selector: str | None) -> Predicate:
    """A predicate over an object's labels; an empty selector matches everything."""
    if not selector:
        return lambda labels: True
    checks = [_requirement(part) for part in _split(selector)]
    return lambda labels: all(check(labels) for check in checks)


def field_selector(selector: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over an object for ``metadata.name`` / ``metadata.namespace`` selectors."""
    if not selector:
        return lambda obj: True
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for part in _split(selector):
        eq = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not eq or eq.group(1) not in ("metadata.name", "metadata.namespace"):
            raise ApiError(
                400,
                "BadRequest",
                f'"{part.strip()}" is not a known field selector: '
                'only "metadata.name", "metadata.namespace"',
            )
        field, op, value = eq.groups()
        attr = field.split(".", 1)[1]

        def check(
            obj: Mapping[str, Any], attr: str = attr, op: str = op, value: str = value
        ) -> bool:
            actual = (obj.get("metadata") or {}).get(attr, "")
            return (actual == value) if op != "!=" else (actual != value)

        checks.append(check)
    return lambda obj: all(check(obj) for check in checks)


def matches_selector(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """A Service's ``spec.selector`` (a plain map) against a pod's labels."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())
