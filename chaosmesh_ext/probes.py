"""Chaos Toolkit probes: load from inside the mesh, latency, errors, traffic split, breakers.

Every probe returns plain JSON values. The load runs where Istio applies faults and
breakers, in the client's sidecar: by default from the fortio workload of the mesh
(``via="mesh"``: fortio's REST API through the Kubernetes API's service proxy — the same call
on a cluster and on the embedded mesh — with ``fortio load`` exec'd in the pod as the cluster
fallback). ``via="local"`` runs our engine in the chaos process. Every probe is bounded in
time; failures are ``ActivityFailed`` naming the URL (or host) and the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext._interrupts import INTERRUPTS

# Breaker sizing lives in its own module (the knee search and the advice build on the load
# probes); users call them from here.
from .breaker_sizing import advise_breaker, capacity_knee

# The canary analysis lives with the canary code (it builds on traffic_split); users call it
# from here, as chaosmesh_ext.canary's docstring promises.
from .canary import split_follows_weights
from .kube.cluster_lint import lint_mesh
from .load import engine, remote
from .load.envoy_stats import breaker_summary, known_hosts
from .load.options import (
    DEFAULT_PERCENTILES,
    LoadOptionError,
    LoadOptions,
    parse_duration,
    parse_header,
    parse_int,
    parse_number,
    validate,
)
from .load.results import flat_summary

__all__ = [
    "advise_breaker",
    "breaker_stats",
    "capacity_knee",
    "error_rate",
    "fortio_load",
    "latency_ms",
    "lint_mesh",
    "response_codes",
    "split_follows_weights",
    "traffic_split",
]

logger = logging.getLogger("chaostoolkit")

# Time allowed on top of the run itself for the API round trip and the fortio start.
_SLACK = 15.0
_MAX_UNBOUNDED = 300.0


def _headers(headers: Mapping[str, str] | Sequence[str] | None) -> list[tuple[str, str]]:
    if not headers:
        return []
    if isinstance(headers, Mapping):
        return [parse_header(f"{k}: {v}") for k, v in headers.items()]
    return [parse_header(h) for h in headers]


def _local_options(
    url: str,
    c: Any,
    qps: Any,
    n: Any,
    t: Any,
    timeout: Any,
    headers: Any,
    payload: Any,
    method: Any,
    open_loop: bool,
    **extra: Any,
) -> LoadOptions:
    if n is not None and t is not None:
        raise LoadOptionError("n/t", "give either n (number of calls) or t (duration), not both")
    exactly = parse_int(n, "n") if n is not None else 0
    if n is not None and exactly < 1:
        raise LoadOptionError("n", f"must be at least 1 call, got {n}")
    duration = parse_duration(t, "t") if t is not None else 5.0
    if t is not None and duration <= 0:
        raise LoadOptionError("t", f"must be greater than 0, got {t}")
    connections = parse_int(c, "c")
    if connections < 1:
        raise LoadOptionError("c", f"number of connections must be at least 1, got {c}")
    return validate(
        LoadOptions(
            url=url,
            connections=connections,
            qps=parse_number(qps, "qps"),
            exactly=exactly,
            duration=duration,
            timeout=parse_duration(timeout, "timeout"),
            percentiles=list(DEFAULT_PERCENTILES),
            headers=_headers(headers),
            payload=payload.encode() if isinstance(payload, str) else payload,
            method=method,
            open_loop=open_loop,
            **extra,
        )
    )


def expected_seconds(options: LoadOptions) -> float:
    """An upper bound for how long the run should take (the probe's own timeout)."""
    if options.exactly:
        if options.qps > 0:
            run = options.exactly / options.qps * 1.2
        else:
            # Max speed: every call could take the whole timeout.
            per_conn = -(-options.exactly // options.connections)
            run = min(per_conn * options.timeout, _MAX_UNBOUNDED)
    else:
        run = options.duration + options.timeout  # warm-up call included
    return run + options.timeout + _SLACK


def _rest_params(options: LoadOptions) -> dict[str, Any]:
    """fortio REST parameters for these options (REST's qps 0 means 8, so max is -1)."""
    params: dict[str, Any] = {
        "url": options.url,
        "c": options.connections,
        "qps": -1 if options.qps <= 0 else f"{options.qps:g}",
        "timeout": f"{options.timeout:g}s",
        "p": ",".join(f"{p:g}" for p in options.percentiles),
    }
    if options.exactly:
        params["n"] = options.exactly
    else:
        params["t"] = f"{options.duration:g}s"
    if options.headers:
        params["H"] = [f"{k}: {v}" for k, v in options.headers]
    if options.payload:
        params["payload"] = options.payload.decode("utf-8", "replace")
    if options.method:
        params["X"] = options.method
    if options.open_loop:
        params["open_loop"] = True
    if options.classify_regex:
        params["classify_regex"] = options.classify_regex
    if options.classify_header:
        params["classify_header"] = options.classify_header
    return params


def run_in_mesh(
    options: LoadOptions,
    service: str,
    port: int,
    ns: str,
    fortio_pod: str | None,
    fortio_selector: str,
    configuration: Any,
    secrets: Any,
) -> dict[str, Any]:
    """Run ``options`` from the mesh's fortio (service proxy, else exec); ActivityFailed."""
    params = _rest_params(options)
    bound = expected_seconds(options)
    try:
        api = remote.api_client(configuration, secrets)
    except INTERRUPTS:
        raise
    except Exception as exc:
        raise ActivityFailed(f"fortio_load {options.url}: no Kubernetes client: {exc}") from None
    try:
        return _fortio_through_api(
            api, options, params, bound, service, port, ns, fortio_pod, fortio_selector
        )
    finally:
        api.close()


def _fortio_through_api(
    api: Any,
    options: LoadOptions,
    params: dict[str, Any],
    bound: float,
    service: str,
    port: int,
    ns: str,
    fortio_pod: str | None,
    fortio_selector: str,
) -> dict[str, Any]:
    try:
        result = remote.run_via_service_proxy(api, params, service, port, ns, timeout=bound)
        result["Via"] = f"mesh: service {ns}/{service}:{port}"
        return result
    except remote.ProxyUnavailable as exc:
        if exc.status not in (404, 502, 503):
            raise ActivityFailed(f"fortio_load {options.url}: {exc}") from None
        first = str(exc)
    except remote.RemoteError as exc:
        raise ActivityFailed(f"fortio_load {options.url}: {exc}") from None
    # No fortio service: exec fortio in its pod, as `kubectl exec fortio-deploy-... -- fortio load`.
    try:
        pod = fortio_pod or remote.find_pod(api, ns, fortio_selector)
        result = remote.run_via_exec(api, params, ns, pod, timeout=bound)
    except remote.RemoteError as exc:
        raise ActivityFailed(
            f"fortio_load {options.url}: service proxy failed ({first});"
            f" exec fallback failed ({exc})"
        ) from None
    result["Via"] = f"mesh: exec in pod {ns}/{pod}"
    return result


def fortio_load(
    url: str,
    c: int = 2,
    qps: float = 0,
    n: int | None = None,
    t: str | float | None = None,
    timeout: str | float = "3s",
    headers: Mapping[str, str] | list[str] | None = None,
    payload: str | None = None,
    method: str | None = None,
    open_loop: bool = False,
    via: str = "mesh",
    fortio_service: str = "fortio",
    fortio_port: int = 8080,
    ns: str = "default",
    fortio_pod: str | None = None,
    fortio_selector: str = "app=fortio",
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run fortio load against ``url`` and return fortio's result plus flat keys.

    Flat keys: ``count``, ``qps``, ``error_rate``, ``p50_ms``, ``p90_ms``, ``p99_ms``,
    ``max_ms``, ``codes`` (``{200: 17, 503: 3}``). ``qps=0`` is max speed; give ``n`` calls
    or a duration ``t`` (default 5s). ``open_loop`` needs a ``qps`` and measures latency from
    the scheduled send time (this project's load server; real fortio has no such mode).

    The seed's breaker check (``c=2, qps=0, n=20`` against a DestinationRule of one
    connection and one pending request) sheds calls only *sometimes*: a sidecar's Envoy has
    two workers, each with its own connection pool, so two connections rarely collide
    (Istio's docs show 5-15 % of 503s, and runs with none; on the embedded mesh 4 runs of 15
    had no 503 when measured). To assert that a breaker trips, load it with ``c=3`` or more, or
    run the embedded mesh with ``--concurrency 1``, and check with ``slo(require_codes=...)``
    and ``breaker_stats``.
    """
    result = _load(
        url,
        c,
        qps,
        n,
        t,
        timeout,
        headers,
        payload,
        method,
        open_loop,
        via,
        fortio_service,
        fortio_port,
        ns,
        fortio_pod,
        fortio_selector,
        configuration,
        secrets,
    )
    return {**result, **flat_summary(result)}


def _load(
    url: str,
    c: Any,
    qps: Any,
    n: Any,
    t: Any,
    timeout: Any,
    headers: Any,
    payload: Any,
    method: Any,
    open_loop: bool,
    via: str,
    service: str,
    port: int,
    ns: str,
    fortio_pod: str | None,
    fortio_selector: str,
    configuration: Any,
    secrets: Any,
    **extra: Any,
) -> dict[str, Any]:
    try:
        options = _local_options(
            url, c, qps, n, t, timeout, headers, payload, method, open_loop, **extra
        )
    except LoadOptionError as exc:
        raise ActivityFailed(f"fortio_load {url}: {exc}") from None
    if via == "local":
        try:
            result = engine.run(options)
        except engine.LoadTargetError as exc:
            raise ActivityFailed(str(exc)) from None
        if result.get("error"):
            raise ActivityFailed(f"fortio_load {url}: {result['message']}: {result['exception']}")
        result["Via"] = "local"
        result["Note"] = engine.LOCAL_NOTE
        logger.info(engine.LOCAL_NOTE)
        return result
    if via != "mesh":
        raise ActivityFailed(f"fortio_load {url}: via must be 'mesh' or 'local', got {via!r}")
    result = run_in_mesh(
        options, service, port, ns, fortio_pod, fortio_selector, configuration, secrets
    )
    if open_loop and "OpenLoop" not in result:
        raise ActivityFailed(
            f"fortio_load {url}: the fortio at {ns}/{service} is real fortio, which has no"
            " open-loop mode; run chaosmesh's load server (python -m"
            " chaosmesh_ext.load.rest) as that workload, or use via='local' through the"
            " ingress gateway"
        )
    return result


def latency_ms(url: str, percentile: float = 99, **kwargs: Any) -> float:
    """The ``percentile`` latency of a fortio run, in milliseconds."""
    from .load.stats import percentile_value

    result = fortio_load(url, **kwargs)
    hist = result.get("DurationHistogram") or {}
    if not hist.get("Count"):
        raise ActivityFailed(f"latency_ms {url}: the run made no calls")
    return round(percentile_value(hist, float(percentile)) * 1000.0, 4)


def error_rate(url: str, **kwargs: Any) -> float:
    """The fraction (0..1) of calls that were not 2xx/418, fortio's definition of error."""
    return float(fortio_load(url, **kwargs)["error_rate"])


def response_codes(url: str, **kwargs: Any) -> dict[int, int]:
    """``{code: count}`` of a fortio run (-1 = socket error or timeout)."""
    codes: dict[int, int] = fortio_load(url, **kwargs)["codes"]
    return codes


def _classifier(classify: Any) -> tuple[str | None, str | None]:
    """``"header:x-version"`` / ``{"header": ...}`` -> header; a string / ``{"regex": ...}``."""
    if isinstance(classify, Mapping):
        if classify.get("header"):
            return None, str(classify["header"])
        if classify.get("regex"):
            return str(classify["regex"]), None
        raise ActivityFailed("traffic_split: classify needs 'header' or 'regex'")
    if isinstance(classify, str) and classify:
        if classify.lower().startswith("header:"):
            return None, classify.split(":", 1)[1].strip()
        return classify, None
    raise ActivityFailed("traffic_split: classify must be a body regex or 'header:<name>'")


def traffic_split(
    url: str,
    n: int = 100,
    classify: str | Mapping[str, str] = r"(?P<version>v\d+)",
    c: int = 1,
    qps: float = 0,
    timeout: str | float = "3s",
    headers: Mapping[str, str] | list[str] | None = None,
    via: str = "mesh",
    fortio_service: str = "fortio",
    fortio_port: int = 8080,
    ns: str = "default",
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Fraction of ``n`` responses per version, e.g. ``{"v1": 0.9, "v2": 0.1}``.

    ``classify``: a regex on the body (its named group, else its first group, else the whole
    match) or ``"header:<name>"`` to use a response header. Responses that match nothing count
    as ``unclassified``, socket errors as ``error``. fortio's REST API returns no bodies, so
    this uses this project's load server (the embedded mesh's fortio workload, or that server
    deployed as the cluster's fortio); against real fortio it says so.
    """
    regex, header = _classifier(classify)
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ActivityFailed(f"traffic_split: bad classify regex {regex!r}: {exc}") from None
    result = _load(
        url,
        c,
        qps,
        n,
        None,
        timeout,
        headers,
        None,
        None,
        False,
        via,
        fortio_service,
        fortio_port,
        ns,
        None,
        "app=fortio",
        configuration,
        secrets,
        classify_regex=regex,
        classify_header=header,
    )
    counts = result.get("Classification")
    if counts is None:
        raise ActivityFailed(
            f"traffic_split {url}: the fortio at {ns}/{fortio_service} returned no"
            " classification — real fortio's API returns no response bodies. Run chaosmesh's"
            " load server (python -m chaosmesh_ext.load.rest) as the fortio workload, or use"
            " via='local' through the ingress gateway"
        )
    total = sum(counts.values())
    if not total:
        raise ActivityFailed(f"traffic_split {url}: no responses")
    logger.info("traffic_split %s: %s of %d", url, counts, total)
    return {k: round(v / total, 4) for k, v in sorted(counts.items())}


def breaker_stats(
    host: str,
    subset: str | None = None,
    port: int | None = None,
    ns: str = "default",
    fortio_pod: str | None = None,
    fortio_selector: str = "app=fortio",
    timeout: float = 10.0,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Circuit-breaker counters for ``host`` from the load client's sidecar Envoy.

    Returns ``shed`` (requests the breaker refused: 503 with ``x-envoy-overloaded``, the sum
    of ``pending_overflow`` and ``rq_active_overflow``, the http2MaxRequests limit), and
    ``pending_overflow``, ``rq_active_overflow``, ``cx_overflow``, ``active_overflow``,
    ``retry_overflow``, ``ejections_active``, ``rq_total``, ... summed over the
    ``outbound|port|subset|fqdn`` clusters of ``host`` (narrowed by ``port``/``subset``), as
    Istio's circuit-breaking task reads them with ``pilot-agent request GET stats``. The
    counters are Envoy's running totals since the sidecar started: compare a reading before
    and after the load, and expect ``pending_overflow`` to stay 0 after a ``c=2`` run now and
    then (see :func:`fortio_load`).
    """
    try:
        api = remote.api_client(configuration, secrets)
    except INTERRUPTS:
        raise
    except Exception as exc:
        raise ActivityFailed(f"breaker_stats {host}: no Kubernetes client: {exc}") from None
    try:
        return _breaker_stats(api, host, subset, port, ns, fortio_pod, fortio_selector, timeout)
    finally:
        api.close()


def _breaker_stats(
    api: Any,
    host: str,
    subset: str | None,
    port: int | None,
    ns: str,
    fortio_pod: str | None,
    fortio_selector: str,
    timeout: float,
) -> dict[str, Any]:
    try:
        pod = fortio_pod or remote.find_pod(api, ns, fortio_selector, timeout=timeout)
    except remote.RemoteError as exc:
        raise ActivityFailed(f"breaker_stats {host}: {exc}") from None
    problems: list[str] = []
    summary: dict[str, Any] | None = None
    text = ""
    try:
        text = remote.read_envoy_stats(api, pod, ns, timeout=timeout, exec_fallback=False)
        summary = breaker_summary(text, host, ns, port, subset)
    except remote.RemoteError as exc:
        problems.append(str(exc))
    if summary is None or not summary["clusters"]:
        # Istio's merged Prometheus stats leave most cluster counters out by default; the
        # admin's full text stats have them (what Istio's own task reads).
        try:
            text = remote.exec_in_pod(
                api,
                pod,
                ns,
                ["pilot-agent", "request", "GET", "stats"],
                container="istio-proxy",
                timeout=timeout,
            )
            summary = breaker_summary(text, host, ns, port, subset)
        except remote.RemoteError as exc:
            problems.append(f"exec fallback: {exc}")
    if summary is None:
        raise ActivityFailed(f"breaker_stats {host}: " + "; ".join(problems))
    if not summary["clusters"]:
        hosts = ", ".join(known_hosts(text)[:10]) or "none"
        raise ActivityFailed(
            f"breaker_stats {host}: no outbound cluster for {summary['host']}"
            f" (port={port}, subset={subset}) in the sidecar stats of pod {ns}/{pod};"
            f" hosts seen: {hosts}"
        )
    return summary
