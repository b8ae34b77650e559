"""The seed scenarios' generated configs pass ``envoy --mode validate``; a broken one does not."""

from __future__ import annotations

import pytest

from chaosmesh_ext.mesh.envoy import EnvoyRejected, validate_offline
from chaosmesh_ext.mesh.translate import Endpoint, translate
from tests.support import mesh_seed as seed

pytestmark = pytest.mark.envoy

HTTPBIN = Endpoint("httpbin-0", "default", {"app": "httpbin", "version": "v1"}, "127.0.0.1", 7)
SCENARIOS = {
    "canary": (seed.CANARY, seed.canary_endpoints()),
    "breaker": (seed.BREAKER, [HTTPBIN]),
    "timeout": (seed.TIMEOUT, []),
    "retry": (seed.TIMEOUT + "\n---\n" + seed.RETRY, []),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_seed_scenario_validates(scenario, tmp_path):
    text, endpoints = SCENARIOS[scenario]
    validate_offline(translate(seed.snapshot(text, endpoints, access_log_dir=str(tmp_path))))


def test_an_invalid_config_is_refused_with_envoys_reason(tmp_path):
    res = translate(seed.snapshot(seed.TIMEOUT))
    res.routes[0]["virtual_hosts"][0]["routes"][0]["match"] = {"safe_regex": {"regex": "(("}}
    with pytest.raises(EnvoyRejected, match="missing \\)"):
        validate_offline(res)


def test_every_supported_field_validates(tmp_path):
    from .test_translate_routes import KITCHEN_SINK

    snap = seed.snapshot(seed.TIMEOUT + "\n---\n" + seed.BREAKER, access_log_dir=str(tmp_path))
    snap.virtual_services = [KITCHEN_SINK]
    validate_offline(translate(snap))
