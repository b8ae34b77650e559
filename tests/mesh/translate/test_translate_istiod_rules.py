"""istiod's rules the translator reproduces, each against the exact Envoy JSON it produces.

Every test names the rule and the istiod function (istio/istio release-1.31) it comes from;
``tests/mesh_envoy/test_envoy_istiod_rules.py`` sends the traffic those rules decide through
a real Envoy.
"""

from __future__ import annotations

import copy

from chaosmesh_ext._sidecar import SOURCE_NAMESPACE_HEADER, label_header
from chaosmesh_ext.mesh.translate import translate
from chaosmesh_ext.mesh.translate.routes import default_route
from tests.support import istiod_cases as cases
from tests.support import mesh_seed as seed

REVIEWS = "reviews.default.svc.cluster.local"
RATINGS = "ratings.default.svc.cluster.local"
UNLIMITED = 4294967295


def _vhost(res, config: str, name: str) -> dict:
    return next(h for h in res.route_config(config)["virtual_hosts"] if h["name"] == name)


def _absent(key: str) -> dict:
    return {"name": label_header(key), "present_match": True, "invert_match": True}


def _exact(name: str, value: str) -> dict:
    return {"name": name, "string_match": {"exact": value}}


# ---- item 1: a VirtualService that yields no route for a caller does not claim the host ----


def test_callers_the_virtual_service_has_no_route_for_keep_the_default_route():
    """buildSidecarVirtualHostsForVirtualService returns nil when BuildHTTPRoutesForVirtualService
    yields no route for the proxy (sourceMatchHTTP drops every match whose sourceLabels the
    caller lacks), and BuildSidecarVirtualHostWrapper then builds the Service's default route
    (buildSidecarVirtualHostForService) for that caller."""
    res = translate(cases.bookinfo(cases.SOURCE_LABELS_ONLY))
    routes = _vhost(res, "9080", f"{REVIEWS}:9080")["routes"]
    # productpage's sidecar: the VirtualService's route, matched on its identity headers.
    assert routes[0]["match"] == {
        "prefix": "/",
        "case_sensitive": True,
        "headers": [_exact(label_header("app"), "productpage")],
    }
    assert routes[0]["route"]["cluster"] == f"outbound|9080||{RATINGS}"
    # Every other caller (ratings, reviews, and a request without identity) keeps the
    # default route to reviews itself, behind a matcher on exactly that caller.
    default = default_route(f"outbound|9080||{REVIEWS}", f"{REVIEWS}:9080/*")
    in_default = _exact(SOURCE_NAMESPACE_HEADER, "default")
    v1 = _exact(label_header("version"), "v1")
    assert routes[1:] == [
        {**default, "match": {"prefix": "/", "headers": guard}}
        for guard in (
            [in_default, _exact(label_header("app"), "ratings"), v1],
            [in_default, _exact(label_header("app"), "reviews"), v1],
            [{"name": SOURCE_NAMESPACE_HEADER, "present_match": True, "invert_match": True}],
        )
    ]


def test_a_virtual_service_with_only_tcp_or_other_port_routes_does_not_claim_the_host():
    """BuildHTTPRoutesForVirtualService returns "no routes matched" for a VirtualService with
    no http routes, or whose matches name another port (TranslateRoute: match.port), so
    every caller keeps the default route (BuildDefaultHTTPOutboundRoute), unguarded."""
    default = default_route(f"outbound|9080||{REVIEWS}", f"{REVIEWS}:9080/*")
    for text in (cases.TCP_ONLY, cases.OTHER_PORT_ONLY):
        res = translate(cases.bookinfo(text))
        assert _vhost(res, "9080", f"{REVIEWS}:9080")["routes"] == [default]


def test_a_route_for_every_caller_needs_no_guard():
    """The common case: every caller gets the VirtualService's routes, exactly as before."""
    text = cases.SOURCE_LABELS_ONLY.replace("sourceLabels: {app: productpage}", "uri: {prefix: /}")
    routes = _vhost(translate(cases.bookinfo(text)), "9080", f"{REVIEWS}:9080")["routes"]
    assert [r["route"]["cluster"] for r in routes] == [f"outbound|9080||{RATINGS}"]
    assert "headers" not in routes[0]["match"]


