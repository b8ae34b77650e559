"""Fixtures for the Prometheus probes' tests: a real Prometheus scraping a real exporter
(tests/support/prometheus_fixtures.py), skipped when the binary is not installed."""

from tests.support.prometheus_fixtures import prometheus_binary, scraped_mesh

__all__ = ["prometheus_binary", "scraped_mesh"]
