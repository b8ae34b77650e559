"""The xDS documents Envoy reads: the same bytes whether a resource's encoding is reused or
not (binary protobuf for clusters and route configurations)."""

from __future__ import annotations

import copy

import pytest

from chaosmesh_ext.mesh.translate import Memo, translate
from chaosmesh_ext.mesh.xds_files import (
    CLUSTER_TYPE_URL,
    XdsFiles,
    cluster_bytes,
    cluster_document,
    read_document,
    route_bytes,
    route_document,
)
from tests.support import mesh_seed as seed


def test_documents_are_the_encoding_of_the_resources_change_after_change(tmp_path):
    """Unchanged clusters and virtual hosts (the very same objects, from the translator's
    memo) reuse their text; changed ones are serialised again: the document is byte for
    byte what serialising the whole afresh gives."""
    files = XdsFiles(tmp_path)
    memo = Memo()
    snap = seed.snapshot(seed.CANARY + "---\n" + seed.BREAKER, seed.canary_endpoints())
    for step in range(4):
        res = translate(snap, memo)
        version = f"v{step}"
        assert files.cds_document(res.clusters, version) == cluster_document(version, res.clusters)
        for route in res.routes:
            assert files.rds_document(route, version) == route_document(version, route_bytes(route))
        # The next change: a new VirtualService object (as the API store makes on a write),
        # then a new DestinationRule.
        snap.virtual_services = copy.deepcopy(snap.virtual_services)
        route = snap.virtual_services[0]["spec"]["http"][0]["route"]
        route[0]["weight"], route[1]["weight"] = route[1]["weight"], route[0]["weight"]
        if step == 1:
            snap.destination_rules = copy.deepcopy(snap.destination_rules)
            snap.destination_rules[0]["spec"]["trafficPolicy"] = {
                "loadBalancer": {"simple": "RANDOM"}
            }


def test_a_refused_cluster_names_its_field_and_the_next_document_is_whole(tmp_path):
    files = XdsFiles(tmp_path)
    res = translate(seed.snapshot(seed.CANARY + "---\n" + seed.BREAKER, seed.canary_endpoints()))
    first = files.cds_document(res.clusters, "1")
    bad = copy.deepcopy(res.clusters)
    bad[1]["circuit_breakers"]["thresholds"][0]["max_connections"] = "many"
    with pytest.raises(ValueError) as caught:
        files.cds_document(bad, "2")
    name = bad[1]["name"]
    assert str(caught.value) == (
        f"cluster {name}.circuit_breakers.thresholds[0].max_connections: "
        "expected an integer (uint32), got 'many'"
    )
    assert files.cds_document(res.clusters, "1") == first
    version, clusters = read_document(first, CLUSTER_TYPE_URL)
    assert (version, clusters) == ("1", [cluster_bytes(c) for c in res.clusters])


def test_a_route_configuration_of_virtual_hosts_only(tmp_path):
    files = XdsFiles(tmp_path)
    route = {"virtual_hosts": [{"name": "a", "domains": ["*"], "routes": []}]}
    assert files.rds_document(route, "1") == route_document("1", route_bytes(route))
    assert files.rds_document(route, "2") == route_document("2", route_bytes(route))


def test_envoys_files_are_swapped_as_links_and_only_two_generations_are_kept(tmp_path):
    """A linked file is renamed into place without ext4 flushing its data first; the data
    file before the last stays for an Envoy still reading it, older ones go."""
    from chaosmesh_ext.mesh.xds_files import Staged, remove_linked

    path = tmp_path / "cds" / "cds.json"
    for n in range(4):
        staged = Staged(links=True)
        staged.add("cds", path, f"generation {n}")
        assert path.read_text() == f"generation {n - 1}" if n else not path.exists()
        staged.commit("cds")
        staged.discard()
        assert path.is_symlink() and path.read_text() == f"generation {n}"
    data = sorted(p.read_text() for p in path.parent.iterdir() if p != path)
    assert data == ["generation 2", "generation 3"]
    # Staged but not committed: nothing visible, and nothing left behind.
    staged = Staged(links=True)
    staged.add("cds", path, "never")
    staged.discard()
    assert path.read_text() == "generation 3"
    assert len(list(path.parent.iterdir())) == 3
    remove_linked(path)
    assert list(path.parent.iterdir()) == []
