"""chaostoolkit-mesh: Chaos Toolkit actions, probes and controls for Istio service meshes.

Experiments use the activity modules directly (``chaosmesh_ext.actions``,
``chaosmesh_ext.probes``, ``chaosmesh_ext.tolerances``, ``chaosmesh_ext.control``);
this root only offers ``discover()`` for ``chaos discover chaostoolkit-mesh``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("chaostoolkit-mesh")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__", "discover"]

# (module, activity type) pairs that `discover()` lists. Only names in each module's __all__
# are discovered (chaoslib's rule).
ACTIVITY_MODULES: list[tuple[str, str]] = [
    ("chaosmesh_ext.actions", "action"),
    ("chaosmesh_ext.probes", "probe"),
    ("chaosmesh_ext.prometheus", "probe"),
    ("chaosmesh_ext.tolerances", "tolerance"),
]


def discover(discover_system: bool = True) -> dict[str, Any]:
    """Describe every action, probe, tolerance and control of this extension."""
    from chaoslib.discovery.discover import discover_activities, initialize_discovery_result

    discovery = initialize_discovery_result("chaostoolkit-mesh", __version__, "mesh")
    for module_name, activity_type in ACTIVITY_MODULES:
        try:
            importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        discovery["activities"].extend(discover_activities(module_name, activity_type))
    discovery["activities"].extend(_controls())
    return discovery


def _controls() -> list[dict[str, Any]]:
    """The safety-net control, listed the way chaoslib lists activities."""
    try:
        importlib.import_module("chaosmesh_ext.control")
    except ModuleNotFoundError:
        return []
    from chaoslib.discovery.discover import discover_activities

    return discover_activities("chaosmesh_ext.control", "control")
