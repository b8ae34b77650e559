"""VirtualService ``corsPolicy`` -> the per-route config of Envoy's CORS filter."""

from __future__ import annotations

from .matches import string_match
from .model import JSON
from .names import parse_duration

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
