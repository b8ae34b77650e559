"""Chaos Toolkit probes: load from inside the mesh, latency, errors, traffic split, breakers.

Every probe returns plain JSON values. The load runs where Istio applies faults and
breakers, in the client's sidecar: by default from the fortio workload of the mesh
(``via="mesh"``: fortio's REST API through the Kubernetes API's service proxy — the same call
on a cluster and on the embedded mesh — with ``fortio load`` exec'd in the pod as the cluster
fallback). ``via="local"`` runs our engine in the chaos process. Every probe is bounded in
time; failures are ``ActivityFailed`` naming the URL (or host) and the reason.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext._activity import (
    Configuration,
    Secrets,
    check_name,
    check_target,
    failures_as_activity_failed,
    istio_objects,
    kube_client,
)

# Breaker sizing lives in its own module (the knee search and the advice build on the load
# runs); users call them from here.
from chaosmesh_ext.breaker_sizing import advise_breaker, capacity_knee
from chaosmesh_ext.istio.resources import GROUP
from chaosmesh_ext.istio.traffic import declared_split
from chaosmesh_ext.kube.cluster_lint import lint_cluster
from chaosmesh_ext.kube.objects import ObjectRef
from chaosmesh_ext.load import engine, in_mesh
from chaosmesh_ext.load.bounds import LOAD_BOUNDS, check_counters, check_load
from chaosmesh_ext.load.fortio_flags import load_input
from chaosmesh_ext.load.options import ACTIVITY, LoadInput, LoadOptions, normalize
from chaosmesh_ext.load.results import flat_summary
from chaosmesh_ext.load.stats import percentile_value

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
    expect: Mapping[str, Any] | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **fortio_flags: Any,
) -> dict[str, Any]:
    """Run fortio load against ``url`` and return fortio's result plus flat keys.

    Any other ``fortio load`` flag may be given by its name (``"abort-on": 503``,
    ``"allow_initial_errors": true``, ``"p": "50,99"``): the same flags and meanings as
    ``chaosmesh load`` (docs/FORTIO-FLAGS.md); one that would have no effect is logged, one
    this engine refuses fails the probe with the reason.

    Flat keys: ``count``, ``qps``, ``error_rate``, ``p50_ms``, ``p90_ms``, ``p99_ms``,
    ``max_ms``, ``codes`` (``{200: 17, 503: 3}``). ``qps=0`` is max speed; give ``n`` calls
    or a duration ``t`` (default 5s). ``open_loop`` needs a ``qps`` and measures latency from
    the scheduled send time (this project's load server; real fortio has no such mode).

    A breaker of one connection and one pending request, loaded with ``c=2, qps=0, n=20``,
    sheds calls only *sometimes*: a sidecar's Envoy has two workers, each with its own
    connection pool, so two connections seldom collide and many such runs see no 503 at all
    (Istio's docs show 5-15 % of 503s). To assert that a breaker trips, load it with ``c=3``
    or more, or run the embedded mesh with ``--concurrency 1``, and check with
    ``slo(require_codes=...)`` and ``breaker_stats``.

    ``expect``: bounds the run must meet, in ``slo``'s words (``min_error_rate``,
    ``min_p50_ms``, ``require_codes``, ``max_p99_ms``, ...). A method probe has no tolerance,
    so this is how it says the fault took effect: when a bound is missed it raises
    ``ActivityFailed`` ("the fault did not show"), and the run is reported as failed.
    """
    _check_expect("fortio_load", expect, LOAD_BOUNDS)
    given = LoadInput(
        url=url,
        c=c,
        qps=qps,
        n=n,
        t=t,
        timeout=timeout,
        headers=headers,
        payload=payload,
        method=method,
        open_loop=open_loop,
    )
    if fortio_flags:
        given = _with_fortio_flags(given, fortio_flags)
    fortio = in_mesh.Fortio(
        namespace=ns,
        service=fortio_service,
        port=fortio_port,
        pod=fortio_pod,
        selector=fortio_selector,
    )
    result = _load(given, via=via, fortio=fortio, configuration=configuration, secrets=secrets)
    flat = {**result, **flat_summary(result)}
    if expect:
        _expect(f"fortio_load {flat.get('URL') or url}", check_load, flat, expect)
    return flat


def _check_expect(doing: str, expect: Any, known: tuple[str, ...] | None) -> None:
    """Refuse a malformed ``expect`` before any load is sent, suggesting the closest name."""
    if expect is None:
        return
    if not isinstance(expect, Mapping):
        raise ActivityFailed(f"{doing}: expect must be a mapping of bounds, got {expect!r}")
    if known is None:
        return
    for key in expect:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ActivityFailed(
                f"{doing}: expect: unknown bound '{key}'{hint}; known: {', '.join(known)}"
            )


def _expect(
    doing: str,
    check: Callable[[Mapping[str, Any], Mapping[str, Any]], list[str]],
    result: Mapping[str, Any],
    expect: Mapping[str, Any],
) -> None:
    """``ActivityFailed`` when ``result`` misses a bound of ``expect`` (or one is malformed)."""
    try:
        missed = check(result, expect)
    except ValueError as exc:
        raise ActivityFailed(f"{doing}: expect: {exc}") from None
    if missed:
        raise ActivityFailed(f"{doing}: the fault did not show: " + "; ".join(missed))


def _with_fortio_flags(given: LoadInput, flags: Mapping[str, Any]) -> LoadInput:
    """``given`` with fortio flags from the probe's extra arguments (the CLI's table)."""
    doing = f"fortio_load {given.url}"
    with failures_as_activity_failed(doing):
        parsed = load_input(given.url, flags, prefix="", base=given)
    for note in parsed.ignored:
        logger.warning("%s: %s", doing, note)
    for name in parsed.output:
        logger.warning(
            "%s: %s: no effect in a probe (the result is the probe's output)", doing, name
        )
    return parsed.given


def _load(
    given: LoadInput,
    *,
    via: str,
    fortio: in_mesh.Fortio,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> dict[str, Any]:
    """One run of ``given``, from the mesh's fortio (``via="mesh"``) or this process."""
    doing = f"fortio_load {given.url}"
    with failures_as_activity_failed(doing):
        options = normalize(given, ACTIVITY)
    if via == "local":
        check_target(configuration, doing)
        return _load_locally(options)
    if via != "mesh":
        raise ActivityFailed(f"{doing}: via must be 'mesh' or 'local', got {via!r}")
    with (
        kube_client(configuration, secrets, doing=doing) as api,
        failures_as_activity_failed(doing),
    ):
        return in_mesh.run_in_mesh(api, options, fortio=fortio)


