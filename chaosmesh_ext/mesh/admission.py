"""What the embedded mesh admits, as a validating webhook would: Istio's own validation plus
the fidelity rules (``istio.fidelity``), and the warnings it answers with.

``validate(obj)`` lists every reason to refuse (422): what Istio refuses, and fields the
embedded mesh does not support, so no experiment runs that would behave differently on a
cluster. ``warnings(obj)`` lists what an accepted object is told: istiod's validation
warnings and fields that have no effect on one machine. The API server, ``mesh up -f`` and
the running mesh's manifests endpoint all use these two. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosmesh_ext.istio.fidelity import embedded_causes, no_effect_warnings
from chaosmesh_ext.istio.validate import Cause
from chaosmesh_ext.istio.validate import validate as istio_validate
from chaosmesh_ext.istio.validate_warnings import validation_warnings

__all__ = ["validate", "warnings"]


def validate(obj: Mapping[str, Any]) -> list[Cause]:
    """Istio's causes for refusing ``obj``, then the fields the embedded mesh refuses."""
    causes = istio_validate(obj)
    if causes:
        return causes  # as the webhook: a malformed object gets Istio's words first
    return embedded_causes(obj)


def warnings(obj: Mapping[str, Any]) -> list[str]:
    """``field: message`` for each warning an accepted ``obj`` gets."""
    return [str(c) for c in (*validation_warnings(obj), *no_effect_warnings(obj))]
