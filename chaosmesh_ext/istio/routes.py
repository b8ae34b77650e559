"""Finding the HTTP routes of a VirtualService an edit targets, and re-checking the result.

Route numbers count the user's own routes only: routes this tool inserted in front of a
route to fault part of its traffic (named ``chaosmesh-fault-…``) are skipped, so ``route=0``
keeps meaning the same route while a targeted fault is active.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from chaosmesh_ext.istio import schema
from chaosmesh_ext.istio.errors import IstioError
from chaosmesh_ext.istio.resources import FAULT_ROUTE_PREFIX
from chaosmesh_ext.istio.validate import check_shape, validate

RouteRef = int | str | None


def is_inserted(route: Any) -> bool:
    """Whether ``route`` is one this tool inserted (``chaosmesh-fault-…``)."""
    return isinstance(route, Mapping) and str(route.get("name") or "").startswith(
        FAULT_ROUTE_PREFIX
    )


def http_routes(vs: Mapping[str, Any]) -> list[Any]:
    spec = vs.get("spec")
    routes = spec.get("http") if isinstance(spec, Mapping) else None
    return routes if isinstance(routes, list) else []


def own_positions(vs: Mapping[str, Any]) -> list[int]:
    """Positions in ``spec.http`` of the user's own routes (inserted ones skipped)."""
    return [i for i, r in enumerate(http_routes(vs)) if not is_inserted(r)]


def route_indexes(vs: Mapping[str, Any], route: RouteRef) -> list[int]:
    """Positions in ``spec.http`` of the routes ``route`` names.

    ``route`` is a route's ``name``, its number among the user's own routes (an int, or a
    string of digits when no route has that name), or ``None`` for every own route.
    Raises :class:`IstioError` naming ``spec.http`` when nothing matches.
    """
    own = own_positions(vs)
    routes = http_routes(vs)
    if not own:
        raise IstioError.for_object(vs, "spec.http", "has no HTTP routes", "VirtualService")
    if route is None:
        return own
    if isinstance(route, bool) or not isinstance(route, int | str):
        raise IstioError.for_object(
            vs, "spec.http", f"route must be a route name or index, got {route!r}", "VirtualService"
        )
    if isinstance(route, str):
        named = [
            p for p in own if isinstance(routes[p], Mapping) and routes[p].get("name") == route
        ]
        if named:
            return named
        if not route.isdigit():
            names = [routes[p].get("name") for p in own if isinstance(routes[p], Mapping)]
            known = ", ".join(repr(n) for n in names if n) or "none of the routes has a name"
            raise IstioError.for_object(
                vs,
                "spec.http",
                f"no HTTP route named {route!r} (named routes: {known})",
                "VirtualService",
            )
        route = int(route)
    if not 0 <= route < len(own):
        raise IstioError.for_object(
            vs,
            f"spec.http[{route}]",
            f"route index {route} out of range: the VirtualService has {len(own)} HTTP "
            f"route(s) (0..{len(own) - 1})",
            "VirtualService",
        )
    return [own[route]]


def own_index(vs: Mapping[str, Any], position: int) -> int:
    """The number among the user's own routes of the route at ``position``."""
    return own_positions(vs).index(position)


def route_label(route: Mapping[str, Any], index: int) -> str:
    """What a route is called in names and messages: its name, else its number."""
    name = route.get("name")
    return str(name) if name else str(index)


def check_result(kind: str, before: Mapping[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Raise :class:`IstioError` if the edit made ``after`` invalid; return it otherwise.

    Problems the input already had are not the edit's fault and are not reported.
    """
    old = {(c.field, c.message) for c in validate(before)}
    for cause in validate(after):
        if (cause.field, cause.message) not in old:
            raise IstioError.for_object(after, cause.field, cause.message, kind)
    return after


def copied(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A deep copy of ``obj`` after checking it is a ``kind`` with a spec."""
    if not isinstance(obj, Mapping):
        raise IstioError(kind, "", "", f"expected a {kind} object, got {type(obj).__name__}")
    if obj.get("kind") not in (None, kind):
        raise IstioError.for_object(obj, "kind", f"expected {kind}, got {obj.get('kind')!r}", kind)
    if not isinstance(obj.get("spec"), Mapping):
        raise IstioError.for_object(obj, "spec", "is required", kind)
    if not isinstance(obj.get("metadata", {}), Mapping):
        raise IstioError.for_object(obj, "metadata", "must be an object", kind)
    # Edits walk the spec; a value of the wrong type is refused up front, by name.
    for cause in check_shape(obj["spec"], schema.SPECS[kind], "spec", []):
        raise IstioError.for_object(obj, cause.field, cause.message, kind)
    for i, item in enumerate(obj["spec"].get("http") or obj["spec"].get("subsets") or []):
        if not isinstance(item, Mapping):
            group = "http" if kind == "VirtualService" else "subsets"
            raise IstioError.for_object(obj, f"spec.{group}[{i}]", "must be an object", kind)
    return copy.deepcopy(dict(obj))
