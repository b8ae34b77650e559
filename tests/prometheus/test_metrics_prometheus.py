"""Real PromQL through the probes, against a real Prometheus scraping the exporter on loopback.

The access log is synthetic (written by the test the way the embedded mesh's Envoy writes it),
so the expected numbers are exact: 20 % of the calls to reviews are aborted by the client
sidecar (FI), every call to ratings waits through an injected 100 ms delay.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext.mesh.metrics import Exporter
from chaosmesh_ext.mesh.prometheus_server import PrometheusServer
from chaosmesh_ext.prometheus import (
    prometheus_query,
    request_duration_ms,
    request_rate,
    request_success_rate,
)
from tests.support.metrics_helpers import aborted, append_records, delayed, record, wait_for

pytestmark = pytest.mark.slow

BATCHES = 4


def raw_query(server: PrometheusServer, query: str) -> float:
    url = f"{server.url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else -1.0


def feed(
    mesh: tuple[Path, Exporter, PrometheusServer],
    service: str,
    seed: list[dict[str, Any]],
    batch: list[dict[str, Any]],
) -> None:
    """Write ``seed`` (creating every series), let Prometheus see it, then ``batch`` x BATCHES.

    With every series born in the same scrape, rate() extrapolates them alike and the ratios
    read exactly what was written; batches a few scrapes apart spread the traffic in time.
    """
    state, _exporter, server = mesh
    counted = f'sum(istio_requests_total{{reporter="source",destination_service_name="{service}"}})'
    expected = len(seed)
    append_records(state, seed)
    wait_for(lambda: raw_query(server, counted) == expected, 20, f"Prometheus to see {expected}")
    for _ in range(BATCHES):
        append_records(state, batch)
        expected += len(batch)
        time.sleep(0.6)
    wait_for(lambda: raw_query(server, counted) == expected, 20, f"Prometheus to see {expected}")


@pytest.fixture(scope="module")
def config(scraped_mesh: tuple[Path, Exporter, PrometheusServer]) -> dict[str, Any]:
    return {"prometheus_base_url": scraped_mesh[2].url, "prometheus_timeout": 5}


@pytest.fixture(scope="module")
def abort_20_percent(scraped_mesh: tuple[Path, Exporter, PrometheusServer]) -> None:
    feed(scraped_mesh, "reviews", [record(), aborted()], [record()] * 40 + [aborted()] * 10)


@pytest.fixture(scope="module")
def delay_100ms(scraped_mesh: tuple[Path, Exporter, PrometheusServer]) -> None:
    feed(
        scraped_mesh,
        "ratings",
        [delayed(104)],
        [delayed(101 + i % 20, service_time_ms=2 + i % 3) for i in range(30)],
    )


def test_source_reported_success_rate_sees_the_injected_aborts(
    abort_20_percent: None, config: dict[str, Any]
) -> None:
    rate = request_success_rate("reviews", configuration=config)
    assert rate == pytest.approx(0.8, abs=0.02)


def test_destination_reported_success_rate_is_blind_to_client_side_aborts(
    abort_20_percent: None, config: dict[str, Any]
) -> None:
    rate = request_success_rate("reviews", reporter="destination", configuration=config)
    assert rate == pytest.approx(1.0)


def test_request_rate_source_counts_aborted_calls_destination_does_not(
    abort_20_percent: None, config: dict[str, Any]
) -> None:
    source = request_rate("reviews", configuration=config)
    destination = request_rate("reviews", reporter="destination", configuration=config)
    assert source is not None and destination is not None and source > 0
    assert destination / source == pytest.approx(0.8, abs=0.02)


def test_a_short_burst_on_a_new_series_is_fully_counted(
    scraped_mesh: tuple[Path, Exporter, PrometheusServer], config: dict[str, Any]
) -> None:
    """fortio -n 50 style: every request lands between two scrapes, on series that did not
    exist before (the fault just started). rate() must still see all of them."""
    state, _exporter, server = scraped_mesh
    payments = {
        "authority": "payments:9080",
        "upstream_cluster": "outbound|9080||payments.default.svc.cluster.local",
        "upstream_host": "127.0.0.1:41999",
    }
    aborted_payment = {**aborted(), **payments, "upstream_host": None}
    append_records(state, [record(**payments)] * 40 + [aborted_payment] * 10)
    counted = 'sum(istio_requests_total{reporter="source",destination_service_name="payments"})'
    wait_for(lambda: raw_query(server, counted) == 50, 20, "Prometheus to see the burst")
    assert request_success_rate("payments", configuration=config) == pytest.approx(0.8)


def test_p99_under_a_100ms_delay_is_at_least_100ms_at_the_source_only(
    delay_100ms: None, config: dict[str, Any]
) -> None:
    p99 = request_duration_ms("ratings", configuration=config)
    assert p99 is not None and p99 >= 100
    p50 = request_duration_ms("ratings", percentile=50, configuration=config)
    assert p50 is not None and 100 <= p50 <= 250
    # The server side never waited through the delay.
    server_p99 = request_duration_ms("ratings", reporter="destination", configuration=config)
    assert server_p99 is not None and server_p99 < 10


def test_prometheus_query_flattens_series_for_tolerances(
    abort_20_percent: None, config: dict[str, Any]
) -> None:
    by_reporter = prometheus_query(
        'sum by (reporter) (istio_requests_total{destination_service_name="reviews"})',
        configuration=config,
    )
    assert set(by_reporter) == {"reporter=source", "reporter=destination"}
    assert by_reporter["reporter=source"] == 2 + BATCHES * 50
    assert by_reporter["reporter=destination"] == 1 + BATCHES * 40
    aborts = prometheus_query(
        'sum(istio_requests_total{destination_service_name="reviews",response_flags="FI"})',
        configuration=config,
    )
    assert aborts == 1 + BATCHES * 10
    assert prometheus_query("1 + 1", configuration=config) == 2.0
    # An instant query in the past, before any traffic: no data, and that is explicit.
    with pytest.raises(ActivityFailed, match="returned no data"):
        prometheus_query(
            'sum(istio_requests_total{destination_service_name="reviews"})',
            at=time.time() - 3600,
            configuration=config,
        )


def test_an_invalid_query_fails_naming_the_query_and_the_parse_error(
    config: dict[str, Any],
) -> None:
    with pytest.raises(ActivityFailed) as failure:
        prometheus_query("sum(rate(istio_requests_total[1m]", configuration=config)
    message = str(failure.value)
    assert "sum(rate(istio_requests_total[1m]" in message
    assert "HTTP 400" in message and "bad_data" in message


def test_no_data_fails_by_default_and_is_configurable(config: dict[str, Any]) -> None:
    with pytest.raises(ActivityFailed) as failure:
        request_success_rate("details", configuration=config)
    assert 'destination_service_name="details"' in str(failure.value)
    assert "no data" in str(failure.value)
    assert request_success_rate("details", on_no_data="zero", configuration=config) == 0.0
    assert request_success_rate("details", on_no_data="null", configuration=config) is None


def test_chaos_run_judges_a_hypothesis_by_prometheus_and_keeps_the_token_out_of_the_journal(
    abort_20_percent: None, config: dict[str, Any], tmp_path: Path
) -> None:
    token = "tok-9f8e7d6c5b4a"
    probe = {
        "type": "probe",
        "name": "reviews-success-rate-seen-by-callers",
        "tolerance": {"type": "range", "range": [0.7, 0.9]},
        "provider": {
            "type": "python",
            "module": "chaosmesh_ext.prometheus",
            "func": "request_success_rate",
            "arguments": {"service": "reviews", "window": "1m"},
            "secrets": ["prometheus"],
        },
    }
    experiment = {
        "title": "Callers of reviews see about 80 % success under a 20 % abort",
        "description": "Prometheus-based steady state, judged with reporter=source.",
        "configuration": {
            "prometheus_base_url": config["prometheus_base_url"],
            "prometheus_timeout": 5,
        },
        "secrets": {"prometheus": {"prometheus_token": {"type": "env", "key": "PROM_TOKEN"}}},
        "steady-state-hypothesis": {"title": "success rate as injected", "probes": [probe]},
        "method": [{**probe, "name": "read-it-again", "tolerance": None}],
    }
    del experiment["method"][0]["tolerance"]
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    journal = tmp_path / "journal.json"
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "chaos"), "--no-log-file", "--no-version-check",
         "run", "--journal-path", str(journal), str(path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PROM_TOKEN": token},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    text = journal.read_text()
    result = json.loads(text)
    assert result["status"] == "completed" and not result["deviated"]
    output = result["steady_states"]["before"]["probes"][0]["output"]
    assert output == pytest.approx(0.8, abs=0.02)
    assert token not in text and token not in completed.stdout + completed.stderr
