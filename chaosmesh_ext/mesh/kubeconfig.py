"""The kubeconfig the embedded mesh writes, so every Kubernetes client can reach its API.

One cluster named ``chaosmesh`` on 127.0.0.1 (HTTPS, its self-signed certificate pinned as
``certificate-authority-data``), a user holding the mesh's bearer token (random per mesh
start; the API refuses requests without it), a context of the same name with the mesh's
default namespace, selected as current. The file is created with mode 0600 (never readable
by others, not even for a moment): it is the mesh's credential.
"""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path
from typing import Any

import yaml

CLUSTER = "chaosmesh"


def render(
    api_url: str,
    namespace: str = "default",
    token: str | None = None,
    ca_pem: bytes | None = None,
) -> str:
    user: dict[str, Any] = {"token": token} if token else {}
    cluster: dict[str, Any] = {"server": api_url}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER, "cluster": cluster}],
        "users": [{"name": CLUSTER, "user": user}],
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


def write(
    path: Path,
    api_url: str,
    namespace: str = "default",
    token: str | None = None,
    ca_pem: bytes | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a left-over could have a wider mode; O_EXCL below makes a fresh one
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(render(api_url, namespace, token, ca_pem))
    os.replace(tmp, path)
    return path


def credentials(path: Path) -> tuple[str | None, bytes | None]:
    """(bearer token, CA certificate PEM) of the mesh's kubeconfig at ``path``; None for a
    part it does not hold (or when the file cannot be read)."""
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None, None
    token: str | None = None
    ca_pem: bytes | None = None
    for entry in config.get("users") or []:
        if isinstance(entry, dict) and entry.get("name") == CLUSTER:
            token = (entry.get("user") or {}).get("token") or None
    for entry in config.get("clusters") or []:
        if isinstance(entry, dict) and entry.get("name") == CLUSTER:
            data = (entry.get("cluster") or {}).get("certificate-authority-data")
            ca_pem = base64.b64decode(data) if data else None
    return (str(token) if token else None), ca_pem
