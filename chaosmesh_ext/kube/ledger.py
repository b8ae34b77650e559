"""The change ledger: a durable record of every change a run makes, written before the change.

One JSON file per run id under ``CHAOSMESH_LEDGER_DIR`` (default ``~/.chaosmesh/ledger/``),
rewritten atomically (temporary file, fsync, rename, fsync of the directory) so a kill -9 at
any instant leaves either the old or the new record, never half of one. Each entry says which
object (kind, namespace, name, API version), what it looked like before (spec, labels,
annotations, or ``absent`` when we create it), which run and action, when, and — once the
write went through — what we wrote (resourceVersion + content). ``chaosmesh restore`` and the
safety-net control read these files to put everything back.

Entry states: ``pending`` (recorded, write in flight), ``applied``, ``not-applied`` (the write
failed: nothing changed), ``restored``, ``refused`` (someone else changed the object since),
``forgotten`` (dropped by hand with ``chaosmesh restore --forget``), ``moot`` (the API server
that held the object is gone: an embedded mesh that stopped, whose objects died with it).

The file also names the process that made the changes (``process``: pid, start time, host),
so another run can tell a run still in progress from one that was killed and left changes.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from chaosmesh_ext._annotations import LEDGER_ANNOTATION as LEDGER_ANNOTATION
from chaosmesh_ext._kobject import KObject
from chaosmesh_ext._process import ProcessId
from chaosmesh_ext.errors import KubeError

LEDGER_DIR_ENV = "CHAOSMESH_LEDGER_DIR"
RUN_ID_ENV = "CHAOSMESH_RUN_ID"
# The configuration key through which the safety-net control shares the run id with activities.
RUN_ID_KEY = "chaosmesh_run_id"
DEFAULT_LEDGER_DIR = "~/.chaosmesh/ledger"

PENDING, APPLIED, NOT_APPLIED, RESTORED, REFUSED = (
    "pending",
    "applied",
    "not-applied",
    "restored",
    "refused",
)
# Dropped by hand (``chaosmesh restore --forget``): the cluster keeps what is there.
FORGOTTEN = "forgotten"
# The server is gone with the object (a stopped embedded mesh): nothing left to restore.
MOOT = "moot"
OUTSTANDING = (PENDING, APPLIED, REFUSED)


class LedgerError(KubeError, RuntimeError):
    """The ledger file cannot be read or written (read-only HOME, corrupt JSON); names the file."""


_lock = threading.Lock()
_process_run_id: str | None = None


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id() -> str:
    """A run id that sorts by time and is unique enough: ``20261126T231500-3f9a1c``."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{secrets.token_hex(3)}"


def set_run_id(run_id: str | None) -> None:
    """Make ``run_id`` this process's run (the control does this before the experiment)."""
    global _process_run_id
    _process_run_id = run_id


def current_run_id() -> str:
    """``CHAOSMESH_RUN_ID``, else the id the control set, else one generated and kept."""
    global _process_run_id
    from_env = os.environ.get(RUN_ID_ENV)
    if from_env:
        return from_env
    if _process_run_id is None:
        _process_run_id = new_run_id()
    return _process_run_id


def choose_run_id(configuration: Mapping[str, Any] | None = None, *, new: bool = False) -> str:
    """The run a change belongs to — the one place that decides it.

    ``CHAOSMESH_RUN_ID`` first (a game day's id, so its ``restore --run`` finds the changes),
    then the configuration's ``chaosmesh_run_id`` (set by the safety-net control), then: with
    ``new`` a fresh id (the control starting a run), else this process's run id.
    """
    chosen = os.environ.get(RUN_ID_ENV) or (configuration or {}).get(RUN_ID_KEY)
    if chosen:
        return str(chosen)
    return new_run_id() if new else current_run_id()


def ledger_dir(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get(LEDGER_DIR_ENV) or DEFAULT_LEDGER_DIR).expanduser()


