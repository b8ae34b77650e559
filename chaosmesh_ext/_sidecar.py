"""The client half of the embedded mesh's sidecar, shared by every workload that calls out.

On a cluster, iptables sends a pod's outbound traffic to its Envoy sidecar. On the embedded
mesh the workloads (the proxy, the fortio-compatible load server, user commands) are plain
local processes, so the mesh tells them where its outbound listeners are and who they are:

- ``CHAOSMESH_OUTBOUND``: JSON ``{"<service port>": "127.0.0.1:<listener port>"}``. A request
  to ``http://tomcat-svc:8080/`` connects to the listener for port 8080 and keeps
  ``Host: tomcat-svc:8080``, exactly what a sidecar's outbound listener sees.
- ``CHAOSMESH_OUTBOUND_FILE``: a JSON file of the same shape that the mesh rewrites (by
  atomic rename) whenever Envoy starts serving a new listener, so a workload started before
  a Service existed still reaches it — as a pod's sidecar learns new services from istiod.
  The file wins over the variable. The mesh writes it before it starts any workload and
  removes it when it stops, so it never holds another mesh's ports.
- ``CHAOSMESH_SOURCE``: JSON ``{"workload": ..., "namespace": ..., "labels": {...}}``. Sent
  as headers so the translator can honour ``match.sourceLabels`` and the access log can name
  the source workload (Istio's ``source_workload``).

This module is pure apart from reading the environment; it knows nothing of Envoy or Istio.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

OUTBOUND_ENV = "CHAOSMESH_OUTBOUND"
OUTBOUND_FILE_ENV = "CHAOSMESH_OUTBOUND_FILE"
SOURCE_ENV = "CHAOSMESH_SOURCE"

SOURCE_WORKLOAD_HEADER = "x-chaosmesh-source-workload"
SOURCE_NAMESPACE_HEADER = "x-chaosmesh-source-namespace"
# One header per pod label: x-chaosmesh-src-label-<key>: <value>. Header names are
# case-insensitive and label keys may hold '/', '.', so keys are normalised by label_header().
SOURCE_LABEL_HEADER_PREFIX = "x-chaosmesh-src-label-"

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def label_header(key: str) -> str:
    """Header that carries the source pod's label ``key`` (lower-cased, '/' and '.' -> '-')."""
    return SOURCE_LABEL_HEADER_PREFIX + key.lower().replace("/", "-").replace(".", "-")


@dataclass(frozen=True)
class Sidecar:
    """Where a workload's outbound calls go, and the identity headers they carry."""

    outbound: Mapping[int, tuple[str, int]] = field(default_factory=dict)
    workload: str | None = None
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    outbound_file: str | None = None
    # (version, table) of the last read of outbound_file; a stat per connection is cheap.
    _loaded: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def _table(self) -> Mapping[int, tuple[str, int]]:
        if not self.outbound_file:
            return self.outbound
        try:
            stat = os.stat(self.outbound_file)
        except OSError:
            return self.outbound
        # Every rewrite is a rename (a new inode): the inode tells a new file even when a
        # coarse clock gives it the same mtime as the one it replaced.
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._loaded.get("version") != version:
            try:
                with open(self.outbound_file, encoding="utf-8") as handle:
                    table = {**self.outbound, **parse_outbound(json.load(handle))}
            except (OSError, ValueError):
                return self._loaded.get("table", self.outbound)
            self._loaded.update(version=version, table=table)
        loaded: Mapping[int, tuple[str, int]] = self._loaded["table"]
        return loaded

    def connect_address(self, host: str, port: int) -> tuple[str, int]:
        """The address to open a TCP connection to for ``host:port``.

        Loopback targets are reached directly; any other host goes through the mesh's
        outbound listener for that port (the Host header stays the service name). A port
        the mesh has no listener for is reached directly, as a pod would reach an address
        outside the mesh.
        """
        if host in _LOCAL_HOSTS:
            return host, port
        table = self._table()
        return table.get(port, (host, port))

    def identity_headers(self) -> dict[str, str]:
        """Headers naming this workload; empty outside the embedded mesh."""
        if not self.workload:
            return {}
        headers = {SOURCE_WORKLOAD_HEADER: self.workload}
        if self.namespace:
            headers[SOURCE_NAMESPACE_HEADER] = self.namespace
        for key, value in self.labels.items():
            headers[label_header(key)] = value
        return headers

    def to_env(self) -> dict[str, str]:
        """Environment variables that make a child process use this sidecar."""
        env = {OUTBOUND_ENV: json.dumps(format_outbound(self.outbound))}
        if self.outbound_file:
            env[OUTBOUND_FILE_ENV] = self.outbound_file
        if self.workload:
            env[SOURCE_ENV] = json.dumps(
                {
                    "workload": self.workload,
                    "namespace": self.namespace,
                    "labels": dict(self.labels),
                }
            )
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Sidecar:
        """The sidecar described by the environment (no mesh -> everything direct)."""
        env = os.environ if environ is None else environ
        outbound = parse_outbound(json.loads(env.get(OUTBOUND_ENV) or "{}"))
        source = json.loads(env.get(SOURCE_ENV) or "{}")
        return cls(
            outbound=outbound,
            workload=source.get("workload"),
            namespace=source.get("namespace"),
            labels=source.get("labels") or {},
            outbound_file=env.get(OUTBOUND_FILE_ENV) or None,
        )


def parse_outbound(raw: Mapping[str, str]) -> dict[int, tuple[str, int]]:
    """``{"80": "127.0.0.1:41234"}`` -> ``{80: ("127.0.0.1", 41234)}``."""
    table: dict[int, tuple[str, int]] = {}
    for port, addr in raw.items():
        host, _, listen = str(addr).rpartition(":")
        table[int(port)] = (host, int(listen))
    return table


def format_outbound(table: Mapping[int, tuple[str, int]]) -> dict[str, str]:
    """The JSON shape of an outbound table (the inverse of ``parse_outbound``)."""
    return {str(port): f"{host}:{listen}" for port, (host, listen) in sorted(table.items())}
