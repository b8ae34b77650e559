"""Durations and host names as Istio reads them."""

from __future__ import annotations

import pytest

from chaosmesh_ext.istio.durations import (
    format_duration,
    istio_duration_problem,
    parse_duration,
)
from chaosmesh_ext.istio.hosts import fqdn, host_matches, service_fqdn, short_names


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2s", 2.0),
        ("1.5s", 1.5),
        ("100ms", 0.1),
        ("3m", 180.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("250us", 0.00025),
        ("0", 0.0),
    ],
)
def test_parse_duration_accepts_go_style_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("-1s", "negative"),
        ("abc", "not valid"),
        ("10", "no unit"),
        ("2 s", "not valid"),
    ],
)
def test_parse_duration_rejects_with_a_reason(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(2, "2s"), (0.1, "0.100s"), (1.5, "1.500s"), (0.000001, "0.000001s"), (0, "0s")],
)
def test_format_duration_is_protobuf_json(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_istio_wants_at_least_a_millisecond_in_whole_milliseconds() -> None:
    assert istio_duration_problem("1ms") is None
    assert "at least 1ms" in (istio_duration_problem("500us") or "")
    assert "ms precision" in (istio_duration_problem("1500us") or "")
    assert "at least 1ms" in (istio_duration_problem("0s") or "")
    assert istio_duration_problem("0s", allow_zero=True) is None


def test_short_names_resolve_in_the_namespace_and_dotted_names_stay() -> None:
    assert fqdn("reviews", "prod") == "reviews.prod.svc.cluster.local"
    assert fqdn("reviews.prod", "default") == "reviews.prod"  # Istio: a dot means "as written"
    assert fqdn("*", "prod") == "*"
    assert fqdn("10.0.0.1", "prod") == "10.0.0.1"
    assert fqdn("canary.istio-test.svc.cluster.local", "x") == "canary.istio-test.svc.cluster.local"
    assert service_fqdn("httpbin", "") == "httpbin.default.svc.cluster.local"


def test_short_names_of_a_service() -> None:
    assert short_names("reviews.default.svc.cluster.local") == [
        "reviews",
        "reviews.default",
        "reviews.default.svc",
    ]
    assert short_names("httpbin.org") == []


def test_wildcard_hosts() -> None:
    assert host_matches("*", "anything.example.com")
    assert host_matches("*.example.com", "a.b.example.com")
    assert not host_matches("*.example.com", "example.com")
    assert not host_matches("a.example.com", "b.example.com")
