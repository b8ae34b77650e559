"""The fortio workload is the load layer's REST server."""

from __future__ import annotations

from .conftest import StartWorkload, call


def test_fortio_workload_serves_fortio_rest_api(start_workload: StartWorkload) -> None:
    fortio = start_workload("fortio", deployment="fortio-deploy")
    assert call(fortio.port, "/fortio/").status == 200
