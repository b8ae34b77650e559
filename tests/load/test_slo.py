"""The ``slo`` tolerance: every bound at, inside and outside its limit, ``require_codes``, and
codes as a journal stores them.

Probes return ``codes`` with int keys, but a Chaos Toolkit journal is JSON, so the same
output read back from a journal has string keys (``{"200": 18, "503": 2}``). ``slo`` and the
journal reader must give the same answer for both; the last test goes through a real
``chaos run`` to get a real journal.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.journal.outputs import load_result
from chaosmesh_ext.load.results import flat_summary
from chaosmesh_ext.tolerances import slo
from tests.support.load_target import Reply, Target

FIXTURE = Path(__file__).parent / "fixtures" / "fortio_seed_breaker.json"


def _run(codes: dict[Any, int], **extra: Any) -> dict[str, Any]:
    count = sum(codes.values())
    errors = sum(n for c, n in codes.items() if int(c) not in (200, 418))
    return {
        "count": count,
        "qps": 100.0,
        "error_rate": errors / count,
        "p50_ms": 2.0,
        "p90_ms": 4.0,
        "p99_ms": 9.0,
        "max_ms": 12.0,
        "codes": codes,
        **extra,
    }


def test_require_codes_needs_every_code_at_least_once(caplog: pytest.LogCaptureFixture) -> None:
    shed = _run({200: 17, 503: 3})
    assert slo(shed, require_codes=[200, 503])
    assert slo(shed, expect_codes=[200, 503], require_codes=[503])
    calm = _run({200: 20})
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        # The seed's c=2 run sometimes sheds nothing: require_codes is what catches that.
        assert slo(calm, expect_codes=[200, 503])
        assert not slo(calm, expect_codes=[200, 503], require_codes=[200, 503])
    assert "codes [503] never seen (seen: [200])" in caplog.text


def test_a_code_counted_zero_times_was_not_seen() -> None:
    assert not slo(_run({200: 20, 503: 0}), require_codes=[503])
    assert slo(_run({200: 20, 503: 0}), expect_codes=[200])  # nor is it unexpected


def test_socket_errors_are_code_minus_one() -> None:
    broken = _run({200: 8, -1: 2})
    assert slo(broken, require_codes=[-1])
    assert not slo(broken, expect_codes=[200])


@pytest.mark.parametrize("as_json", [False, True], ids=["probe output", "read from a journal"])
def test_int_and_string_code_keys_give_the_same_verdicts(as_json: bool) -> None:
    value = _run({200: 17, 503: 3, -1: 1})
    if as_json:
        value = json.loads(json.dumps(value))
        assert set(value["codes"]) == {"200", "503", "-1"}
    assert slo(value, expect_codes=[200, 503, -1], require_codes=["503", 200])
    assert not slo(value, expect_codes=["200", "503"])  # -1 is not allowed
    assert not slo(value, require_codes=[404])
    assert load_result(value) is not None
    assert load_result(value).codes == {"200": 17, "503": 3, "-1": 1}  # type: ignore[union-attr]


def test_a_raw_fortio_result_is_judged_by_its_ret_codes() -> None:
    real = json.loads(FIXTURE.read_text())  # written by real fortio: no flat keys at all
    assert slo(real, require_codes=[200, 503], expect_codes=[200, 503], max_error_rate=0.15)
    assert not slo(real, expect_codes=[200])


def test_admitted_and_shed_latency_bounds(caplog: pytest.LogCaptureFixture) -> None:
    # A breaker at work: the 503s are fast, the admitted calls slow but within 200 ms.
    shed = _run({200: 10, 503: 10}, ok_p99_ms=150.0, error_p99_ms=3.0, p99_ms=148.0)
    assert slo(shed, max_ok_p99_ms=200, max_error_p99_ms=50)
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        assert not slo(shed, max_ok_p99_ms=100)
        assert not slo(shed, max_error_p99_ms=1)
    assert "ok_p99_ms 150 ms > 100 ms (over by 50 ms)" in caplog.text
    # Real fortio's result has no flat keys: both come from its two histograms.
    real = json.loads(FIXTURE.read_text())
    flat = flat_summary(real)
    assert flat["error_p99_ms"] > 0 and flat["ok_p99_ms"] > 0
    assert slo(real, max_ok_p99_ms=flat["ok_p99_ms"], max_error_p99_ms=flat["error_p99_ms"])
    assert not slo(real, max_ok_p99_ms=flat["ok_p99_ms"] / 2)
    # Flat keys from an older run, without the histograms: say so instead of guessing.
    with pytest.raises(TypeError, match="max_ok_p99_ms: the load result has no ok_p99_ms"):
        slo(_run({200: 1}), max_ok_p99_ms=100)


def test_bad_require_codes_and_bad_values_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"slo: require_codes: 'five hundred' is not an HTTP code"):
        slo(_run({200: 1}), require_codes=["five hundred"])
    with pytest.raises(ValueError, match=r"slo: expect_codes: .*not an HTTP code"):
        slo(_run({200: 1}), expect_codes=[None])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="expected a load result"):
        slo(None, require_codes=[200])
    with pytest.raises(ValueError, match=r"slo: require_codes must be a list of codes, got '503'"):
        slo(_run({200: 1}), require_codes="503")


def _experiment(url: str, require: list[Any]) -> dict[str, Any]:
    probe = {
        "type": "probe",
        "name": "seed-breaker-run",
        "provider": {
            "type": "python",
            "module": "chaosmesh_ext.probes",
            "func": "fortio_load",
            "arguments": {"url": url, "c": 2, "qps": 0, "n": 20, "via": "local"},
        },
        "tolerance": {
            "type": "probe",
            "name": "slo",
            "provider": {
                "type": "python",
                "module": "chaosmesh_ext.tolerances",
                "func": "slo",
                "arguments": {"expect_codes": [200, 503], "require_codes": require},
            },
        },
    }
    return {
        "version": "1.0.0",
        "title": "the breaker sheds some calls and serves the rest",
        "description": "slo's require_codes through a real chaos run",
        "steady-state-hypothesis": {"title": "both codes seen", "probes": [probe]},
        "method": [{**{k: v for k, v in probe.items() if k != "tolerance"}, "name": "again"}],
    }


def _chaos_run(tmp_path: Path, experiment: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    journal = tmp_path / "journal.json"
    log = tmp_path / "chaostoolkit.log"
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "chaos"), "--log-file", str(log),
         "--no-version-check", "run", "--journal-path", str(journal), str(path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=dict(os.environ),
    )  # fmt: skip
    return completed.returncode, json.loads(journal.read_text()), log.read_text()


def test_require_codes_in_a_real_chaos_run_and_its_journal(
    tmp_path: Path, make_target: Callable[..., Target]
) -> None:
    t = make_target(lambda i, *_: Reply(503 if i % 10 == 3 else 200))
    code, journal, _ = _chaos_run(tmp_path, _experiment(t.url + "/get", [200, 503]))
    assert code == 0 and journal["status"] == "completed" and not journal["deviated"]
    output = journal["steady_states"]["before"]["probes"][0]["output"]
    assert output["codes"] == {"200": 18, "503": 2}  # JSON: the int keys became strings
    assert output["RetCodes"] == {"200": 18, "503": 2}
    assert slo(output, expect_codes=[200, 503], require_codes=[200, 503])
    assert not slo(output, require_codes=[200, 504])
    loaded = load_result(output)
    assert loaded is not None and loaded.codes == {"200": 18, "503": 2} and loaded.count == 20

    # The same run judged against a code it never returns: the steady state is not met, the
    # method never runs, and the log says which bound and why. (chaoslib marks such a
    # journal "completed", not "failed": only a probe that raised fails it.)
    _, journal, log = _chaos_run(tmp_path, _experiment(t.url + "/get", [200, 504]))
    assert journal["steady_states"]["before"]["steady_state_met"] is False
    assert journal["run"] == [] and t.count == 3 * 20 + 20  # before, method, after; before
    # ... and which URL the load called, as it was called.
    assert f"slo not met for {t.url}/get: codes [504] never seen (seen: [200, 503])" in log


# Every bound at, just inside and just outside its limit. ``_run`` measures p50 2 ms, p90 4 ms,
# p99 9 ms, 100 qps and an error rate of 3/20 = 0.15. A bound holds *at* its limit (``>``/``<``
# fail, not ``>=``/``<=``), and each bound reads its own key: a bound checked against another
# key (p99 against p90) or not at all fails one of these.
BOUNDS = [
    # (argument, at the limit, just inside, just outside, how the log names the failure)
    ("max_p50_ms", 2.0, 2.001, 1.999, "p50_ms 2 ms > 1.999 ms (over by 0.001 ms)"),
    ("max_p90_ms", 4.0, 4.001, 3.999, "p90_ms 4 ms > 3.999 ms (over by 0.001 ms)"),
    ("max_p99_ms", 9.0, 9.001, 8.999, "p99_ms 9 ms > 8.999 ms (over by 0.001 ms)"),
    ("min_qps", 100.0, 99.999, 100.001, "qps 100 < 100.001 (short by 0.001)"),
    # ... naming the codes that made the errors.
    (
        "max_error_rate",
        0.15,
        0.151,
        0.149,
        "error_rate 0.15 > 0.149 (over by 0.001; failed: 503 x3)",
    ),
    # The min_* bounds a method probe uses to say the fault showed.
    ("min_p50_ms", 2.0, 1.999, 2.001, "p50_ms 2 ms < 2.001 ms (short by 0.001 ms)"),
    ("min_p90_ms", 4.0, 3.999, 4.001, "p90_ms 4 ms < 4.001 ms (short by 0.001 ms)"),
    ("min_p99_ms", 9.0, 8.999, 9.001, "p99_ms 9 ms < 9.001 ms (short by 0.001 ms)"),
    ("min_error_rate", 0.15, 0.149, 0.151, "error_rate 0.15 < 0.151 (short by 0.001)"),
    ("min_count", 20, 19, 21, "count 20 < 21 (short by 1)"),
]


@pytest.mark.parametrize(
    ("argument", "at", "inside", "outside", "logged"), BOUNDS, ids=[b[0] for b in BOUNDS]
)
def test_each_bound_holds_at_and_inside_its_limit_and_fails_just_outside(
    argument: str,
    at: float,
    inside: float,
    outside: float,
    logged: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    measured = _run({200: 17, 503: 3})
    assert slo(measured, **{argument: at})
    assert slo(measured, **{argument: inside})
    with caplog.at_level(logging.WARNING, logger="chaostoolkit"):
        assert not slo(measured, **{argument: outside})
    assert [r.getMessage() for r in caplog.records] == [f"slo not met: {logged}"]


def test_a_bound_reads_only_its_own_key() -> None:
    # p50 < p90 < p99 here, so a bound that read a neighbour's key would flip one verdict.
    measured = _run({200: 20}, p50_ms=10.0, p90_ms=20.0, p99_ms=30.0)
    assert slo(measured, max_p50_ms=10, max_p90_ms=20, max_p99_ms=30)
    assert not slo(measured, max_p50_ms=9.99)
    assert not slo(measured, max_p90_ms=19.99)
    assert not slo(measured, max_p99_ms=29.99)


def test_bounds_apply_to_a_raw_fortio_result_too() -> None:
    real = json.loads(FIXTURE.read_text())
    flat = flat_summary(real)  # what slo reads from a raw fortio result
    assert slo(real, max_p99_ms=flat["p99_ms"], min_qps=flat["qps"])
    assert not slo(real, max_p99_ms=flat["p99_ms"] - 0.001)
    assert not slo(real, min_qps=flat["qps"] + 0.001)