def test_source_labels_are_ignored_when_the_match_names_gateways():
    """sourceMatchHTTP: with match.gateways set, sourceLabels and sourceNamespace are not
    looked at (item 8)."""
    text = cases.SOURCE_LABELS_ONLY.replace(
        "sourceLabels: {app: productpage}",
        "sourceLabels: {app: productpage}\n      sourceNamespace: other\n      gateways: [mesh]",
    )
    routes = _vhost(translate(cases.bookinfo(text)), "9080", f"{REVIEWS}:9080")["routes"]
    assert routes[0]["match"] == {"prefix": "/", "case_sensitive": True}
    assert routes[0]["route"]["cluster"] == f"outbound|9080||{RATINGS}"
    assert len(routes) == 1  # every caller is governed by the VirtualService


# ---- item 2: port-level traffic policies replace the top level whole -------------------------


def test_a_port_level_policy_replaces_the_top_level_policy_for_its_port():
    """GetPortLevelTrafficPolicy: a port-level entry for the port *is* the policy (its four
    blocks; "port level policies do not inherit"), so the top-level breaker, outlier
    detection and retry budget are gone on port 8000 and kept on port 8001."""
    res = translate(seed.snapshot(cases.PORT_LEVEL))
    on_8000 = res.cluster("outbound|8000||httpbin.default.svc.cluster.local")
    assert on_8000["lb_policy"] == "ROUND_ROBIN"
    assert on_8000["circuit_breakers"] == {
        "thresholds": [
            {
                "max_connections": UNLIMITED,
                "max_pending_requests": UNLIMITED,
                "max_requests": UNLIMITED,
                "max_retries": UNLIMITED,
                "track_remaining": True,
            }
        ]
    }
    assert "outlier_detection" not in on_8000
    on_8001 = res.cluster("outbound|8001||httpbin.default.svc.cluster.local")
    assert on_8001["lb_policy"] == "LEAST_REQUEST"
    assert on_8001["circuit_breakers"]["thresholds"][0] == {
        "max_connections": 1,
        "max_pending_requests": 1,
        "max_requests": UNLIMITED,
        "max_retries": UNLIMITED,
        "track_remaining": True,
        "retry_budget": {"budget_percent": {"value": 10.0}, "min_retry_concurrency": 3},
    }
    assert on_8001["outlier_detection"] == {
        "enforcing_success_rate": 0,
        "consecutive_5xx": 1,
        "enforcing_consecutive_5xx": 100,
        "interval": "1s",
    }


def test_a_subset_port_level_entry_replaces_all_four_blocks():
    """MergeSubsetTrafficPolicy + MergeTrafficPolicy(hasPortLevel=true): on port 8001 the
    subset's port-level entry replaces connectionPool, loadBalancer, outlierDetection and tls,
    unset ones included; on port 8000 only the blocks the subset sets replace the (port-level)
    DestinationRule policy."""
    res = translate(seed.snapshot(cases.PORT_LEVEL))
    v1_8001 = res.cluster("outbound|8001|v1|httpbin.default.svc.cluster.local")
    assert v1_8001["outlier_detection"] == {
        "enforcing_success_rate": 0,
        "consecutive_gateway_failure": 2,
        "enforcing_consecutive_gateway_failure": 100,
    }
    threshold = v1_8001["circuit_breakers"]["thresholds"][0]
    # Neither the subset's http2MaxRequests nor the top-level maxConnections survive...
    assert (threshold["max_connections"], threshold["max_requests"]) == (UNLIMITED, UNLIMITED)
    # ...but the retry budget (not one of the four blocks) stays with the merged policy.
    assert threshold["retry_budget"] == {
        "budget_percent": {"value": 10.0},
        "min_retry_concurrency": 3,
    }
    v1_8000 = res.cluster("outbound|8000|v1|httpbin.default.svc.cluster.local")
    assert v1_8000["circuit_breakers"]["thresholds"][0]["max_requests"] == 7
    assert v1_8000["lb_policy"] == "ROUND_ROBIN"  # from the port level, not replaced
    assert "outlier_detection" not in v1_8000


