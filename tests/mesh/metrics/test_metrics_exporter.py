"""The embedded mesh's Istio metrics, from hand-written access.jsonl and mesh.json.

Pure derivation first (what each reporter records for one request), then the running
exporter over real HTTP: counts, labels, Istio's buckets, and a log that appears late, is
written in pieces, truncated or rotated.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from chaosmesh_ext.mesh.metrics import (
    DEFAULT_BUCKETS_MS,
    LABEL_NAMES,
    Exporter,
    MeshDirectory,
    MetricsPipeline,
    MetricsRegistry,
    derive_samples,
    start_exporter,
)
from tests.support.metrics_helpers import (
    CLUSTER_V2,
    PRODUCTPAGE,
    REVIEWS_V1,
    aborted,
    append_records,
    endpoint,
    record,
    scrape,
    total,
    wait_for,
    write_mesh_state,
)

DIRECTORY = MeshDirectory.from_mesh_state({"endpoints": [REVIEWS_V1, PRODUCTPAGE]})


def labels_of(sample_labels: tuple[str, ...]) -> dict[str, str]:
    return dict(zip(LABEL_NAMES, sample_labels, strict=True))


# ---------------------------------------------------------------------------- pure derivation


def test_a_delivered_request_is_reported_by_both_sides_with_istio_labels() -> None:
    samples = derive_samples(record(), DIRECTORY)
    assert [labels_of(s.labels)["reporter"] for s in samples] == ["source", "destination"]
    source, destination = (labels_of(s.labels) for s in samples)
    assert source["source_workload"] == "productpage-v1"
    assert source["source_app"] == "productpage"  # from mesh.json's labels of the source
    assert source["destination_workload"] == "reviews-v1"
    assert source["destination_version"] == "v1"
    assert source["destination_service"] == "reviews.default.svc.cluster.local"
    assert source["destination_service_name"] == "reviews"
    assert source["destination_service_namespace"] == "default"
    assert source["response_code"] == "200"
    assert source["response_flags"] == "-"
    assert source["request_protocol"] == "http"
    assert source["grpc_response_status"] == ""
    assert source["connection_security_policy"] == "unknown"
    assert destination["connection_security_policy"] == "none"
    assert destination["destination_workload"] == "reviews-v1"
    assert destination["destination_canonical_revision"] == "v1"
    assert samples[0].duration_ms == 3


def test_a_fault_abort_is_counted_only_by_the_source_with_unknown_destination_workload() -> None:
    samples = derive_samples(aborted(), DIRECTORY)
    assert len(samples) == 1
    source = labels_of(samples[0].labels)
    assert source["reporter"] == "source"
    assert source["response_code"] == "503"
    assert source["response_flags"] == "FI"
    assert source["destination_workload"] == "unknown"
    assert source["destination_workload_namespace"] == "unknown"
    # Still attributed to the service through the route's cluster, as istio-proxy does.
    assert source["destination_service"] == "reviews.default.svc.cluster.local"
    assert source["destination_service_name"] == "reviews"


def test_a_breaker_overflow_is_invisible_to_the_destination() -> None:
    overflow = record(response_code=503, response_flags="UO", upstream_host="-", duration_ms=0)
    samples = derive_samples(overflow, DIRECTORY)
    assert [labels_of(s.labels)["reporter"] for s in samples] == ["source"]
    assert labels_of(samples[0].labels)["response_flags"] == "UO"


def test_no_route_falls_back_to_the_host_header() -> None:
    no_route = record(
        response_code=404, response_flags="NR", upstream_cluster="-", upstream_host="-",
        authority="ratings:9080",
    )  # fmt: skip
    (sample,) = derive_samples(no_route, DIRECTORY)
    labels = labels_of(sample.labels)
    assert labels["destination_service"] == "ratings:9080"
    assert labels["destination_service_name"] == "ratings:9080"
    assert labels["destination_workload"] == "unknown"


def test_an_upstream_timeout_shows_as_a_downstream_disconnect_at_the_destination() -> None:
    timed_out = record(response_code=504, response_flags="UT", duration_ms=2001)
    source, destination = (labels_of(s.labels) for s in derive_samples(timed_out, DIRECTORY))
    assert (source["response_code"], source["response_flags"]) == ("504", "UT")
    assert (destination["response_code"], destination["response_flags"]) == ("0", "DC")


def test_the_destination_does_not_see_an_injected_delay_when_envoy_logs_upstream_time() -> None:
    delayed = record(response_flags="DI", duration_ms=105, upstream_service_time="4")
    source, destination = derive_samples(delayed, DIRECTORY)
    assert source.duration_ms == 105
    assert destination.duration_ms == 4


def test_an_unknown_caller_and_an_unknown_endpoint_read_unknown() -> None:
    anonymous = record(source_workload=None, source_namespace=None, upstream_host="10.0.0.9:80")
    source, destination = (labels_of(s.labels) for s in derive_samples(anonymous, DIRECTORY))
    assert source["source_workload"] == "unknown"
    assert source["source_workload_namespace"] == "unknown"
    assert source["destination_workload"] == "unknown"
    assert destination["destination_workload"] == "unknown"
    # ... but the namespace of the service is still known from the cluster on the server side.
    assert destination["destination_service_namespace"] == "default"


def test_gateway_traffic_comes_from_the_ingress_gateway() -> None:
    through_gateway = record(source_workload=None, source_namespace=None, listener="gateway_8080")
    source = labels_of(derive_samples(through_gateway, DIRECTORY)[0].labels)
    assert source["source_workload"] == "istio-ingressgateway"
    assert source["source_workload_namespace"] == "istio-system"


def test_a_new_series_is_first_shown_at_zero_so_rate_sees_its_first_requests() -> None:
    registry = MetricsRegistry()
    registry.observe(derive_samples(record(), DIRECTORY) * 5)
    first, second = registry.render(), registry.render()
    assert total(first, reporter="source") == 0
    assert 'le="+Inf"} 0' in first
    assert total(second, reporter="source") == 5
    registry.observe(derive_samples(aborted(), DIRECTORY))  # a new series (FI) ...
    third = registry.render()
    assert total(third, reporter="source", response_flags="FI") == 0
    assert total(third, reporter="source", response_flags="-") == 5  # ... others unchanged
    assert total(registry.render(), reporter="source", response_flags="FI") == 1


def test_histogram_uses_istio_buckets_and_escapes_label_values() -> None:
    registry = MetricsRegistry(hold_new_series=False)
    registry.observe(derive_samples(record(duration_ms=7), DIRECTORY))
    registry.observe(derive_samples(record(duration_ms=120, authority='we"ird\\host'), DIRECTORY))
    text = registry.render()
    src = 'reporter="source"'
    buckets = [
        line for line in text.splitlines()
        if line.startswith("istio_request_duration_milliseconds_bucket") and src in line
    ]  # fmt: skip
    bounds = [re.findall(r'le="([^"]+)"', b)[0] for b in buckets]
    assert bounds == [
        "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000",
        "10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf",
    ]  # fmt: skip
    assert len(DEFAULT_BUCKETS_MS) == 19
    counts = dict(zip(bounds, (int(b.rsplit(" ", 1)[1]) for b in buckets), strict=True))
    assert counts["5"] == 0 and counts["10"] == 1 and counts["100"] == 1 and counts["250"] == 2
    assert counts["+Inf"] == 2
    assert f"istio_request_duration_milliseconds_sum{{{src}" in text
    assert re.search(r'_sum\{reporter="source".*\} 127$', text, re.M)
    assert "# TYPE istio_request_duration_milliseconds histogram" in text
    assert "# TYPE istio_requests_total counter" in text


def test_series_are_bounded() -> None:
    registry = MetricsRegistry(max_series=3, hold_new_series=False)
    for i in range(10):
        registry.observe(derive_samples(record(response_code=200 + i), DIRECTORY))
    assert len(registry.requests_total()) == 3
    assert "chaosmesh_metrics_dropped_samples_total 17" in registry.render()


def test_the_pipeline_counts_exactly_what_derive_samples_says(state_dir: Path) -> None:
    """The exporter caches labels per field combination: the counts must not change."""
    records = [
        record(),
        record(duration_ms=40),
        aborted(),
        record(response_flags="UT", response_code=504, duration_ms=2000),
        record(response_flags="DI", duration_ms=105, upstream_service_time="3"),
        record(response_flags="DI", duration_ms=130, upstream_service_time="7"),
        record(upstream_cluster=CLUSTER_V2, upstream_host="127.0.0.1:41002"),
        record(authority=["not", "a", "string"]),
    ] * 3
    directory = MeshDirectory.from_mesh_state(json.loads((state_dir / "mesh.json").read_text()))
    expected = MetricsRegistry(hold_new_series=False)
    for one in records:
        expected.observe(derive_samples(one, directory))
    pipeline = MetricsPipeline(state_dir, MetricsRegistry(hold_new_series=False))
    append_records(state_dir, records)
    assert pipeline.poll() == len(records)
    assert pipeline.registry.render() == expected.render()


# ---------------------------------------------------------------------------- running exporter


def test_exporter_counts_what_the_log_says(state_dir: Path, exporter: Exporter) -> None:
    append_records(state_dir, [record()] * 8 + [aborted()] * 2)
    wait_for(lambda: exporter.records == 10, 10, "10 records counted")
    text = scrape(exporter.url)
    assert total(text, reporter="source") == 10
    assert total(text, reporter="source", response_code="503", response_flags="FI") == 2
    assert total(text, reporter="destination") == 8
    assert total(text, reporter="destination", response_code="503") == 0


def test_exporter_waits_for_a_log_that_appears_later_and_for_unfinished_lines(
    tmp_path: Path,
) -> None:
    running = start_exporter(tmp_path)  # no mesh.json and no access.jsonl yet
    try:
        assert "istio_requests_total{" not in scrape(running.url)
        line = json.dumps(record(upstream_host="127.0.0.1:1"))
        with (tmp_path / "access.jsonl").open("w") as handle:
            handle.write(line[:40])
            handle.flush()
            wait_for(lambda: running.pipeline.follower._offset > 0, 10, "first bytes read")
            assert running.records == 0  # half a line is not a request
            handle.write(line[40:] + "\n")
        wait_for(lambda: running.records == 1, 10, "the completed line")
        assert total(scrape(running.url), reporter="source") == 1
    finally:
        running.stop()


def test_exporter_follows_truncation_and_rotation(state_dir: Path, exporter: Exporter) -> None:
    log = state_dir / "access.jsonl"
    append_records(state_dir, [record()] * 3)
    wait_for(lambda: exporter.records == 3, 10, "3 records")
    log.write_text("")  # truncated in place
    append_records(state_dir, [record()])
    wait_for(lambda: exporter.records == 4, 10, "the record written after truncation")
    os.rename(log, state_dir / "access.jsonl.1")  # rotated away, a new file takes its place
    append_records(state_dir, [aborted(), aborted()])
    wait_for(lambda: exporter.records == 6, 10, "records of the new file")
    text = scrape(exporter.url)
    assert total(text, reporter="source") == 6
    assert total(text, reporter="source", response_flags="FI") == 2


def test_exporter_skips_garbage_lines_and_counts_them(state_dir: Path, exporter: Exporter) -> None:
    with (state_dir / "access.jsonl").open("w") as handle:
        handle.write("not json\n[1, 2]\n" + json.dumps(record()) + "\n")
    wait_for(lambda: exporter.records == 1, 10, "the one good record")
    text = scrape(exporter.url)
    assert "chaosmesh_access_log_bad_lines_total 2" in text
    assert total(text, reporter="source") == 1


def test_exporter_picks_up_new_endpoints_from_mesh_json(
    state_dir: Path, exporter: Exporter
) -> None:
    canary = endpoint("reviews-v3", "v3", 41009)
    append_records(
        state_dir, [record(upstream_host="127.0.0.1:41009", upstream_cluster=CLUSTER_V2)]
    )
    wait_for(lambda: exporter.records == 1, 10, "first record")
    write_mesh_state(state_dir, [REVIEWS_V1, PRODUCTPAGE, canary])
    os.utime(state_dir / "mesh.json", ns=(1, 10**18))  # a distinct mtime even on coarse clocks
    append_records(
        state_dir, [record(upstream_host="127.0.0.1:41009", upstream_cluster=CLUSTER_V2)]
    )
    wait_for(lambda: exporter.records == 2, 10, "second record")
    text = scrape(exporter.url)
    assert total(text, reporter="source", destination_workload="unknown") == 1
    assert total(text, reporter="source", destination_workload="reviews-v3") == 1
    assert total(text, reporter="source", destination_version="v3") == 1


def test_exporter_answers_404_elsewhere(exporter: Exporter) -> None:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(exporter.url.replace("/metrics", "/nope"), timeout=5)
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    else:
        raise AssertionError("expected 404")