def _load_locally(options: LoadOptions) -> dict[str, Any]:
    with failures_as_activity_failed():
        result = engine.run(options)
    if result.get("error"):
        raise ActivityFailed(
            f"fortio_load {options.url}: {result['message']}: {result['exception']}"
        )
    result["Via"] = "local"
    result["Note"] = engine.LOCAL_NOTE
    if not _noted_local:
        # Once per run is enough: every local load's result carries the note too.
        _noted_local.append(True)
        logger.info(engine.LOCAL_NOTE)
    return result


_noted_local: list[bool] = []


def _load_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """A convenience probe's own arguments, minus its own, for :func:`fortio_load` (the
    load arguments are spelt out in each signature so ``chaos discover`` lists them; any
    other fortio flag arrives in ``fortio_flags``)."""
    flags = arguments.get("fortio_flags") or {}
    own = {k: v for k, v in arguments.items() if k not in ("percentile", "fortio_flags")}
    return {**own, **flags}


def latency_ms(
    url: str,
    percentile: float = 99,
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
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **fortio_flags: Any,
) -> float:
    """The ``percentile`` latency of a fortio run, in milliseconds (load arguments as
    :func:`fortio_load`)."""
    result = fortio_load(**_load_arguments(locals()))
    hist = result.get("DurationHistogram") or {}
    if not hist.get("Count"):
        raise ActivityFailed(f"latency_ms {url}: the run made no calls")
    return round(percentile_value(hist, float(percentile)) * 1000.0, 4)


def error_rate(
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
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **fortio_flags: Any,
) -> float:
    """The fraction (0..1) of calls that were not 2xx/418, fortio's definition of error
    (load arguments as :func:`fortio_load`)."""
    result = fortio_load(**_load_arguments(locals()))
    return float(result["error_rate"])


def response_codes(
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
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
    **fortio_flags: Any,
) -> dict[int, int]:
    """``{code: count}`` of a fortio run (-1 = socket error or timeout; load arguments as
    :func:`fortio_load`)."""
    result = fortio_load(**_load_arguments(locals()))
    codes: dict[int, int] = result["codes"]
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
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, float]:
    """Fraction of ``n`` responses per version, e.g. ``{"v1": 0.9, "v2": 0.1}``.

    ``classify``: a regex on the body (its named group, else its first group, else the whole
    match) or ``"header:<name>"`` to use a response header. Responses that match nothing count
    by their status when it is not 2xx (``"503"``: an abort or a shed call), else as
    ``unclassified``; socket errors as ``error``. fortio's REST API returns no bodies, so
    this uses this project's load server (the embedded mesh's fortio workload, or that server
    deployed as the cluster's fortio); against real fortio it says so.
    """
    regex, header = _classifier(classify)
    if regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ActivityFailed(f"traffic_split: bad classify regex {regex!r}: {exc}") from None
    given = LoadInput(
        url=url,
        c=c,
        qps=qps,
        n=n,
        timeout=timeout,
        headers=headers,
        classify_regex=regex,
        classify_header=header,
    )
    fortio = in_mesh.Fortio(namespace=ns, service=fortio_service, port=fortio_port)
    result = _load(given, via=via, fortio=fortio, configuration=configuration, secrets=secrets)
    counts: dict[str, int] = result.get("Classification") or {}
    total = sum(counts.values())
    if not total:
        raise ActivityFailed(f"traffic_split {url}: no responses")
    logger.info("traffic_split %s: %s of %d", url, counts, total)
    return {k: round(v / total, 4) for k, v in sorted(counts.items())}