# ---- item 3: several VirtualServices on one gateway host -------------------------------------


def test_virtual_services_on_one_gateway_host_are_appended_catch_all_last():
    """buildGatewayHTTPRouteConfig appends every bound VirtualService's routes to the host's
    virtual host, then SortVHostRoutes moves catch-all routes (IsCatchAllRoute) to the end,
    keeping the others' order: the newer VirtualService's /api route is reachable."""
    res = translate(seed.snapshot(cases.GATEWAY_MERGE, cases.web_api_endpoints()))
    (vhost,) = res.route_config("http.8080")["virtual_hosts"]
    assert (vhost["name"], vhost["domains"]) == ("*:8080", ["*"])
    assert [(r["match"], r["route"]["cluster"]) for r in vhost["routes"]] == [
        ({"prefix": "/api", "case_sensitive": True}, "outbound|80||api.default.svc.cluster.local"),
        ({"prefix": "/"}, "outbound|80||web.default.svc.cluster.local"),
    ]


# ---- item 4: namespace-scoped gateway server hosts ------------------------------------------


def test_namespace_scoped_server_hosts_bind_only_virtual_services_of_that_namespace():
    """buildGatewayHTTPRouteConfig intersects the VirtualService's hosts with
    host.NamesForNamespace(server.Hosts, vs.Namespace): team-a/shop.example.com is not a
    host for team-b's VirtualService, */docs.example.com is one for every namespace."""
    res = translate(seed.snapshot(cases.NAMESPACED_HOSTS, cases.team_endpoints()))
    hosts = {
        h["name"]: [r["route"]["cluster"] for r in h["routes"]]
        for h in res.route_config("http.8080")["virtual_hosts"]
    }
    assert hosts == {
        "docs.example.com:8080": ["outbound|80||b.team-b.svc.cluster.local"],
        "shop.example.com:8080": ["outbound|80||a.team-a.svc.cluster.local"],
    }


# ---- item 5: DestinationRules for one host in one namespace are merged -----------------------


def test_destination_rules_for_one_host_are_merged_as_istiod_does():
    """mergeDestinationRule: subsets are concatenated (a later duplicate name is dropped and
    reported), the first non-nil top-level trafficPolicy wins."""
    res = translate(cases.bookinfo(cases.SPLIT_RULES, cases.reviews_versions()))
    names = {c["name"] for c in res.clusters if REVIEWS in c["name"]}
    assert names == {
        f"outbound|9080||{REVIEWS}",
        f"outbound|9080|v1|{REVIEWS}",
        f"outbound|9080|v2|{REVIEWS}",
    }
    v1, v2 = res.cluster(f"outbound|9080|v1|{REVIEWS}"), res.cluster(f"outbound|9080|v2|{REVIEWS}")
    for cluster in (v1, v2):
        assert cluster["circuit_breakers"]["thresholds"][0]["max_connections"] == 3
    # v1's endpoints come from the first rule's subset, not the duplicate's labels.
    assert [e["endpoint"]["address"]["socket_address"]["port_value"]
            for e in v1["load_assignment"]["endpoints"][0]["lb_endpoints"]] == [10001]  # fmt: skip
    assert [str(w) for w in res.warnings] == [
        "DestinationRule default/reviews-v2: spec.subsets[1].name: subset 'v1' of host "
        f"{REVIEWS} is already defined by DestinationRule default/reviews-v1; istiod keeps the "
        "first and ignores this one",
        "DestinationRule default/reviews-v2: spec.trafficPolicy: ignored: DestinationRule "
        f"default/reviews-v1 for host {REVIEWS} is older and has a trafficPolicy (istiod's "
        "mergeDestinationRule keeps the first)",
    ]


