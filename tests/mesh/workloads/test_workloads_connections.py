"""Idle keep-alive connections cost a replica no thread: threads follow requests in flight.

A sidecar keeps the upstream connections a burst opened for an hour. A replica that held a
thread for each of them grew by a thread stack and a malloc arena per connection, and kept
them. Now idle connections wait without a thread and are served as before when their next
request comes: in order, pipelined, and the work of a request whose client hung up stops.
Every test runs with the replica in its own process and in a shared replica host.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
import time
from pathlib import Path

from chaosmesh_ext.mesh.workloads._http import (
    READ_SIZE,
    READ_SIZE_LARGE,
    BufferedSocket,
    Workers,
)
from chaosmesh_ext.mesh.workloads.hosting import HostedReplica

from .conftest import HOST, Running, StartWorkload, call

REPLICA_HOSTS_TOO = True

IDLE_CONNECTIONS = 500


def _serving_pid(running: Running) -> int:
    """The process whose threads serve the replica: its own, or its replica host."""
    process = running.process
    return process.host.pid if isinstance(process, HostedReplica) else process.pid


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no thread count for {pid}")


def _until(condition: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _keep_alive_calls(port: int, count: int) -> list[http.client.HTTPConnection]:
    """``count`` connections, each with one request answered and left open (keep-alive)."""
    conns = []
    for _ in range(count):
        conn = http.client.HTTPConnection(HOST, port, timeout=15)
        assert call(port, "/", conn=conn).status == 200
        conns.append(conn)
    return conns


def test_a_replica_keeps_answering_after_500_idle_keep_alive_connections_with_few_threads(
    start_workload: StartWorkload,
) -> None:
    replica = start_workload("echo")
    pid = _serving_pid(replica)
    conns = _keep_alive_calls(replica.port, IDLE_CONNECTIONS)
    try:
        # A thread per connection was 500 threads here; one call at a time needs a few.
        assert _threads(pid) < 50
        # Each idle connection is served again when its next request comes, in any order.
        for conn in (conns[0], conns[-1], conns[IDLE_CONNECTIONS // 2]):
            answer = call(replica.port, "/headers", conn=conn)
            assert answer.status == 200
        assert call(replica.port).status == 200  # and a new connection too
    finally:
        for conn in conns:
            conn.close()


def test_a_connection_idle_between_pipelined_batches_answers_each_in_order(
    start_workload: StartWorkload,
) -> None:
    replica = start_workload("echo")
    with socket.create_connection((HOST, replica.port), timeout=15) as sock:
        for batch in range(3):
            paths = [f"/echo?batch={batch}&n={n}" for n in range(4)]
            sock.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths))
            received = b""
            while received.count(b"HTTP/1.1 200") < len(paths) or not received.endswith(b"\n"):
                chunk = sock.recv(65536)
                assert chunk, "the replica closed a keep-alive connection"
                received += chunk
            text = received.decode()
            positions = [text.index(f"batch={batch}&n={n}") for n in range(4)]
            assert positions == sorted(positions)
            time.sleep(0.2)  # idle between batches: the connection waits without a thread


def test_a_request_whose_client_hangs_up_frees_the_replicas_only_worker(
    start_workload: StartWorkload,
) -> None:
    # One worker: a request left running for a client that is gone would hold it for 30 s,
    # and the next call would wait behind it (and time out below).
    replica = start_workload("echo", annotations={"chaosmesh.io/capacity": "workers=1,service=1ms"})
    conn = http.client.HTTPConnection(HOST, replica.port, timeout=15)
    assert call(replica.port, conn=conn).status == 200  # keep-alive, then idle
    time.sleep(0.2)
    conn.request("GET", "/delay/30")
    time.sleep(0.5)  # the slow request has started
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    assert call(replica.port, timeout=10).status == 200


def test_a_killed_replica_closes_its_idle_connections(start_workload: StartWorkload) -> None:
    victim, other = start_workload("echo", pod="victim-0"), start_workload("echo", pod="other-0")
    victims = _keep_alive_calls(victim.port, 5)
    others = _keep_alive_calls(other.port, 5)
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait(10)
    for conn in victims:
        assert conn.sock is not None
        conn.sock.settimeout(10)
        assert conn.sock.recv(1) == b""  # closed by the replica's end, not left hanging
        conn.close()
    for conn in others:
        assert call(other.port, conn=conn).status == 200
        conn.close()


def test_worker_threads_follow_the_jobs_running_at_once() -> None:
    workers = Workers(idle_seconds=0.1, spawn_delay=0.01, eager=2)
    release = threading.Event()
    started = threading.Semaphore(0)

    def job() -> None:
        started.release()
        release.wait(20)

    for _ in range(8):
        workers.submit(job)
    for _ in range(8):
        # Two threads at once; the others once their jobs have waited (the parking thread
        # calls due() whenever it wakes): no job waits for another to end.
        while not started.acquire(timeout=0.01):
            workers.due()
    assert workers.threads == 8
    release.set()
    _until(lambda: workers.threads == 0, "idle worker threads to end")
    done = threading.Event()
    workers.submit(done.set)  # and a thread again when work comes
    assert done.wait(20)


def test_a_burst_of_quick_jobs_is_served_by_the_threads_there_are() -> None:
    workers = Workers(eager=3)
    done = threading.Semaphore(0)
    for _ in range(200):  # due() is never called: no thread beyond the eager ones
        workers.submit(done.release)
    for _ in range(200):
        assert done.acquire(timeout=20)
    assert workers.threads <= 3


class _Recorded:
    """A socket that records how many bytes each read asks for."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.asked: list[int] = []

    def recv(self, size: int) -> bytes:
        self.asked.append(size)
        return self.sock.recv(size)

    def settimeout(self, seconds: float) -> None:
        self.sock.settimeout(seconds)


def test_reads_ask_for_a_few_kb_until_a_message_is_larger() -> None:
    # CPython's recv(n) allocates n bytes up front: every thread reading at once holds them,
    # so a short request must not cost each reading thread 64 KiB.
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(5)
        recorded = _Recorded(ours)
        reader = BufferedSocket(recorded)  # type: ignore[arg-type]
        theirs.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read_until(b"\r\n\r\n", 65536).startswith(b"GET / ")
        assert recorded.asked == [READ_SIZE]
        body = os.urandom(2 * READ_SIZE_LARGE)
        sender = threading.Thread(target=theirs.sendall, args=(body,))
        sender.start()
        sender.join(timeout=10)  # all of it waits in the socket: the first read fills up
        assert reader.read_exactly(len(body)) == body
        # Large reads once the body has filled a small one: a big body takes few reads.
        assert recorded.asked[1] == READ_SIZE
        assert set(recorded.asked[2:]) == {READ_SIZE_LARGE}
