"""The fortio workload is the load layer's REST server, as its own process and in a replica host."""

from __future__ import annotations

from .conftest import StartWorkload, call

# Each test runs with replicas as processes of their own and in shared replica hosts.
REPLICA_HOSTS_TOO = True


def test_fortio_workload_serves_fortio_rest_api(start_workload: StartWorkload) -> None:
    fortio = start_workload("fortio", deployment="fortio-deploy")
    assert call(fortio.port, "/fortio/").status == 200