def test_a_rule_in_another_namespace_with_callers_there_is_reported_not_applied():
    """istiod picks the caller namespace's rule first; one Envoy plays every caller here, so
    the Service namespace's rule serves all and the other is reported."""
    text = cases.SPLIT_RULES.replace(
        "name: reviews-v2, namespace: default", "name: reviews-v2, namespace: other"
    )
    endpoints = cases.reviews_versions()
    snap = cases.bookinfo(text, endpoints)
    assert [w.field for w in translate(snap).warnings] == []  # nobody calls from "other"
    snap.endpoints.append(
        type(endpoints[0])("client-0", "other", {"app": "client"}, "127.0.0.1", 10009)
    )
    (warning,) = translate(snap).warnings
    assert (warning.namespace, warning.name, warning.field) == ("other", "reviews-v2", "spec.host")
    assert "workloads in namespace other" in warning.message


# ---- item 7: legacy gateway names ------------------------------------------------------------


def test_legacy_gateway_names_resolve_to_namespace_and_name():
    """resolveGatewayName (model/config.go): name.ns.svc.cluster.local -> ns/name, for
    spec.gateways and for match.gateways."""
    res = translate(seed.snapshot(cases.GATEWAY_MERGE, cases.web_api_endpoints()))
    (vhost,) = res.route_config("http.8080")["virtual_hosts"]
    assert "outbound|80||api.default.svc.cluster.local" in [
        r["route"]["cluster"] for r in vhost["routes"]
    ]
    docs = seed.objects(cases.GATEWAY_MERGE)
    api = next(d for d in docs if d["kind"] == "VirtualService" and d["metadata"]["name"] == "api")
    api["spec"]["http"][0]["match"][0]["gateways"] = ["public.default"]  # name.ns
    snap = seed.snapshot(cases.GATEWAY_MERGE, cases.web_api_endpoints())
    snap.virtual_services = [d for d in docs if d["kind"] == "VirtualService"]
    (vhost,) = translate(snap).route_config("http.8080")["virtual_hosts"]
    assert len(vhost["routes"]) == 2
    api["spec"]["http"][0]["match"][0]["gateways"] = ["other.default"]
    (vhost,) = translate(snap).route_config("http.8080")["virtual_hosts"]
    assert len(vhost["routes"]) == 1  # the api route is for another gateway


def test_translation_does_not_change_its_input():
    snap = seed.snapshot(cases.PORT_LEVEL)
    before = copy.deepcopy(snap)
    translate(snap)
    assert snap == before


def _reviews_route(http: str, endpoints=None, rules: str = "") -> dict:
    text = cases.reviews_vs(http) + ("\n---\n" + rules if rules else "")
    res = translate(cases.bookinfo(text, endpoints))
    return _vhost(res, "9080", f"{REVIEWS}:9080")["routes"][0]


FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"

# ---- item 6: a fault part without its type is dropped, never sent --------------------------


def test_an_abort_without_error_type_is_dropped_and_the_delay_kept():
    """TranslateFault: an abort whose ErrorType is unset is dropped (validation warns "abort
    configured, but error type not set"); Envoy would reject the whole route table."""
    route = _reviews_route("""
        - fault:
            abort: {percentage: {value: 100}}
            delay: {fixedDelay: 1s, percentage: {value: 50}}
          route:
          - destination: {host: reviews}
    """)
    assert route["typed_per_filter_config"]["envoy.filters.http.fault"] == {
        "@type": FAULT,
        "delay": {"percentage": {"numerator": 500000, "denominator": "MILLION"},
                  "fixed_delay": "1s"},
    }  # fmt: skip


def test_a_delay_without_fixed_delay_is_dropped_and_a_fault_left_empty_is_not_sent():
    """TranslateFault: a delay with no fixedDelay is dropped; with nothing left the route gets
    no fault configuration at all."""
    route = _reviews_route("""
        - fault:
            delay: {percentage: {value: 100}}
            abort: {httpStatus: 503, percentage: {value: 100}}
          route:
          - destination: {host: reviews}
    """)
    assert route["typed_per_filter_config"]["envoy.filters.http.fault"] == {
        "@type": FAULT,
        "abort": {
            "http_status": 503,
            "percentage": {"numerator": 1000000, "denominator": "MILLION"},
        },
    }
    route = _reviews_route("""
        - fault:
            delay: {percentage: {value: 100}}
          route:
          - destination: {host: reviews}
    """)
    assert "typed_per_filter_config" not in route


