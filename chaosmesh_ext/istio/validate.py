"""Validation of VirtualService, DestinationRule and Gateway as Istio's webhook does it.

``validate(obj)`` returns every problem as a :class:`Cause` (dotted field path and message,
in Istio's words where Istio has words for it); an empty list means Istio would accept the
object. The embedded API answers 422 with these causes, the edits re-validate their output
and ``lint`` reports them. It follows ``pkg/config/validation`` (istio 1.2x) and tries not to
reject anything Istio accepts; with ``strict=True`` fields the schema does not know are
reported too (what ``kubectl apply --validate=strict`` reports).
"""

from __future__ import annotations

from collections.abc import Mapping

from chaosmesh_ext.istio import schema
from chaosmesh_ext.istio._checks import (
    GATEWAY_PROTOCOLS,
    RETRY_ON_POLICIES,
    Cause,
    check_shape,
    gateway_ref_problem,
    host_problem,
    metadata_causes,
)
from chaosmesh_ext.istio.resources import GROUP, GRPC_STATUS_CODES, VERSIONS, is_istio_api_version
from chaosmesh_ext.istio.validate_destination_rule import (
    connection_pool_causes,
    destination_rule_causes,
    outlier_causes,
    traffic_policy_causes,
)
from chaosmesh_ext.istio.validate_gateway import gateway_causes
from chaosmesh_ext.istio.validate_virtual_service import (
    fault_causes,
    http_route_causes,
    retry_causes,
    virtual_service_causes,
)

__all__ = [
    "GATEWAY_PROTOCOLS",
    "GRPC_STATUS_CODES",
    "RETRY_ON_POLICIES",
    "Cause",
    "check_shape",
    "connection_pool_causes",
    "fault_causes",
    "gateway_ref_problem",
    "host_problem",
    "http_route_causes",
    "outlier_causes",
    "retry_causes",
    "traffic_policy_causes",
    "validate",
]


def validate(obj: object, strict: bool = False) -> list[Cause]:
    """Every reason Istio would reject ``obj`` (a VirtualService, DestinationRule or Gateway)."""
    if not isinstance(obj, Mapping):
        return [Cause("", f"must be an object, got {type(obj).__name__}")]
    causes: list[Cause] = []
    kind = obj.get("kind")
    if kind not in schema.SPECS:
        return [Cause("kind", f"must be one of {sorted(schema.SPECS)}, got {kind!r}")]
    if not is_istio_api_version(obj.get("apiVersion")):
        causes.append(
            Cause(
                "apiVersion",
                f"must be {GROUP}/<{'|'.join(VERSIONS)}>, got {obj.get('apiVersion')!r}",
            )
        )
    causes.extend(metadata_causes(obj.get("metadata"), dns_label=kind == "Gateway"))
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        causes.append(Cause("spec", "is required" if spec is None else "must be an object"))
        return causes
    unknown: list[Cause] = []
    causes.extend(check_shape(spec, schema.SPECS[kind], "spec", unknown))
    if strict:
        causes.extend(unknown)
    semantic = {
        "VirtualService": virtual_service_causes,
        "DestinationRule": destination_rule_causes,
        "Gateway": gateway_causes,
    }[kind]
    causes.extend(semantic(spec))
    return causes
