"""Fault injection edits on a VirtualService, and their exact undo.

- ``inject_delay`` / ``inject_abort`` add one part of a route's ``fault`` and keep the other
  (a delay added to a route that aborts keeps the abort).
- ``route`` picks which of the VirtualService's HTTP routes (name or number; ``None`` = all).
- ``headers`` / ``source_labels`` narrow the blast radius *within* a route: the route itself
  is left alone and a copy of it, named ``chaosmesh-fault-<route name or number>``, is
  inserted in front of it. The copy matches the route's own match blocks AND the given
  headers / source labels, carries the fault, and sends traffic where the route does. Only
  requests with those headers (or from pods with those labels) are faulted.
- What was injected is written down in the annotation ``chaosmesh.io/injected`` so that
  ``remove_injected_faults`` restores each touched route's original ``fault`` exactly, drops
  the inserted routes, and leaves faults this tool did not set alone.

All functions return a new dict and never modify their input.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from chaosmesh_ext._kobject import KObject
from chaosmesh_ext.istio.durations import duration_text, istio_duration_problem
from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.istio.resources import FAULT_ROUTE_PREFIX, GRPC_STATUS_CODES, INJECTED_ANNOTATION
from chaosmesh_ext.istio.routes import (
    RouteRef,
    check_result,
    copied,
    http_routes,
    is_inserted,
    own_positions,
    route_indexes,
    route_label,
)

KIND = "VirtualService"
HeaderMatch = str | Mapping[str, str]


def inject_delay(
    vs: Mapping[str, Any],
    delay: str | float,
    percentage: float = 100,
    route: RouteRef = None,
    headers: Mapping[str, HeaderMatch] | None = None,
    source_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``vs`` with a fixed delay of ``delay`` (``"2s"``, or seconds) on the targeted routes."""
    route_indexes(copied(vs, KIND), route)  # a bad object or route is the first thing to say
    text: Any = duration_text(delay)
    problem = istio_duration_problem(text)
    if problem:
        field = _first_field(vs, route, "fault.delay.fixedDelay")
        raise IstioError.for_object(vs, field, problem, KIND)
    pct = _percentage(vs, route, percentage, "delay")
    part = {"fixedDelay": text, "percentage": {"value": pct}}
    return _inject(vs, "delay", part, route, headers, source_labels)


