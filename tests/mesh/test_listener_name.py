"""Listener names as values, spelt as istiod spells them."""

from __future__ import annotations

import pytest

from chaosmesh_ext.mesh.listener_name import ListenerName


@pytest.mark.parametrize(
    ("listener", "text", "route_config", "stat_prefix"),
    [
        (ListenerName.outbound(9080), "0.0.0.0_9080", "9080", "outbound_0.0.0.0_9080"),
        (ListenerName.gateway(80), "gateway_80", "http.80", "gateway_80"),
    ],
)
def test_listener_names_are_values_spelt_as_istiod_does(
    listener: ListenerName, text: str, route_config: str, stat_prefix: str
) -> None:
    assert str(listener) == text
    assert ListenerName.parse(text) == listener
    assert listener.route_config == route_config
    assert listener.stat_prefix == stat_prefix


def test_other_listener_names_are_not_mistaken_for_the_mesh_s() -> None:
    for text in ("virtualInbound", "0.0.0.0_", "gateway_http", "0.0.0.0_80_x", ""):
        assert ListenerName.parse(text) is None
