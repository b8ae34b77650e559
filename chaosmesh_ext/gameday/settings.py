"""Which settings a plan's experiments would read as empty, found before anything runs.

An experiment reads its settings through ``configuration``: ``{"type": "env", "key": K,
"default": D}`` takes environment variable K (D when it is unset), and ``chaos run --var
name=value`` (a plan's ``variables``) replaces the entry ``name`` whatever it says. An entry
that ends up empty — ``MESH_GATEWAY_URL`` for the canary on a cluster, ``PROMETHEUS_URL``
for Istio's metrics — only fails the run half-way, in the middle of the night. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def empty_settings(
    experiments: Mapping[Path, dict[str, Any]],
    variables: Mapping[str, str],
    environ: Mapping[str, str],
) -> list[str]:
    """One sentence per configuration entry that would be empty with ``variables`` (``--var``)
    and the environment ``environ``."""
    problems: list[str] = []
    for path, experiment in experiments.items():
        configuration = experiment.get("configuration")
        if not isinstance(configuration, dict):
            continue
        for name, entry in configuration.items():
            if name in variables or not isinstance(entry, dict) or entry.get("type") != "env":
                continue
            key = str(entry.get("key"))
            value = environ.get(key, entry.get("default"))
            if value is None or str(value) == "":
                problems.append(
                    f"{path.name}: configuration {name!r} reads environment variable {key}, "
                    f"which would be empty: set {key} under 'env' (or 'kubernetes.env'), or "
                    f"{name} under 'variables'"
                )
    return problems
