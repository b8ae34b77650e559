"""Sizing a circuit breaker from measurement: the knee probe and the advice.

- :func:`capacity_knee` (a probe): from the mesh's fortio workload, offers rising rates
  open-loop (latency timed from when each request was due, so queueing shows) and returns
  every step and the knee — the highest rate served within ``max_p99_ms`` and
  ``max_error_rate`` — with its latency and the concurrency it implies (Little's law).
- :func:`advise_breaker` (a probe: it changes nothing): a DestinationRule ``trafficPolicy``
  with the reason for every field, from a measured knee (``from_knee``: the probe's output,
  a JSON file of it, or a journal) or from declared capacity (``rps_per_pod`` or
  ``concurrency_per_pod`` with ``service_time``).

``chaosmesh_ext.probes`` re-exports both; ``chaosmesh_ext.actions.apply_advised_breaker``
applies the same advice (an action sits above the probes, so it lives there), and
``chaosmesh advise breaker`` prints it. The domain lives in ``load.knee`` (stepping, the knee) and
``istio.breaker_advice`` (the sizing); this module reads arguments and does the I/O.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from ._activity import Configuration, Secrets, failures_as_activity_failed, kube_client
from .errors import LoadError
from .istio.breaker_advice import AdviceError, BreakerAdvice, BreakerInputs, advise
from .load import in_mesh
from .load.knee import KneeError, find_knee, knee_from_document, make_plan
from .load.options import (
    ACTIVITY,
    LoadInput,
    LoadOptionError,
    LoadOptions,
    normalize,
    parse_duration,
)

__all__ = ["advise_breaker", "capacity_knee"]

logger = logging.getLogger("chaostoolkit")

# API round trip, the load server's start and the drain of a step's queued requests.
_STEP_OVERHEAD = 1.0


def _seconds(value: Any, argument: str, where: str) -> float:
    try:
        seconds = parse_duration(value, argument)
    except LoadOptionError as exc:
        raise ActivityFailed(f"{where}: {exc}") from None
    if seconds <= 0:
        raise ActivityFailed(f"{where}: {argument}: must be greater than 0, got {value!r}")
    return seconds


def capacity_knee(
    url: str,
    max_p99_ms: float,
    start_qps: float = 10,
    max_qps: float = 1000,
    step_qps: float | None = None,
    factor: float | None = None,
    step_duration: str | float = "2s",
    max_error_rate: float = 0.01,
    refine: int = 2,
    warmup: str | float = "1s",
    max_duration: str | float = "60s",
    pods: int | None = None,
    c: int = 4,
    timeout: str | float = "3s",
    headers: Mapping[str, str] | list[str] | None = None,
    fortio_service: str = "fortio",
    fortio_port: int = 8080,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Step the offered rate and return the knee: the highest rate within the bounds.

    Rates go from ``start_qps`` up by ``step_qps`` (added) or ``factor`` (multiplied; 1.5
    when neither is given) to ``max_qps``, ``step_duration`` each, open-loop from the mesh's
    fortio workload (this project's load server: real fortio has no open-loop mode). A step
    passes when its p99 is at most ``max_p99_ms`` and its error share at most
    ``max_error_rate``; the search stops at the first failing step and bisects ``refine``
    times between the last passing and the first failing rate. A step also fails when the
    service completes less than 95 % of the offered rate (it is falling behind: its queue
    grows for as long as the step lasts, even if a short step ends before the p99 shows it).
    ``warmup`` runs ``start_qps`` that long first, uncounted (a fresh path opens connections;
    0 to skip). The whole search is bounded by ``max_duration`` (checked before it starts,
    and between steps; at most 600 s).

    Returns ``steps`` (per step: ``offered_qps``, ``achieved_qps`` (successful
    answers per second), ``p50_ms``, ``p99_ms``, ``mean_ms``, ``error_rate``, ``codes``,
    ``rate_kept``, ``passed``, ``why``), ``knee`` (``qps``, ``p50_ms``, ``p99_ms``,
    ``mean_ms``, ``concurrency`` = qps x mean latency, and per pod when ``pods`` says how
    many replicas served) and the same as flat ``knee_*`` keys for range tolerances.

    Fails (``ActivityFailed`` naming the argument) when the service cannot be reached
    (``url``), when even ``start_qps`` fails (``start_qps``; ``max_p99_ms`` when the median
    alone exceeds it: an SLO below the service time), when nothing fails up to ``max_qps``
    (``max_qps``: no knee within the allowed rate) or when time runs out (``max_duration``).
    """
    where = f"capacity_knee {url}"
    seconds = _seconds(step_duration, "step_duration", where)
    limit = _seconds(max_duration, "max_duration", where)
    try:
        warmup_seconds = parse_duration(warmup, "warmup")
    except LoadOptionError as exc:
        raise ActivityFailed(f"{where}: {exc}") from None
    if warmup_seconds < 0:
        raise ActivityFailed(f"{where}: warmup: must be 0 or more, got {warmup!r}")
    if pods is not None and (isinstance(pods, bool) or not isinstance(pods, int) or pods < 1):
        raise ActivityFailed(f"{where}: pods: must be a whole number >= 1, got {pods!r}")
    try:
        plan = make_plan(
            start_qps,
            max_qps,
            max_p99_ms,
            step_qps=step_qps,
            factor=factor,
            step_seconds=seconds,
            max_error_rate=max_error_rate,
            refine=refine,
            max_seconds=limit,
            overhead_seconds=_STEP_OVERHEAD,
            warmup_seconds=warmup_seconds,
        )
    except KneeError as exc:
        raise ActivityFailed(f"{where}: {exc}") from None

    fortio = in_mesh.Fortio(namespace=ns, service=fortio_service, port=fortio_port)

    def options(qps: float, step_seconds: float) -> LoadOptions:
        given = LoadInput(
            url=url,
            c=c,
            qps=qps,
            t=f"{step_seconds:g}s",
            timeout=timeout,
            headers=headers,
            open_loop=True,
        )
        with failures_as_activity_failed(where):
            return normalize(given, ACTIVITY)

    options(plan.start_qps, plan.step_seconds)  # bad load arguments fail before any load
    with kube_client(configuration, secrets, doing=where) as api:

        def run_step(qps: float, step_seconds: float) -> Mapping[str, Any]:
            try:
                return in_mesh.run_in_mesh(api, options(qps, step_seconds), fortio=fortio)
            except LoadError as exc:
                raise ActivityFailed(f"capacity_knee: url {url}: at {qps:g} qps: {exc}") from None

        try:
            found = find_knee(plan, run_step, pods=pods)
        except KneeError as exc:
            raise ActivityFailed(f"{where}: {exc}") from None
    found["url"] = url
    logger.info(
        "capacity_knee %s: knee %g qps (p99 %g ms, %g in flight); %s",
        url,
        found["knee_qps"],
        found["knee_p99_ms"],
        found["knee_concurrency"],
        found["stopped"],
    )
    return found


