"""VirtualService ``http[]`` -> Envoy Routes (istiod's route.go: BuildHTTPRoutesForVirtualService).

One Envoy route per ``match`` entry (or one catch-all when there is none), in order; routes
after a catch-all are dropped because Envoy would never reach them. ``sourceLabels`` cannot be
decided per proxy here (one Envoy plays every sidecar), so they become matchers on the
identity headers every workload sends (see ``chaosmesh_ext._sidecar``).
"""

from __future__ import annotations

from typing import Any

from ..._sidecar import SOURCE_NAMESPACE_HEADER, label_header
from .faults import FAULT_FILTER, http_fault
from .model import JSON
from .names import (
    TranslationError,
    cluster_name,
    duration,
    name_of,
    namespace_of,
    parse_duration,
    resolve_host,
)
from .retries import retry_policy

NO_TIMEOUT = "0s"


class RouteContext:
    """What a route needs besides the VirtualService: the listener port and the Service ports."""

    def __init__(
        self,
        listen_port: int,
        service_ports: dict[str, list[int]],
        domain: str,
        gateway_names: frozenset[str] = frozenset({"mesh"}),
    ):
        self.listen_port = listen_port
        self.service_ports = service_ports  # fqdn -> its ports
        self.domain = domain
        # "mesh" for sidecars; "<ns>/<name>" of each Gateway served on this listener.
        self.gateway_names = gateway_names

    def match_applies(self, match: JSON | None, vs_namespace: str) -> bool:
        """istiod drops a match bound to another port or to other gateways (sourceMatchHTTP)."""
        if match is None:
            return True
        if match.get("port") and int(match["port"]) != self.listen_port:
            return False
        gateways = match.get("gateways") or []
        if gateways:
            wanted = {g if g == "mesh" or "/" in g else f"{vs_namespace}/{g}" for g in gateways}
            return bool(wanted & self.gateway_names)
        return True

    def destination_cluster(self, destination: JSON, namespace: str) -> tuple[str, str, int]:
        """istiod's GetDestinationCluster: (cluster, fqdn, port) for a route destination."""
        fqdn = resolve_host(str(destination.get("host") or ""), namespace, self.domain)
        port = int((destination.get("port") or {}).get("number") or 0)
        if not port:
            ports = self.service_ports.get(fqdn) or []
            # A single-port Service needs no port; otherwise the listener's port is meant.
            port = ports[0] if len(ports) == 1 else self.listen_port
        return cluster_name(port, str(destination.get("subset") or ""), fqdn), fqdn, port


def string_match(match: JSON | None) -> JSON | None:
    """Istio StringMatch -> Envoy StringMatcher; None means "present" (istiod's rule)."""
    if not match:
        return None
    if "exact" in match:
        return {"exact": str(match["exact"])}
    if "prefix" in match:
        return {"prefix": str(match["prefix"])}
    if "regex" in match:
        if match["regex"] == "*":  # not RE2: istiod reads it as "header present"
            return None
        return {"safe_regex": {"regex": str(match["regex"])}}
    return None


def header_matcher(name: str, match: JSON | None, invert: bool = False) -> JSON:
    matcher: JSON = {"name": name}
    converted = string_match(match)
    if converted is None:
        matcher["present_match"] = True
    else:
        matcher["string_match"] = converted
    if invert:
        matcher["invert_match"] = True
        if converted is not None:
            matcher["treat_missing_header_as_empty"] = True
    return matcher


def route_match(match: JSON | None) -> JSON:
    """istiod's TranslateRouteMatch plus sourceLabels as identity-header matchers."""
    out: JSON = {"prefix": "/"}
    if match is None:
        return out
    headers = [header_matcher(k.lower(), v) for k, v in (match.get("headers") or {}).items()]
    headers += [
        header_matcher(k.lower(), v, invert=True)
        for k, v in (match.get("withoutHeaders") or {}).items()
    ]
    headers += [
        header_matcher(label_header(k), {"exact": str(v)})
        for k, v in (match.get("sourceLabels") or {}).items()
    ]
    if match.get("sourceNamespace"):
        headers.append(
            header_matcher(SOURCE_NAMESPACE_HEADER, {"exact": str(match["sourceNamespace"])})
        )
    headers.sort(key=lambda h: h["name"])
    uri = match.get("uri")
    if uri:
        out.pop("prefix")
        if "exact" in uri:
            out["path"] = str(uri["exact"])
        elif "prefix" in uri:
            out["prefix"] = str(uri["prefix"])
        elif "regex" in uri:
            out["safe_regex"] = {"regex": str(uri["regex"])}
        else:
            out["prefix"] = "/"
    out["case_sensitive"] = not bool(match.get("ignoreUriCase"))
    for pseudo, key in ((":method", "method"), (":authority", "authority"), (":scheme", "scheme")):
        if match.get(key):
            headers.append(header_matcher(pseudo, match[key]))
    if headers:
        out["headers"] = headers
    params = []
    for name, value in (match.get("queryParams") or {}).items():
        converted = string_match(value)
        param: JSON = {"name": name}
        if converted is None:
            param["present_match"] = True
        else:
            param["string_match"] = converted
        params.append(param)
    if params:
        out["query_parameters"] = params
    return out


