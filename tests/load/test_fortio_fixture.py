"""A result as real fortio prints it (written from its schema) reads like one of ours.

The fixture is the seed's breaker run, ``fortio load -c 2 -qps 0 -n 20 http://httpbin:8000/get``
with 17 x 200 and 3 x 503; its percentiles were worked out by hand from fortio's algorithm.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from chaosmesh_ext.load.engine import run
from chaosmesh_ext.load.options import LoadOptions
from chaosmesh_ext.load.report import text_report
from chaosmesh_ext.load.results import flat_summary
from chaosmesh_ext.load.stats import calc_percentile
from chaosmesh_ext.tolerances import slo
from tests.support.load_target import Reply, Target

FIXTURE = Path(__file__).parent / "fixtures" / "fortio_seed_breaker.json"


@pytest.fixture
def fortio_result() -> dict:
    return json.loads(FIXTURE.read_text())


def test_flat_keys_from_real_fortio(fortio_result: dict) -> None:
    flat = flat_summary(fortio_result)
    assert flat["count"] == 20
    assert flat["codes"] == {200: 17, 503: 3}
    assert flat["error_rate"] == pytest.approx(0.15)
    assert flat["p50_ms"] == pytest.approx(4.3333, abs=1e-4)
    assert flat["p90_ms"] == pytest.approx(8.5)
    assert flat["p99_ms"] == pytest.approx(10.2712)
    assert flat["max_ms"] == pytest.approx(10.339)
    assert flat["qps"] == pytest.approx(373.542, abs=1e-3)


def test_our_percentile_maths_reproduces_fortios_listed_values(fortio_result: dict) -> None:
    for h in (fortio_result["DurationHistogram"], fortio_result["ErrorsDurationHistogram"]):
        for p in h["Percentiles"]:
            assert calc_percentile(h, p["Percentile"]) == pytest.approx(p["Value"], rel=1e-6)


def test_report_of_real_fortio_has_the_lines_users_grep(fortio_result: dict) -> None:
    report = text_report(fortio_result)
    assert "Code 200 : 17 (85.0 %)" in report
    assert "Code 503 : 3 (15.0 %)" in report
    assert "# target 99% 0.0102712" in report
    assert "Sockets used: 5 (for perfect keepalive, would be 2)" in report


def test_same_probe_output_shape_as_our_engine(
    fortio_result: dict, make_target: Callable[..., Target]
) -> None:
    # Our engine against a server answering 503 three times in twenty.
    t = make_target(lambda i, *_: Reply(503 if i in (4, 11, 17) else 200))
    ours = run(LoadOptions(url=t.url + "/get", connections=2, qps=0, exactly=20))
    flat_ours, flat_fortio = flat_summary(ours), flat_summary(fortio_result)
    assert flat_ours.keys() == flat_fortio.keys()
    for key in ("count", "codes", "error_rate"):
        assert flat_ours[key] == flat_fortio[key]
    assert set(ours) >= set(fortio_result)  # every fortio key is there
    # and the same tolerance judges both the same way
    assert slo(flat_ours, max_error_rate=0.2, expect_codes=[200, 503])
    assert slo(fortio_result, max_error_rate=0.2, expect_codes=[200, 503])
    assert not slo(fortio_result, max_error_rate=0.1)
