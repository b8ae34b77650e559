"""The fortio workload is the load layer's REST server, or a clear refusal while it is missing."""

from __future__ import annotations

import importlib.util

import pytest

from chaosmesh_ext.mesh.workloads import WorkloadUnavailable

from .conftest import StartWorkload, call


def _rest_available() -> bool:
    try:
        return importlib.util.find_spec("chaosmesh_ext.load.rest") is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.skipif(_rest_available(), reason="chaosmesh_ext.load.rest is installed")
def test_launch_refuses_clearly_without_the_load_server(start_workload: StartWorkload) -> None:
    with pytest.raises(
        WorkloadUnavailable, match=r"the fortio workload needs chaosmesh_ext\.load\.rest"
    ):
        start_workload("fortio", deployment="fortio-deploy")


@pytest.mark.skipif(not _rest_available(), reason="chaosmesh_ext.load.rest not built yet")
def test_fortio_workload_serves_fortio_rest_api(start_workload: StartWorkload) -> None:
    fortio = start_workload("fortio", deployment="fortio-deploy")
    assert call(fortio.port, "/fortio/").status == 200
