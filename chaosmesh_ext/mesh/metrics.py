"""Istio's standard request metrics for the embedded mesh, derived from Envoy's access log.

On a cluster every sidecar's ``istio.stats`` filter counts each request twice: once in the
client's proxy (``reporter="source"``) and once in the server's (``reporter="destination"``).
The embedded mesh has one Envoy playing every client sidecar, so this module rebuilds both
views from ``<state>/access.jsonl`` (one JSON object per request) and ``<state>/mesh.json``
(which endpoint address belongs to which workload):

- every request gives one ``reporter="source"`` sample, including those that never reached
  an upstream (fault aborts ``FI``, breaker overflow ``UO``, ``NR``...), which Istio reports
  with ``destination_workload="unknown"``;
- only requests that reached an upstream give a ``reporter="destination"`` sample. That is
  why destination-reported success rates (Flagger's default) never see client-side faults.

It serves ``istio_requests_total`` and ``istio_request_duration_milliseconds`` (Envoy's default
histogram buckets, which Istio uses) in Prometheus' text format, labelled as istio-proxy labels
them. One deliberate difference: a new series is shown at 0 on its first scrape, so rate()
counts the first requests of a fault and short bursts of load (see ``MetricsRegistry``).

The pure part (``derive_samples``, ``MetricsRegistry``) knows no files or sockets; the
``Exporter`` at the bottom adds the file tail and the HTTP endpoint.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

from .listener_name import GATEWAY, ListenerName
from .paths import StatePaths, default_state_dir

log = logging.getLogger(__name__)

REQUESTS_TOTAL = "istio_requests_total"
REQUEST_DURATION = "istio_request_duration_milliseconds"

# Envoy's default histogram bounds (HistogramStatisticsImpl::supportedBuckets), which is what
# istio-proxy's request duration histogram exports unless a Telemetry override changes them.
DEFAULT_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
    60000, 300000, 600000, 1800000, 3600000,
)  # fmt: skip

# The labels istio-proxy puts on istio_requests_total, in its order.
LABEL_NAMES: tuple[str, ...] = (
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)

UNKNOWN = "unknown"
CLUSTER_NAME = "Kubernetes"  # what istio-proxy reports as source_/destination_cluster by default
INGRESS_WORKLOAD = ("istio-ingressgateway", "istio-system")

# Response flags meaning the client proxy answered by itself: no upstream ever saw the request,
# so no destination sidecar could report it (FI abort, UO breaker overflow, NR no route, ...).
NOT_DELIVERED_FLAGS = frozenset(
    {"FI", "UO", "NR", "NC", "UH", "UF", "LH", "RL", "RLSE", "UAEX", "NFCF", "OM", "DPE"}
)

# Bounds memory when something feeds the exporter unbounded label values (e.g. arbitrary Host
# headers with no route); real label cardinality on the embedded mesh is a few hundred at most.
DEFAULT_MAX_SERIES = 5000

Labels = tuple[str, ...]  # values in LABEL_NAMES order


# --------------------------------------------------------------------------------------------
# Who is who: mesh.json's endpoints


@dataclass(frozen=True)
class Workload:
    """A workload as the stats filter sees it: name, namespace and pod labels."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def app(self) -> str:
        return self.labels.get("app") or UNKNOWN

    @property
    def version(self) -> str:
        return self.labels.get("version") or UNKNOWN

    @property
    def canonical_service(self) -> str:
        # Istio's canonical-service label precedence (istio-agent's metadata).
        for key in ("service.istio.io/canonical-name", "app.kubernetes.io/name", "app"):
            if self.labels.get(key):
                return self.labels[key]
        return self.name

    @property
    def canonical_revision(self) -> str:
        for key in ("service.istio.io/canonical-revision", "app.kubernetes.io/version", "version"):
            if self.labels.get(key):
                return self.labels[key]
        return "latest"


