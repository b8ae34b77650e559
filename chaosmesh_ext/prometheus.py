"""Prometheus probes: judge an experiment by Istio's standard metrics, as Flagger and Argo do.

The same probes work on a cluster's Prometheus and on the embedded mesh's (``chaosmesh mesh up
--prometheus``), because the embedded mesh exports ``istio_requests_total`` and
``istio_request_duration_milliseconds`` with Istio's labels.

Settings
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

import json
import math
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from requests.adapters import Retry

__all__ = [
    "prometheus_query",
    "request_duration_ms",
    "request_rate",
    "request_success_rate",
]

DEFAULT_TIMEOUT = 10.0
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
    configuration: Configuration = None,
    secrets: Secrets = None,
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
    configuration: Configuration = None,
    secrets: Secrets = None,
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
    configuration: Configuration = None,
    secrets: Secrets = None,
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
    configuration: Configuration = None,
    secrets: Secrets = None,
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
    query: str, on_no_data: str, configuration: Configuration, secrets: Secrets
) -> Any:
    _check_choice("on_no_data", on_no_data, NO_DATA_CHOICES)
    value = _run(query, None, on_no_data, configuration, secrets)
    if isinstance(value, dict):
        # The service queries aggregate with sum(); several series mean a hand-edited query.
        raise ActivityFailed(f"Prometheus query {query!r} returned several series: {value}")
    return value


# --------------------------------------------------------------------------------------------
# Talking to Prometheus


def _settings(configuration: Configuration) -> tuple[str, float, bool | str]:
    config = configuration or {}
    base_url = str(config.get("prometheus_base_url") or "").rstrip("/")
    if not base_url:
        raise ActivityFailed(
            "configuration 'prometheus_base_url' is not set (e.g. http://prometheus.istio-system:9090;"
            " on the embedded mesh: `chaosmesh mesh url prometheus`)"
        )
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise ActivityFailed(
            f"configuration 'prometheus_base_url' must be an http(s) URL, got {_redact(base_url)!r}"
        )
    raw_timeout = config.get("prometheus_timeout", DEFAULT_TIMEOUT)
    try:
        timeout = float(raw_timeout)
    except (TypeError, ValueError):
        timeout = math.nan
    if not timeout > 0:
        raise ActivityFailed(
            f"configuration 'prometheus_timeout' must be a positive number of seconds, "
            f"got {raw_timeout!r}"
        )
    verify: bool | str = _truthy(config.get("prometheus_verify_ssl", True))
    if verify and config.get("prometheus_ca_file"):
        verify = str(config["prometheus_ca_file"])
    return base_url, timeout, verify


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def _redact(url: str) -> str:
    """The URL without any user:password part (never put credentials in a message)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _client(configuration: Configuration, secrets: Secrets) -> tuple[PrometheusConnect, float]:
    base_url, timeout, verify = _settings(configuration)
    secrets = secrets or {}
    headers: dict[str, str] = {}
    auth: tuple[str, str] | None = None
    if secrets.get("prometheus_token"):
        headers["Authorization"] = f"Bearer {secrets['prometheus_token']}"
    elif secrets.get("prometheus_username"):
        auth = (str(secrets["prometheus_username"]), str(secrets.get("prometheus_password") or ""))
    session = requests.Session()
    session.verify = verify
    # One quick retry on a refused/reset connection only: a query that reached Prometheus is
    # never repeated, so the call stays bounded by about twice the timeout.
    retry = Retry(total=1, connect=1, read=0, status=0, other=0, backoff_factor=0.2)
    client = PrometheusConnect(
        url=base_url, headers=headers or None, auth=auth, session=session, retry=retry,
        timeout=timeout,  # type: ignore[arg-type]  # annotated int, used as requests' timeout
    )  # fmt: skip
    return client, timeout