def content(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The part of an object a change touches and a restore gives back: spec, labels, annotations.

    Keys absent from the object stay absent here, so "no labels" and "empty labels" differ, as
    they do byte for byte in the stored object.
    """
    if obj is None:
        return None
    state: dict[str, Any] = {}
    if "spec" in obj:
        state["spec"] = copy.deepcopy(obj["spec"])
    meta = KObject(obj).metadata
    for key in ("labels", "annotations"):
        if key in meta:
            state[key] = copy.deepcopy(meta[key])
    return state


def with_content(obj: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` with its spec, labels and annotations replaced by ``state`` (absent -> removed)."""
    result = copy.deepcopy(dict(obj))
    meta = result.setdefault("metadata", {})
    if "spec" in state:
        result["spec"] = copy.deepcopy(state["spec"])
    else:
        result.pop("spec", None)
    for key in ("labels", "annotations"):
        if key in state:
            meta[key] = copy.deepcopy(state[key])
        else:
            meta.pop(key, None)
    return result


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class Ledger:
    """The record of one run. Cheap to construct; every method reads and rewrites its file."""

    def __init__(
        self,
        run_id: str,
        directory: str | os.PathLike[str] | None = None,
        api: Mapping[str, Any] | None = None,
    ) -> None:
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise ValueError(f"run id {run_id!r}: must be non-empty, without '/' or a leading '.'")
        self.run_id = run_id
        self.path = ledger_dir(directory) / f"{run_id}.json"
        # Which API server the changes go to (``host``, and ``kubeconfig`` when the client came
        # from an explicit file): a later ``chaosmesh restore`` must restore on the same one.
        self.api = dict(api) if api else None

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"run_id": self.run_id, "created": _now(), "entries": []}
        except (OSError, ValueError) as exc:
            raise LedgerError(f"change ledger {self.path}: cannot read it: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise LedgerError(f"change ledger {self.path}: not a ledger (no 'entries' list)")
        return data

    def entries(self) -> list[dict[str, Any]]:
        return list(self.load()["entries"])

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        with _lock:
            data = self.load()
            yield data
            try:
                write_atomic(self.path, data)
            except OSError as exc:
                raise LedgerError(f"change ledger {self.path}: cannot write it: {exc}") from exc

    def begin(
        self,
        kind: str,
        namespace: str,
        name: str,
        api_version: str,
        before: Mapping[str, Any] | None,
        action: str,
    ) -> dict[str, Any]:
        """Record an intended change (durably) and return the entry, state ``pending``."""
        with self._editing() as data:
            # Which process makes this run's changes (the latest): while it runs they are its own.
            data["process"] = ProcessId.current().to_json()
            entry = {
                "id": f"{self.run_id}#{len(data['entries']) + 1}",
                "run_id": self.run_id,
                "kind": kind,
                "namespace": namespace,
                "name": name,
                "api_version": api_version,
                "action": action,
                "time": _now(),
                "state": PENDING,
                "absent_before": before is None,
                "before": content(before),
                "after": None,
            }
            if self.api:
                entry["api"] = dict(self.api)
            data["entries"].append(entry)
        return entry

    def update(self, entry_id: str, **fields: Any) -> dict[str, Any]:
        with self._editing() as data:
            for entry in data["entries"]:
                if entry["id"] == entry_id:
                    entry.update(fields)
                    entry["updated"] = _now()
                    return dict(entry)
        raise KeyError(f"ledger {self.path}: no entry {entry_id}")

    def rebase(self, entry_id: str, before: Mapping[str, Any] | None) -> None:
        """The object changed under us before our write landed: record the fresh 'before'."""
        self.update(entry_id, before=content(before), absent_before=before is None)

    def applied(self, entry_id: str, written: Mapping[str, Any]) -> None:
        after = content(written) or {}
        after["resourceVersion"] = KObject(written).resource_version
        self.update(entry_id, state=APPLIED, after=after)

    def not_applied(self, entry_id: str, error: str) -> None:
        self.update(entry_id, state=NOT_APPLIED, error=error)

    def outstanding(self) -> list[dict[str, Any]]:
        return [e for e in self.entries() if e["state"] in OUTSTANDING]

    def process(self) -> ProcessId | None:
        """The process that made this run's changes (None in ledgers older than the field)."""
        return ProcessId.from_json(self.load().get("process"))

    def running(self) -> bool | None:
        """Whether the run's process still runs: True/False, None when it cannot be told
        (another host)."""
        process = self.process()
        return process.running() if process is not None else False


def all_ledgers(directory: str | os.PathLike[str] | None = None) -> list[Ledger]:
    """Every run recorded in the ledger directory, oldest first."""
    root = ledger_dir(directory)
    if not root.is_dir():
        return []
    return [Ledger(p.stem, root) for p in sorted(root.glob("*.json")) if not p.name.startswith(".")]
