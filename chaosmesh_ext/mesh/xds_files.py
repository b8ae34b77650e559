"""File-based xDS: where Envoy finds its listeners, clusters and route configurations.

Layout under the xDS root: ``cds/cds.pb``, ``lds/lds.json`` and ``rds/<name>/route.pb``
(one directory per route configuration, so renaming one file reloads only that one). Route
configurations and clusters are binary protobuf (``proto_wire``): Istio gives every Service of
one port a single route configuration, and file-based CDS is one file of every cluster, so
Envoy re-reads all of one for a change to one VirtualService or one DestinationRule, and
binary is what it reads fastest (the clusters of 200 Services: about 20 ms of Envoy's CPU
instead of 75 ms as JSON). Listeners, few and rarely changed, stay JSON.

Every write is a new file next to the live one, and Envoy's ``watched_directory`` reacts
when it is renamed into place (in-place writes would be ignored). Envoy's files are swapped
as symbolic links (``Staged(links=True)``): the live name is a link to a data file, and a
change writes a new data file and renames a new link over the old one. Renaming a regular
file over another makes ext4 write the new file's data out first (its ``auto_da_alloc``
guard against empty files after a crash), which a busy disk stretches to tens or hundreds
of milliseconds on every change; renaming a link costs nothing of the kind. The data file
before the last one is removed at the next swap, once Envoy has read the last one.

A change that spans several files is staged first (``Staged``): every new file (and link) is
written before any is renamed, so a full disk fails it before Envoy sees anything, and the
renames that follow need no space. No fsync: these files live only as long as the Envoy
reading them (a mesh does not survive a reboot); what must survive a crash (the change
ledger) is written elsewhere, with fsync.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from . import proto_wire

JSON = dict[str, Any]
ROUTE_MESSAGE = "envoy.config.route.v3.RouteConfiguration"
VIRTUAL_HOST_MESSAGE = "envoy.config.route.v3.VirtualHost"
CLUSTER_MESSAGE = "envoy.config.cluster.v3.Cluster"
_VIRTUAL_HOSTS_FIELD = 2  # RouteConfiguration.virtual_hosts
_RESPONSE_VERSION_FIELD, _RESPONSE_RESOURCES_FIELD = 1, 2  # DiscoveryResponse
ROUTE_TYPE_URL = proto_wire.TYPE_PREFIX + ROUTE_MESSAGE
CLUSTER_TYPE_URL = proto_wire.TYPE_PREFIX + CLUSTER_MESSAGE
ROUTE_FILE = "route.pb"
CLUSTERS_FILE = "cds.pb"
T = TypeVar("T", str, bytes)


def config_source(path: Path) -> JSON:
    """A ``path_config_source`` that reloads when a file is renamed into its directory."""
    return {
        "resource_api_version": "V3",
        "path_config_source": {"path": str(path), "watched_directory": {"path": str(path.parent)}},
    }


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` by rename, so a reader sees the old or the new file whole.

    On a full disk (``OSError`` ENOSPC) the old file is left as it was.
    """
    staged = Staged()
    try:
        staged.add("file", path, text)
        staged.commit("file")
    finally:
        staged.discard()


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write refused for want of space (or of quota)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class Staged:
    """Files written in advance next to their targets; ``commit(key)`` renames one in place.

    ``add`` raises ``OSError`` (a full disk) with nothing visible changed; ``discard`` removes
    whatever was not committed (and directories ``add`` created for it). With ``links`` the
    target becomes a symbolic link to a data file beside it (see the module's docstring).
    """

    def __init__(self, links: bool = False) -> None:
        # key -> (what is renamed into place, target, the link's data file or None)
        self._pending: dict[str, tuple[Path, Path, Path | None]] = {}
        self._made_dirs: list[Path] = []
        self._links = links

    def add(self, key: str, path: Path, content: str | bytes) -> None:
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True)
            self._made_dirs.append(path.parent)
        prefix = f"{_DATA_PREFIX}{path.name}." if self._links else ".tmp-"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".part")
        self._pending[key] = (Path(tmp), path, None)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode() if isinstance(content, str) else content)
        if self._links:
            link = path.parent / f".tmp-{os.urandom(8).hex()}.link"
            os.symlink(Path(tmp).name, link)  # FileExistsError rather than reuse a name
            self._pending[key] = (link, path, Path(tmp))

    def has(self, key: str) -> bool:
        return key in self._pending

    def commit(self, key: str) -> None:
        moved, path, data = self._pending.pop(key)
        previous = _link_target(path)
        os.replace(moved, path)
        with contextlib.suppress(ValueError):
            self._made_dirs.remove(path.parent)  # holds a live file now
        if data is not None:
            staged = {d.name for _, target, d in self._pending.values() if d and target == path}
            _retire(path, keep={data.name, previous, *staged})

    def discard(self) -> None:
        for moved, _, data in self._pending.values():
            for leftover in (moved, data):
                if leftover is not None:
                    with contextlib.suppress(FileNotFoundError):
                        leftover.unlink()
        self._pending.clear()
        for directory in reversed(self._made_dirs):
            with contextlib.suppress(OSError):
                directory.rmdir()
        self._made_dirs.clear()