@dataclass(frozen=True)
class MeshDirectory:
    """Endpoint address -> workload, and workload name -> labels, from mesh.json."""

    by_address: Mapping[str, Workload] = field(default_factory=dict)
    by_name: Mapping[tuple[str, str], Workload] = field(default_factory=dict)

    @classmethod
    def from_mesh_state(cls, state: Mapping[str, Any]) -> MeshDirectory:
        by_address: dict[str, Workload] = {}
        by_name: dict[tuple[str, str], Workload] = {}
        for endpoint in state.get("endpoints") or []:
            if not isinstance(endpoint, Mapping):
                continue
            namespace = str(endpoint.get("namespace") or "default")
            labels = {str(k): str(v) for k, v in (endpoint.get("labels") or {}).items()}
            name = str(endpoint.get("workload") or endpoint.get("pod") or UNKNOWN)
            workload = Workload(name, namespace, labels)
            by_name.setdefault((name, namespace), workload)
            if endpoint.get("address") and endpoint.get("port"):
                by_address[f"{endpoint['address']}:{endpoint['port']}"] = workload
        return cls(by_address, by_name)

    def workload_at(self, upstream_host: str | None) -> Workload | None:
        return self.by_address.get(upstream_host or "")

    def workload_named(self, name: str, namespace: str) -> Workload:
        return self.by_name.get((name, namespace)) or Workload(name, namespace)


# --------------------------------------------------------------------------------------------
# One access-log record -> the samples the two reporters would record


@dataclass(frozen=True)
class Sample:
    """One observation: a request counted under ``labels`` that took ``duration_ms``."""

    labels: Labels
    duration_ms: float | None


@dataclass(frozen=True)
class ServiceRef:
    """destination_service / destination_service_name as istio-proxy computes them."""

    host: str
    name: str
    namespace: str | None  # known only when the cluster names an FQDN


def _present(value: Any) -> str | None:
    """Envoy writes '-' (or nothing) for an absent field."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "-") else text


def _flags(record: Mapping[str, Any]) -> list[str]:
    raw = _present(record.get("response_flags"))
    return [f for f in raw.split(",") if f] if raw else []


def durations(record: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(what the client waited, what the server took) in ms, for the two reporters."""
    client = _duration(record)
    upstream_time = _present(record.get("upstream_service_time"))
    if upstream_time is not None:
        # The server never sees an injected delay (DI) or the client's queueing.
        try:
            return client, float(upstream_time)
        except ValueError:
            pass
    return client, client


