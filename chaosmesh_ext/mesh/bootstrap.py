"""Envoy bootstrap documents: the live one (file xDS) and a static one for offline validation.

The admin listener binds 127.0.0.1 port 0; Envoy writes the address it got to the file named
by ``--admin-address-path``. ``envoy --mode validate`` ignores file-based resources, so the
static variant inlines listeners (with their route configs) and clusters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .xds_files import XdsFiles, config_source

JSON = dict[str, Any]
NODE = {"id": "chaosmesh", "cluster": "chaosmesh"}


def _admin() -> JSON:
    return {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}


def stats_config() -> JSON:
    """Istio's tag for ``alt_stat_name`` ("<cluster>;"): Prometheus stats get ``cluster_name``."""
    return {
        # Envoy's own default tag would cut the name at the first dot ("outbound|80||canary").
        "use_all_default_tags": False,
        "stats_tags": [
            {
                "tag_name": "cluster_name",
                "regex": r"^cluster\.((.+?(\..+?\.svc\.cluster\.local)?);\.)",
            }
        ],
    }


def dynamic_bootstrap(files: XdsFiles) -> JSON:
    """The bootstrap of a running mesh Envoy: everything but admin comes from the xDS files."""
    return {
        "node": dict(NODE),
        "admin": _admin(),
        "stats_config": stats_config(),
        "dynamic_resources": {
            "lds_config": config_source(files.lds_path),
            "cds_config": config_source(files.cds_path),
        },
    }


def static_bootstrap(listeners: list[JSON], clusters: list[JSON], routes: list[JSON]) -> JSON:
    """The same configuration with every resource inline (for ``--mode validate``)."""
    by_name = {r["name"]: r for r in routes}
    static_listeners = []
    for listener in listeners:
        copy = json.loads(json.dumps(listener))
        for chain in copy.get("filter_chains") or []:
            for flt in chain.get("filters") or []:
                hcm = flt.get("typed_config") or {}
                rds = hcm.pop("rds", None)
                if rds is not None:
                    route = dict(
                        by_name.get(rds["route_config_name"]) or {"name": rds["route_config_name"]}
                    )
                    route.pop("@type", None)
                    hcm["route_config"] = route
        copy.pop("@type", None)
        static_listeners.append(copy)
    static_clusters = [{k: v for k, v in c.items() if k != "@type"} for c in clusters]
    return {
        "node": dict(NODE),
        "admin": _admin(),
        "static_resources": {"listeners": static_listeners, "clusters": static_clusters},
    }


def write_json(path: Path, doc: JSON) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=True))
    return path