_DATA_PREFIX = "."  # a link's data files: ".<name>.<random>.part" beside <name>


def _link_target(path: Path) -> str | None:
    """The data file ``path`` links to now (None: no link there)."""
    try:
        return os.readlink(path)
    except OSError:
        return None


def _retire(path: Path, keep: set[str | None]) -> None:
    """Remove ``path``'s data files but ``keep``: the one just linked, and the one before,
    which Envoy may still be reading (it is removed at the next swap, after Envoy has
    confirmed this one)."""
    prefix = f"{_DATA_PREFIX}{path.name}."
    for entry in os.scandir(path.parent):
        ours = entry.name.startswith(prefix) and entry.name.endswith(".part")
        if ours and entry.name not in keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def remove_linked(path: Path) -> None:
    """Remove ``path`` and, when it is a link ``Staged(links=True)`` made, its data files."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if path.parent.is_dir():
        _retire(path, keep=set())


def _document(version: str, resources: list[JSON]) -> str:
    return json.dumps({"version_info": version, "resources": resources}, sort_keys=True)


def _virtual_host_field(vhost: JSON) -> bytes:
    """One ``virtual_hosts`` entry of a route configuration, encoded."""
    name = vhost.get("name")
    payload = proto_wire.encode(VIRTUAL_HOST_MESSAGE, vhost, f"virtual_hosts[{name}]")
    return proto_wire.field_bytes(_VIRTUAL_HOSTS_FIELD, payload)


class _Texts(Generic[T]):
    """The serialised form of the objects in the last document of one file, by identity.

    The translator hands back the very same objects for what a change left alone (its memo),
    so a thousand unchanged clusters or virtual hosts are not serialised again. Each object is
    held with its text, so no other object can take its identity while it is remembered; only
    the last document's objects are.
    """

    def __init__(self, serialise: Callable[[JSON], T]) -> None:
        self._serialise: Callable[[JSON], T] = serialise
        self._last: dict[int, tuple[object, T]] = {}
        self._now: dict[int, tuple[object, T]] = {}

    def text(self, obj: JSON) -> T:
        found = self._last.get(id(obj))
        if found is None or found[0] is not obj:
            found = (obj, self._serialise(obj))
        self._now[id(obj)] = found
        return found[1]

    def done(self) -> None:
        self._last, self._now = self._now, {}

    def abandon(self) -> None:
        """A document was refused: the next one reuses what the last good one had."""
        self._now = {}


def cluster_bytes(cluster: JSON) -> bytes:
    """The cluster ``cluster`` (its JSON, ``"@type"`` included) encoded.

    Raises ``ValueError`` naming the cluster and the field Envoy's API does not have or
    cannot take.
    """
    where = f"cluster {cluster.get('name')}"
    kind = cluster.get("@type", CLUSTER_TYPE_URL)
    if kind != CLUSTER_TYPE_URL:
        raise ValueError(f"{where}: @type {kind!r} is not {CLUSTER_TYPE_URL}")
    body = {k: v for k, v in cluster.items() if k != "@type"}
    return proto_wire.encode(CLUSTER_MESSAGE, body, where)


def _cluster_resource(cluster: JSON) -> bytes:
    """One ``resources`` entry of a CDS DiscoveryResponse: the cluster in an ``Any``."""
    resource = proto_wire.any_message(CLUSTER_TYPE_URL, cluster_bytes(cluster))
    return proto_wire.field_bytes(_RESPONSE_RESOURCES_FIELD, resource)


def route_bytes(route: JSON, hosts: _Texts[bytes] | None = None) -> bytes:
    """The route configuration ``route`` (its JSON, ``"@type"`` included) encoded, each
    virtual host's bytes reused from ``hosts`` while it is the same object.

    Raises ``ValueError`` naming the field Envoy's API does not have or cannot take.
    """
    hosts = hosts if hosts is not None else _Texts(_virtual_host_field)
    head = {k: v for k, v in route.items() if k not in ("@type", "virtual_hosts")}
    parts = proto_wire.encode_fields(
        ROUTE_MESSAGE, head, f"route configuration {route.get('name')}"
    )
    vhosts = route.get("virtual_hosts")
    if vhosts is not None:
        if not isinstance(vhosts, list):
            raise ValueError(
                f"route configuration {route.get('name')}: virtual_hosts is not a list"
            )
        parts += [(_VIRTUAL_HOSTS_FIELD, hosts.text(h)) for h in vhosts]
        parts.sort(key=lambda part: part[0])  # stable: the virtual hosts keep their order
    return b"".join(part for _, part in parts)


def _version_field(version: str) -> bytes:
    return proto_wire.field_bytes(_RESPONSE_VERSION_FIELD, version.encode())


def route_document(version: str, encoded_route: bytes) -> bytes:
    """A DiscoveryResponse holding one encoded route configuration."""
    resource = proto_wire.any_message(ROUTE_TYPE_URL, encoded_route)
    return _version_field(version) + proto_wire.field_bytes(_RESPONSE_RESOURCES_FIELD, resource)


def cluster_document(version: str, clusters: list[JSON]) -> bytes:
    """A DiscoveryResponse holding ``clusters``; ``ValueError`` naming a field Envoy cannot
    take."""
    return _version_field(version) + b"".join(map(_cluster_resource, clusters))


def read_document(data: bytes, type_url: str) -> tuple[str, list[bytes]]:
    """(version_info, the encoded resources) of a DiscoveryResponse whose resources are all
    of ``type_url``; ``ValueError`` when it is not one."""
    version, resources = "", []
    for number, value in proto_wire.read_fields(data):
        if number == _RESPONSE_VERSION_FIELD and isinstance(value, bytes):
            version = value.decode()
        elif number == _RESPONSE_RESOURCES_FIELD and isinstance(value, bytes):
            fields = dict(proto_wire.read_fields(value))
            payload = fields.get(2)
            if fields.get(1) != type_url.encode() or not isinstance(payload, bytes):
                raise ValueError(f"a resource that is not a {type_url.rsplit('/', 1)[-1]}")
            resources.append(payload)
    return version, resources


def read_route_document(data: bytes) -> tuple[str, list[bytes]]:
    """(version_info, the encoded route configurations) of a file :func:`route_document`
    wrote; ``ValueError`` when it is not one."""
    return read_document(data, ROUTE_TYPE_URL)


class XdsFiles:
    """The xDS directory tree of one Envoy."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.cds_path = self.root / "cds" / CLUSTERS_FILE
        self.lds_path = self.root / "lds" / "lds.json"
        self.rds_root = self.root / "rds"
        self._clusters: _Texts[bytes] = _Texts(_cluster_resource)
        self._vhosts: dict[str, _Texts[bytes]] = {}  # by route configuration name

    def rds_path(self, name: str) -> Path:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"route configuration name {name!r} cannot name a file")
        return self.rds_root / name / ROUTE_FILE

    def bind_rds(self, listener: JSON) -> JSON:
        """A copy of ``listener`` whose HCM fetches its route config from our RDS file."""
        out = json.loads(json.dumps(listener))
        for chain in out.get("filter_chains") or []:
            for flt in chain.get("filters") or []:
                rds = (flt.get("typed_config") or {}).get("rds")
                if rds is not None:
                    rds["config_source"] = config_source(self.rds_path(rds["route_config_name"]))
        return out

    def cds_document(self, clusters: list[JSON], version: str) -> bytes:
        """The clusters' file, each cluster's bytes reused while it is the same object (the
        translator's memo hands back the clusters a change left alone); ``ValueError``
        naming the cluster and the field Envoy cannot take."""
        try:
            parts = [self._clusters.text(c) for c in clusters]
        except ValueError:
            self._clusters.abandon()
            raise
        self._clusters.done()
        return _version_field(version) + b"".join(parts)

    def cds_version(self) -> str:
        """The version of the clusters on disk."""
        return read_document(self.cds_path.read_bytes(), CLUSTER_TYPE_URL)[0]

    def lds_document(self, listeners: list[JSON], version: str) -> str:
        return _document(version, [self.bind_rds(x) for x in listeners])

    def rds_document(self, route: JSON, version: str) -> bytes:
        """The route configuration's file; ``ValueError`` naming a field Envoy cannot take."""
        name = str(route.get("name"))
        hosts = self._vhosts.get(name) or _Texts(_virtual_host_field)
        encoded = route_bytes(route, hosts)
        hosts.done()
        self._vhosts[name] = hosts  # only once encoded: a refused route keeps the last good
        return route_document(version, encoded)

    def rds_version(self, name: str) -> str:
        """The version of route configuration ``name`` on disk."""
        return read_route_document(self.rds_path(name).read_bytes())[0]

    def remove_rds(self, name: str) -> None:
        """Drop a route configuration's file but keep its directory.

        Envoy watches the directory with inotify and never re-adds the watch: a removed
        listener keeps draining (and keeps its RDS subscription) for ``--drain-time-s``, and
        a listener re-added with the same route name meanwhile shares that subscription. If
        the directory were deleted, the shared subscription would never see the new file.
        """
        self._vhosts.pop(name, None)
        remove_linked(self.rds_path(name))

    def route_names(self) -> list[str]:
        if not self.rds_root.is_dir():
            return []
        return sorted(p.name for p in self.rds_root.iterdir() if (p / ROUTE_FILE).is_file())
