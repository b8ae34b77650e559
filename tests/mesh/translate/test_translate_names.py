"""Durations in the translator: exactly what validation accepts, spelt as Envoy wants."""

from __future__ import annotations

import pytest

from chaosmesh_ext.istio.validate import validate
from chaosmesh_ext.mesh.translate.names import ListenerName, TranslationError, duration


def test_a_compound_duration_that_validation_accepts_translates() -> None:
    vs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "nginx-vs", "namespace": "default"},
        "spec": {
            "hosts": ["nginx-svc"],
            "http": [{"route": [{"destination": {"host": "nginx-svc"}}], "timeout": "1m30s"}],
        },
    }
    assert validate(vs) == []
    assert duration("1m30s", "spec.http[0].timeout") == "90s"


@pytest.mark.parametrize(("value", "spelt"), [("2s", "2s"), ("100ms", "0.100s"), (0.25, "0.250s")])
def test_durations_are_spelt_for_envoy(value: object, spelt: str) -> None:
    assert duration(value, "spec.http[0].timeout") == spelt


def test_a_bad_duration_names_the_field() -> None:
    with pytest.raises(TranslationError, match=r"spec.http\[0\].timeout: not a duration"):
        duration("ten seconds", "spec.http[0].timeout")


def test_the_translator_names_listeners_and_their_route_configs_alike() -> None:
    from chaosmesh_ext.mesh.translate import translate
    from tests.support import mesh_seed as seed

    resources = translate(seed.snapshot(seed.CANARY, seed.canary_endpoints()))
    for listener in resources.listeners:
        name = ListenerName.parse(listener["name"])
        assert name is not None, listener["name"]
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        assert hcm["rds"]["route_config_name"] == name.route_config
        assert hcm["stat_prefix"] == name.stat_prefix
