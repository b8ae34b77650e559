"""Where Prometheus is and how to reach it: :class:`PrometheusSettings`, decided from the
experiment's configuration and secrets the way ``kube.client.ClientSettings`` is (pure).

Configuration ``prometheus_base_url`` (required), ``prometheus_timeout`` (seconds per call,
default 10), ``prometheus_verify_ssl`` (default true), ``prometheus_ca_file`` (a CA bundle for
a private CA); secrets ``prometheus_token`` (bearer) or ``prometheus_username`` /
``prometheus_password`` (basic auth). Secrets stay out of ``repr`` and of every message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chaosmesh_ext._parse import parse_bool
from chaosmesh_ext.errors import PrometheusError

__all__ = ["DEFAULT_TIMEOUT", "PrometheusSettings", "prometheus_settings", "redact"]

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, kw_only=True)
class PrometheusSettings:
    """How to reach one Prometheus; credentials are kept out of ``repr``."""

    base_url: str
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True  # False, True, or the path of a CA bundle
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def auth(self) -> tuple[str, str] | None:
        if self.token or not self.username:
            return None
        return (self.username, self.password or "")


def prometheus_settings(
    configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None = None
) -> PrometheusSettings:
    """The settings from an experiment's configuration and secrets; PrometheusError naming
    the key when one is missing or wrong."""
    config = configuration or {}
    secrets = secrets or {}
    base_url = str(config.get("prometheus_base_url") or "").rstrip("/")
    if not base_url:
        raise PrometheusError(
            "configuration 'prometheus_base_url' is not set (e.g."
            " http://prometheus.istio-system:9090; on the embedded mesh: `chaosmesh mesh url"
            " prometheus`)"
        )
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise PrometheusError(
            f"configuration 'prometheus_base_url' must be an http(s) URL, got {redact(base_url)!r}"
        )
    raw_timeout = config.get("prometheus_timeout", DEFAULT_TIMEOUT)
    try:
        timeout = float(raw_timeout)
    except (TypeError, ValueError):
        timeout = math.nan
    if not timeout > 0:
        raise PrometheusError(
            f"configuration 'prometheus_timeout' must be a positive number of seconds, "
            f"got {raw_timeout!r}"
        )
    verify: bool | str = parse_bool(config.get("prometheus_verify_ssl"), default=True)
    if verify and config.get("prometheus_ca_file"):
        verify = str(config["prometheus_ca_file"])
    return PrometheusSettings(
        base_url=base_url,
        timeout=timeout,
        verify=verify,
        token=str(secrets["prometheus_token"]) if secrets.get("prometheus_token") else None,
        username=(
            str(secrets["prometheus_username"]) if secrets.get("prometheus_username") else None
        ),
        password=str(secrets.get("prometheus_password") or "") or None,
    )


def redact(url: str) -> str:
    """The URL without any user:password part (never put credentials in a message)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
