"""Point every Kubernetes client of this process at one kubeconfig, and put things back.

Not every activity in an experiment reads the configuration: chaostoolkit-kubernetes builds
its client from ``KUBECONFIG`` (else ``~/.kube/config``), ``KUBERNETES_CONTEXT``,
``KUBERNETES_HOST`` and friends in the environment, and the official client's
``load_kube_config()`` reads ``KUBECONFIG`` only once, when ``kubernetes.config`` is first
imported. So a run on the embedded mesh sets ``KUBECONFIG`` to the mesh's kubeconfig,
removes the settings that would point a client elsewhere, and moves the official client's
default file too — for the whole run — and ``restore()`` puts all of it back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes.config import kube_config

__all__ = ["OVERRIDES", "KubeEnvironment", "child_environment", "point_at"]

# chaosk8s' and this package's settings that would send a client to another server (or
# context) than the kubeconfig's current one.
OVERRIDES = (
    "KUBERNETES_CONTEXT",
    "KUBERNETES_HOST",
    "KUBERNETES_API_KEY",
    "KUBERNETES_API_KEY_PREFIX",
    "KUBERNETES_CERT_FILE",
    "KUBERNETES_KEY_FILE",
    "KUBERNETES_CA_CERT_FILE",
    "KUBERNETES_USERNAME",
    "KUBERNETES_PASSWORD",
    "CHAOSTOOLKIT_IN_POD",
)
_DEFAULT_LOCATION = "KUBE_CONFIG_DEFAULT_LOCATION"


@dataclass
class KubeEnvironment:
    """What ``point_at`` changed, to undo it."""

    environ: dict[str, str | None] = field(default_factory=dict)  # name -> previous value
    default_location: str | None = None

    def restore(self) -> None:
        """Put the environment and the official client's default back (idempotent)."""
        for name, value in self.environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.environ = {}
        if self.default_location is not None:
            setattr(kube_config, _DEFAULT_LOCATION, self.default_location)
            self.default_location = None


def child_environment(environ: Mapping[str, str], kubeconfig: str | Path) -> dict[str, str]:
    """``environ`` for a child process that must reach only ``kubeconfig``'s server."""
    env = {k: v for k, v in environ.items() if k not in OVERRIDES}
    env["KUBECONFIG"] = str(kubeconfig)
    return env


def point_at(kubeconfig: str | Path) -> KubeEnvironment:
    """Make ``kubeconfig`` the only Kubernetes configuration this process finds."""
    env = os.environ
    saved = KubeEnvironment()
    for name in ("KUBECONFIG", *OVERRIDES):
        saved.environ[name] = env.get(name)
    for name in OVERRIDES:
        env.pop(name, None)
    env["KUBECONFIG"] = str(kubeconfig)
    saved.default_location = str(getattr(kube_config, _DEFAULT_LOCATION))
    setattr(kube_config, _DEFAULT_LOCATION, str(kubeconfig))
    return saved
