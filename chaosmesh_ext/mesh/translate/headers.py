"""VirtualService ``headers`` (request/response set, add, remove) -> Envoy header edits."""

from __future__ import annotations

from .model import JSON


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
