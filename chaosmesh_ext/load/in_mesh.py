"""A load run, or a sidecar's breaker counters, from inside the mesh through the Kubernetes API.

Istio applies faults and breakers in the *client's* sidecar, so the load must start in a pod of
the mesh: the fortio pod on a cluster, the ``fortio`` workload on the embedded mesh. This
module decides how to get there with :mod:`.remote`'s calls:

- a run goes to fortio's REST API through the API server's service proxy; when that path is
  not there (404/502/503: no fortio Service), ``fortio load`` is exec'd in the fortio pod;
- breaker counters are read from the sidecar's Prometheus stats through the pod proxy; when
  those leave the cluster's counters out (Istio's merged stats do by default), from Envoy's
  full text stats with ``pilot-agent request GET stats`` exec'd in ``istio-proxy``.

It takes a ready Kubernetes ``ApiClient`` and raises :class:`~.remote.RemoteError` (a
:class:`~chaosmesh_ext.errors.LoadError`) saying what was tried and why it failed; the probes
and ``chaosmesh load --via mesh`` decide how to show that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from . import remote
from .envoy_stats import breaker_summary, known_hosts
from .options import LoadOptions

# Time allowed on top of the run itself for the API round trip and the fortio start.
_SLACK = 15.0
_MAX_UNBOUNDED = 300.0
# Service proxy answers that mean "no fortio Service here": try exec in the pod instead.
_NO_SERVICE = (404, 502, 503)


@dataclass(frozen=True, kw_only=True)
class Fortio:
    """Where the mesh's load client is: its Service (REST API), else its pod (exec)."""

    namespace: str = "default"
    service: str = "fortio"
    port: int = 8080
    pod: str | None = None  # None: the first running pod matching ``selector``
    selector: str = "app=fortio"


def expected_seconds(options: LoadOptions) -> float:
    """An upper bound for how long the run should take (the call's own timeout)."""
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


def rest_params(options: LoadOptions) -> dict[str, Any]:
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
    for key, on in (
        ("jitter", options.jitter),
        ("uniform", options.uniform),
        ("nocatchup", options.nocatchup),
        ("sequential-warmup", options.sequential_warmup),
        ("https-insecure", options.insecure),
    ):
        if on:
            params[key] = "on"
    if options.resolve:
        params["resolve"] = options.resolve
    if options.reuse_range:
        params["connection-reuse"] = "{}:{}".format(*options.reuse_range)
    # Flags fortio's REST API does not read: this project's load server does, and
    # _check_extensions catches a real fortio that ignored them.
    if options.abort_on is not None:
        params["abort-on"] = options.abort_on
    if not options.keepalive:
        params["keepalive"] = "off"
    if options.half_close:
        params["halfclose"] = "on"
    if options.http10:
        params["http1.0"] = "on"
    if options.offset:
        params["offset"] = f"{options.offset:g}s"
    if options.open_loop:
        params["open_loop"] = True
    if options.classify_regex:
        params["classify_regex"] = options.classify_regex
    if options.classify_header:
        params["classify_header"] = options.classify_header
    return params


def run_in_mesh(api: k8s.ApiClient, options: LoadOptions, *, fortio: Fortio) -> dict[str, Any]:
    """Run ``options`` from the mesh's fortio; fortio's result with ``Via`` saying how.

    Raises :class:`~.remote.RemoteError` when neither path works, or when the fortio there
    cannot do what the options ask (open loop, classification: real fortio has neither).
    """
    params = rest_params(options)
    bound = expected_seconds(options)
    ns = fortio.namespace
    try:
        result = remote.run_via_service_proxy(
            api, params, service=fortio.service, port=fortio.port, namespace=ns, timeout=bound
        )
        result["Via"] = f"mesh: service {ns}/{fortio.service}:{fortio.port}"
    except remote.ProxyUnavailable as exc:
        if exc.status not in _NO_SERVICE:
            raise
        # No fortio service: exec fortio in its pod, as `kubectl exec fortio-... -- fortio load`.
        try:
            pod = fortio.pod or remote.find_pod(api, ns, fortio.selector)
            result = remote.run_via_exec(api, params, namespace=ns, pod=pod, timeout=bound)
        except remote.RemoteError as second:
            raise remote.RemoteError(
                f"service proxy failed ({exc}); exec fallback failed ({second})"
            ) from None
        result["Via"] = f"mesh: exec in pod {ns}/{pod}"
    _check_extensions(options, result, fortio)
    return result