# ---- item 8: the smaller ones -----------------------------------------------------------


def test_mirror_percent_is_n_of_100():
    """MirrorPercent: the deprecated integer mirrorPercent -> N/HUNDRED; 0 -> no mirror."""
    route = _reviews_route("""
        - mirror: {host: ratings}
          mirrorPercent: 30
          route:
          - destination: {host: reviews}
    """)
    assert route["route"]["request_mirror_policies"] == [
        {
            "cluster": f"outbound|9080||{RATINGS}",
            "runtime_fraction": {"default_value": {"numerator": 30, "denominator": "HUNDRED"}},
            "trace_sampled": False,
        }
    ]
    route = _reviews_route("""
        - mirror: {host: ratings}
          mirrorPercent: 0
          route:
          - destination: {host: reviews}
    """)
    assert "request_mirror_policies" not in route["route"]


def test_uri_regex_rewrite_and_direct_response_bytes():
    """applyHTTPRouteDestination: rewrite.uriRegexRewrite -> regex_rewrite (before uri);
    ApplyDirectResponse: body.bytes -> inline_bytes (base64 in both JSONs)."""
    route = _reviews_route("""
        - rewrite: {uriRegexRewrite: {match: "^/v1/(.*)$", rewrite: "/v2/\\\\1"}}
          route:
          - destination: {host: reviews}
    """)
    assert route["route"]["regex_rewrite"] == {
        "pattern": {"regex": "^/v1/(.*)$"},
        "substitution": "/v2/\\1",
    }
    route = _reviews_route("""
        - directResponse: {status: 418, body: {bytes: aGVsbG8=}}
    """)
    assert route["direct_response"] == {"status": 418, "body": {"inline_bytes": "aGVsbG8="}}


def test_retry_remote_localities_adds_the_previous_priorities_retry_priority():
    """retry.go ConvertPolicy: retryRemoteLocalities -> previous_priorities, update 2."""
    route = _reviews_route("""
        - retries: {attempts: 3, retryRemoteLocalities: true}
          route:
          - destination: {host: reviews}
    """)
    assert route["route"]["retry_policy"]["retry_priority"] == {
        "name": "envoy.retry_priorities.previous_priorities",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities"
            ".v3.PreviousPrioritiesConfig",
            "update_frequency": 2,
        },
    }


def test_consistent_hash_gives_ring_hash_a_hash_policy_and_no_previous_hosts_predicate():
    """ApplyRingHashLoadBalancer (RING_HASH, ring size), ConsistentHashToHashPolicy (the header)
    and ConvertPolicy(hashPolicy=true): retries stay on the hashed host."""
    res = translate(
        cases.bookinfo(
            cases.reviews_vs("""
        - route:
          - destination: {host: reviews}
    """)
            + "\n---\n"
            + cases.HASH_RULE,
            cases.reviews_versions(),
        )
    )
    cluster = res.cluster(f"outbound|9080||{REVIEWS}")
    assert (cluster["lb_policy"], cluster["ring_hash_lb_config"]) == (
        "RING_HASH",
        {"minimum_ring_size": 64},
    )
    action = _vhost(res, "9080", f"{REVIEWS}:9080")["routes"][0]["route"]
    assert action["hash_policy"] == [{"header": {"header_name": "x-user"}}]
    assert "retry_host_predicate" not in action["retry_policy"]
    # The default route of a Service without a VirtualService hashes too (hashForService),
    # keeping the previous-hosts predicate (BuildDefaultHTTPOutboundRoute).
    res = translate(cases.bookinfo(cases.HASH_RULE, cases.reviews_versions()))
    action = _vhost(res, "9080", f"{REVIEWS}:9080")["routes"][0]["route"]
    assert action["hash_policy"] == [{"header": {"header_name": "x-user"}}]
    assert "retry_host_predicate" in action["retry_policy"]


