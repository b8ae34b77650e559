"""``chaosmesh advise breaker`` and the ``advise_breaker`` probe, from declared capacity or a
knee (its output, a JSON file of it, a journal): the same advice, bad input named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed
from click.testing import CliRunner

from chaosmesh_ext.cli import main
from chaosmesh_ext.istio.validate import validate
from chaosmesh_ext.probes import advise_breaker
from tests.support.cli import chaosmesh

# What capacity_knee returned for the embedded checkout service (trimmed to what is read).
KNEE = {
    "url": "http://checkout:8000/",
    "max_p99_ms": 300.0,
    "max_error_rate": 0.01,
    "steps": [],
    "knee": {"qps": 240.0, "p50_ms": 70.0, "p99_ms": 100.0, "mean_ms": 70.0, "pods": 3},
}
DECLARED = ["--pods", "3", "--rps-per-pod", "80", "--service-time", "70ms", "--p99-slo", "300ms"]


def _journal(tmp_path: Path) -> Path:
    path = tmp_path / "journal.json"
    run = [
        {"activity": {"name": "surge"}, "output": {"p99_ms": 2000.0}},
        {"activity": {"name": "apply"}, "output": {"advice": {}, "knee_search": KNEE}},
    ]
    path.write_text(json.dumps({"run": run, "steady_states": {"before": None, "after": None}}))
    return path


def test_cli_prints_a_destination_rule_with_the_reasoning_as_comments() -> None:
    proc = chaosmesh("advise", "breaker", *DECLARED, "--host", "checkout", "-n", "shop")
    assert proc.returncode == 0, proc.stderr
    rule = yaml.safe_load(proc.stdout)
    assert rule["kind"] == "DestinationRule" and rule["metadata"]["namespace"] == "shop"
    assert validate(rule) == []
    http = rule["spec"]["trafficPolicy"]["connectionPool"]["http"]
    # 16.8 in flight + the queue a third of (300 - 70) ms holds at 240/s (18); 70 ms stands
    # in for the unmeasured p99 at the knee.
    assert http["http2MaxRequests"] == 35
    comments = [line for line in proc.stdout.splitlines() if line.startswith("#")]
    text = "\n".join(comments)
    assert "per-pod capacity given as a RATE: 80 requests/second per pod" in text
    for field in ("http2MaxRequests", "maxConnections", "http1MaxPendingRequests"):
        assert f"connectionPool.{'tcp' if field == 'maxConnections' else 'http'}.{field}:" in text
    assert "outlierDetection.maxEjectionPercent: 34" in text
    assert "maxRequestsPerConnection: (left out)" in text


def test_cli_from_a_journal_or_the_knee_json_gives_the_same_advice(tmp_path: Path) -> None:
    knee_file = tmp_path / "knee.json"
    knee_file.write_text(json.dumps(KNEE))
    outputs = []
    for source in (_journal(tmp_path), knee_file):
        result = CliRunner().invoke(
            main, ["advise", "breaker", "--from-knee", str(source), "--format", "json"]
        )
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.output))
    assert outputs[0] == outputs[1]
    # The knee's measured p99 (100 ms, not the 70 ms mean) leaves a smaller queue: 16.
    assert outputs[0]["trafficPolicy"]["connectionPool"]["http"]["http2MaxRequests"] == 33
    assert "a measured knee: 240 qps over 3 pod(s)" in outputs[0]["assumptions"][0]
    assert outputs[0]["numbers"]["queue_total"] == 16
    # Declared with the same numbers, the p99 at the knee included: the same breaker.
    declared = CliRunner().invoke(
        main, ["advise", "breaker", *DECLARED, "--knee-p99", "100ms", "--format", "json"]
    )
    assert json.loads(declared.output)["trafficPolicy"] == outputs[0]["trafficPolicy"]


@pytest.mark.parametrize(
    ("arguments", "flag", "complaint"),
    [
        (["--pods", "-3"], "--pods", "must be a whole number of replicas >= 1, got -3"),
        (["--p99-slo", "50ms"], "--p99-slo", "not above the service time 70 ms"),
        (["--p99-slo", "fast"], "--p99-slo", "expected a duration"),
        (["--concurrency-per-pod", "5"], "--rps-per-pod", "exactly one"),
        (["--callers", "0"], "--callers", "at least 1"),
    ],
)
def test_cli_bad_input_names_the_flag(arguments: list[str], flag: str, complaint: str) -> None:
    flags = list(DECLARED)
    for name, value in zip(arguments[::2], arguments[1::2], strict=True):
        if name in flags:
            flags[flags.index(name) + 1] = value
        else:
            flags += [name, value]
    result = CliRunner().invoke(main, ["advise", "breaker", *flags])
    assert result.exit_code == 2
    assert f"Invalid value for '{flag}': " in result.output and complaint in result.output


def test_cli_needs_a_rate_or_a_concurrency_and_says_so() -> None:
    result = CliRunner().invoke(main, ["advise", "breaker", "--pods", "3", "--p99-slo", "200ms"])
    assert result.exit_code == 2
    assert "'--service-time'" in result.output
    missing = CliRunner().invoke(main, ["advise", "breaker", "--from-knee", "/nonexistent.json"])
    assert (
        missing.exit_code == 2 and "'--from-knee': cannot read /nonexistent.json" in missing.output
    )


def test_probe_returns_the_same_advice_as_the_cli(tmp_path: Path) -> None:
    from_probe = advise_breaker(from_knee=KNEE, host="checkout")
    from_file = advise_breaker(from_knee=str(_journal(tmp_path)), host="checkout")
    assert from_probe == from_file
    cli = json.loads(
        CliRunner()
        .invoke(
            main,
            [
                "advise",
                "breaker",
                "--from-knee",
                str(_journal(tmp_path)),
                "--host",
                "checkout",
                "--format",
                "json",
            ],
        )
        .output
    )
    assert cli == from_probe
    assert from_probe["destination_rule"]["spec"]["host"] == "checkout"


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"pods": -3, "rps_per_pod": 80}, "advise_breaker: pods: must be a whole number"),
        ({"pods": 3, "rps_per_pod": 80, "p99_slo": "20ms"}, "advise_breaker: p99_slo: 20 ms"),
        ({"pods": 3, "rps_per_pod": 80, "p99_slo": "300ms", "service_time": None}, "service_time"),
        ({"from_knee": {"knee": "nope"}}, "advise_breaker: from_knee: "),
        ({"from_knee": KNEE, "rps_per_pod": 80}, "from_knee: give a measured knee or"),
    ],
)
def test_probe_bad_input_is_activity_failed_naming_the_argument(
    arguments: dict[str, Any], complaint: str
) -> None:
    declared = {"p99_slo": "300ms", "service_time": "70ms"}
    with pytest.raises(ActivityFailed) as caught:
        advise_breaker(**{**declared, **arguments})
    assert complaint in str(caught.value)