def _duration(record: Mapping[str, Any]) -> float | None:
    try:
        value = float(record.get("duration_ms"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def service_of(record: Mapping[str, Any]) -> ServiceRef:
    """The destination service, from the route's cluster if there was one, else the Host header.

    Istio reads the service from the cluster's ``istio`` metadata; on the embedded mesh the
    outbound cluster name ``outbound|<port>|<subset>|<fqdn>`` carries the same FQDN.
    """
    authority = _present(record.get("authority")) or UNKNOWN
    cluster = _present(record.get("upstream_cluster"))
    if cluster in ("BlackHoleCluster", "PassthroughCluster"):
        return ServiceRef(authority, cluster, None)
    if cluster:
        parts = cluster.split("|")
        if len(parts) == 4 and parts[3]:
            fqdn = parts[3]
            labels = fqdn.split(".")
            return ServiceRef(fqdn, labels[0], labels[1] if len(labels) > 1 else None)
    # No cluster (NR): istio-proxy falls back to the Host header for both labels.
    return ServiceRef(authority, authority, None)


def _response_code(record: Mapping[str, Any]) -> str:
    try:
        return str(int(record.get("response_code") or 0))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "0"


def _source(record: Mapping[str, Any], directory: MeshDirectory) -> Workload | None:
    name = _present(record.get("source_workload"))
    namespace = _present(record.get("source_namespace")) or "default"
    if name:
        return directory.workload_named(name, namespace)
    listener = ListenerName.parse(str(record.get("listener") or ""))
    if listener is not None and listener.kind == GATEWAY:
        # Traffic entering through a Gateway listener: Istio's ingress gateway is the client.
        return directory.workload_named(*INGRESS_WORKLOAD)
    return None


def reached_upstream(record: Mapping[str, Any]) -> bool:
    """Whether a destination sidecar would have seen this request at all."""
    if not _present(record.get("upstream_host")):
        return False
    return not any(flag in NOT_DELIVERED_FLAGS for flag in _flags(record))


def derive_samples(record: Mapping[str, Any], directory: MeshDirectory) -> list[Sample]:
    """The istio-proxy observations one access-log record stands for (one or two samples)."""
    source = _source(record, directory)
    service = service_of(record)
    # Client side: the peer (destination) is known once an endpoint was picked, even if the
    # connection then failed; aborts and no-route answers never pick one.
    peer = directory.workload_at(_present(record.get("upstream_host")))
    flags = _flags(record)
    code = _response_code(record)

    src = _workload_labels(source)
    source_labels: dict[str, str] = {
        "reporter": "source",
        **src,
        "source_principal": UNKNOWN,
        "destination_workload": peer.name if peer else UNKNOWN,
        "destination_workload_namespace": peer.namespace if peer else UNKNOWN,
        "destination_principal": UNKNOWN,
        "destination_app": peer.app if peer else UNKNOWN,
        "destination_version": peer.version if peer else UNKNOWN,
        "destination_service": service.host,
        "destination_canonical_service": peer.canonical_service if peer else UNKNOWN,
        "destination_canonical_revision": peer.canonical_revision if peer else "latest",
        "destination_service_name": service.name,
        # istio-proxy takes this from the peer, so a request no endpoint saw has it "unknown".
        "destination_service_namespace": peer.namespace if peer else UNKNOWN,
        "destination_cluster": CLUSTER_NAME if peer else UNKNOWN,
        "request_protocol": "http",
        "response_code": code,
        "grpc_response_status": "",
        "response_flags": ",".join(flags) or "-",
        # Outbound: istio-proxy cannot tell, and says so.
        "connection_security_policy": UNKNOWN,
    }
    samples = [Sample(_ordered(source_labels), durations(record)[0])]

    if reached_upstream(record):
        samples.append(_destination_sample(record, source, peer, service, flags, code))
    return samples


def _destination_sample(
    record: Mapping[str, Any],
    source: Workload | None,
    destination: Workload | None,
    service: ServiceRef,
    flags: Sequence[str],
    code: str,
) -> Sample:
    """What the server-side sidecar would report for a request that reached it."""
    dst_flags = "-"
    if "UT" in flags:
        # The client proxy gave up and reset the stream: the server side logs a downstream
        # disconnect with no response code, not the client's 504.
        code, dst_flags = "0", "DC"
    src = _workload_labels(source)
    namespace = destination.namespace if destination else (service.namespace or UNKNOWN)
    labels: dict[str, str] = {
        "reporter": "destination",
        **src,
        "source_principal": UNKNOWN,
        "destination_workload": destination.name if destination else UNKNOWN,
        "destination_workload_namespace": namespace,
        "destination_principal": UNKNOWN,
        "destination_app": destination.app if destination else UNKNOWN,
        "destination_version": destination.version if destination else UNKNOWN,
        "destination_service": service.host,
        "destination_canonical_service": destination.canonical_service if destination else UNKNOWN,
        "destination_canonical_revision": (
            destination.canonical_revision if destination else "latest"
        ),
        "destination_service_name": service.name,
        "destination_service_namespace": namespace,
        "destination_cluster": CLUSTER_NAME,
        "request_protocol": "http",
        "response_code": code,
        "grpc_response_status": "",
        "response_flags": dst_flags,
        # No mTLS between the embedded mesh's local processes: the server side says "none".
        "connection_security_policy": "none",
    }
    return Sample(_ordered(labels), durations(record)[1])


def _workload_labels(source: Workload | None) -> dict[str, str]:
    return {
        "source_workload": source.name if source else UNKNOWN,
        "source_canonical_service": source.canonical_service if source else UNKNOWN,
        "source_canonical_revision": source.canonical_revision if source else "latest",
        "source_workload_namespace": source.namespace if source else UNKNOWN,
        "source_app": source.app if source else UNKNOWN,
        "source_version": source.version if source else UNKNOWN,
        "source_cluster": CLUSTER_NAME if source else UNKNOWN,
    }


def _ordered(labels: Mapping[str, str]) -> Labels:
    return tuple(labels[name] for name in LABEL_NAMES)


# --------------------------------------------------------------------------------------------
# Counting and the text exposition format


@dataclass
class _Histogram:
    buckets: list[int]
    total: float = 0.0
    count: int = 0


class MetricsRegistry:
    """Thread-safe counters and histograms keyed by label values, rendered as Prometheus text.

    ``hold_new_series``: a series is rendered at zero the first time it appears, and with its
    count from the next render on. Prometheus' rate() ignores the value a series is first
    scraped with, so without this the first second of a fault (and a whole short burst of
    load, fortio's ``-n 20``) would be invisible to rate-based probes: the FI series is new
    exactly when the fault starts. The scraper (Prometheus, every second) pays one interval
    of delay; a second scraper of the same endpoint sees the count at once.
    """

    def __init__(
        self,
        buckets: Sequence[float] = DEFAULT_BUCKETS_MS,
        max_series: int = DEFAULT_MAX_SERIES,
        hold_new_series: bool = True,
    ) -> None:
        self.buckets = tuple(sorted(buckets))
        self.max_series = max_series
        self.hold_new_series = hold_new_series
        self._unexposed: set[Labels] = set()
        self._requests: dict[Labels, int] = {}
        self._durations: dict[Labels, _Histogram] = {}
        self._dropped = 0
        self._bad_lines = 0
        self._lock = threading.Lock()

    def observe(self, samples: Iterable[Sample]) -> None:
        with self._lock:
            for sample in samples:
                if sample.labels not in self._requests:
                    if len(self._requests) >= self.max_series:
                        self._dropped += 1
                        continue
                    if self.hold_new_series:
                        self._unexposed.add(sample.labels)
                self._requests[sample.labels] = self._requests.get(sample.labels, 0) + 1
                if sample.duration_ms is None:
                    continue
                hist = self._durations.get(sample.labels)
                if hist is None:
                    hist = self._durations[sample.labels] = _Histogram([0] * len(self.buckets))
                for i, bound in enumerate(self.buckets):
                    if sample.duration_ms <= bound:
                        hist.buckets[i] += 1
                        break
                hist.total += sample.duration_ms
                hist.count += 1

    def count_bad_line(self) -> None:
        with self._lock:
            self._bad_lines += 1

    def requests_total(self) -> dict[Labels, int]:
        with self._lock:
            return dict(self._requests)

    def render(self) -> str:
        """The Prometheus text exposition (format 0.0.4)."""
        with self._lock:
            held, self._unexposed = self._unexposed, set()
            zero = _Histogram([0] * len(self.buckets))
            requests = sorted(
                (labels, 0 if labels in held else n) for labels, n in self._requests.items()
            )
            durations = sorted(
                (labels, zero if labels in held else _Histogram(list(h.buckets), h.total, h.count))
                for labels, h in self._durations.items()
            )
            dropped, bad_lines = self._dropped, self._bad_lines
        out = [
            f"# HELP {REQUESTS_TOTAL} Requests seen by the embedded mesh's Envoy (Istio metric).",
            f"# TYPE {REQUESTS_TOTAL} counter",
        ]
        out += [f"{REQUESTS_TOTAL}{{{_label_text(labels)}}} {count}" for labels, count in requests]
        out += [
            f"# HELP {REQUEST_DURATION} Request duration in milliseconds (Istio standard metric).",
            f"# TYPE {REQUEST_DURATION} histogram",
        ]
        for labels, hist in durations:
            text = _label_text(labels)
            cumulative = 0
            for bound, n in zip(self.buckets, hist.buckets, strict=True):
                cumulative += n
                le = _number(bound)
                out.append(f'{REQUEST_DURATION}_bucket{{{text},le="{le}"}} {cumulative}')
            out.append(f'{REQUEST_DURATION}_bucket{{{text},le="+Inf"}} {hist.count}')
            out.append(f"{REQUEST_DURATION}_sum{{{text}}} {_number(hist.total)}")
            out.append(f"{REQUEST_DURATION}_count{{{text}}} {hist.count}")
        out += [
            "# HELP chaosmesh_metrics_dropped_samples_total Samples not counted: too many series.",
            "# TYPE chaosmesh_metrics_dropped_samples_total counter",
            f"chaosmesh_metrics_dropped_samples_total {dropped}",
            "# HELP chaosmesh_access_log_bad_lines_total access.jsonl lines that were not JSON.",
            "# TYPE chaosmesh_access_log_bad_lines_total counter",
            f"chaosmesh_access_log_bad_lines_total {bad_lines}",
        ]
        return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(values: Labels) -> str:
    return ",".join(f'{name}="{_escape(v)}"' for name, v in zip(LABEL_NAMES, values, strict=True))


def _number(value: float) -> str:
    """0.5 -> '0.5', 100.0 -> '100', 1800000.0 -> '1800000' (never exponent notation)."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


# --------------------------------------------------------------------------------------------
# Following access.jsonl


# Bytes read from the log at a time (a caller behind reads again at once). Small on purpose:
# after a stall megabytes wait, and reading them in one go made the exporter's RSS grow by
# that peak for good (glibc keeps the freed heap); 64 KiB is a few hundred records.
READ_CHUNK = 64 * 1024


class AccessLogFollower:
    """Reads each complete line of a log once, across truncation and rotation by rename.

    The file being read stays open. When the path names a new file (the log was renamed to
    ``NAME.1`` and its writer reopened the path), the writer has closed the old file for
    good: what it appended there since the last read is read first, then the new file from
    its start. So a rotation loses and repeats nothing, as long as the log is not renamed
    again before this follower has switched to the newest file: ``behind()`` says when it
    has not (the log keeper waits for it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._offset = 0
        self._partial = b""

    def _path_identity(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_dev, stat.st_ino

    def behind(self) -> bool:
        """True while the path names a file this follower has not switched to yet."""
        current = self._path_identity()
        return current is not None and current != self._identity

    def _open(self) -> bool:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return False
        stat = os.fstat(handle.fileno())
        self._handle, self._identity = handle, (stat.st_dev, stat.st_ino)
        self._offset, self._partial = 0, b""
        return True

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        self._handle, self._identity = None, None

    def read_lines(self, max_bytes: int = READ_CHUNK) -> list[bytes]:
        if self._handle is None and not self._open():
            return []
        assert self._handle is not None
        # Looked at before reading: once the path names a new file, the old one is final,
        # so reading it to its end below leaves nothing behind.
        current = self._path_identity()
        rotated = current is not None and current != self._identity
        if os.fstat(self._handle.fileno()).st_size < self._offset:
            # Truncated in place: start again from its beginning.
            self._handle.seek(0)
            self._offset, self._partial = 0, b""
        while True:
            chunk = self._handle.read(max_bytes)
            self._offset += len(chunk)
            lines = (self._partial + chunk).split(b"\n")
            # The last piece has no newline yet: the writer may be half-way through it.
            self._partial = lines.pop()
            # Nothing but part of a line, and more to read: read on (a caller takes no lines
            # for having caught up).
            if lines or len(chunk) < max_bytes:
                break
        if rotated and len(chunk) < max_bytes:
            # The old file is read to its end; an unterminated last line is all there is.
            lines.append(self._partial)
            self.close()
            if self._open():
                lines += self.read_lines(max_bytes)
        return [line for line in lines if line.strip()]


# Every record field derive_samples() reads to choose labels (not the durations).
_LABEL_FIELDS = (
    "source_workload", "source_namespace", "listener", "authority", "upstream_cluster",
    "upstream_host", "response_code", "response_flags",
)  # fmt: skip
_LABEL_CACHE_SIZE = 10_000


class MetricsPipeline:
    """access.jsonl + mesh.json -> MetricsRegistry. ``poll()`` does one round of work."""

    def __init__(self, state_dir: Path, registry: MetricsRegistry | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.registry = registry or MetricsRegistry()
        self.follower = AccessLogFollower(StatePaths(self.state_dir).access_jsonl)
        self.records = 0
        self._directory = MeshDirectory()
        self._mesh_mtime: float | None = None
        # Labels depend on a handful of fields with few distinct values: deriving them once
        # per combination about doubles throughput (see benchmarks/bench_metrics.py).
        self._labels: dict[tuple[Any, ...], list[Labels]] = {}

    def _refresh_directory(self) -> None:
        path = StatePaths(self.state_dir).mesh_json
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._mesh_mtime:
            return
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            return  # being rewritten; the next poll reads it
        if isinstance(state, dict):
            self._directory = MeshDirectory.from_mesh_state(state)
            self._mesh_mtime = mtime
            self._labels.clear()

    def samples(self, record: Mapping[str, Any]) -> list[Sample]:
        """derive_samples(), with the labels of each distinct combination derived once."""
        key = tuple(record.get(field) for field in _LABEL_FIELDS)
        try:
            labels = self._labels.get(key)
        except TypeError:  # a list or object where a string belongs: derive, do not cache
            return derive_samples(record, self._directory)
        if labels is None:
            samples = derive_samples(record, self._directory)
            if len(self._labels) >= _LABEL_CACHE_SIZE:
                self._labels.clear()
            self._labels[key] = [sample.labels for sample in samples]
            return samples
        client, server = durations(record)
        return [Sample(labels[0], client), *(Sample(extra, server) for extra in labels[1:])]

    def poll(self) -> int:
        """Count every complete new record; returns how many were read."""
        lines = self.follower.read_lines()
        if not lines:
            return 0
        self._refresh_directory()
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                self.registry.count_bad_line()
                continue
            self.registry.observe(self.samples(record))
            self.records += 1
        return len(lines)


# --------------------------------------------------------------------------------------------
# The exporter: a thread following the log, and an HTTP /metrics endpoint


class _Handler(BaseHTTPRequestHandler):
    server: _MetricsHTTPServer

    def do_GET(self) -> None:
        if self.path.split("?")[0] not in ("/metrics", "/stats/prometheus"):
            self.send_error(404, "try /metrics")
            return
        body = self.server.registry.render().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # scrapes every second would flood the daemon's log


class _MetricsHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], registry: MetricsRegistry) -> None:
        self.registry = registry
        super().__init__(address, _Handler)


class Exporter:
    """A running exporter: ``url`` is its ``/metrics`` endpoint; ``stop()`` ends both threads."""

    def __init__(
        self, state_dir: Path, host: str = "127.0.0.1", port: int = 0, poll_interval: float = 0.1
    ) -> None:
        self.pipeline = MetricsPipeline(Path(state_dir))
        self.poll_interval = poll_interval
        self._server = _MetricsHTTPServer((host, port), self.pipeline.registry)
        bound_port = self._server.server_address[1]
        self.url = f"http://{host}:{bound_port}/metrics"
        self._stopping = threading.Event()
        self._follow_thread = threading.Thread(
            target=self._follow, name="chaosmesh-metrics-follow", daemon=True
        )
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
            name="chaosmesh-metrics-http", daemon=True,
        )  # fmt: skip

    @property
    def registry(self) -> MetricsRegistry:
        return self.pipeline.registry

    @property
    def records(self) -> int:
        """Access-log records counted so far."""
        return self.pipeline.records

    def start(self) -> Exporter:
        self._follow_thread.start()
        self._serve_thread.start()
        return self

    def _follow(self) -> None:
        while not self._stopping.is_set():
            try:
                while self.pipeline.poll():
                    pass  # drain a backlog before sleeping
            except Exception:  # keep following: one bad read must not end the metrics
                log.exception("reading %s failed", self.pipeline.follower.path)
            self._stopping.wait(self.poll_interval)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._serve_thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
        for thread in (self._follow_thread, self._serve_thread):
            if thread.is_alive():
                thread.join(timeout)
        if not self._follow_thread.is_alive():
            self.pipeline.follower.close()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_exporter(state_dir: Path | str, host: str = "127.0.0.1", port: int = 0) -> Exporter:
    """Start following ``<state_dir>/access.jsonl`` and serving Istio's metrics on ``host:port``.

    ``port=0`` lets the OS choose; read the endpoint from ``.url``. The log may not exist yet.
    """
    return Exporter(Path(state_dir), host=host, port=port).start()


if __name__ == "__main__":  # pragma: no cover - manual use: python -m chaosmesh_ext.mesh.metrics
    exporter = start_exporter(default_state_dir())
    print(exporter.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        exporter.stop()