def test_maglev_and_the_deprecated_ring_size():
    ring = "ringHash: {minimumRingSize: 64}"
    maglev = cases.HASH_RULE.replace(ring, "maglev: {tableSize: 65537}")
    cluster = translate(cases.bookinfo(maglev)).cluster(f"outbound|9080||{REVIEWS}")
    assert (cluster["lb_policy"], cluster["maglev_lb_config"]) == (
        "MAGLEV",
        {"table_size": 65537},
    )
    old = cases.HASH_RULE.replace("ringHash: {minimumRingSize: 64}", "minimumRingSize: 128")
    cluster = translate(cases.bookinfo(old)).cluster(f"outbound|9080||{REVIEWS}")
    assert cluster["ring_hash_lb_config"] == {"minimum_ring_size": 128}


HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP_OPTIONS_TYPE = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _options(pool: str) -> dict:
    res = translate(cases.bookinfo(cases.POOL_RULE.format(pool=pool)))
    cluster = res.cluster(f"outbound|9080||{REVIEWS}")
    return cluster.get("typed_extension_protocol_options", {}).get(HTTP_OPTIONS)


def test_connection_pool_http_protocol_options_as_istiod_builds_them():
    """applyConnectionPool: tcp.idleTimeout when http.idleTimeout is unset, tcp
    maxConnectionDuration; applyH2Upgrade: UPGRADE -> HTTP/2 upstream, whose
    maxConcurrentStreams and http2KeepAlive apply; setUseDownstreamProtocol."""
    assert _options("tcp: {idleTimeout: 30s, maxConnectionDuration: 1m}") == {
        "@type": HTTP_OPTIONS_TYPE,
        "common_http_protocol_options": {"idle_timeout": "30s", "max_connection_duration": "60s"},
        "explicit_http_config": {"http_protocol_options": {}},
    }
    assert _options("{tcp: {idleTimeout: 30s}, http: {idleTimeout: 5s}}") == {
        "@type": HTTP_OPTIONS_TYPE,
        "common_http_protocol_options": {"idle_timeout": "5s"},
        "explicit_http_config": {"http_protocol_options": {}},
    }
    upgrade = (
        "http: {h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 10, "
        "http2KeepAlive: {interval: 10s, timeout: 2s}}"
    )
    assert _options(upgrade) == {
        "@type": HTTP_OPTIONS_TYPE,
        "common_http_protocol_options": {},
        "explicit_http_config": {
            "http2_protocol_options": {
                "max_concurrent_streams": 10,
                "connection_keepalive": {"interval": "10s", "timeout": "2s"},
            }
        },
    }
    assert _options("http: {useClientProtocol: true}") == {
        "@type": HTTP_OPTIONS_TYPE,
        "use_downstream_protocol_config": {
            "http_protocol_options": {},
            "http2_protocol_options": {},
        },
    }
    assert _options("http: {h2UpgradePolicy: DEFAULT}") is None  # mesh default: no upgrade


def test_the_absolute_fqdn_is_a_domain_of_the_service():
    """GenerateAltVirtualHosts with PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN (on by default)."""
    domains = _vhost(translate(cases.bookinfo("")), "9080", f"{REVIEWS}:9080")["domains"]
    assert f"{REVIEWS}." in domains


# ---- item 9: redirects ----------------------------------------------------------------------


def test_redirect_ports_and_prefix_rewrite_as_apply_redirect_builds_them():
    """ApplyRedirect: FROM_REQUEST_PORT -> the listener's port; FROM_PROTOCOL_DEFAULT -> no
    port; an explicit port kept unless it is the scheme's default (:443 for https);
    prefixRewrite instead of the path; the redirect code by name."""
    snap = seed.snapshot(cases.WEB_SERVICE + "\n---\n" + cases.REDIRECTS)
    (vhost,) = translate(snap).route_config("http.8080")["virtual_hosts"]
    redirects = [r.get("redirect") for r in vhost["routes"]]
    assert redirects == [
        {"host_redirect": "new.example.com", "port_redirect": 8080,
         "response_code": "MOVED_PERMANENTLY"},
        {"host_redirect": "new.example.com", "response_code": "MOVED_PERMANENTLY"},
        {"scheme_redirect": "https", "port_redirect": 8443, "response_code": "MOVED_PERMANENTLY"},
        {"scheme_redirect": "https", "response_code": "MOVED_PERMANENTLY"},
        {"prefix_rewrite": "/new", "response_code": "PERMANENT_REDIRECT"},
        None,
    ]  # fmt: skip


