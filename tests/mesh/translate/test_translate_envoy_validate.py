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


def test_every_istiod_rule_case_validates_in_envoy(tmp_path):
    """The configurations of test_translate_istiod_rules (port-level policies, merged rules,
    guarded default routes, hashing, HTTP/2 upstreams, redirects, HTTPS) are accepted by
    Envoy as they are: nothing the translator emits is refused."""
    from chaosmesh_ext.mesh.api import tls
    from tests.support import istiod_cases as cases

    cert = tls.make(tmp_path / "cert")
    pem = (cert.cert_pem.decode(), cert.key_path.read_text())
    texts = [
        cases.BOOKINFO_SERVICES + "\n---\n" + cases.SOURCE_LABELS_ONLY,
        cases.BOOKINFO_SERVICES + "\n---\n" + cases.SPLIT_RULES,
        cases.BOOKINFO_SERVICES + "\n---\n" + cases.HASH_RULE + "\n---\n" + cases.reviews_vs("""
            - retries: {attempts: 3, retryRemoteLocalities: true}
              mirror: {host: ratings}
              mirrorPercent: 30
              rewrite: {uriRegexRewrite: {match: "^/v1/(.*)$", rewrite: "/v2/\\\\1"}}
              route:
              - destination: {host: reviews}
            - match: [{uri: {prefix: /bytes}}]
              directResponse: {status: 418, body: {bytes: aGVsbG8=}}
        """),
        cases.BOOKINFO_SERVICES + "\n---\n" + cases.POOL_RULE.format(
            pool="{tcp: {idleTimeout: 30s, maxConnectionDuration: 1m, tcpKeepalive: {time: 7s}},"
            " http: {h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 10,"
            " http2KeepAlive: {interval: 10s, timeout: 2s}}}"
        ),
        cases.PORT_LEVEL,
        cases.GATEWAY_MERGE,
        cases.NAMESPACED_HOSTS,
        cases.WEB_SERVICE + "\n---\n" + cases.REDIRECTS,
        cases.WEB_SERVICE + "\n---\n" + cases.HTTPS_GATEWAY,
    ]
    for text in texts:
        snap = seed.snapshot(text, cases.bookinfo_endpoints(), access_log_dir=str(tmp_path))
        snap.fallback_certificate = pem
        validate_offline(translate(snap))
