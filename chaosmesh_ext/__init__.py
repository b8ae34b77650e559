"""chaostoolkit-mesh: Chaos Toolkit actions, probes and controls for Istio service meshes.

Experiments use the activity modules directly (``chaosmesh_ext.actions``,
``chaosmesh_ext.probes``, ``chaosmesh_ext.tolerances``, ``chaosmesh_ext.control``);
this root only offers ``discover()`` for ``chaos discover chaostoolkit-mesh``.
"""

from __future__ import annotations

import importlib

# Lean on purpose: every process of the embedded mesh (each workload replica) imports this
# root first, so typing and importlib.metadata (~5 MB of RSS each) load only when asked for.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

    __version__: str


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chaostoolkit-mesh")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def __getattr__(name: str) -> str:
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    found = _version()
    globals()["__version__"] = found
    return found


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
    """Describe every action, probe, tolerance and control of this extension, each argument
    with chaoslib's type name (``string``, ``integer``, ``mapping`` ...)."""
    from chaoslib.discovery.discover import initialize_discovery_result

    from chaosmesh_ext._discovery import discover_activities

    discovery = initialize_discovery_result("chaostoolkit-mesh", _version(), "mesh")
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
    from chaosmesh_ext._discovery import discover_activities

    return discover_activities("chaosmesh_ext.control", "control")
