"""The Prometheus launcher: a missing binary says how to install it; a real one starts on an
OS-chosen loopback port with its files under the state dir, and stops by pid."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.prometheus_server import (
    BINARY_ENV,
    PrometheusNotInstalled,
    render_config,
    start_prometheus,
)


def test_missing_binary_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BINARY_ENV, str(tmp_path / "no-such-prometheus"))
    with pytest.raises(PrometheusNotInstalled, match=r"apt-get install -y prometheus"):
        start_prometheus(tmp_path, ["http://127.0.0.1:1/metrics"])
    assert not (tmp_path / "prometheus").exists()  # nothing was started or written


def test_config_scrapes_each_url_at_the_interval() -> None:
    text = render_config(["http://127.0.0.1:4001/metrics", "http://127.0.0.1:4002/stats"], "2s")
    assert "scrape_interval: 2s" in text and "scrape_timeout: 2s" in text
    assert "targets: ['127.0.0.1:4001']" in text and "metrics_path: /stats" in text


@pytest.mark.parametrize(
    ("urls", "interval", "named"),
    [
        (["http://127.0.0.1:1/metrics"], "1 second", "interval"),
        (["127.0.0.1:1/metrics"], "1s", r"scrape_urls\[0\]"),
    ],
)
def test_bad_settings_are_named(urls: list[str], interval: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        render_config(urls, interval)


def test_real_prometheus_starts_on_loopback_and_stops_by_pid(
    tmp_path: Path, prometheus_binary: str
) -> None:
    server = start_prometheus(tmp_path, ["http://127.0.0.1:9/metrics"], wait_for_scrape=False)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{server.url}/-/ready", timeout=5) as response:
            assert response.status == 200
        assert (tmp_path / "prometheus" / "data").is_dir()
        assert (tmp_path / "prometheus" / "prometheus.yml").is_file()
    finally:
        server.stop()
    assert not server.running()
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
