"""VirtualService ``http[]`` -> Envoy Routes (istiod's route.go: BuildHTTPRoutesForVirtualService).

One Envoy route per ``match`` entry (or one catch-all when there is none), in order; routes
after a catch-all are dropped because Envoy would never reach them. The field groups live in
their own modules: ``matches``, ``headers``, ``retries``, ``faults``, ``cors``, ``mirrors``,
``hashing``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .clusters import destination_rule_for
from .context import RouteContext
from .cors import CORS_FILTER, cors_policy
from .facts import vs_facts
from .faults import FAULT_FILTER, http_fault
from .hashing import destination_hash, hash_policy, service_hash
from .headers import header_operations
from .matches import is_catch_all, route_match
from .memo import Memo
from .mirrors import mirror_policies
from .model import JSON
from .names import TranslationError, duration, name_of, namespace_of, resolve_host
from .retries import retry_policy

__all__ = [
    "RouteContext",
    "default_route",
    "is_catch_all",
    "routes_for_virtual_service",
    "service_hash_policy",
    "sort_vhost_routes",
    "virtual_service_routes",
]

NO_TIMEOUT = "0s"

_REDIRECT_CODES = {
    0: "MOVED_PERMANENTLY", 301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT",
}  # fmt: skip


def _operation(match: JSON, host_port: str) -> str:
    if "prefix" in match:
        return f"{host_port}{match['prefix']}*"
    if "path" in match:
        return f"{host_port}{match['path']}"
    if "safe_regex" in match:
        return f"{host_port}{match['safe_regex']['regex']}"
    return f"{host_port}/*"


def redirect_action(redirect: JSON, ctx: RouteContext) -> JSON | None:
    """istiod's ApplyRedirect; None for a redirect code Envoy has no name for (istiod leaves
    the route without an action, which Envoy refuses; the fidelity rules refuse it first)."""
    action: JSON = {}
    if redirect.get("authority"):
        action["host_redirect"] = str(redirect["authority"])
    if redirect.get("prefixRewrite"):
        action["prefix_rewrite"] = str(redirect["prefixRewrite"])
    elif redirect.get("uri"):
        action["path_redirect"] = str(redirect["uri"])
    if redirect.get("scheme"):
        action["scheme_redirect"] = str(redirect["scheme"])
    if redirect.get("port") is not None or redirect.get("derivePort") is not None:
        port = 0
        if redirect.get("port") is not None:
            port = int(redirect["port"])
        elif redirect.get("derivePort") == "FROM_REQUEST_PORT":
            # Envoy cannot read the request's port; istiod builds routes per listener port.
            port = ctx.listen_port
        # FROM_PROTOCOL_DEFAULT: no port, Envoy's default for the scheme.
        scheme = str(redirect.get("scheme") or ("https" if ctx.is_tls else "http"))
        if (port, scheme) in ((80, "http"), (443, "https")):
            port = 0  # no explicit :80 / :443
        if port:
            action["port_redirect"] = port
    code = int(redirect.get("redirectCode") or 0)
    if code not in _REDIRECT_CODES:
        return None
    action["response_code"] = _REDIRECT_CODES[code]
    return action


def direct_response_action(direct: JSON) -> JSON:
    """istiod's ApplyDirectResponse (``body.bytes`` is base64 in both APIs' JSON)."""
    response: JSON = {"status": int(direct.get("status") or 0)}
    body = direct.get("body") or {}
    if "string" in body:
        response["body"] = {"inline_string": str(body["string"])}
    elif "bytes" in body:
        response["body"] = {"inline_bytes": str(body["bytes"])}
    return response


def translate_http_route(
    vs: JSON, index: int, http: JSON, match: JSON | None, ctx: RouteContext
) -> JSON:
    """istiod's TranslateRoute for one (http route, match) pair."""
    ns = namespace_of(vs)
    where = f"VirtualService {ns}/{name_of(vs)}: spec.http[{index}]"
    name = str(http.get("name") or "")
    if match is not None and match.get("name"):
        name = f"{name}.{match['name']}"
    out: JSON = {"match": route_match(match)}
    if name:
        out["name"] = name
    if match is not None and match.get("statPrefix"):
        out["stat_prefix"] = str(match["statPrefix"])
    edits, authority = header_operations(http.get("headers"))
    out.update(edits)
    operation_host = f"{name_of(vs)}:{ctx.listen_port}"
    if http.get("redirect"):
        action = redirect_action(http["redirect"], ctx)
        if action is None:
            raise TranslationError(
                f"{where}.redirect.redirectCode: Envoy has no redirect code "
                f"{http['redirect'].get('redirectCode')} (301, 302, 303, 307 or 308)"
            )
        out["redirect"] = action
    elif http.get("directResponse"):
        out["direct_response"] = direct_response_action(http["directResponse"])
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


