"""How a setting's text becomes a value, the same way in every layer.

Settings arrive as configuration values, secrets or environment variables: text more often
than not (``"false"``, ``"0"``, ``"off"``). One parser decides what they mean, so
``KUBERNETES_VERIFY_SSL``, ``prometheus_verify_ssl``, ``mesh_prometheus`` and
``CHAOSMESH_KEEP_MESH`` all read ``"no"`` the same way.
"""

from __future__ import annotations

from typing import Any

__all__ = ["parse_bool"]

_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "n"})


def parse_bool(value: Any, *, default: bool) -> bool:
    """``value`` as a switch: ``true/yes/on/1/y`` and ``false/no/off/0/n`` (any case, spaces
    aside), a bool or a number as Python reads it; ``default`` when it is unset (``None`` or
    empty) or a word that is neither — so an opt-in stays off and a safety check stays on."""
    if value is None or isinstance(value, bool):
        return default if value is None else value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return default
