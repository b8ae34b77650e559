"""Envoy Listeners with their HTTP connection manager (istiod's outbound/gateway listeners).

Each listener routes through RDS by name; *how* route configs are delivered (files, inline)
is the Envoy adapter's business, so the ``rds`` block here carries only
``route_config_name`` and ``xds_files`` adds the config source.
"""

from __future__ import annotations

from ..._sidecar import SOURCE_NAMESPACE_HEADER, SOURCE_WORKLOAD_HEADER
from .access_log import METADATA_NAMESPACE, access_logs
from .memo import Memo
from .model import JSON, LISTENER_TYPE

HCM_FILTER = "envoy.filters.network.http_connection_manager"
HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
_HEADER_TO_METADATA_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config"
)


def _identity_to_metadata() -> JSON:
    """Copy the caller's identity headers into metadata for the access log.

    It runs first so that even a request the fault filter aborts is logged with its source.
    The headers stay for routing (sourceLabels, sourceNamespace match on them) and the route
    configuration's ``request_headers_to_remove`` takes them off before the upstream.
    """
    rules = [
        {
            "header": header,
            "on_header_present": {
                "metadata_namespace": METADATA_NAMESPACE,
                "key": key,
                "type": "STRING",
            },
            "remove": False,
        }
        for header, key in (
            (SOURCE_WORKLOAD_HEADER, "source_workload"),
            (SOURCE_NAMESPACE_HEADER, "source_namespace"),
        )
    ]
    return {
        "name": "envoy.filters.http.header_to_metadata",
        "typed_config": {"@type": _HEADER_TO_METADATA_TYPE, "request_rules": rules},
    }


def http_filters() -> list[JSON]:
    """istiod's outbound chain (fault, cors, router) behind the identity filter."""
    return [
        _identity_to_metadata(),
        {
            "name": "envoy.filters.http.fault",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
            },
        },
        {
            "name": "envoy.filters.http.cors",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
            },
        },
        {
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
            },
        },
    ]


def _hcm(name: str, route_config: str, stat_prefix: str, log_dir: str | None) -> JSON:
    hcm: JSON = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "rds": {"route_config_name": route_config},
        "http_filters": http_filters(),
        # Istio sidecars keep the client's Host and use the original path in logs.
        "use_remote_address": False,
        "normalize_path": True,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
    }
    logs = access_logs(log_dir, name)
    if logs:
        hcm["access_log"] = logs
    return {"name": HCM_FILTER, "typed_config": hcm}


def build_listener(
    name: str, port: int, route_config: str, stat_prefix: str, log_dir: str | None
) -> JSON:
    """A loopback HTTP listener whose routes come from the RouteConfiguration ``route_config``."""
    return {
        "@type": LISTENER_TYPE,
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [_hcm(name, route_config, stat_prefix, log_dir)]}],
    }


def reused_listener(
    name: str, port: int, route_config: str, stat_prefix: str, log_dir: str | None, memo: Memo
) -> JSON:
    """``build_listener``, the same object while its arguments are the same (a change of
    routes leaves every listener as it was)."""
    return memo.get(
        ("listener", name, port, route_config, stat_prefix, log_dir),
        None,
        lambda: build_listener(name, port, route_config, stat_prefix, log_dir),
    )


def build_tls_listener(
    name: str,
    port: int,
    chains: list[tuple[list[str], JSON, str, str]],
    log_dir: str | None,
) -> JSON:
    """A loopback HTTPS listener: per server (SNI names, TLS transport socket, route config,
    stat prefix) a filter chain chosen by SNI (istiod's gateway HTTPS filter chains)."""
    filter_chains = []
    for server_names, transport, route_config, stat_prefix in chains:
        chain: JSON = {
            "filters": [_hcm(name, route_config, stat_prefix, log_dir)],
            "transport_socket": transport,
        }
        if server_names:
            chain["filter_chain_match"] = {"server_names": server_names}
        filter_chains.append(chain)
    return {
        "@type": LISTENER_TYPE,
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "listener_filters": [
            {
                "name": "envoy.filters.listener.tls_inspector",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.listener"
                    ".tls_inspector.v3.TlsInspector"
                },
            }
        ],
        "filter_chains": filter_chains,
    }
