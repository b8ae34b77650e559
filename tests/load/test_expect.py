"""A method probe can say the fault took effect: ``fortio_load(expect=...)`` and ``slo``'s
``min_*`` bounds, down to a real ``chaos run`` whose fault did not show.

Method probes have no tolerance in Chaos Toolkit: a header-targeted delay that matched
nothing, or a breaker that never shed, would otherwise pass silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmesh_ext import probes
from chaosmesh_ext.tolerances import slo
from tests.support.chaos_run import SAFETY_NET, chaos_run
from tests.support.cli import chaosmesh
from tests.support.load_target import Reply, Target


def _value(**numbers: Any) -> dict[str, Any]:
    base = {
        "count": 100,
        "qps": 50.0,
        "error_rate": 0.0,
        "p50_ms": 2.0,
        "p90_ms": 4.0,
        "p99_ms": 9.0,
        "max_ms": 12.0,
        "codes": {200: 100},
        "URL": "http://reviews:9080/",
    }
    return {**base, **numbers}  # fmt: skip


def test_slo_min_bounds_say_the_fault_showed(caplog: pytest.LogCaptureFixture) -> None:
    aborted = _value(error_rate=0.5, codes={200: 50, 503: 50}, p50_ms=1.0)
    assert slo(aborted, min_error_rate=0.4, max_error_rate=0.6, require_codes=[503])
    delayed = _value(p50_ms=1002.0, p90_ms=1004.0, p99_ms=1010.0)
    assert slo(delayed, min_p50_ms=900, min_p99_ms=1000, min_count=100)
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        assert not slo(_value(), min_error_rate=0.4, min_p90_ms=900)
    assert "slo not met for http://reviews:9080/: error_rate 0 < 0.4 (short by 0.4)" in caplog.text
    assert "p90_ms 4 ms < 900 ms (short by 896 ms)" in caplog.text


def test_fortio_load_expect_raises_when_the_fault_did_not_show(
    make_target: Callable[..., Target],
) -> None:
    healthy = make_target()
    with pytest.raises(ActivityFailed) as caught:
        probes.fortio_load(healthy.url + "/get", n=10, via="local", expect={"min_error_rate": 0.4})
    assert str(caught.value) == (
        f"fortio_load {healthy.url}/get: the fault did not show: error_rate 0 < 0.4 (short by 0.4)"
    )
    aborting = make_target(lambda i, *_: Reply(503 if i % 2 else 200))
    result = probes.fortio_load(
        aborting.url, n=10, via="local", expect={"min_error_rate": 0.4, "require_codes": [503]}
    )
    assert result["codes"] == {200: 5, 503: 5}


def test_a_misspelt_expect_bound_is_refused_before_any_load(target: Target) -> None:
    with pytest.raises(
        ActivityFailed, match=r"unknown bound 'min_eror_rate' \(did you mean 'min_error_rate'\?\)"
    ):
        probes.fortio_load(target.url, n=10, via="local", expect={"min_eror_rate": 0.4})
    assert target.count == 0


def _experiment(url: str, **configuration: Any) -> dict[str, Any]:
    load = {
        "type": "probe",
        "name": "abort-shows",
        "provider": {
            "type": "python",
            "module": "chaosmesh_ext.probes",
            "func": "fortio_load",
            "arguments": {"url": url, "n": 10, "via": "local",
                          "expect": {"min_error_rate": 0.4, "require_codes": [503]}},
        },
    }  # fmt: skip
    after = {**load, "name": "still-running"}
    return {
        "title": "the abort must show",
        "description": "the method probe expects aborts the target never gives",
        "configuration": {"mesh_target": "kubernetes", **configuration},
        "controls": [SAFETY_NET],
        "method": [load, after],
    }


@pytest.mark.parametrize("stop", [True, False], ids=["stops", "plays on"])
def test_a_run_whose_fault_did_not_show_fails(tmp_path: Path, target: Target, stop: bool) -> None:
    config = {} if stop else {"chaosmesh_stop_on_failure": "false"}
    run = chaos_run(_experiment(target.url + "/get", **config), tmp_path)
    proc, raw, journal = run.proc, run.journal, run.journal_path
    ran = [r["activity"]["name"] for r in raw["run"]]
    if stop:
        assert proc.returncode == 1 and raw["status"] == "interrupted", proc.stderr
        assert ran == ["abort-shows"]
    else:
        assert proc.returncode == 0 and raw["status"] == "completed"  # chaoslib's verdict
        assert ran == ["abort-shows", "still-running"]
    lines = chaosmesh("journal", "show", str(journal)).stdout.splitlines()
    assert lines[1].split()[0] == "FAILED"
    missed = (
        f"fortio_load {target.url}/get: the fault did not show: error_rate 0 < 0.4 "
        "(short by 0.4); codes [503] never seen (seen: [200])"
    )
    reason = f"method probe failed: abort-shows: {missed}"
    if not stop:
        reason += f"; still-running: {missed}"
    assert lines[2].strip() == reason
