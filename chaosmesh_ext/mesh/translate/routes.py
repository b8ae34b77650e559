"""VirtualService ``http[]`` -> Envoy Routes (istiod's route.go: BuildHTTPRoutesForVirtualService).

One Envoy route per ``match`` entry (or one catch-all when there is none), in order; routes
after a catch-all are dropped because Envoy would never reach them. The field groups live in
their own modules: ``matches``, ``headers``, ``retries``, ``faults``, ``cors``, ``mirrors``.
"""

from __future__ import annotations

from typing import Any

from .context import RouteContext
from .cors import CORS_FILTER, cors_policy
from .faults import FAULT_FILTER, http_fault
from .headers import header_operations
from .matches import is_catch_all, route_match
from .mirrors import mirror_policies
from .model import JSON
from .names import TranslationError, duration, name_of, namespace_of
from .retries import retry_policy

__all__ = ["RouteContext", "default_route", "is_catch_all", "routes_for_virtual_service"]

NO_TIMEOUT = "0s"


def _operation(match: JSON, host_port: str) -> str:
    if "prefix" in match:
        return f"{host_port}{match['prefix']}*"
    if "path" in match:
        return f"{host_port}{match['path']}"
    if "safe_regex" in match:
        return f"{host_port}{match['safe_regex']['regex']}"
    return f"{host_port}/*"


def translate_http_route(
    vs: JSON, index: int, http: JSON, match: JSON | None, ctx: RouteContext
) -> JSON:
    """istiod's translateRoute for one (http route, match) pair."""
    ns = namespace_of(vs)
    where = f"VirtualService {ns}/{name_of(vs)}: spec.http[{index}]"
    name = str(http.get("name") or "")
    if match is not None and match.get("name"):
        name = f"{name}.{match['name']}"
    out: JSON = {"match": route_match(match)}
    if name:
        out["name"] = name
    edits, authority = header_operations(http.get("headers"))
    out.update(edits)
    operation_host = f"{name_of(vs)}:{ctx.listen_port}"
    if http.get("redirect"):
        redirect = http["redirect"]
        code = int(redirect.get("redirectCode") or 301)
        action: JSON = {"response_code": _REDIRECT_CODES.get(code, "MOVED_PERMANENTLY")}
        if redirect.get("uri"):
            action["path_redirect"] = str(redirect["uri"])
        if redirect.get("authority"):
            action["host_redirect"] = str(redirect["authority"])
        if redirect.get("scheme"):
            action["scheme_redirect"] = str(redirect["scheme"])
        out["redirect"] = action
    elif http.get("directResponse"):
        direct = http["directResponse"]
        response: JSON = {"status": int(direct.get("status") or 200)}
        body = direct.get("body") or {}
        if "string" in body:
            response["body"] = {"inline_string": str(body["string"])}
        out["direct_response"] = response
    else:
        out["route"], single = _route_action(vs, http, where, ctx, authority, out)
        if single:
            operation_host = single
    out["decorator"] = {"operation": _operation(out["match"], operation_host)}
    per_filter: JSON = {}
    if http.get("fault"):
        fault = http_fault(http["fault"], f"{where}.fault")
        if fault is not None:
            per_filter[FAULT_FILTER] = fault
    if http.get("corsPolicy"):
        per_filter[CORS_FILTER] = cors_policy(http["corsPolicy"])
    if per_filter:
        out["typed_per_filter_config"] = per_filter
    return out


_REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT",
}  # fmt: skip


def _route_action(
    vs: JSON, http: JSON, where: str, ctx: RouteContext, authority: str, route: JSON
) -> tuple[JSON, str]:
    """The RouteAction, and ``fqdn:port`` when it has a single destination (for the decorator)."""
    ns = namespace_of(vs)
    timeout = duration(http["timeout"], f"{where}.timeout") if http.get("timeout") else NO_TIMEOUT
    action: JSON = {}
    destinations = http.get("route") or []
    single = ""
    if len(destinations) == 1:
        name, fqdn, port = ctx.destination_cluster(destinations[0].get("destination") or {}, ns)
        action["cluster"] = name
        single = f"{fqdn}:{port}"
        _destination_headers(destinations[0], route, action)
    else:
        weighted = []
        for dest in destinations:
            if int(dest.get("weight") or 0) == 0:
                continue  # istiod drops zero weights when there are other destinations
            name, _, _ = ctx.destination_cluster(dest.get("destination") or {}, ns)
            weight: JSON = {"name": name, "weight": int(dest["weight"])}
            edits, dest_authority = header_operations(dest.get("headers"))
            weight.update(edits)
            if dest_authority:
                weight["host_rewrite_literal"] = dest_authority
            weighted.append(weight)
        action["weighted_clusters"] = {"clusters": weighted}
    action["timeout"] = timeout
    if authority:
        action["host_rewrite_literal"] = authority
    rewrite = http.get("rewrite") or {}
    if rewrite.get("uri"):
        action["prefix_rewrite"] = str(rewrite["uri"])
    if rewrite.get("authority"):
        action["host_rewrite_literal"] = str(rewrite["authority"])
    mirrors = mirror_policies(http, ns, ctx)
    if mirrors:
        action["request_mirror_policies"] = mirrors
    policy = retry_policy(http.get("retries"), f"{where}.retries")
    if policy is not None:
        action["retry_policy"] = policy
    # istiod caps gRPC's grpc-timeout header at the route timeout with the deprecated
    # max_grpc_timeout, on purpose: with max_stream_duration.grpc_timeout_header_max set,
    # Envoy 1.40 no longer enforces the route timeout on plain HTTP requests.
    action["max_grpc_timeout"] = timeout
    return action, single


def _destination_headers(dest: JSON, route: JSON, action: JSON) -> None:
    edits, authority = header_operations(dest.get("headers"))
    for key, values in edits.items():
        route[key] = list(route.get(key) or []) + list(values)
    if authority and "host_rewrite_literal" not in action:
        action["host_rewrite_literal"] = authority


def routes_for_virtual_service(vs: JSON, ctx: RouteContext) -> list[JSON]:
    """Every Envoy route of one VirtualService on one listener port, catch-all trimmed."""
    out: list[JSON] = []
    ns = namespace_of(vs)
    for index, http in enumerate((vs.get("spec") or {}).get("http") or []):
        matches: list[Any] = list(http.get("match") or []) or [None]
        catch_all = False
        for match in matches:
            try:
                if not ctx.match_applies(match, ns):
                    continue
                route = translate_http_route(vs, index, http, match, ctx)
            except TranslationError:
                raise
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                where = f"VirtualService {ns}/{name_of(vs)}: spec.http[{index}]"
                text = str(exc)
                raise TranslationError(
                    text
                    if text.startswith("VirtualService ")
                    else f"{where}: {type(exc).__name__}: {text}"
                ) from exc
            out.append(route)
            if match is None or is_catch_all(route):
                catch_all = True
                break
        if catch_all:
            break
    return out


def default_route(cluster: str, operation: str) -> JSON:
    """istiod's BuildDefaultHTTPOutboundRoute for a Service no VirtualService covers."""
    return {
        "name": "default",
        "match": {"prefix": "/"},
        "route": {
            "cluster": cluster,
            "timeout": NO_TIMEOUT,
            "retry_policy": retry_policy(None, ""),
            "max_grpc_timeout": NO_TIMEOUT,
        },
        "decorator": {"operation": operation},
    }