def _run(
    query: str,
    at: str | float | None,
    on_no_data: str,
    configuration: Configuration,
    secrets: Secrets,
) -> Any:
    client, timeout = _client(configuration, secrets)
    params: dict[str, Any] = {"timeout": f"{timeout:g}"}  # Prometheus stops the query too
    if at is not None:
        params["time"] = at
    where = _redact(client.url)
    try:
        result = client.custom_query(query, params=params)
    except requests.exceptions.SSLError as exc:
        raise ActivityFailed(
            f"Prometheus query {query!r} failed: TLS: {_reason(exc)} (set prometheus_ca_file"
            " to your CA bundle, or prometheus_verify_ssl: false)"
        ) from None
    except requests.ConnectionError as exc:
        # urllib3's retry wrapper turns a read timeout into a ConnectionError: tell them apart.
        if isinstance(exc, requests.Timeout) or "ReadTimeoutError" in str(exc):
            raise ActivityFailed(
                f"Prometheus query {query!r} failed: no answer from {where} within {timeout:g}s"
            ) from None
        raise ActivityFailed(
            f"Prometheus query {query!r} failed: cannot reach {where}: {_reason(exc)}"
        ) from None
    except (requests.JSONDecodeError, KeyError, TypeError) as exc:
        # 200 but not Prometheus' JSON: a login page of a proxy in front, a wrong path, ...
        raise ActivityFailed(
            f"Prometheus query {query!r} failed: {where} did not answer Prometheus JSON ({exc})"
        ) from None
    except requests.Timeout:
        raise ActivityFailed(
            f"Prometheus query {query!r} failed: no answer from {where} within {timeout:g}s"
        ) from None
    except requests.RequestException as exc:
        raise ActivityFailed(
            f"Prometheus query {query!r} failed: {type(exc).__name__}: {_reason(exc)}"
        ) from None
    except PrometheusApiClientException as exc:
        raise ActivityFailed(f"Prometheus query {query!r} failed: {_api_error(exc)}") from None
    finally:
        client.close()
    value = flatten(result)
    if _is_empty(value):
        if on_no_data == "zero":
            return 0.0
        if on_no_data == "null":
            return None
        raise ActivityFailed(
            f"Prometheus query {query!r} returned no data (no matching series, or NaN: no "
            f"traffic in the window?); pass on_no_data='zero' or 'null' to accept that"
        )
    return value


def _reason(exc: Exception) -> str:
    """The innermost cause, short (urllib3 wraps it in several layers)."""
    text = str(exc)
    match = re.search(r"\[Errno [^\]]+\] ([^')\"]+)", text) or re.search(
        r"\[SSL: ([A-Z_]+)\] ([^(')\"]+)", text
    )
    if match:
        return " ".join(match.groups()).strip()
    return text[:200]


def _api_error(exc: PrometheusApiClientException) -> str:
    """'HTTP 400: bad_data: parse error ...' from the client's 'HTTP Status Code 400 (b'...')'."""
    text = str(exc)
    status = re.search(r"HTTP Status Code (\d+)", text)
    code = status.group(1) if status else "?"
    body = re.search(r"\(b?'(.*)'\)$", text, re.S) or re.search(r'\(b?"(.*)"\)$', text, re.S)
    detail = ""
    if body:
        raw = body.group(1)
        try:
            payload = json.loads(raw.encode().decode("unicode_escape"))
            detail = f"{payload.get('errorType', 'error')}: {payload.get('error', '')}"
        except (ValueError, AttributeError):
            detail = raw[:300]
    if code in ("401", "403"):
        detail = (detail + " " if detail else "") + (
            "(check the secrets prometheus_token or prometheus_username/prometheus_password)"
        )
    return f"HTTP {code}: {detail}".rstrip(": ")


# --------------------------------------------------------------------------------------------
# Flattening Prometheus results for tolerances


def flatten(result: Any) -> Any:
    """Prometheus ``data.result`` -> a number, a list, or a dict keyed by label set."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return _value(result[1])  # scalar (or string) result: [time, "value"]
    if not isinstance(result, list):
        return result
    series: dict[str, Any] = {}
    for item in result:
        metric = item.get("metric") or {}
        if "values" in item:
            value: Any = [_value(v[1]) for v in item["values"]]
        else:
            value = _value((item.get("value") or [None, "NaN"])[1])
        series[_series_key(metric, series)] = value
    if len(series) == 1:
        return next(iter(series.values()))
    return series


def _series_key(metric: dict[str, str], taken: dict[str, Any]) -> str:
    labels = {k: v for k, v in metric.items() if k != "__name__"}
    key = ",".join(f"{k}={labels[k]}" for k in sorted(labels)) or metric.get("__name__", "{}")
    if key in taken and "__name__" in metric:
        key = f"{metric['__name__']}{{{key}}}"
    return key


def _value(raw: Any) -> Any:
    try:
        return float(raw)
    except (TypeError, ValueError):
        return raw  # a string result


def _is_empty(value: Any) -> bool:
    if value is None or value == [] or value == {}:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, list):
        return all(isinstance(v, float) and math.isnan(v) for v in value)
    if isinstance(value, dict):
        return all(_is_empty(v) for v in value.values())
    return False