def _unechoed_flags(options: LoadOptions, result: dict[str, Any]) -> list[str]:
    """Flags fortio's REST API does not read, asked for here but absent from the result
    (each shows in a field of fortio's result JSON; this project's load server honours them)."""
    asked = (
        ("-abort-on", "AbortOn", options.abort_on or 0),
        ("-keepalive=false", "DisableKeepAlive", not options.keepalive),
        ("-halfclose", "AllowHalfClose", options.half_close),
        ("-http1.0", "HTTP10", options.http10),
        ("-offset", "Offset", round(options.offset * 1e9)),
    )
    return [flag for flag, key, value in asked if value and result.get(key) != value]


def _check_extensions(options: LoadOptions, result: dict[str, Any], fortio: Fortio) -> None:
    """Real fortio ignores our REST extensions: say so instead of returning half a result."""
    where = f"the fortio at {fortio.namespace}/{fortio.service}"
    ignored = _unechoed_flags(options, result)
    if ignored:
        raise remote.RemoteError(
            f"{where} ignored {', '.join(ignored)} (fortio's REST API has no such parameter):"
            " run chaosmesh's load server (python -m chaosmesh_ext.load.rest) as that"
            " workload, or leave the flag out"
        )
    run_ours = (
        "run chaosmesh's load server (python -m chaosmesh_ext.load.rest) as that workload,"
        " or use via='local' through the ingress gateway"
    )
    if options.open_loop and "OpenLoop" not in result:
        raise remote.RemoteError(f"{where} is real fortio, which has no open-loop mode; {run_ours}")
    wants_classes = options.classify_regex is not None or options.classify_header is not None
    if wants_classes and result.get("Classification") is None:
        raise remote.RemoteError(
            f"{where} returned no classification — real fortio's API returns no response"
            f" bodies. {run_ours[0].upper()}{run_ours[1:]}"
        )


def breaker_stats(
    api: k8s.ApiClient,
    host: str,
    *,
    fortio: Fortio,
    subset: str | None = None,
    port: int | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Breaker counters for ``host`` (see :func:`.envoy_stats.breaker_summary`) as the fortio
    pod's sidecar counts them; raises :class:`~.remote.RemoteError`."""
    ns = fortio.namespace
    pod = fortio.pod or remote.find_pod(api, ns, fortio.selector, timeout=timeout)
    problems: list[str] = []
    summary: dict[str, Any] | None = None
    text = ""
    try:
        text = remote.read_envoy_stats(api, pod, ns, timeout=timeout, exec_fallback=False)
        summary = breaker_summary(text, host, namespace=ns, port=port, subset=subset)
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
                command=["pilot-agent", "request", "GET", "stats"],
                container="istio-proxy",
                timeout=timeout,
            )
            summary = breaker_summary(text, host, namespace=ns, port=port, subset=subset)
        except remote.RemoteError as exc:
            problems.append(f"exec fallback: {exc}")
    if summary is None:
        raise remote.RemoteError("; ".join(problems))
    if not summary["clusters"]:
        hosts = ", ".join(known_hosts(text)[:10]) or "none"
        raise remote.RemoteError(
            f"no outbound cluster for {summary['host']} (port={port}, subset={subset}) in the"
            f" sidecar stats of pod {ns}/{pod}; hosts seen: {hosts}"
        )
    return summary
