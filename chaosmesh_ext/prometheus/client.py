"""One instant PromQL query against a Prometheus, bounded, with errors a user can act on.

:func:`query` returns Prometheus' ``data.result`` flattened for tolerances
(:func:`.results.flatten`), or raises :class:`~chaosmesh_ext.errors.PrometheusError` naming
the query and what went wrong (TLS, no answer, not Prometheus JSON, HTTP status) — never a
credential.
"""

from __future__ import annotations

import re
from typing import Any

import requests
import urllib3
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from requests.adapters import Retry

from chaosmesh_ext.errors import PrometheusError

from .results import flatten
from .settings import PrometheusSettings, redact

__all__ = ["query"]


class _LastResponse:
    """A session hook keeping the last HTTP response: prometheus-api-client's exception
    carries only a formatted message, so its status and body are read from the response."""

    def __init__(self) -> None:
        self.response: requests.Response | None = None

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.response = response


def _connect(settings: PrometheusSettings, last: _LastResponse) -> PrometheusConnect:
    session = requests.Session()
    session.verify = settings.verify
    session.hooks["response"].append(last)
    # One quick retry on a refused/reset connection only: a query that reached Prometheus is
    # never repeated, so the call stays bounded by about twice the timeout.
    retry = Retry(total=1, connect=1, read=0, status=0, other=0, backoff_factor=0.2)
    return PrometheusConnect(
        url=settings.base_url, headers=settings.headers or None, auth=settings.auth,
        session=session, retry=retry,
        timeout=settings.timeout,  # type: ignore[arg-type]  # annotated int, used as requests' timeout
    )  # fmt: skip


def query(settings: PrometheusSettings, promql: str, *, at: str | float | None = None) -> Any:
    """Run the instant query ``promql`` (at ``at``: RFC 3339 or Unix time; default now)."""
    last = _LastResponse()
    client = _connect(settings, last)
    timeout = settings.timeout
    params: dict[str, Any] = {"timeout": f"{timeout:g}"}  # Prometheus stops the query too
    if at is not None:
        params["time"] = at
    where = redact(client.url)
    failed = f"Prometheus query {promql!r} failed"
    try:
        result = client.custom_query(promql, params=params)
    except requests.exceptions.SSLError as exc:
        raise PrometheusError(
            f"{failed}: TLS: {_reason(exc)} (set prometheus_ca_file to your CA bundle, or"
            " prometheus_verify_ssl: false)"
        ) from None
    except requests.ConnectionError as exc:
        # urllib3's retry wrapper turns a read timeout into a ConnectionError: tell them apart.
        if isinstance(exc, requests.Timeout) or _is_read_timeout(exc):
            raise PrometheusError(f"{failed}: no answer from {where} within {timeout:g}s") from None
        raise PrometheusError(f"{failed}: cannot reach {where}: {_reason(exc)}") from None
    except (requests.JSONDecodeError, KeyError, TypeError) as exc:
        # 200 but not Prometheus' JSON: a login page of a proxy in front, a wrong path, ...
        raise PrometheusError(f"{failed}: {where} did not answer Prometheus JSON ({exc})") from None
    except requests.Timeout:
        raise PrometheusError(f"{failed}: no answer from {where} within {timeout:g}s") from None
    except requests.RequestException as exc:
        raise PrometheusError(f"{failed}: {type(exc).__name__}: {_reason(exc)}") from None
    except PrometheusApiClientException:
        raise PrometheusError(f"{failed}: {_api_error(last.response)}") from None
    finally:
        client.close()
    return flatten(result)


def _is_read_timeout(exc: requests.ConnectionError) -> bool:
    """Whether urllib3 gave up on a read (its MaxRetryError's ``reason``), not a connect."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.ReadTimeoutError)


def _reason(exc: Exception) -> str:
    """The innermost cause, short (urllib3 wraps it in several layers)."""
    text = str(exc)
    match = re.search(r"\[Errno [^\]]+\] ([^')\"]+)", text) or re.search(
        r"\[SSL: ([A-Z_]+)\] ([^(')\"]+)", text
    )
    if match:
        return " ".join(match.groups()).strip()
    return text[:200]


def _api_error(response: requests.Response | None) -> str:
    """``HTTP 400: bad_data: parse error ...`` from the response Prometheus sent: its status,
    and the ``errorType``/``error`` fields of its JSON error body when it has one."""
    if response is None:
        return "no HTTP response"
    detail = ""
    try:
        payload = response.json()
    except ValueError:
        detail = response.text.strip()[:300]
    else:
        if isinstance(payload, dict) and ("error" in payload or "errorType" in payload):
            detail = f"{payload.get('errorType', 'error')}: {payload.get('error', '')}"
    if response.status_code in (401, 403):
        detail = (detail + " " if detail else "") + (
            "(check the secrets prometheus_token or prometheus_username/prometheus_password)"
        )
    return f"HTTP {response.status_code}: {detail}".rstrip(": ")
