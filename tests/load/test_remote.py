"""How a run is described to fortio in a cluster: REST query and ``fortio load`` flags."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from chaosmesh_ext.load.in_mesh import Fortio, _check_extensions, expected_seconds, rest_params
from chaosmesh_ext.load.options import LoadOptions
from chaosmesh_ext.load.remote import RemoteError, fortio_cli_args, rest_query


def test_max_speed_becomes_rest_qps_minus_one() -> None:
    # fortio's REST API reads a missing or 0 qps as 8 qps: max speed must be sent as -1.
    params = rest_params(
        LoadOptions(url="http://httpbin:8000/get", connections=2, qps=0, exactly=20)
    )
    q = parse_qs(rest_query(params))
    assert q["qps"] == ["-1"] and q["n"] == ["20"] and q["c"] == ["2"]
    assert q["url"] == ["http://httpbin:8000/get"] and "t" not in q


def test_query_encodes_everything_and_repeats_headers() -> None:
    params = rest_params(
        LoadOptions(
            url="http://a:1/x?y=1&z=2",
            qps=10,
            duration=2.0,
            headers=[("X-A", "1"), ("X-B", "two words")],
            open_loop=True,
        )
    )
    raw = rest_query(params)
    assert "&y=1" not in raw  # the target's own query stays inside url=
    q = parse_qs(raw)
    assert q["url"] == ["http://a:1/x?y=1&z=2"] and q["t"] == ["2s"]
    assert q["H"] == ["X-A: 1", "X-B: two words"] and q["open_loop"] == ["on"]


def test_exec_fallback_flags_match_fortio_cli() -> None:
    params = rest_params(LoadOptions(url="http://h:8000/", connections=3, qps=0, exactly=30))
    assert fortio_cli_args(params) == [
        "-c",
        "3",
        "-qps",
        "-1",
        "-n",
        "30",
        "-timeout",
        "3s",
        "-p",
        "50,75,90,99,99.9",
    ]


def test_probe_bounds_cover_the_run() -> None:
    assert expected_seconds(LoadOptions(url="http://h/", qps=100, exactly=1000)) >= 12
    assert expected_seconds(LoadOptions(url="http://h/", duration=30.0)) >= 33


def test_fortio_flags_travel_to_the_remote_fortio() -> None:
    options = LoadOptions(
        url="http://h:8000/",
        exactly=10,
        abort_on=503,
        keepalive=False,
        jitter=True,
        insecure=True,
        reuse_range=(2, 5),
        resolve="10.0.0.7",
    )
    params = rest_params(options)
    # fortio's own REST names where it has them, the flag's name where it has not
    assert (params["jitter"], params["https-insecure"]) == ("on", "on")
    assert params["connection-reuse"] == "2:5" and params["resolve"] == "10.0.0.7"
    assert (params["abort-on"], params["keepalive"]) == (503, "off")
    args = fortio_cli_args(params)
    for flag in ("-jitter", "-https-insecure", "-keepalive=false"):
        assert flag in args
    assert args[args.index("-abort-on") + 1] == "503"
    assert args[args.index("-connection-reuse") + 1] == "2:5"


def test_a_real_fortio_that_ignored_a_flag_fails_the_run() -> None:
    options = LoadOptions(url="http://h:8000/", exactly=10, abort_on=503, http10=True)
    fortio = Fortio(namespace="ns")
    # real fortio's REST API reads neither: its result shows the defaults
    with pytest.raises(RemoteError, match=r"ns/fortio ignored -abort-on, -http1.0 \(fortio's"):
        _check_extensions(options, {"AbortOn": 0, "HTTP10": False}, fortio)
    _check_extensions(options, {"AbortOn": 503, "HTTP10": True}, fortio)  # ours honours them