def inject_abort(
    vs: Mapping[str, Any],
    status: int = 503,
    grpc_status: str | int | None = None,
    percentage: float = 100,
    route: RouteRef = None,
    headers: Mapping[str, HeaderMatch] | None = None,
    source_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``vs`` answering ``status`` (or gRPC ``grpc_status``) on the targeted routes.

    ``grpc_status`` is a gRPC code name (``"UNAVAILABLE"``) or number (``14``); when given,
    it replaces the HTTP status, as in Istio where an abort has one or the other.
    """
    route_indexes(copied(vs, KIND), route)
    pct = _percentage(vs, route, percentage, "abort")
    part: dict[str, Any]
    if grpc_status is not None:
        part = {"grpcStatus": _grpc_name(vs, route, grpc_status), "percentage": {"value": pct}}
    else:
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            field = _first_field(vs, route, "fault.abort.httpStatus")
            raise IstioError.for_object(
                vs, field, f"HTTP status must be an integer in 200..599, got {status!r}", KIND
            )
        part = {"httpStatus": status, "percentage": {"value": pct}}
    return _inject(vs, "abort", part, route, headers, source_labels)


def remove_injected_faults(vs: Mapping[str, Any]) -> dict[str, Any]:
    """``vs`` with every fault this tool injected taken out, and nothing else changed."""
    out = copied(vs, KIND)
    book = _load_book(out)
    _drop_annotation(out, book)
    if book is None:
        return out
    inserted = {entry["name"] for entry in book["inserted"]}
    routes = http_routes(out)
    routes[:] = [r for r in routes if not (isinstance(r, Mapping) and r.get("name") in inserted)]
    own = own_positions(out)
    for key, record in book["routes"].items():
        position = _find_touched(out, own, int(key), record.get("name"))
        if position is None:
            continue  # the route is gone; nothing of ours to take back
        target = routes[position]
        if record.get("fault") is None:
            target.pop("fault", None)
        else:
            target["fault"] = copy.deepcopy(record["fault"])
    return out


def injected(vs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The bookkeeping this tool keeps on ``vs``, or ``None`` if it injected nothing."""
    return _load_book(vs)


# --- the shared edit -----------------------------------------------------------------------


def _inject(
    vs: Mapping[str, Any],
    part_name: str,
    part: dict[str, Any],
    route: RouteRef,
    headers: Mapping[str, HeaderMatch] | None,
    source_labels: Mapping[str, str] | None,
) -> dict[str, Any]:
    out = copied(vs, KIND)
    positions = route_indexes(out, route)
    book = _load_book(out) or _new_book(out)
    own = own_positions(out)
    extra_headers = _header_conditions(out, positions[0], headers)
    extra_labels = _label_conditions(out, positions[0], source_labels)
    routes = http_routes(out)
    if not extra_headers and not extra_labels:
        for position in positions:
            key = str(own.index(position))
            target = routes[position]
            if key not in book["routes"]:
                book["routes"][key] = {
                    "name": target.get("name"),
                    "fault": copy.deepcopy(target.get("fault")),
                }
            target["fault"] = _merged_fault(target.get("fault"), part_name, part)
    else:
        # Highest position first so inserting does not move the routes still to do.
        for position in sorted(positions, reverse=True):
            index = own.index(position)
            target = routes[position]
            matches = _and_matches(out, position, target, extra_headers, extra_labels)
            base = FAULT_ROUTE_PREFIX + route_label(target, index)
            existing = _shadow_with_match(routes, position, base, matches)
            if existing is not None:
                shadow = routes[existing]
                shadow["fault"] = _merged_fault(shadow.get("fault"), part_name, part)
                continue
            shadow = {
                k: copy.deepcopy(v)
                for k, v in target.items()
                if k not in ("name", "match", "fault")
            }
            name = _unique_name(routes, base)
            shadow = {"name": name, "match": matches, **shadow}
            shadow["fault"] = _merged_fault(target.get("fault"), part_name, part)
            routes.insert(position, shadow)
            book["inserted"].append({"name": name, "target": index})
    _store_book(out, book)
    return check_result(KIND, vs, out)


def _merged_fault(current: Any, part_name: str, part: dict[str, Any]) -> dict[str, Any]:
    fault = copy.deepcopy(dict(current)) if isinstance(current, Mapping) else {}
    fault[part_name] = copy.deepcopy(part)
    return fault


def _and_matches(
    vs: Mapping[str, Any],
    position: int,
    target: Mapping[str, Any],
    extra_headers: dict[str, dict[str, str]],
    extra_labels: dict[str, str],
) -> list[dict[str, Any]]:
    """The target's match blocks, each AND-ed with the extra conditions."""
    blocks = target.get("match") if isinstance(target.get("match"), list) else None
    result = []
    for j, block in enumerate(blocks or [{}]):
        merged = copy.deepcopy(dict(block)) if isinstance(block, Mapping) else {}
        for group, extra in (("headers", extra_headers), ("sourceLabels", extra_labels)):
            if not extra:
                continue
            current = dict(merged.get(group) or {})
            for key, condition in extra.items():
                if key in current and current[key] != condition:
                    raise IstioError.for_object(
                        vs,
                        f"spec.http[{position}].match[{j}].{group}.{key}",
                        f"the route already requires {current[key]!r}; it cannot also require "
                        f"{condition!r}",
                        KIND,
                    )
                current[key] = condition
            merged[group] = current
        result.append(merged)
    return result


def _shadow_with_match(
    routes: list[Any], position: int, base: str, matches: list[dict[str, Any]]
) -> int | None:
    """An already inserted route in front of ``position`` with the same conditions."""
    p = position - 1
    while p >= 0 and is_inserted(routes[p]):
        name = str(routes[p].get("name"))
        if (name == base or name.startswith(base + "-")) and routes[p].get("match") == matches:
            return p
        p -= 1
    return None


def _unique_name(routes: list[Any], base: str) -> str:
    names = {r.get("name") for r in routes if isinstance(r, Mapping)}
    if base not in names:
        return base
    n = 2
    while f"{base}-{n}" in names:
        n += 1
    return f"{base}-{n}"


# --- argument checks ------------------------------------------------------------------------


def _first_field(vs: Mapping[str, Any], route: RouteRef, tail: str) -> str:
    return f"spec.http[{route_indexes(vs, route)[0]}].{tail}"


def _percentage(vs: Mapping[str, Any], route: RouteRef, value: Any, part: str) -> float | int:
    field = _first_field(vs, route, f"fault.{part}.percentage.value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IstioError.for_object(vs, field, f"must be a number in (0, 100], got {value!r}", KIND)
    if not 0 < value <= 100:
        raise IstioError.for_object(vs, field, f"must be in (0, 100], got {value}", KIND)
    if value < 0.0001:
        raise IstioError.for_object(
            vs, field, f"must be at least 0.0001 (Istio's smallest percentage), got {value}", KIND
        )
    return value


def _grpc_name(vs: Mapping[str, Any], route: RouteRef, value: str | int) -> str:
    field = _first_field(vs, route, "fault.abort.grpcStatus")
    if isinstance(value, int) and not isinstance(value, bool):
        for name, code in GRPC_STATUS_CODES.items():
            if code == value:
                return name
    elif isinstance(value, str):
        if value.upper() in GRPC_STATUS_CODES:
            return value.upper()
        if value.isdigit():
            return _grpc_name(vs, route, int(value))
    raise IstioError.for_object(
        vs, field, f"unknown gRPC status {value!r}; use a name such as 'UNAVAILABLE' or 0..16", KIND
    )


def _header_conditions(
    vs: Mapping[str, Any], position: int, headers: Mapping[str, HeaderMatch] | None
) -> dict[str, dict[str, str]]:
    if not headers:
        return {}
    if not isinstance(headers, Mapping):
        raise IstioError.for_object(
            vs, f"spec.http[{position}].match.headers", f"must be a map, got {headers!r}", KIND
        )
    out: dict[str, dict[str, str]] = {}
    for name, value in headers.items():
        field = f"spec.http[{position}].match.headers.{name}"
        if not isinstance(name, str) or not name:
            raise IstioError.for_object(vs, field, "header name cannot be empty", KIND)
        if isinstance(value, str):
            out[name.lower()] = {"exact": value}
            continue
        if (
            isinstance(value, Mapping)
            and len(value) == 1
            and next(iter(value)) in ("exact", "prefix", "regex")
            and isinstance(next(iter(value.values())), str)
        ):
            out[name.lower()] = dict(value)
            continue
        raise IstioError.for_object(
            vs,
            field,
            "must be a string (exact match) or one of {exact|prefix|regex: string}, "
            f"got {value!r}",
            KIND,
        )
    return out


def _label_conditions(
    vs: Mapping[str, Any], position: int, labels: Mapping[str, str] | None
) -> dict[str, str]:
    if not labels:
        return {}
    field = f"spec.http[{position}].match.sourceLabels"
    if not isinstance(labels, Mapping):
        raise IstioError.for_object(vs, field, f"must be a map of strings, got {labels!r}", KIND)
    for key, value in labels.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise IstioError.for_object(
                vs,
                f"{field}.{key}",
                f"labels must map strings to strings, got {key!r}: {value!r}",
                KIND,
            )
    return dict(labels)


# --- bookkeeping in the annotation -----------------------------------------------------------


def _new_book(vs: Mapping[str, Any]) -> dict[str, Any]:
    had = isinstance(KObject(vs).metadata.get("annotations"), Mapping)
    return {"annotations": had, "routes": {}, "inserted": []}


def _load_book(vs: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = KObject(vs).annotations.get(INJECTED_ANNOTATION)
    if raw is None:
        return None
    field = f"metadata.annotations[{INJECTED_ANNOTATION}]"
    try:
        book = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise IstioError.for_object(
            vs, field, f"is not the JSON this tool writes: {exc}", KIND
        ) from None
    if (
        not isinstance(book, dict)
        or not isinstance(book.get("routes"), dict)
        or not isinstance(book.get("inserted"), list)
    ):
        raise IstioError.for_object(vs, field, "is not the bookkeeping this tool writes", KIND)
    book.setdefault("annotations", True)
    return book


def _store_book(vs: dict[str, Any], book: Mapping[str, Any]) -> None:
    meta = vs.setdefault("metadata", {})
    notes = meta.get("annotations")
    if not isinstance(notes, dict):
        notes = meta["annotations"] = {}
    notes[INJECTED_ANNOTATION] = json.dumps(book, sort_keys=True, separators=(",", ":"))


def _drop_annotation(vs: dict[str, Any], book: Mapping[str, Any] | None) -> None:
    meta = vs.get("metadata")
    notes = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(notes, dict):
        return
    notes.pop(INJECTED_ANNOTATION, None)
    if not notes and book is not None and not book.get("annotations") and isinstance(meta, dict):
        del meta["annotations"]


def _find_touched(vs: Mapping[str, Any], own: list[int], index: int, name: Any) -> int | None:
    routes = http_routes(vs)
    if index < len(own) and (not name or routes[own[index]].get("name") == name):
        return own[index]
    if name:  # routes were reordered since; the name still says which one it was
        for position in own:
            if routes[position].get("name") == name:
                return position
    return None