def read_knee(source: Any) -> dict[str, Any]:
    """A knee from a probe output (dict) or a file: the output as JSON, or a journal.

    Raises :class:`AdviceError` naming ``from_knee``.
    """
    if isinstance(source, Mapping):
        document: Any = source
        label = "the given knee"
    else:
        path = Path(str(source)).expanduser()
        label = str(path)
        try:
            document = json.loads(path.read_text())
        except OSError as exc:
            raise AdviceError("from_knee", f"cannot read {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise AdviceError("from_knee", f"{path} is not JSON: {exc}") from None
    try:
        return knee_from_document(document, label)
    except ValueError as exc:
        raise AdviceError("from_knee", str(exc)) from None


def _duration(value: Any, argument: str) -> float:
    try:
        seconds = parse_duration(value, argument)
    except LoadOptionError as exc:
        raise AdviceError(argument, exc.reason) from None
    if seconds <= 0:
        raise AdviceError(argument, f"must be greater than 0, got {value!r}")
    return seconds


def breaker_inputs(
    pods: int | None = None,
    p99_slo: str | float | None = None,
    service_time: str | float | None = None,
    rps_per_pod: float | None = None,
    concurrency_per_pod: float | None = None,
    from_knee: Any = None,
    knee_p99: str | float | None = None,
    callers: int = 1,
    keepalive: bool = True,
    http2: bool = False,
    behind_l4_proxy: bool = False,
    can_lose: int | None = None,
    peak_rps: float | None = None,
    envoy_workers: int = 2,
    pod_cpus: float | None = None,
) -> BreakerInputs:
    """The advice's inputs from declared capacity or a knee; :class:`AdviceError` naming the
    argument.

    With a knee, its rate and latency are the service's (``pods`` says how many replicas
    served it, unless the knee recorded that itself); the SLO defaults to the knee's bound.
    """
    if pods is not None and (isinstance(pods, bool) or not isinstance(pods, int) or pods < 1):
        raise AdviceError("pods", f"must be a whole number of replicas >= 1, got {pods!r}")
    p99_at_knee = _duration(knee_p99, "knee_p99") if knee_p99 is not None else None
    source = "declared capacity"
    if from_knee is not None:
        if rps_per_pod is not None or concurrency_per_pod is not None or knee_p99 is not None:
            raise AdviceError(
                "from_knee",
                "give a measured knee or rps_per_pod/concurrency_per_pod (and knee_p99), not both",
            )
        found = read_knee(from_knee)
        knee = found["knee"]
        measured_pods = knee.get("pods")
        if measured_pods is None and pods is None:
            raise AdviceError("pods", "the knee does not say how many replicas served it")
        try:
            served_by = int(measured_pods if measured_pods is not None else pods or 1)
            rps_per_pod = float(knee["qps"]) / served_by
            service_time = float(knee["mean_ms"]) / 1000.0
            p99 = knee.get("p99_ms")
            p99_at_knee = float(p99) / 1000.0 if p99 is not None else None
            if p99_slo is None and found.get("max_p99_ms"):
                p99_slo = float(found["max_p99_ms"]) / 1000.0
        except (TypeError, ValueError, ZeroDivisionError) as exc:
            raise AdviceError("from_knee", f"the knee's numbers are not usable: {exc}") from None
        source = (
            f"a measured knee: {float(knee['qps']):g} qps over {served_by} pod(s) at"
            f" {knee['mean_ms']} ms mean"
            + (f", {knee['p99_ms']} ms p99" if p99_at_knee is not None else "")
            + (f" ({found['url']})" if found.get("url") else "")
        )
        if pods is not None and pods != served_by:
            source += f"; sized for {pods} pods, assuming each serves what one did then"
        pods = pods if pods is not None else served_by
    if pods is None:
        raise AdviceError("pods", "how many replicas serve the service? (required)")
    if p99_slo is None:
        raise AdviceError("p99_slo", "the latency SLO is required (e.g. '200ms')")
    if service_time is None:
        raise AdviceError(
            "service_time",
            "the mean latency at the knee is required with a declared rate or concurrency"
            " (e.g. '50ms'); or measure it (from_knee)",
        )
    return BreakerInputs(
        pods=pods,
        p99_slo=_duration(p99_slo, "p99_slo"),
        service_time=_duration(service_time, "service_time"),
        rps_per_pod=rps_per_pod,
        concurrency_per_pod=concurrency_per_pod,
        knee_p99=p99_at_knee,
        callers=callers,
        keepalive=keepalive,
        http2=http2,
        behind_l4_proxy=behind_l4_proxy,
        can_lose=can_lose,
        peak_rps=peak_rps,
        envoy_workers=envoy_workers,
        pod_cpus=pod_cpus,
        source=source,
    )


# The capacity arguments (breaker_inputs' parameters) that every sizing entry point passes on
# under the same names: the activities' and the CLI's own parameters.
CAPACITY_ARGUMENTS = tuple(inspect.signature(breaker_inputs).parameters)


def capacity_arguments(values: Mapping[str, Any]) -> dict[str, Any]:
    """The capacity arguments among ``values`` (a caller's ``locals()``)."""
    return {name: values[name] for name in CAPACITY_ARGUMENTS if name in values}


def advice_for(where: str, **arguments: Any) -> BreakerAdvice:
    """:func:`breaker_inputs` then the advice; ActivityFailed naming the argument."""
    try:
        return advise(breaker_inputs(**arguments))
    except AdviceError as exc:
        raise ActivityFailed(f"{where}: {exc}") from None


def advise_breaker(
    pods: int | None = None,
    p99_slo: str | float | None = None,
    service_time: str | float | None = None,
    rps_per_pod: float | None = None,
    concurrency_per_pod: float | None = None,
    from_knee: Mapping[str, Any] | str | None = None,  # a knee probe output, or its file
    knee_p99: str | float | None = None,
    callers: int = 1,
    keepalive: bool = True,
    http2: bool = False,
    behind_l4_proxy: bool = False,
    can_lose: int | None = None,
    peak_rps: float | None = None,
    envoy_workers: int = 2,
    pod_cpus: float | None = None,
    host: str = "web",
    destination_rule: str | None = None,
    ns: str = "default",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """A DestinationRule circuit breaker sized for the service, with the reason per field.

    Capacity is measured (``from_knee``: a :func:`capacity_knee` output, or the path of a
    JSON file or journal holding one) or declared: ``pods`` and ``rps_per_pod`` (requests
    per second one pod serves at its knee) *or* ``concurrency_per_pod`` (requests in flight
    there), with ``service_time`` (the mean latency there; ``"50ms"`` or seconds).
    ``p99_slo`` is the latency SLO (``"200ms"`` or seconds; defaults to the knee's bound).
    ``callers``: how many client pods call it (each sidecar enforces its own limits).
    ``keepalive``/``http2``/``behind_l4_proxy`` describe the connections; ``can_lose`` (or
    ``peak_rps``) how many pods outlier detection may eject. Returns ``destination_rule``,
    ``trafficPolicy``, ``fields`` (``field``, ``value``, ``why``), ``assumptions`` (units
    included: a rate or a concurrency, and which) and ``numbers``.
    """
    advice = advice_for("advise_breaker", **capacity_arguments(locals()))
    return {
        "destination_rule": advice.destination_rule(destination_rule or host, ns, host),
        **advice.to_dict(),
    }