def split_follows_weights(
    url: str,
    virtual_service: str,
    route: str | int | None = None,
    n: int = 400,
    classify: str | Mapping[str, str] = r"(?P<version>v\d+)",
    c: int = 2,
    via: str = "mesh",
    headers: Mapping[str, str] | list[str] | None = None,
    ns: str = "default",
    fortio_ns: str | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """How far the measured split is from the weights ``virtual_service`` declares now.

    Sends ``n`` requests to ``url`` (from the mesh's fortio, or ``via="local"`` e.g. through
    the ingress gateway), classifies each response (``classify``: a body regex or
    ``"header:<name>"``; the class names must be the subset names) and returns
    ``max_deviation`` (the largest absolute difference of a fraction, 0..1) with the
    ``declared`` and ``observed`` fractions. Use it with
    ``{"type": "range", "range": [0, 0.05], "target": "max_deviation"}``.
    """
    name = check_name(virtual_service, "virtual_service", "VirtualService")
    with istio_objects(configuration, secrets) as objects, failures_as_activity_failed():
        declared = declared_split(objects.get(ObjectRef("VirtualService", ns, name)), route)
    observed = traffic_split(
        url,
        n=n,
        classify=classify,
        c=c,
        headers=headers,
        via=via,
        ns=fortio_ns or ns,
        configuration=configuration,
        secrets=secrets,
    )
    keys = sorted(set(declared) | set(observed))
    deviation = max(abs(observed.get(k, 0.0) - declared.get(k, 0.0)) for k in keys)
    logger.info(
        f"split_follows_weights {ns}/{virtual_service}: declared {declared}, observed "
        f"{observed}, max deviation {deviation:.3f}"
    )
    return {
        "max_deviation": round(deviation, 4),
        "declared": declared,
        "observed": observed,
        "n": n,
    }


def breaker_stats(
    host: str,
    subset: str | None = None,
    port: int | None = None,
    ns: str = "default",
    fortio_pod: str | None = None,
    fortio_selector: str = "app=fortio",
    timeout: float = 10.0,
    expect: Mapping[str, Any] | None = None,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
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

    ``expect``: ``min_<counter>`` / ``max_<counter>`` bounds on the reading, e.g.
    ``{"min_shed": 1}`` (the breaker shed calls) or ``{"max_rq_retry": 0}``; when one is
    missed it raises ``ActivityFailed`` ("the fault did not show"), so a method probe can say
    the breaker or retry policy took effect.
    """
    doing = f"breaker_stats {host}"
    _check_expect(doing, expect, None)
    fortio = in_mesh.Fortio(namespace=ns, pod=fortio_pod, selector=fortio_selector)
    with (
        kube_client(configuration, secrets, doing=doing) as api,
        failures_as_activity_failed(doing),
    ):
        stats = in_mesh.breaker_stats(
            api, host, fortio=fortio, subset=subset, port=port, timeout=timeout
        )
    if expect:
        _expect(doing, check_counters, stats, expect)
    return stats


def lint_mesh(
    ns: str = "default",
    all_namespaces: bool = False,
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> dict[str, Any]:
    """Lint the Istio objects on the cluster, like ``chaosmesh lint`` on files.

    Checks the VirtualServices, DestinationRules and Gateways of ``ns`` (or of every
    namespace with ``all_namespaces``) against the Services and Deployments they reference:
    schema, hosts that match no Service, subsets no DestinationRule defines, gateways that do
    not exist, two VirtualServices for one host, faults without a percentage.

    Returns ``{"errors": n, "warnings": n, "info": n, "ok": bool, "findings": [text...],
    "notes": [text...]}``; ``ok`` is true when there is no error. In a steady-state
    hypothesis: ``"tolerance": {"type": "range", "range": [0, 0], "target": "errors"}``.
    Raises ``ActivityFailed`` when the objects cannot be read (naming which and why).
    """
    if not isinstance(ns, str) or not ns.strip():
        raise ActivityFailed(f"lint_mesh: argument 'ns' must be a namespace name, got {ns!r}")
    with (
        istio_objects(configuration, secrets) as objects,
        failures_as_activity_failed(f"lint_mesh: cannot read {GROUP} objects"),
    ):
        return lint_cluster(objects, ns, all_namespaces=all_namespaces)