def _hash_of(dest: JSON, namespace: str, ctx: RouteContext) -> JSON | None:
    destination = dest.get("destination") or {}
    fqdn = resolve_host(str(destination.get("host") or ""), namespace, ctx.domain)
    port = (destination.get("port") or {}).get("number")
    return destination_hash(
        fqdn, int(port) if port else None, str(destination.get("subset") or ""), ctx.rules
    )


def _route_action(
    vs: JSON, http: JSON, where: str, ctx: RouteContext, authority: str, route: JSON
) -> tuple[JSON, str]:
    """The RouteAction, and ``fqdn:port`` when it has a single destination (for the decorator)."""
    ns = namespace_of(vs)
    timeout = duration(http["timeout"], f"{where}.timeout") if http.get("timeout") else NO_TIMEOUT
    action: JSON = {}
    destinations = http.get("route") or []
    single = ""
    hash_policies: list[JSON] = []
    consistent_hash = False
    if len(destinations) == 1:
        name, fqdn, port = ctx.destination_cluster(destinations[0].get("destination") or {}, ns)
        action["cluster"] = name
        single = f"{fqdn}:{port}"
        _destination_headers(destinations[0], route, action)
        hashing = _hash_of(destinations[0], ns, ctx)
        consistent_hash = hashing is not None
        policy = hash_policy(hashing)
        if policy is not None:
            hash_policies.append(policy)
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
            policy = hash_policy(_hash_of(dest, ns, ctx))
            if policy is not None:
                hash_policies.append(policy)
        action["weighted_clusters"] = {"clusters": weighted}
    action["timeout"] = timeout
    rewrite = http.get("rewrite") or {}
    regex_rewrite = rewrite.get("uriRegexRewrite")
    if regex_rewrite:
        action["regex_rewrite"] = {
            "pattern": {"regex": str(regex_rewrite.get("match") or "")},
            "substitution": str(regex_rewrite.get("rewrite") or ""),
        }
    elif rewrite.get("uri"):
        action["prefix_rewrite"] = str(rewrite["uri"])
    if rewrite.get("authority"):
        authority = str(rewrite["authority"])
    if authority:
        action["host_rewrite_literal"] = authority
    mirrors = mirror_policies(http, ns, ctx)
    if mirrors:
        action["request_mirror_policies"] = mirrors
    if hash_policies:
        action["hash_policy"] = hash_policies
    policy = retry_policy(http.get("retries"), f"{where}.retries", consistent_hash)
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


RoutesKey = tuple[Hashable, tuple[Any, ...]]  # (key, the objects whose id() it holds)


def routes_key(vs: JSON, ctx: RouteContext, memo: Memo) -> RoutesKey | None:
    """Everything ``routes_for_virtual_service(vs, ctx)`` reads, as a memo key and its pins
    (None: not reusable): the VirtualService, the listener, and for each destination host
    its Service ports and DestinationRule."""
    hosts = vs_facts(vs, ctx.domain, memo).destination_hosts
    if hosts is None:
        return None
    rules = tuple(destination_rule_for(h, ctx.rules) for h in hosts)
    ports = tuple(tuple(ctx.service_ports.get(h) or ()) for h in hosts)
    key = (
        "routes", id(vs), ctx.listen_port, ctx.gateway_names, ctx.is_tls, ctx.domain,
        ports, tuple(map(id, rules)),
    )  # fmt: skip
    return key, (vs, rules)


def virtual_service_routes(vs: JSON, ctx: RouteContext, memo: Memo) -> list[JSON]:
    """``routes_for_virtual_service``, reused while nothing it reads changed."""
    found = routes_key(vs, ctx, memo)
    if found is None:
        return routes_for_virtual_service(vs, ctx)
    key, pins = found
    return memo.get(key, pins, lambda: routes_for_virtual_service(vs, ctx))


def sort_vhost_routes(routes: list[JSON]) -> list[JSON]:
    """istiod's SortVHostRoutes: catch-all routes moved to the end, the rest kept in order."""
    return [r for r in routes if not is_catch_all(r)] + [r for r in routes if is_catch_all(r)]


def service_hash_policy(fqdn: str, port: int, rules: dict[str, JSON]) -> JSON | None:
    """The hash policy of a Service's default route (istiod's hashForService)."""
    return hash_policy(service_hash(fqdn, port, rules))


def default_route(cluster: str, operation: str) -> JSON:
    """istiod's BuildDefaultHTTPOutboundRoute for a Service no VirtualService covers (its retry
    policy keeps the previous-hosts predicate even with a consistent hash)."""
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
