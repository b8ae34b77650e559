"""Warnings for edits that are valid but almost certainly not what the user meant.

``chaosmesh lint`` says these about files; the actions say them at run time, about the object
they just wrote, so a journal shows why a fault "did nothing":

- retries on a route whose own fault aborts: the sidecar answers an injected abort before
  routing, so Envoy never retries it (inject the abort on the called service instead);
- a fault percentage below 1: Istio reads ``0.3`` as 0.3 % of requests, not 30 %.

Pure: takes the VirtualService after the edit, returns sentences.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosmesh_ext.istio.routes import RouteRef, http_routes, is_inserted, route_indexes

__all__ = ["percentage_warning", "retries_on_abort"]


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _where(vs: Mapping[str, Any]) -> str:
    meta = _map(vs.get("metadata"))
    return f"VirtualService {meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"


def retries_on_abort(vs: Mapping[str, Any], route: RouteRef = None) -> list[str]:
    """One sentence per route ``route`` names (and per route this tool inserted for a
    targeted fault) that both aborts and retries."""
    try:
        positions = set(route_indexes(vs, route))
    except ValueError:
        positions = set()
    routes = http_routes(vs)
    positions |= {i for i, r in enumerate(routes) if is_inserted(r)}
    found = []
    for i in sorted(positions):
        item = _map(routes[i])
        attempts = _map(item.get("retries")).get("attempts")
        aborts = _map(item.get("fault")).get("abort") is not None
        if aborts and isinstance(attempts, int) and attempts > 0:
            found.append(
                f"{_where(vs)}: spec.http[{i}] aborts and retries: the sidecar answers an "
                "injected abort before routing, so Envoy never retries it; to exercise these "
                "retries, inject the abort on the called service's VirtualService"
            )
    return found


def percentage_warning(percentage: Any) -> str | None:
    """The warning for a fault percentage in (0, 1), else None."""
    if isinstance(percentage, bool) or not isinstance(percentage, int | float):
        return None
    if 0 < percentage < 1:
        return (
            f"percentage {percentage:g} means {percentage:g} % of requests, not "
            f"{percentage * 100:g} %: Istio's percentage is out of 100 (write "
            f"{percentage * 100:g} for {percentage * 100:g} %)"
        )
    return None