def is_catch_all(route: JSON) -> bool:
    """istiod's IsCatchAllRoute: prefix "/" (or regex ``*``/``.*``) with no other condition."""
    match = route["match"]
    if match.get("headers") or match.get("query_parameters"):
        return False
    if match.get("prefix") == "/":
        return True
    return (match.get("safe_regex") or {}).get("regex") in ("*", ".*")


def _operation(match: JSON, host_port: str) -> str:
    if "prefix" in match:
        return f"{host_port}{match['prefix']}*"
    if "path" in match:
        return f"{host_port}{match['path']}"
    if "safe_regex" in match:
        return f"{host_port}{match['safe_regex']['regex']}"
    return f"{host_port}/*"


def header_operations(headers: JSON | None) -> tuple[JSON, str]:
    """Istio ``headers`` -> route-level header edits, and an authority rewrite if any."""
    out: JSON = {}
    authority = ""
    for direction, add_key, remove_key in (
        ("request", "request_headers_to_add", "request_headers_to_remove"),
        ("response", "response_headers_to_add", "response_headers_to_remove"),
    ):
        block = (headers or {}).get(direction) or {}
        adds: list[JSON] = []
        for op, action in (
            ("set", "OVERWRITE_IF_EXISTS_OR_ADD"),
            ("add", "APPEND_IF_EXISTS_OR_ADD"),
        ):
            items = []
            for key, value in (block.get(op) or {}).items():
                if key.lower() in (":authority", "host"):
                    if direction == "request" and (op == "set" or not authority):
                        authority = str(value)
                    continue
                if key.startswith(":"):
                    continue
                items.append({"header": {"key": key, "value": str(value)}, "append_action": action})
            adds += sorted(items, key=lambda h: h["header"]["key"])
        if adds:
            out[add_key] = adds
        removes = [
            k for k in block.get("remove") or [] if not k.startswith(":") and k.lower() != "host"
        ]
        if removes:
            out[remove_key] = removes
    return out, authority


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


CORS_FILTER = "envoy.filters.http.cors"
CORS_TYPE = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"


def cors_policy(cors: JSON) -> JSON:
    """istiod's TranslateCORSPolicy (the filter is always on; preflights not matched pass)."""
    out: JSON = {
        "@type": CORS_TYPE,
        "forward_not_matching_preflights": cors.get("unmatchedPreflights") != "IGNORE",
        "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
    }
    origins = [string_match(o) for o in cors.get("allowOrigins") or []]
    if cors.get("allowOrigin") and not origins:  # deprecated list of exact strings
        origins = [{"exact": str(o)} for o in cors["allowOrigin"]]
    if origins:
        out["allow_origin_string_match"] = [o for o in origins if o is not None]
    for key, field in (
        ("allowMethods", "allow_methods"),
        ("allowHeaders", "allow_headers"),
        ("exposeHeaders", "expose_headers"),
    ):
        if cors.get(key):
            out[field] = ",".join(str(x) for x in cors[key])
    if cors.get("maxAge"):
        out["max_age"] = str(int(parse_duration(cors["maxAge"], "corsPolicy.maxAge")))
    if cors.get("allowCredentials") is not None:
        out["allow_credentials"] = bool(cors["allowCredentials"])
    return out


def _mirror_fraction(percentage: Any) -> JSON | None:
    """istiod's MirrorPercent: absent -> 100 %, explicit 0 -> no mirroring."""
    if percentage is None:
        return {"numerator": 100, "denominator": "HUNDRED"}
    value = float((percentage or {}).get("value") or 0)
    if value <= 0:
        return None
    return {"numerator": int(value * 10000), "denominator": "MILLION"}


def mirror_policies(http: JSON, namespace: str, ctx: RouteContext) -> list[JSON]:
    """``mirror`` + ``mirrorPercentage`` and ``mirrors[]`` -> request_mirror_policies."""
    pairs = []
    if http.get("mirror"):
        pairs.append((http["mirror"], http.get("mirrorPercentage")))
    for mirror in http.get("mirrors") or []:
        if mirror.get("destination"):
            pairs.append((mirror["destination"], mirror.get("percentage")))
    out = []
    for destination, percentage in pairs:
        fraction = _mirror_fraction(percentage)
        if fraction is None:
            continue
        cluster, _, _ = ctx.destination_cluster(destination, namespace)
        out.append({"cluster": cluster, "runtime_fraction": {"default_value": fraction}})
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
    # Envoy 1.40 stops enforcing the route timeout on plain HTTP requests (measured).
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
