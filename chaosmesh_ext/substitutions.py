"""Which configuration values an experiment's ``${name}`` forms stood for in this run.

A journal keeps the experiment as written (``"ns": "${ns}"``, configuration values as
``{"type": "env", ...}``), so a report of it cannot say which namespace or URL the run used.
The safety-net control records the values it can see here in the journal's ``chaosmesh``
section; ``journal show/report`` show arguments with them.

Only configuration values, never secrets, and never a name that looks like a credential
(``*token*``, ``*password*``, ...): journals are shared. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["used_values"]

PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
_SECRET_LOOKING = re.compile(r"token|passw|secret|credential|auth|api_?key|private", re.I)


def _names(data: Any, found: set[str]) -> None:
    if isinstance(data, str):
        found.update(PATTERN.findall(data))
    elif isinstance(data, Mapping):
        for value in data.values():
            _names(value, found)
    elif isinstance(data, list | tuple):
        for value in data:
            _names(value, found)


def _json_value(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def used_values(
    experiment: Mapping[str, Any] | None, configuration: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``{name: value}`` for every ``${name}`` the experiment's activities use that the
    configuration holds (as resolved for the run)."""
    found: set[str] = set()
    for section in ("steady-state-hypothesis", "method", "rollbacks"):
        _names((experiment or {}).get(section), found)
    values = configuration or {}
    return {
        name: values[name]
        for name in sorted(found)
        if name in values and not _SECRET_LOOKING.search(name) and _json_value(values[name])
    }