def test_https_redirect_requires_tls_on_every_host_of_the_server():
    """buildGatewayHTTPRouteConfig: tls.httpsRedirect sets require_tls ALL on the server's
    virtual hosts, and adds one (no routes) for a host no VirtualService binds."""
    snap = seed.snapshot(cases.WEB_SERVICE + "\n---\n" + cases.HTTPS_GATEWAY)
    snap.fallback_certificate = ("CERT", "KEY")
    res = translate(snap)
    hosts = res.route_config("http.8080")["virtual_hosts"]
    assert [(h["name"], h.get("require_tls"), "routes" in h) for h in hosts] == [
        ("legacy.example.com:8080", "ALL", False),
        ("shop.example.com:8080", "ALL", True),
    ]


def test_https_server_terminates_tls_with_the_secret_named_by_credential_name():
    """BuildListenerTLSContext for SIMPLE: the credential's certificate (inline here, SDS on
    a cluster), ALPN h2/http1.1, no client certificate; an SNI-matched filter chain routing
    with https.<port>.<port name>.<gateway>.<namespace> (gatewayRDSRouteName)."""
    import base64

    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": "shop-credential", "namespace": "istio-system"},
        "data": {
            "tls.crt": base64.b64encode(b"CERT-PEM").decode(),
            "tls.key": base64.b64encode(b"KEY-PEM").decode(),
        },
    }
    snap = seed.snapshot(cases.WEB_SERVICE + "\n---\n" + cases.HTTPS_GATEWAY)
    snap.secrets = [secret]
    res = translate(snap)
    listener = res.listener("gateway_8443")
    (chain,) = listener["filter_chains"]
    assert chain["filter_chain_match"] == {"server_names": ["shop.example.com"]}
    assert chain["transport_socket"] == {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"
            ".DownstreamTlsContext",
            "common_tls_context": {
                "alpn_protocols": ["h2", "http/1.1"],
                "tls_certificates": [
                    {
                        "certificate_chain": {"inline_string": "CERT-PEM"},
                        "private_key": {"inline_string": "KEY-PEM"},
                    }
                ],
            },
            "require_client_certificate": False,
        },
    }
    hcm = chain["filters"][0]["typed_config"]
    assert hcm["rds"] == {"route_config_name": "https.8443.https.secure.default"}
    assert [h["name"] for h in res.route_config("https.8443.https.secure.default")[
        "virtual_hosts"]] == ["shop.example.com:8443"]  # fmt: skip
    assert res.warnings == []


def test_an_https_server_without_its_secret_serves_the_fallback_certificate_and_warns():
    snap = seed.snapshot(cases.WEB_SERVICE + "\n---\n" + cases.HTTPS_GATEWAY)
    assert "gateway_8443" not in [x["name"] for x in translate(snap).listeners]
    snap.fallback_certificate = ("GENERATED-CERT", "GENERATED-KEY")
    res = translate(snap)
    chain = res.listener("gateway_8443")["filter_chains"][0]
    tls = chain["transport_socket"]["typed_config"]["common_tls_context"]
    assert tls["tls_certificates"][0]["certificate_chain"] == {"inline_string": "GENERATED-CERT"}
    (warning,) = res.warnings
    assert str(warning) == (
        "Gateway default/secure: spec.servers[0].tls.credentialName: no kubernetes.io/tls "
        "Secret 'shop-credential' in the manifests: serving a generated self-signed "
        "certificate instead (clients must not verify it, e.g. curl -k)"
    )
