"""The start-up bounds of the embedded mesh are consistent: the wait for a new mesh covers
every bound the daemon applies one after the other, with room for a loaded 2-core machine,
and the experiments' bound covers that wait plus the time to stop a mesh that did not serve.
"""

from __future__ import annotations

from chaosmesh_ext.mesh import apply, client, envoy, prometheus_server, target


def test_the_wait_for_a_new_mesh_covers_the_daemons_own_bounds() -> None:
    daemon_side = (
        apply.WORKLOAD_READY_TIMEOUT + envoy.START_TIMEOUT + prometheus_server.READY_TIMEOUT
    )
    assert daemon_side <= client.UP_TIMEOUT
    assert target.MESH_UP_TIMEOUT_S == client.UP_TIMEOUT + target.UP_SLACK_S
    # Stopping a daemon that did not serve: SIGTERM, SIGKILL after ABANDON_STOP_TIMEOUT.
    assert target.UP_SLACK_S > client.ABANDON_STOP_TIMEOUT


def test_envoy_gets_well_over_the_15_s_a_cold_start_took_under_load() -> None:
    assert envoy.START_TIMEOUT >= 30
