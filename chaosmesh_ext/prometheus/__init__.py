"""Prometheus probes: judge an experiment by Istio's standard metrics, as Flagger and Argo do.

The same probes work on a cluster's Prometheus and on the embedded mesh's (``chaosmesh mesh up
--prometheus``), because the embedded mesh exports ``istio_requests_total`` and
``istio_request_duration_milliseconds`` with Istio's labels.

Settings (``settings.PrometheusSettings``)
    configuration ``prometheus_base_url`` (required), ``prometheus_timeout`` (seconds per
    call, default 10), ``prometheus_verify_ssl`` (default true), ``prometheus_ca_file``
    (a CA bundle for a private CA); secrets ``prometheus_token`` (bearer) or
    ``prometheus_username`` / ``prometheus_password`` (basic auth). Secrets are sent only as
    request headers, never returned, logged or put in an error message (journals stay clean).

Reporter
    The service probes default to ``reporter="source"``: fault-injected aborts and circuit
    breaker 503s are produced by the *client's* sidecar and never reach the destination, so
    ``reporter="destination"`` (Flagger's default) does not see them and reads 100 % success
    while callers get errors. Use ``reporter="destination"`` to see what the server saw.

No data
    A query with no result (no traffic in the window, a wrong service name, a metric not
    scraped) is never a silent 0: ``on_no_data="fail"`` (default, as Flagger does) raises
    ``ActivityFailed`` naming the query; ``"zero"`` returns 0.0 and ``"null"`` returns None.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext._activity import (
    Configuration,
    Secrets,
    check_target,
    failures_as_activity_failed,
)

from .client import query as run_query
from .results import is_empty
from .settings import prometheus_settings, redact

__all__ = [
    "prometheus_query",
    "request_duration_ms",
    "request_rate",
    "request_success_rate",
]

logger = logging.getLogger("chaostoolkit")

NO_DATA_CHOICES = ("fail", "zero", "null")
REPORTERS = ("source", "destination")
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


# --------------------------------------------------------------------------------------------
# Probes


def prometheus_query(
    query: str,
    at: str | float | None = None,
    on_no_data: str = "fail",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> Any:
    """Run an instant PromQL ``query`` (at ``at``: RFC 3339 or Unix time; default now).

    Results are flattened for tolerances: a scalar, or a vector with one series, gives a
    number; several series give ``{"label=value,...": number}``; a range vector gives a list
    of numbers (or a dict of lists). NaN counts as no data (``on_no_data``).
    """
    _check_choice("on_no_data", on_no_data, NO_DATA_CHOICES)
    if not isinstance(query, str) or not query.strip():
        raise ActivityFailed("prometheus_query: argument 'query' must be a non-empty PromQL string")
    return _run(query, at=at, on_no_data=on_no_data, configuration=configuration, secrets=secrets)


def request_success_rate(
    service: str,
    window: str = "1m",
    reporter: str = "source",
    ns: str = "default",
    on_no_data: str = "fail",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> float | None:
    """Fraction (0..1) of requests to ``service`` in ``ns`` that were not 5xx, over ``window``.

    Istio's standard PromQL (Flagger's request-success-rate, as a fraction). The default
    ``reporter="source"`` counts client-side aborts and breaker 503s; ``"destination"`` cannot
    see them. A window with no requests is no data, not 100 %.
    """
    selector = _service_selector(service, ns, reporter, window)
    query = (
        f'(sum(rate(istio_requests_total{{{selector},response_code!~"5.."}}[{window}]))'
        " or on() vector(0))"  # all requests failing is 0 %, not "no data"
        f" / sum(rate(istio_requests_total{{{selector}}}[{window}]))"
    )
    return _number(_checked_probe(query, on_no_data, configuration, secrets))


def request_duration_ms(
    service: str,
    percentile: float = 99,
    window: str = "1m",
    reporter: str = "source",
    ns: str = "default",
    on_no_data: str = "fail",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> float | None:
    """The ``percentile`` request duration (ms) of ``service`` in ``ns`` over ``window``.

    ``histogram_quantile`` over ``istio_request_duration_milliseconds`` (Flagger's
    request-duration). With the default ``reporter="source"`` it includes injected delays and
    the client's waiting; the destination never sees an injected delay.
    """
    try:
        fraction = float(percentile) / 100.0
    except (TypeError, ValueError):
        fraction = math.nan
    if not 0 < fraction <= 1:
        raise ActivityFailed(
            f"request_duration_ms: argument 'percentile' must be in (0, 100], got {percentile!r}"
        )
    selector = _service_selector(service, ns, reporter, window)
    query = (
        f"histogram_quantile({fraction:g}, sum(rate("
        f"istio_request_duration_milliseconds_bucket{{{selector}}}[{window}])) by (le))"
    )
    return _number(_checked_probe(query, on_no_data, configuration, secrets))


def request_rate(
    service: str,
    window: str = "1m",
    reporter: str = "source",
    ns: str = "default",
    on_no_data: str = "fail",
    configuration: Configuration | None = None,
    secrets: Secrets | None = None,
) -> float | None:
    """Requests per second to ``service`` in ``ns`` over ``window`` (every response code)."""
    selector = _service_selector(service, ns, reporter, window)
    query = f"sum(rate(istio_requests_total{{{selector}}}[{window}]))"
    return _number(_checked_probe(query, on_no_data, configuration, secrets))


# --------------------------------------------------------------------------------------------
# Query building


def _check_choice(argument: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ActivityFailed(f"argument '{argument}' must be one of {list(choices)}, got {value!r}")


def _service_selector(service: str, ns: str, reporter: str, window: str) -> str:
    """Label matchers for one service as istio-proxy labels it.

    ``destination_service`` (the FQDN ``<name>.<ns>.svc.<domain>``) comes from the route's
    cluster, so it is set even when no endpoint answered. ``destination_workload_namespace``
    and, on recent Istio, ``destination_service_namespace`` come from the peer and read
    "unknown" for client-side aborts: selecting on them would hide exactly those failures.
    """
    for argument, value in (("service", service), ("ns", ns)):
        if not isinstance(value, str) or not _DNS_LABEL.match(value):
            raise ActivityFailed(
                f"argument '{argument}' must be a Kubernetes name (DNS-1123 label), got {value!r}"
            )
    _check_choice("reporter", reporter, REPORTERS)
    if not isinstance(window, str) or not _DURATION.match(window):
        raise ActivityFailed(
            f"argument 'window' must be a Prometheus duration such as '1m' or '30s', got {window!r}"
        )
    return (
        f'reporter="{reporter}",destination_service_name="{service}",'
        f'destination_service=~"{service}\\\\.{ns}(\\\\..*)?"'
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _checked_probe(
    query: str,
    on_no_data: str,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> Any:
    _check_choice("on_no_data", on_no_data, NO_DATA_CHOICES)
    value = _run(query, None, on_no_data, configuration, secrets)
    if isinstance(value, dict):
        # The service queries aggregate with sum(); several series mean a hand-edited query.
        raise ActivityFailed(f"Prometheus query {query!r} returned several series: {value}")
    return value


# --------------------------------------------------------------------------------------------
# Talking to Prometheus


def _run(
    query: str,
    at: str | float | None,
    on_no_data: str,
    configuration: Configuration | None,
    secrets: Secrets | None,
) -> Any:
    # On the embedded target the mesh (and its Prometheus) must be the run's, still running.
    check_target(configuration, f"Prometheus query {query!r}")
    with failures_as_activity_failed():
        settings = prometheus_settings(configuration, secrets)
        logger.info("chaosmesh: Prometheus %s query: %s", redact(settings.base_url), query)
        value = run_query(settings, query, at=at)
    logger.info("chaosmesh: Prometheus query %s -> %s", query, value)
    if is_empty(value):
        if on_no_data == "zero":
            return 0.0
        if on_no_data == "null":
            return None
        raise ActivityFailed(
            f"Prometheus query {query!r} returned no data (no matching series, or NaN: no "
            f"traffic in the window?); pass on_no_data='zero' or 'null' to accept that"
        )
    return value
