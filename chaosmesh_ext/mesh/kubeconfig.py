"""The kubeconfig the embedded mesh writes, so every Kubernetes client can reach its API.

One cluster named ``chaosmesh`` over plain HTTP on 127.0.0.1 (loopback only, no auth), a
context of the same name with the mesh's default namespace, selected as current.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

CLUSTER = "chaosmesh"


def render(api_url: str, namespace: str = "default") -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER, "cluster": {"server": api_url}}],
        "users": [{"name": CLUSTER, "user": {}}],
        "contexts": [
            {
                "name": CLUSTER,
                "context": {"cluster": CLUSTER, "user": CLUSTER, "namespace": namespace},
            }
        ],
        "current-context": CLUSTER,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write(path: Path, api_url: str, namespace: str = "default") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render(api_url, namespace))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
