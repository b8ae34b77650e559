"""Sizing a DestinationRule's circuit breaker from a service's capacity, with the reasons.

Pure: :class:`BreakerInputs` (replicas, per-replica rate *or* concurrency at the knee, the
latency there, the p99 SLO, how callers connect) in, :class:`BreakerAdvice` out — an Istio
``trafficPolicy`` plus one explanation per field and the assumptions made. The CLI
(``chaosmesh advise breaker``) and the activities print or apply the same advice.

What the numbers rest on (Envoy, as istiod programs it):

- Circuit breakers are per upstream cluster and per Envoy: every client sidecar enforces its
  own ``maxConnections``, ``http1MaxPendingRequests`` and ``http2MaxRequests`` (Envoy's
  ``max_connections``, ``max_pending_requests``, ``max_requests``), shared by that Envoy's
  worker threads. A service called from N client pods therefore admits up to N times the
  limit, so the limits are the service's capacity divided by the callers.
- Connection pools are per worker thread and per host: an Envoy lets a pool open its first
  connection even past ``maxConnections`` (up to ``maxConnections + hosts x pools``
  connections), and an idle connection of one worker cannot serve another worker's request.
  ``http2MaxRequests`` (which Envoy applies to HTTP/1.1 too) caps requests in flight exactly.
- Outlier detection ejects a host while ``100 x (ejected + 1) / hosts <= maxEjectionPercent``;
  Envoy's default of 10 % ejects nothing among fewer than 10 hosts. A missing
  ``consecutive5xxErrors`` still means Envoy's default of 5 consecutive 5xx.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from chaosmesh_ext.errors import ArgumentError

# Share of the SLO's slack the admitted queue may take. The rest absorbs what varies under
# overload: the pods' throughput (often below the knee's), imbalance between pods, and
# scheduling noise; a queue sized to the whole slack meets the SLO only when nothing varies.
QUEUE_SHARE = 1 / 3
# Behind an L4 proxy a connection should live about this long, so new or restarted pods get
# their share of connections within seconds.
REBALANCE_SECONDS = 5.0
DEFAULT_ENVOY_WORKERS = 2  # an Istio sidecar's default concurrency
CONSECUTIVE_GATEWAY_ERRORS = 5
INTERVAL = "5s"
BASE_EJECTION_TIME = "30s"


class AdviceError(ArgumentError):
    """Input the advice cannot use; ``.argument`` names it as the activity spells it."""


@dataclass(frozen=True)
class BreakerInputs:
    """What the service can do and how it is called. Times in seconds, rates per second.

    Give ``rps_per_pod`` (requests per second one replica serves at its knee) or
    ``concurrency_per_pod`` (requests in flight in one replica there); ``service_time`` is
    the mean latency at that point, ``knee_p99`` its p99 when measured.
    """

    pods: int
    p99_slo: float
    service_time: float
    rps_per_pod: float | None = None
    concurrency_per_pod: float | None = None
    knee_p99: float | None = None
    callers: int = 1
    keepalive: bool = True
    http2: bool = False
    behind_l4_proxy: bool = False
    can_lose: int | None = None
    peak_rps: float | None = None
    envoy_workers: int = DEFAULT_ENVOY_WORKERS
    pod_cpus: float | None = None
    source: str = "declared"


@dataclass(frozen=True)
class FieldAdvice:
    """One field of the trafficPolicy: its value (None: left out on purpose) and why."""

    field: str
    value: int | str | None
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "why": self.why}


@dataclass
class BreakerAdvice:
    traffic_policy: dict[str, Any]
    fields: list[FieldAdvice]
    assumptions: list[str]
    numbers: dict[str, float | int] = field(default_factory=dict)

    def destination_rule(
        self, name: str, namespace: str, host: str, api_version: str = "networking.istio.io/v1"
    ) -> dict[str, Any]:
        return {
            "apiVersion": api_version,
            "kind": "DestinationRule",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"host": host, "trafficPolicy": self.traffic_policy},
        }

    def breaker_arguments(self) -> dict[str, Any]:
        """The advice as ``apply_circuit_breaker`` arguments (only the fields it sets)."""
        names = {
            "connectionPool.tcp.maxConnections": "max_connections",
            "connectionPool.http.http1MaxPendingRequests": "http1_max_pending_requests",
            "connectionPool.http.http2MaxRequests": "http2_max_requests",
            "connectionPool.http.maxRequestsPerConnection": "max_requests_per_connection",
            "outlierDetection.consecutiveGatewayErrors": "consecutive_gateway_errors",
            "outlierDetection.consecutive5xxErrors": "consecutive_5xx_errors",
            "outlierDetection.interval": "interval",
            "outlierDetection.baseEjectionTime": "base_ejection_time",
            "outlierDetection.maxEjectionPercent": "max_ejection_percent",
            "outlierDetection.minHealthPercent": "min_health_percent",
        }
        return {names[f.field]: f.value for f in self.fields if f.value is not None}

    def to_dict(self) -> dict[str, Any]:
        return {
            "trafficPolicy": self.traffic_policy,
            "fields": [f.to_dict() for f in self.fields],
            "assumptions": list(self.assumptions),
            "numbers": dict(self.numbers),
        }


def _number(value: Any, argument: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AdviceError(argument, f"must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise AdviceError(argument, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def _whole(value: Any, argument: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AdviceError(argument, f"must be a whole number, got {value!r}")
    if value < low:
        raise AdviceError(argument, f"must be at least {low}, got {value}")
    return value


# Rounding that ignores float noise: 240 x 0.2 x 0.5 is 23.999999999999996 in binary.
def _floor(value: float) -> int:
    return math.floor(value + 1e-9)


def _ceil(value: float) -> int:
    return math.ceil(value - 1e-9)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def check(inputs: BreakerInputs) -> None:
    """Raise :class:`AdviceError` naming the first argument the advice cannot use."""
    _whole(inputs.pods, "pods", 1)
    _whole(inputs.callers, "callers", 1)
    _whole(inputs.envoy_workers, "envoy_workers", 1)
    given = [n for n in ("rps_per_pod", "concurrency_per_pod") if getattr(inputs, n) is not None]
    if len(given) != 1:
        raise AdviceError(
            "rps_per_pod",
            "give the per-pod rate (requests per second) or the per-pod concurrency (requests"
            f" in flight) at the knee — exactly one; got {', '.join(given) or 'neither'}",
        )
    _number(getattr(inputs, given[0]), given[0])
    service = _number(inputs.service_time, "service_time")
    slo = _number(inputs.p99_slo, "p99_slo")
    if slo <= service:
        raise AdviceError(
            "p99_slo",
            f"{_ms(slo)} is not above the service time {_ms(service)}: no queue, and so no"
            " circuit breaker, can meet it — a request takes longer than the SLO on its own",
        )
    if inputs.knee_p99 is not None and _number(inputs.knee_p99, "knee_p99") > slo:
        raise AdviceError(
            "p99_slo",
            f"{_ms(slo)} is below the p99 the service already has at its knee"
            f" ({_ms(inputs.knee_p99)}); measure the knee with this SLO as its bound",
        )
    if inputs.can_lose is not None:
        _whole(inputs.can_lose, "can_lose", 0)
        if inputs.can_lose >= inputs.pods:
            raise AdviceError(
                "can_lose", f"must be below pods ({inputs.pods}), got {inputs.can_lose}"
            )
    if inputs.peak_rps is not None:
        _number(inputs.peak_rps, "peak_rps")
    if inputs.pod_cpus is not None:
        _number(inputs.pod_cpus, "pod_cpus")


def advise(inputs: BreakerInputs) -> BreakerAdvice:
    """The trafficPolicy for ``inputs``, with the reasoning per field."""
    check(inputs)
    pods, callers, w = inputs.pods, inputs.callers, inputs.service_time
    assumptions: list[str] = [f"capacity: {inputs.source}"]
    if inputs.rps_per_pod is not None:
        rate_pod = float(inputs.rps_per_pod)
        conc_pod = rate_pod * w
        assumptions.append(
            f"per-pod capacity given as a RATE: {rate_pod:g} requests/second per pod at the"
            f" knee, with a mean latency of {_ms(w)} there -> {conc_pod:.3g} requests in flight"
            " per pod (Little's law: in flight = rate x latency)"
        )
    else:
        conc_pod = float(inputs.concurrency_per_pod or 0)
        rate_pod = conc_pod / w
        assumptions.append(
            f"per-pod capacity given as a CONCURRENCY: {conc_pod:g} requests in flight per pod"
            f" at the knee, with a mean latency of {_ms(w)} -> {rate_pod:.4g} requests/second"
            " per pod (Little's law)"
        )
    rate = rate_pod * pods
    conc = conc_pod * pods
    p99_base = inputs.knee_p99 if inputs.knee_p99 is not None else w
    if inputs.knee_p99 is None:
        assumptions.append(
            f"p99 at the knee not measured: taken as the service time {_ms(w)} (measure it"
            " with the capacity_knee probe for a tighter queue)"
        )
    visible = 1 if inputs.behind_l4_proxy else pods
    assumptions.append(
        f"{callers} calling pod(s), each with its own sidecar and its own limits; Envoy with"
        f" {inputs.envoy_workers} worker threads per sidecar"
    )
    if inputs.behind_l4_proxy:
        assumptions.append(
            "behind a layer-4 proxy: the sidecars see ONE endpoint (the proxy), which spreads"
            f" connections, not requests, over the {pods} pods"
        )
    fields: list[FieldAdvice] = []
    pool_tcp: dict[str, Any] = {}
    pool_http: dict[str, Any] = {}
    workers = inputs.envoy_workers
    pools = visible * workers

    # The queue the SLO can absorb: what waits leaves at the rate the pods complete requests.
    slack = inputs.p99_slo - p99_base
    queue = max(0, _floor(rate * slack * QUEUE_SHARE))
    admitted = _ceil(conc + queue)
    limit = max(1, _ceil(admitted / callers))
    split = (
        f"; divided by the {callers} calling pods (each sidecar enforces its own limit) ="
        f" {limit} per caller"
        if callers > 1
        else " (for one calling pod; with N calling pods say so (callers, --callers): every"
        " sidecar enforces its own limit, so the service would admit N times this)"
    )
    fields.append(
        FieldAdvice(
            "connectionPool.http.http2MaxRequests",
            limit,
            f"THE limit: requests in flight from one sidecar to the service, counted exactly"
            f" across the sidecar's worker threads (Envoy's max_requests; it applies to"
            f" HTTP/1.1 too). At the knee each pod holds {conc_pod:.3g} in flight"
            f" ({rate_pod:.4g}/s x {_ms(w)}, Little's law), {conc:.3g} for {pods} pods. On top,"
            f" the queue the SLO can absorb: p99 {_ms(inputs.p99_slo)} - {_ms(p99_base)} at the"
            f" knee leaves {_ms(max(slack, 0.0))}; requests beyond the in-flight ones wait in"
            f" the pods and leave at {rate:.4g}/s, so a third of that slack (the rest absorbs"
            f" what varies under overload) holds {queue} more: {conc:.3g} + {queue} ="
            f" {admitted}{split}."
            " Requests beyond it get 503 at once (x-envoy-overloaded, upstream_rq_active_overflow)"
            " and the ones admitted wait at most that queue: latency stays bounded under any"
            " surge.",
        )
    )
    pool_http["http2MaxRequests"] = limit

    cores_note = _cores_note(inputs, rate_pod)
    if not inputs.http2:
        max_conn = workers * (limit + visible)
        why = (
            f"HTTP/1.1 carries one request per connection at a time, but Envoy keeps a"
            f" connection pool per worker thread and per endpoint ({workers} x {visible} ="
            f" {pools} pools), and an idle connection in one pool cannot serve another. So this"
            f" is sized never to bind: each worker may hold {limit} connections plus one per"
            f" endpoint, {workers} x ({limit} + {visible}) = {max_conn}; it still bounds a"
            " connection storm. A binding maxConnections (as in Istio's circuit-breaking task)"
            " makes requests wait in the per-worker, per-endpoint pending lists, which drain slower"
            " than the pods' own queue: under the same surge the admitted requests' p99 is"
            " far higher that way (docs/BREAKER-SIZING.md compares both). The limit"
            " is per upstream cluster and per"
            " sidecar, shared by its workers (Istio's docs say 'to a destination host')."
            f" {cores_note}"
        )
    else:
        max_conn = pools * 2
        why = (
            f"HTTP/2 multiplexes: each worker keeps about one connection per endpoint ({workers} x"
            f" {visible}), so this only guards against a connection storm (x2 for connections"
            f" draining while new ones open); requests are limited by http2MaxRequests."
            f" {cores_note}"
        )
    fields.append(FieldAdvice("connectionPool.tcp.maxConnections", max_conn, why))
    pool_tcp["maxConnections"] = max_conn

    pending = limit
    fields.append(
        FieldAdvice(
            "connectionPool.http.http1MaxPendingRequests",
            pending,
            "Requests waiting in the sidecar for a connection of their worker's pool. With the"
            " connection limit sized never to bind, they wait only while a connection opens"
            f" (a cold start, a burst after idle); {pending} (= http2MaxRequests) lets such a"
            " burst through instead of shedding it, and no more can be admitted anyway. The"
            " SLO's queue is in http2MaxRequests, where it waits in the pods' own FIFO queue."
            " A long pending list is where an avalanche builds up: it never grows here.",
        )
    )
    pool_http["http1MaxPendingRequests"] = pending

    connections_in_use = limit if not inputs.http2 else pools
    per_request = _requests_per_connection(inputs, rate / callers, connections_in_use)
    fields.append(per_request)
    if per_request.value is not None:
        pool_http["maxRequestsPerConnection"] = per_request.value

    outlier, outlier_fields, lose_note = _outlier_detection(inputs, rate_pod)
    assumptions.append(lose_note)
    fields += outlier_fields
    policy: dict[str, Any] = {"connectionPool": {"tcp": pool_tcp, "http": pool_http}}
    if outlier:
        policy["outlierDetection"] = outlier
    numbers = {
        "rps_per_pod": round(rate_pod, 3),
        "concurrency_per_pod": round(conc_pod, 3),
        "rps_total": round(rate, 3),
        "concurrency_total": round(conc, 3),
        "queue_total": queue,
        "admitted_total": admitted,
        "callers": callers,
        "slack_ms": round(max(slack, 0.0) * 1000, 1),
        # The longest an admitted request should wait for a worker in the pods.
        "queue_wait_ms": round(queue / rate * 1000, 1),
    }
    return BreakerAdvice(policy, fields, assumptions, numbers)


def _cores_note(inputs: BreakerInputs, rate_pod: float) -> str:
    text = (
        "A node's core count is no connection limit: a pod's cores bound only how fast it"
        " can run CPU work (at most cores / CPU-seconds per request), while requests that"
        " wait on I/O stay in flight without using a core; and the node's cores are shared by"
        " other pods — the pod's own CPU limit is the bound."
    )
    if inputs.pod_cpus:
        cpu_bound_rate = inputs.pod_cpus / inputs.service_time
        text += (
            f" With {inputs.pod_cpus:g} CPUs per pod and {_ms(inputs.service_time)} per"
            f" request, even all-CPU requests allow {cpu_bound_rate:.4g}/s per pod"
            + (
                f", above the {rate_pod:g}/s given: the knee, not the cores, binds."
                if cpu_bound_rate >= rate_pod
                else f", below the {rate_pod:g}/s given: so requests cannot be all CPU;"
                " trust the measured knee."
            )
        )
    return text


def _requests_per_connection(
    inputs: BreakerInputs, rate_caller: float, connections: int
) -> FieldAdvice:
    name = "connectionPool.http.maxRequestsPerConnection"
    if not inputs.keepalive:
        return FieldAdvice(
            name,
            1,
            "No keep-alive (as asked): every request opens and closes its own connection — a"
            " TCP (and with mTLS a TLS) handshake per request, and sockets in TIME_WAIT."
            " Prefer keep-alive unless the upstream cannot reuse connections.",
        )
    if not inputs.behind_l4_proxy:
        return FieldAdvice(
            name,
            None,
            "Left unset (0: unlimited keep-alive). The sidecar sees every pod and balances"
            " each request (LEAST_REQUEST), so long-lived connections cost nothing in balance"
            " and save a handshake per request.",
        )
    per_connection = rate_caller / max(connections, 1)
    value = int(min(max(round(REBALANCE_SECONDS * per_connection), 10), 10000))
    return FieldAdvice(
        name,
        value,
        f"Behind an L4 proxy a connection stays on the pod the proxy picked when it opened,"
        f" so with keep-alive a new or restarted pod gets no traffic until connections"
        f" close, and {connections} connection(s) rarely spread evenly over {inputs.pods}"
        f" pods. At {per_connection:.3g} requests/s per connection, {value} requests make a"
        f" connection live about {value / per_connection:.0f} s: the proxy rebalances within"
        f" seconds, for one handshake per {value} requests ({100 / value:.1f} %). 0 (unlimited)"
        " pins for hours; 1 pays a handshake every request.",
    )


def _outlier_detection(
    inputs: BreakerInputs, rate_pod: float
) -> tuple[dict[str, Any] | None, list[FieldAdvice], str]:
    pods = inputs.pods
    if inputs.can_lose is not None:
        can_lose = inputs.can_lose
        lose_note = f"the service can lose {can_lose} of {pods} pods (given)"
    elif inputs.peak_rps is not None:
        needed = min(pods, _ceil(inputs.peak_rps / rate_pod))
        can_lose = pods - needed
        lose_note = (
            f"a peak of {inputs.peak_rps:g}/s needs {needed} pod(s) at {rate_pod:g}/s each:"
            f" the service can lose {can_lose} of {pods}"
        )
    else:
        can_lose = 1 if pods >= 3 else 0
        lose_note = (
            f"the service can lose {can_lose} of {pods} pods (assumed: sized N+1 from 3 pods"
            " on; give can_lose or peak_rps to say otherwise)"
        )
    base = "outlierDetection"
    if inputs.behind_l4_proxy or can_lose == 0:
        why = (
            "Left out. The sidecars see only the L4 proxy: ejecting that one endpoint takes"
            " the whole service away from the caller for the ejection time, and cannot steer"
            " around one bad pod it cannot see. Leave pod health to the proxy's own health"
            " checks — or let the sidecars reach the pods directly (a ClusterIP Service in the"
            " mesh) and size outlier detection for the pods."
            if inputs.behind_l4_proxy
            else f"Left out: the service cannot lose any of its {pods} pod(s), so there is no"
            " pod outlier detection may eject without overloading the rest."
        )
        return None, [FieldAdvice(base, None, why)], lose_note
    hosts = pods
    max_eject = _ceil(100 * can_lose / hosts)
    min_health = _floor(100 * (hosts - can_lose) / hosts)
    per_caller_rate = rate_pod / inputs.callers
    gateway = CONSECUTIVE_GATEWAY_ERRORS
    outlier: dict[str, Any] = {
        "consecutiveGatewayErrors": gateway,
        "consecutive5xxErrors": 0,
        "interval": INTERVAL,
        "baseEjectionTime": BASE_EJECTION_TIME,
        "maxEjectionPercent": max_eject,
        "minHealthPercent": min_health,
    }
    fields = [
        FieldAdvice(
            f"{base}.consecutiveGatewayErrors",
            gateway,
            f"Eject a pod after {gateway} 502/503/504 or connection failures in a row: the"
            f" signs of a pod that is down or wedged. At {per_caller_rate:.3g}/s per pod per"
            f" caller that takes about {_ms(gateway / per_caller_rate)}; 1 (as in many"
            " examples) ejects on a single reset during a rollout.",
        ),
        FieldAdvice(
            f"{base}.consecutive5xxErrors",
            0,
            "Explicitly 0 (off): left unset, Envoy's default of 5 consecutive 5xx still"
            " ejects, and an application answering 500 to one bad input would take healthy"
            " pods out. Gateway errors above are the pod-health signal.",
        ),
        FieldAdvice(
            f"{base}.interval",
            INTERVAL,
            "How often Envoy sweeps ejections: consecutive-error ejections happen at once,"
            " but an ejection ends only on a sweep, so it lasts up to baseEjectionTime +"
            " interval.",
        ),
        FieldAdvice(
            f"{base}.baseEjectionTime",
            BASE_EJECTION_TIME,
            "First ejection 30 s, doubled on each repeat (Envoy caps it at 300 s): a pod"
            " briefly unwell comes back soon, one that keeps failing stays out longer. A first"
            " ejection of minutes (3m in many examples) keeps a recovered pod idle while its"
            " peers carry its load.",
        ),
        FieldAdvice(
            f"{base}.maxEjectionPercent",
            max_eject,
            f"At most {can_lose} of {hosts} pods out at once ({lose_note}). Envoy ejects"
            f" while 100 x (ejected + 1) / hosts <= this value: {max_eject} allows"
            f" {can_lose} (100 x {can_lose} / {hosts} = {100 * can_lose / hosts:.1f}) and"
            f" refuses {can_lose + 1} ({100 * (can_lose + 1) / hosts:.1f}). Left unset,"
            " Envoy's 10 % ejects nothing among fewer than 10 pods; 100 can eject them all.",
        ),
        FieldAdvice(
            f"{base}.minHealthPercent",
            min_health,
            f"Envoy's panic threshold: below {min_health} % healthy pods the survivors could"
            f" not carry the load anyway, so the sidecar spreads requests over every pod"
            f" instead. With {can_lose} ejected, {100 * (hosts - can_lose) / hosts:.1f} % stay"
            " healthy: no panic from outlier detection alone.",
        ),
    ]
    return outlier, fields, lose_note
