"""``chaosmesh.io/capacity``: a replica with a fixed pool of workers and a FIFO queue.

Pure parts (the annotation, the limiter's hand-over rules) run in-process; the replicas are
real processes, loaded with requests sent all at once so that who waits is decided by the
worker count, not by timing. Latency assertions are lower bounds only: a worker is held at
least its service time, so a request that found none free waited at least that long, less
the few milliseconds between its arrival and the start of the request it waited for (hence
the 0.8 factor).
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from pathlib import Path

import pytest

from chaosmesh_ext.mesh.workloads import WorkloadSpec, check
from chaosmesh_ext.mesh.workloads.capacity import (
    Capacity,
    Limiter,
    QueueFull,
    parse_capacity,
)
from chaosmesh_ext.mesh.workloads.spec import command_line

from .conftest import HOST, StartWorkload

# Each test runs with replicas as processes of their own and in shared replica hosts.
REPLICA_HOSTS_TOO = True

WHERE = "Deployment default/checkout: annotation chaosmesh.io/capacity"


def test_annotation_parses_to_a_canonical_text() -> None:
    capacity = parse_capacity(" workers=6 , service=20ms ", WHERE)
    assert (capacity.workers, capacity.service, capacity.jitter, capacity.queue) == (
        6,
        0.02,
        0.0,
        None,
    )
    assert capacity.max_rate == pytest.approx(300.0)
    assert capacity.text() == "workers=6,service=20ms"
    full = parse_capacity("service=1.5s,workers=2,jitter=20%,queue=10", WHERE)
    assert full.text() == "workers=2,service=1.5s,jitter=20%,queue=10"
    assert parse_capacity(full.text(), WHERE) == full
    assert parse_capacity("workers=1,service=0.25s,jitter=0.5", WHERE).jitter == 0.5


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("workers=6", "service missing"),
        ("service=20ms", "workers missing"),
        ("workers=0,service=20ms", "workers: must be between 1"),
        ("workers=-3,service=20ms", "workers: must be between 1"),
        ("workers=six,service=20ms", "workers: expected a whole number"),
        ("workers=6,service=20", "service: expected a duration"),
        ("workers=6,service=0ms", "service: must be > 0"),
        ("workers=6,service=2m", "at most 60s"),
        ("workers=6,service=20ms,jitter=150%", "jitter: must be between 0% and 100%"),
        ("workers=6,service=20ms,threads=4", "unknown key 'threads'"),
        ("workers=6,workers=7,service=20ms", "workers given twice"),
        ("workers 6, service 20ms", "bad item"),
    ],
)
def test_malformed_annotation_names_deployment_and_annotation(text: str, complaint: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_capacity(text, WHERE)
    assert str(caught.value).startswith(WHERE)
    assert complaint in str(caught.value)


def _spec(kind: str, capacity: str, tmp_path: Path) -> WorkloadSpec:
    return WorkloadSpec(
        kind=kind,
        deployment="checkout",
        namespace="default",
        pod="checkout-0",
        port=8080,
        log_path=tmp_path / "w.log",
        annotations={"chaosmesh.io/capacity": capacity, "chaosmesh.io/command": "true"},
    )


def test_command_line_carries_the_canonical_capacity(tmp_path: Path) -> None:
    for kind in ("echo", "httpbin"):
        argv, _ = command_line(_spec(kind, "service=50ms, workers=4", tmp_path))
        assert argv[argv.index("--capacity") + 1] == "workers=4,service=50ms"


def test_bad_capacity_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^Deployment default/checkout: annotation "):
        check(_spec("echo", "workers=4", tmp_path))
    # A command or fortio workload's server is not ours: the limit could not be enforced.
    for kind in ("command", "fortio"):
        with pytest.raises(ValueError, match=f"a {kind} workload cannot be capacity-limited"):
            check(_spec(kind, "workers=4,service=50ms", tmp_path))


class Gone(Exception):
    """Stands for the client hanging up while its request waits."""


def test_limiter_hands_workers_over_in_arrival_order() -> None:
    limiter = Limiter(Capacity(workers=1, service=0.01))
    limiter.acquire(lambda fd: True)  # the only worker, taken at once
    order: list[str] = []
    done = threading.Event()

    def waiter(name: str) -> None:
        from chaosmesh_ext.mesh.workloads.capacity import _wait_readable

        limiter.acquire(_wait_readable)
        order.append(name)
        if len(order) == 2:
            done.set()
        limiter.release()

    threads = []
    for expected, name in enumerate(("first", "second"), start=1):
        thread = threading.Thread(target=waiter, args=(name,), daemon=True)
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while limiter.queued < expected and time.monotonic() < deadline:
            time.sleep(0.001)
        assert limiter.queued == expected
    limiter.release()
    assert done.wait(10)
    assert order == ["first", "second"]
    for thread in threads:
        thread.join(10)
    assert (limiter.busy, limiter.queued) == (0, 0)


def test_a_request_whose_client_leaves_leaves_the_queue() -> None:
    limiter = Limiter(Capacity(workers=1, service=0.01))
    limiter.acquire(lambda fd: True)

    def hang_up(fd: int) -> bool:
        assert limiter.queued == 1
        raise Gone

    with pytest.raises(Gone):
        limiter.acquire(hang_up)
    assert (limiter.busy, limiter.queued) == (1, 0)
    limiter.release()
    assert limiter.busy == 0


def test_a_worker_handed_over_as_the_client_leaves_is_passed_on() -> None:
    limiter = Limiter(Capacity(workers=1, service=0.01))
    limiter.acquire(lambda fd: True)

    def leave_just_after_the_handover(fd: int) -> bool:
        limiter.release()  # the worker goes to this waiter...
        raise Gone  # ...whose client is gone

    with pytest.raises(Gone):
        limiter.acquire(leave_just_after_the_handover)
    assert (limiter.busy, limiter.queued) == (0, 0)


def test_bounded_queue_refuses_when_full_and_unbounded_never_does() -> None:
    bounded = Limiter(Capacity(workers=1, service=0.01, queue=0))
    bounded.acquire(lambda fd: True)
    with pytest.raises(QueueFull):
        bounded.acquire(lambda fd: True)
    unbounded = Limiter(Capacity(workers=1, service=0.01))
    unbounded.acquire(lambda fd: True)
    assert unbounded.queued == 0


def test_jitter_keeps_the_mean_within_the_band() -> None:
    limiter = Limiter(Capacity(workers=1, service=0.1, jitter=0.2), rng=random.Random(7))
    draws = [limiter.service_time() for _ in range(2000)]
    assert min(draws) >= 0.08 and max(draws) <= 0.12
    assert sum(draws) / len(draws) == pytest.approx(0.1, rel=0.02)
    assert Limiter(Capacity(workers=1, service=0.1)).service_time() == 0.1


def _send_all_then_read(port: int, count: int, path: str = "/") -> list[tuple[int, float]]:
    """Send ``count`` requests on separate connections first, then read every answer:
    (status, ``x-chaosmesh-queued-ms``) in sending order."""
    socks = [socket.create_connection((HOST, port), timeout=30) for _ in range(count)]
    try:
        for sock in socks:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        answers = []
        for sock in socks:
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            answers.append((response.status, float(response.getheader("x-chaosmesh-queued-ms"))))
        return answers
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("kind", ["echo", "httpbin"])
def test_replica_serves_at_most_workers_at_once(start_workload: StartWorkload, kind: str) -> None:
    service_ms = 400
    running = start_workload(
        kind, annotations={"chaosmesh.io/capacity": f"workers=2,service={service_ms}ms"}
    )
    answers = _send_all_then_read(running.port, 6, "/get")
    assert [status for status, _ in answers] == [200] * 6
    waits = sorted(queued for _, queued in answers)
    # Two workers for six requests: four waited for a worker, two of them for two turns.
    assert sum(w >= 0.8 * service_ms for w in waits) >= 4
    assert sum(w >= 1.8 * service_ms for w in waits) >= 2


def test_bounded_queue_answers_503_at_once(start_workload: StartWorkload) -> None:
    running = start_workload(
        "echo", annotations={"chaosmesh.io/capacity": "workers=1,service=500ms,queue=1"}
    )
    answers = _send_all_then_read(running.port, 3)
    assert sorted(status for status, _ in answers) == [200, 200, 503]


def test_proxy_replica_is_limited_in_front_of_its_upstream(start_workload: StartWorkload) -> None:
    upstream = start_workload("echo", deployment="tomcat")
    running = start_workload(
        "proxy",
        deployment="nginx",
        annotations={
            "chaosmesh.io/upstream": f"http://{HOST}:{upstream.port}",
            "chaosmesh.io/capacity": "workers=1,service=300ms",
        },
    )
    answers = _send_all_then_read(running.port, 2)
    assert [status for status, _ in answers] == [200, 200]
    assert max(queued for _, queued in answers) >= 0.8 * 300
