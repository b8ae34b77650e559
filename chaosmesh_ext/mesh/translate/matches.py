"""HTTPMatchRequest -> Envoy RouteMatch (istiod's TranslateRouteMatch).

``sourceLabels`` / ``sourceNamespace`` cannot be decided per proxy here (one Envoy plays every
sidecar), so they become matchers on the identity headers every workload sends (see
``chaosmesh_ext._sidecar``).
"""

from __future__ import annotations

from ..._sidecar import SOURCE_NAMESPACE_HEADER, label_header
from .model import JSON


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
    if not match.get("gateways"):
        # sourceMatchHTTP: with match.gateways set, sourceLabels and sourceNamespace are not
        # looked at at all.
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
    """istiod's IsCatchAllRoute: prefix "/" (or regex ``.*``) with no other condition."""
    match = route["match"]
    if match.get("headers") or match.get("query_parameters"):
        return False
    if match.get("prefix") == "/" or match.get("path_separated_prefix") == "/":
        return True
    return (match.get("safe_regex") or {}).get("regex") == ".*"


def source_applies(match: JSON | None, labels: dict[str, str], namespace: str | None) -> bool:
    """istiod's sourceMatchHTTP for one caller (its pod labels and namespace; a request
    without the mesh's identity headers is a caller with no labels and no namespace).
    ``match.gateways`` is decided by ``RouteContext.match_applies``."""
    if match is None or match.get("gateways"):
        return True
    wanted = match.get("sourceLabels") or {}
    if any(labels.get(k) != str(v) for k, v in wanted.items()):
        return False
    return not match.get("sourceNamespace") or match["sourceNamespace"] == namespace
