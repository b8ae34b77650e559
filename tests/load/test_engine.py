"""The engine against real local HTTP servers: fortio's semantics, end to end."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chaosmesh_ext._sidecar import Sidecar
from chaosmesh_ext.load.engine import LoadTargetError, run
from chaosmesh_ext.load.options import LoadOptionError, LoadOptions
from chaosmesh_ext.load.stats import percentile_value
from tests.support.load_target import Reply, Target


def _opts(url: str, **kw: object) -> LoadOptions:
    return LoadOptions(url=url, **kw)  # type: ignore[arg-type]


def test_seed_run_c2_n20_counts_every_call(target: Target) -> None:
    res = run(_opts(target.url + "/get", connections=2, qps=0, exactly=20))
    assert res["RetCodes"] == {"200": 20}
    assert res["DurationHistogram"]["Count"] == 20
    assert res["ErrorsDurationHistogram"]["Count"] == 0
    assert res["RequestedQPS"] == "max" and res["RequestedDuration"] == "exactly 20 calls"
    assert res["NumThreads"] == 2 and res["Sockets"] == [1, 1]  # keep-alive: one socket each
    assert target.count == 20  # no warm-up with -n
    assert {s.path for s in target.seen} == {"/get"}
    assert res["Sizes"]["Count"] == 20 and res["HeaderSizes"]["Min"] > 0


def test_non_ok_codes_are_errors_and_close_the_connection(
    make_target: Callable[..., Target],
) -> None:
    t = make_target(lambda i, *_: Reply(503 if i % 4 == 3 else 200))
    res = run(_opts(t.url, connections=1, qps=0, exactly=20))
    assert res["RetCodes"] == {"200": 15, "503": 5}
    assert res["ErrorsDurationHistogram"]["Count"] == 5
    # fortio's fast client reconnects after each non-OK answer
    # 503s at calls 3, 7, 11, 15, 19: the calls after the first four open new sockets
    assert res["SocketCount"] == 5
    assert t.connections == res["SocketCount"]


def test_418_counts_as_ok(make_target: Callable[..., Target]) -> None:
    t = make_target(lambda *_: Reply(418))
    res = run(_opts(t.url, connections=1, qps=0, exactly=3))
    assert res["RetCodes"] == {"418": 3} and res["ErrorsDurationHistogram"]["Count"] == 0


def test_timeouts_are_code_minus_one(make_target: Callable[..., Target]) -> None:
    t = make_target(lambda i, *_: Reply(never=i == 1))
    res = run(_opts(t.url, connections=1, qps=0, exactly=3, timeout=0.3))
    assert res["RetCodes"] == {"-1": 1, "200": 2}
    assert res["HTTPReqTimeOut"] == 300_000_000
    assert res["DurationHistogram"]["Max"] >= 0.29  # the call waited for the timeout


def test_duration_mode_sends_one_warmup_per_connection(target: Target) -> None:
    res = run(_opts(target.url, connections=2, qps=20, duration=0.5))
    calls = res["DurationHistogram"]["Count"]
    assert calls == 10  # qps * t, split 5 + 5
    assert target.count == calls + 2  # plus fortio's uncounted warm-up per connection
    assert res["RequestedDuration"] == "500ms" and res["RequestedQPS"] == "20"


def test_failed_warmup_aborts_unless_allowed(make_target: Callable[..., Target]) -> None:
    t = make_target(lambda *_: Reply(500))
    res = run(_opts(t.url, connections=2, qps=20, duration=0.3))
    assert res["error"] is True and res["message"] == "warmup error"
    assert "error 500" in res["exception"]
    assert t.count == 2  # the warm-ups only
    res = run(_opts(t.url, connections=1, qps=20, duration=0.3, allow_initial_errors=True))
    assert res["RetCodes"] == {"500": 6}


def test_chunked_and_connection_close_responses(make_target: Callable[..., Target]) -> None:
    t = make_target(lambda i, *_: Reply(body=b"0123456789", chunked=i % 2 == 0, close=i % 3 == 0))
    res = run(_opts(t.url, connections=1, qps=0, exactly=9))
    assert res["RetCodes"] == {"200": 9}
    assert res["SocketCount"] == t.connections >= 3


def test_headers_payload_and_method_reach_the_server(target: Target) -> None:
    run(
        _opts(
            target.url + "/post?x=1",
            connections=1,
            qps=0,
            exactly=2,
            headers=[("X-Test", "yes")],
            payload=b'{"a": 1}',
        )
    )
    seen = target.seen[0]
    assert (seen.method, seen.path, seen.body) == ("POST", "/post?x=1", b'{"a": 1}')
    assert seen.headers["x-test"] == "yes"
    assert seen.headers["host"] == f"127.0.0.1:{target.port}"


def test_sidecar_routes_service_names_to_the_outbound_listener(target: Target) -> None:
    # As inside the embedded mesh: httpbin:8000 goes to the listener, Host stays the service.
    sidecar = Sidecar(
        outbound={8000: ("127.0.0.1", target.port)},
        workload="fortio",
        namespace="default",
        labels={"app": "fortio"},
    )
    res = run(_opts("http://httpbin:8000/get", connections=1, qps=0, exactly=2, sidecar=sidecar))
    assert res["RetCodes"] == {"200": 2}
    seen = target.seen[0]
    assert seen.headers["host"] == "httpbin:8000"
    assert seen.headers["x-chaosmesh-source-workload"] == "fortio"
    assert seen.headers["x-chaosmesh-src-label-app"] == "fortio"


def test_unreachable_target_fails_before_any_request() -> None:
    with pytest.raises(LoadTargetError, match=r"http://127\.0\.0\.1:1/.*refused"):
        run(_opts("http://127.0.0.1:1/", connections=1, qps=0, exactly=1))


def test_bad_options_send_nothing(target: Target) -> None:
    with pytest.raises(LoadOptionError, match="-c"):
        run(_opts(target.url, connections=0, exactly=5))
    with pytest.raises(LoadOptionError, match="--open-loop"):
        run(_opts(target.url, qps=0, exactly=5, open_loop=True))
    assert target.count == 0 and target.connections == 0


def test_open_loop_shows_a_10_percent_100ms_delay_in_p99(
    make_target: Callable[..., Target],
) -> None:
    t = make_target(lambda i, *_: Reply(delay=0.1 if i % 10 == 5 else 0.0))
    res = run(_opts(t.url, connections=2, qps=200, exactly=200, open_loop=True))
    assert res["DurationHistogram"]["Count"] == 200
    assert percentile_value(res["DurationHistogram"], 99) >= 0.1
    assert res["OpenLoop"]["LatencyFrom"] == "scheduled send time"
    # 200 qps x 100 ms: two connections are not enough, the engine opened more
    assert res["OpenLoop"]["Connections"] > 2


def test_open_loop_sees_a_periodic_stall_that_closed_loop_hides(
    make_target: Callable[..., Target],
) -> None:
    # The server freezes for the last 300 ms of every second (like a GC pause).
    t = make_target(stall_every=1.0, stall_for=0.3)
    opened = run(_opts(t.url, connections=2, qps=200, exactly=300, open_loop=True))
    closed = run(_opts(t.url, connections=2, qps=200, exactly=300))
    open_p90 = percentile_value(opened["DurationHistogram"], 90)
    closed_p50 = percentile_value(closed["DurationHistogram"], 50)
    # Open loop: every request scheduled during the stall waits for it.
    assert open_p90 >= 0.1
    # Closed loop: only the c requests in flight see it; the median stays fast.
    assert closed_p50 < open_p90
