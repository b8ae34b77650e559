"""The object store behind the embedded API: kube-apiserver's write semantics, in memory.

Objects get ``resourceVersion`` (one counter for the whole store, as etcd's revision),
``uid``, ``generation`` (bumped when anything but metadata changes) and
``creationTimestamp``. Writes of Istio kinds go through two hooks before they are committed:
``validate(obj) -> causes`` (422 on any cause) and ``apply(candidate_state) -> version``,
the daemon's "translate and push to Envoy". Only when ``apply`` returns is the write stored
and answered, so the API never reports a state the data plane does not enforce; if it
raises ``ApplyRejected`` the store is left as it was and the client gets 422 with the reason.

Writes are serialised (one Envoy push at a time); reads never wait for a push. A dry run
(``dry_run=True``, the API's ``?dryRun=All``) goes through every check — validation,
conflicts, patching — and answers the object as it would be, but neither pushes to Envoy nor
stores anything nor hands it to an owner, so ``kubectl diff`` and ``kubectl apply
--dry-run=server`` work.

Every committed change is also an event (``ADDED``/``MODIFIED``/``DELETED`` at its revision) in
a bounded log that watches read from, so a watch started at a ``resourceVersion`` sees every
change after it, in order, as from etcd (410 Gone once the log no longer reaches back).

The kinds whose writes a workload controller answers on a cluster (``owned_writes``: deleting
a Pod, scaling a Deployment) are handed, after the same checks (preconditions, stale
``resourceVersion``, the patch itself), to an ``Owner`` the daemon sets: it acts on what runs
and republishes the objects.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from . import resources
from .patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from .resources import ResourceType
from .selectors import field_selector, label_selector
from .status import (
    ApiError,
    Cause,
    already_exists,
    bad_request,
    conflict,
    gone,
    invalid,
    method_not_allowed,
    not_found,
    unsupported_media_type,
)
from .warnings import warn

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
SUPPORTED_PATCHES = [JSON_PATCH, MERGE_PATCH]
# Built-in kinds (Deployments) also take a strategic merge patch, the client's default there.
BUILTIN_PATCHES = [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH]
# Events kept for watches, per kind, as kube-apiserver's watch cache keeps them (100 by
# default, --default-watch-cache-size): a watcher that falls further behind gets 410 and lists
# again. Per kind, so a burst of changes to one kind (an experiment flipping weights every
# second) neither ends the watches of another nor keeps hundreds of old versions in memory.
EVENT_LOG_SIZE = 100

_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
# Metadata the server owns: a client may echo it back but never sets it.
_SYSTEM_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


class ApplyRejected(Exception):
    """Raised by the apply hook when the data plane refuses the candidate configuration."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CauseLike(Protocol):
    @property
    def field(self) -> str: ...

    @property
    def message(self) -> str: ...


Validator = Callable[[dict[str, Any]], Iterable[CauseLike]]
# Warnings about an object the validator accepts (fields with no effect, istiod's warnings).
Advisor = Callable[[dict[str, Any]], Iterable[str]]
# Receives every Istio object the store would hold after the write, keyed by plural.
ApplyHook = Callable[[dict[str, list[dict[str, Any]]]], str]

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


@dataclass(frozen=True)
class Event:
    """One committed change, as a watch reports it: ``obj`` is the object after it (for
    ``DELETED`` its last state, at the deletion's revision), ``previous`` the one before."""

    revision: int
    kind_key: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]
    previous: dict[str, Any] | None


class Owner(Protocol):
    """The daemon's side of a kind's ``owned_writes``: it changes what runs, then republishes
    the objects (``set_readonly``) before returning."""

    def update(self, rt: ResourceType, current: dict[str, Any], wanted: dict[str, Any]) -> None:
        """Make ``wanted`` (the result of a replace or patch of ``current``) true; raise an
        ``ApiError`` (422 naming the field) for a change it cannot make."""
        ...

    def delete(
        self, rt: ResourceType, current: dict[str, Any], grace_seconds: int | None
    ) -> dict[str, Any]:
        """Delete ``current`` (``grace_seconds`` from the DeleteOptions, None for the
        object's default); return the object to answer with."""
        ...


_PAST = {"create": "created", "update": "updated", "patch": "patched", "delete": "deleted"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _stamp(obj: dict[str, Any], previous: Mapping[str, Any] | None, now: str | None = None) -> None:
    """Set the metadata the server owns on an object about to be stored (all but
    ``resourceVersion``, which the commit sets): a new object gets a fresh ``uid``,
    ``creationTimestamp`` and generation 1; a replacement keeps its predecessor's ``uid`` and
    ``creationTimestamp``, and its generation rises only when more than metadata and status
    changed (as on a cluster, a Pod turning unready is not a new generation). Whatever the
    client sent for these fields is dropped.
    """
    meta = obj["metadata"]
    for field_name in _SYSTEM_FIELDS:
        meta.pop(field_name, None)
    if previous is None:
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now or _now(), generation=1)
        return
    before = previous["metadata"]
    changed = _spec_part(previous) != _spec_part(obj)
    meta.update(
        uid=before["uid"],
        creationTimestamp=before["creationTimestamp"],
        generation=before.get("generation", 1) + (1 if changed else 0),
    )


def _user_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata a publisher sets (labels, annotations, deletion, owners...), not the stamps."""
    return {k: v for k, v in meta.items() if k not in (*_SYSTEM_FIELDS, "namespace", "name")}


def _grace_seconds(options: Any) -> int | None:
    """``DeleteOptions.gracePeriodSeconds``: None when absent; 400 when not a whole number."""
    if not isinstance(options, dict) or options.get("gracePeriodSeconds") is None:
        return None
    value = options["gracePeriodSeconds"]
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value))
        except ValueError:
            raise bad_request(
                f"DeleteOptions.gracePeriodSeconds: expected a whole number of seconds, got "
                f"{options['gracePeriodSeconds']!r}"
            ) from None
    # kube-apiserver's pod strategy turns a negative period into 1 s (0 means "now").
    return 1 if int(value) < 0 else int(value)


def _modified(rt: ResourceType, name: str) -> ApiError:
    """409 for a write based on a stale ``resourceVersion``, worded as kube-apiserver's."""
    return conflict(
        rt.group,
        rt.plural,
        name,
        "the object has been modified; "
        "please apply your changes to the latest version and try again",
    )


def _check_uid(rt: ResourceType, name: str, given: Any, current: Mapping[str, Any]) -> None:
    """409 when a write's uid precondition names another object than the one stored."""
    actual = current["metadata"]["uid"]
    if given and given != actual:
        raise conflict(
            rt.group,
            rt.plural,
            name,
            f"Precondition failed: UID in precondition: {given}, UID in object meta: {actual}",
        )


def _refused_by_data_plane(
    exc: ApplyRejected, rt: ResourceType | None = None, name: str = ""
) -> ApiError:
    """422 ``Invalid`` for a write Envoy refused; ``rt`` and ``name`` name the object written
    (None for a batch of objects, which no single name stands for)."""
    cause = Cause("spec", f"rejected by the data plane (Envoy): {exc.reason}")
    if rt is None:
        return ApiError(422, "Invalid", cause.message, causes=[cause])
    return invalid(rt.group, rt.kind, name, [cause])


def read_patch(content_type: str, raw: bytes, accepted: list[str]) -> tuple[str, Any]:
    """(media type, decoded patch): 415 for a patch type not in ``accepted``, 400 for a
    patch that is not JSON — before the object is even looked up, as on a server."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in accepted:
        # Strategic merge needs Go struct tags a custom resource does not have, so a real
        # server answers 415 for it on CRDs; server-side apply is not implemented here.
        raise unsupported_media_type(media, accepted)
    try:
        return media, json.loads(raw or b"null")
    except ValueError as exc:
        raise bad_request(f"error decoding patch: {exc}") from None


def apply_patch(media: str, patch_doc: Any, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` patched: 400 for a malformed patch, 422 for one that does not apply or
    does not give an object."""
    try:
        if media == JSON_PATCH:
            patched = json_patch(document, patch_doc)
        elif media == STRATEGIC_PATCH:
            patched = strategic_merge_patch(document, patch_doc)
        else:
            patched = merge_patch(document, patch_doc)
    except PatchError as exc:
        if exc.malformed:
            raise bad_request(str(exc)) from None
        raise ApiError(422, "Invalid", str(exc)) from None
    if not isinstance(patched, dict):
        # What kube-apiserver answers when a JSON-patch list is sent as a merge patch:
        # the merge replaces the whole object with the list, which does not decode.
        shown = json.dumps(patched)[:200]
        raise ApiError(
            422,
            "Invalid",
            f' "" is invalid: patch: Invalid value: "{shown}": '
            "cannot unmarshal array into an object",
            causes=[
                Cause("patch", f'Invalid value: "{shown}": cannot unmarshal array into an object')
            ],
        )
    return patched


class Store:
    """Objects by resource type, with kube-apiserver's create/replace/patch/delete rules."""

    def __init__(
        self,
        validate: Validator | None = None,
        apply: ApplyHook | None = None,
        advise: Advisor | None = None,
    ) -> None:
        self.set_hooks(validate, apply, advise)
        self._data_lock = threading.Lock()  # guards _objects/_revision; held briefly
        self._changed = threading.Condition(self._data_lock)  # a commit: watches wake up
        self._write_lock = threading.RLock()  # serialises writes across an Envoy push
        self._objects: dict[str, dict[Key, dict[str, Any]]] = {
            rt.key: {} for rt in resources.ALL_TYPES
        }
        # Per Istio kind, its keys in order while none is added or removed: ``istio_state``
        # runs on every write and need not sort a thousand keys each time.
        self._sorted_keys: dict[str, list[Key]] = {}
        self._revision = 0
        # Per kind: its latest events, and the newest revision whose event has left them.
        self._events: dict[str, deque[Event]] = {
            rt.key: deque(maxlen=EVENT_LOG_SIZE) for rt in resources.ALL_TYPES
        }
        self._compacted: dict[str, int] = dict.fromkeys(self._events, 0)
        self._owners: dict[str, Owner] = {}
        self._applied: dict[tuple[str, str, str], str] = {}  # (plural, ns, name) -> config version
        self.config_version: str | None = None

    def writing(self) -> threading.RLock:
        """The lock every write holds across its push; the daemon takes it to change workloads."""
        return self._write_lock

    # ---- hooks -----------------------------------------------------------------------------
    def set_hooks(
        self,
        validate: Validator | None = None,
        apply: ApplyHook | None = None,
        advise: Advisor | None = None,
    ) -> None:
        """``validate`` refuses an Istio object (422), ``advise`` warns about one it accepts,
        ``apply`` makes the data plane serve a candidate state (see the module docstring)."""
        self._validate = validate
        self._apply = apply
        self._advise = advise

    def set_owner(self, rt: ResourceType, owner: Owner) -> None:
        """Hand ``rt``'s ``owned_writes`` to ``owner`` (without one they answer 405)."""
        self._owners[rt.key] = owner

    # ---- reads -----------------------------------------------------------------------------
    @property
    def revision(self) -> str:
        with self._data_lock:
            return str(self._revision)

    def get(
        self, rt: ResourceType, namespace: str, name: str, version: str | None = None
    ) -> dict[str, Any]:
        with self._data_lock:
            obj = self._objects[rt.key].get(self._key(rt, namespace, name))
            if obj is None:
                raise not_found(rt.group, rt.plural, name)
            return self._render(rt, obj, version)

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        version: str | None = None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Objects in ``namespace`` (None: all namespaces) matching the selectors."""
        match_labels = label_selector(labels)
        match_fields = field_selector(fields)
        with self._data_lock:
            items = [
                self._render(rt, obj, version)
                for (ns, _), obj in sorted(self._objects[rt.key].items())
                if (namespace is None or not rt.namespaced or ns == namespace)
                and match_labels((obj.get("metadata") or {}).get("labels") or {})
                and match_fields(obj)
            ]
            return items, str(self._revision)

    def wait_events(self, rt: ResourceType, after: int, timeout: float) -> tuple[list[Event], int]:
        """Events of ``rt`` after revision ``after``, in order, and the revision they reach;
        waits up to ``timeout`` s for one. 410 Gone when the log no longer reaches back to
        ``after`` (the watcher lists again, as on a cluster)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            events = self._events[rt.key]
            while True:
                compacted = self._compacted[rt.key]
                if after < compacted:
                    raise gone(f"too old resource version: {after} ({compacted + 1})")
                found: list[Event] = []
                for event in reversed(events):
                    if event.revision <= after:
                        break
                    found.append(event)
                latest = max(after, self._revision)
                if found:
                    return found[::-1], latest
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return [], latest
                self._changed.wait(remaining)

    def render(self, rt: ResourceType, obj: dict[str, Any], version: str | None) -> dict[str, Any]:
        """An object of an event as a client asked for it (its API version)."""
        return self._render(rt, obj, version)

    def all_istio(self) -> dict[str, list[dict[str, Any]]]:
        """Every Istio object by plural, copies the caller may change."""
        with self._data_lock:
            return {
                rt.plural: [copy.deepcopy(o) for _, o in sorted(self._objects[rt.key].items())]
                for rt in resources.ISTIO_TYPES
            }

    def istio_state(self) -> dict[str, list[dict[str, Any]]]:
        """Every Istio object by plural, the stored objects themselves: read-only.

        What the apply hook is given. No copy: a write replaces an object, never edits a
        stored one, so the hook can tell an unchanged object by its identity (the
        translator reuses what it computed from it) and a write costs what it changes.
        """
        with self._data_lock:
            state = {}
            for rt in resources.ISTIO_TYPES:
                objects = self._objects[rt.key]
                keys = self._sorted_keys.get(rt.key)
                if keys is None:
                    keys = self._sorted_keys[rt.key] = sorted(objects)
                state[rt.plural] = [objects[key] for key in keys]
            return state

    def applied_version(self, rt: ResourceType, namespace: str, name: str) -> str | None:
        return self._applied.get((rt.plural, namespace, name))

    # ---- writes ----------------------------------------------------------------------------
    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        version: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        self.check_writable(rt, "create")
        obj = self._check_body(rt, body, namespace, version)
        meta = obj["metadata"]
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise invalid(
                    rt.group,
                    rt.kind,
                    "",
                    [
                        Cause(
                            "metadata.name",
                            "Required value: name or generateName is required",
                            "FieldValueRequired",
                        )
                    ],
                )
        self._check_name(rt, meta["name"])
        with self._write_lock:
            key = self._key(rt, namespace, meta["name"])
            with self._data_lock:
                if key in self._objects[rt.key]:
                    raise already_exists(rt.group, rt.plural, meta["name"])
            _stamp(obj, None)
            if dry_run:
                return self._render(rt, obj, version)  # no resourceVersion: never stored
            return self._commit(rt, key, obj, version)

    def replace(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        version: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        self.check_writable(rt, "update")
        obj = self._check_body(rt, body, namespace, version)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name "
                f"on the URL ({name})"
            )
        meta["name"] = name
        with self._write_lock:
            current = self._current(rt, namespace, name)
            wanted_rv = meta.get("resourceVersion")
            if not wanted_rv and not rt.writable:
                wanted_rv = current["metadata"]["resourceVersion"]  # built-in: unconditional
            if not wanted_rv:
                # Custom resources do not allow unconditional updates on a real server.
                raise invalid(
                    rt.group,
                    rt.kind,
                    name,
                    [
                        Cause(
                            "metadata.resourceVersion",
                            "Invalid value: 0x0: must be specified for an update",
                        )
                    ],
                )
            if str(wanted_rv) != current["metadata"]["resourceVersion"]:
                raise _modified(rt, name)
            _check_uid(rt, name, meta.get("uid"), current)
            return self._update(rt, namespace, name, current, obj, version, dry_run)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        version: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        self.check_writable(rt, "patch")
        media, patch_doc = read_patch(
            content_type, raw, SUPPORTED_PATCHES if rt.writable else BUILTIN_PATCHES
        )
        with self._write_lock:
            current = self._current(rt, namespace, name)
            patched = apply_patch(media, patch_doc, self._render(rt, current, version))
            meta = (
                patched.setdefault("metadata", {})
                if isinstance(patched.get("metadata"), dict)
                else None
            )
            if meta is None:
                raise invalid(rt.group, rt.kind, name, [Cause("metadata", "must be an object")])
            if meta.get("name") != name:
                raise bad_request(
                    f"the name of the object ({meta.get('name')}) does not match "
                    f"the name on the URL ({name})"
                )
            if str(meta.get("resourceVersion") or "") not in (
                "",
                current["metadata"]["resourceVersion"],
            ):
                raise _modified(rt, name)
            _check_uid(rt, name, meta.get("uid"), current)
            obj = self._check_body(rt, patched, namespace, version)
            return self._update(rt, namespace, name, current, obj, version, dry_run)

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: Any = None,
        version: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        self.check_writable(rt, "delete")
        grace = _grace_seconds(options)
        with self._write_lock:
            current = self._current(rt, namespace, name)
            pre = (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
            if (
                pre.get("resourceVersion")
                and pre["resourceVersion"] != current["metadata"]["resourceVersion"]
            ):
                raise conflict(
                    rt.group,
                    rt.plural,
                    name,
                    "Precondition failed: ResourceVersion in "
                    f"precondition: {pre['resourceVersion']}, ResourceVersion in object "
                    f"meta: {current['metadata']['resourceVersion']}",
                )
            _check_uid(rt, name, pre.get("uid"), current)
            if dry_run:
                return self._render(rt, current, version)
            owner = self._owners.get(rt.key)
            if not rt.writable and owner is not None:
                answer = owner.delete(rt, self._render(rt, current, version), grace)
                return self._render(rt, answer, version)
            key = self._key(rt, namespace, name)
            self._push(rt, key, None)
            with self._data_lock:
                self._objects[rt.key].pop(key, None)
                self._sorted_keys.pop(rt.key, None)
                self._revision += 1
                gone_obj = copy.deepcopy(current)
                gone_obj["metadata"]["resourceVersion"] = str(self._revision)
                self._record(rt, "DELETED", gone_obj, current)
            self._applied.pop((rt.plural, namespace, name), None)
            return self._render(rt, current, version)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str,
        options: Any = None,
        version: str | None = None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[dict[str, Any]]:
        """Delete every object the selectors match in ``namespace`` (``deletecollection``)."""
        self.check_writable(rt, "deletecollection")
        items, _ = self.list_objects(rt, namespace, version, labels, fields)
        deleted = []
        for item in items:
            try:
                deleted.append(
                    self.delete(rt, namespace, item["metadata"]["name"], options, version)
                )
            except ApiError as exc:
                if exc.code != 404:  # already gone meanwhile: nothing to do
                    raise
        return deleted

    # ---- bulk (daemon) ---------------------------------------------------------------------
    def set_readonly(self, rt: ResourceType, objects: Iterable[dict[str, Any]]) -> None:
        """Replace every object of a daemon-published kind (Services, Pods...) with
        ``objects``. The daemon owns these: a ``generation`` or ``creationTimestamp`` it gives
        is kept (a Pod was created when its replica started); the store stamps the rest."""
        fresh: dict[Key, dict[str, Any]] = {}
        with self._data_lock:
            old = self._objects[rt.key]
            for body in objects:
                obj = copy.deepcopy(body)
                meta = obj.setdefault("metadata", {})
                if rt.namespaced:
                    meta.setdefault("namespace", "default")
                key = self._key(rt, meta.get("namespace", ""), meta["name"])
                previous = old.get(key)
                given = {f: meta[f] for f in ("generation", "creationTimestamp") if f in meta}
                if (
                    previous is not None
                    and _spec_part(previous) == _spec_part(obj)
                    and all(previous["metadata"].get(f) == v for f, v in given.items())
                    and _user_metadata(previous["metadata"]) == _user_metadata(meta)
                    and previous.get("status") == obj.get("status")
                ):
                    fresh[key] = previous
                    continue
                _stamp(obj, previous)
                meta.update(given)
                self._revision += 1
                meta["resourceVersion"] = str(self._revision)
                obj["apiVersion"] = rt.api_version()
                obj["kind"] = rt.kind
                fresh[key] = obj
                self._record(rt, "ADDED" if previous is None else "MODIFIED", obj, previous)
            for key, previous in old.items():
                if key not in fresh:
                    self._revision += 1
                    gone_obj = copy.deepcopy(previous)
                    gone_obj["metadata"]["resourceVersion"] = str(self._revision)
                    self._record(rt, "DELETED", gone_obj, previous)
            self._objects[rt.key] = fresh
            self._sorted_keys.pop(rt.key, None)

    def load_istio(self, objects: Iterable[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
        """Create or update many Istio objects with one push (``mesh up -f``).

        All are validated first; one cause anywhere rejects the whole batch, so a bad file
        leaves the running mesh as it was.
        """
        staged: list[tuple[ResourceType, Key, dict[str, Any]]] = []
        for body in objects:
            rt = resources.by_kind(str(body.get("kind")))
            if rt is None or not rt.writable:
                raise bad_request(f"kind {body.get('kind')!r} is not an Istio kind this API stores")
            ns = (body.get("metadata") or {}).get("namespace") or namespace
            version = str(body.get("apiVersion", "")).rpartition("/")[2] or None
            obj = self._check_body(rt, body, ns, version)
            self._check_name(rt, obj["metadata"].get("name") or "")
            staged.append((rt, self._key(rt, ns, obj["metadata"]["name"]), obj))
        with self._write_lock:
            candidate = self.istio_state()
            now = _now()
            # Where each object is in its list, to replace it in place.
            position = {
                (rt.plural, self._key(rt, meta.get("namespace", ""), meta["name"])): i
                for rt in resources.ISTIO_TYPES
                for i, meta in enumerate(o["metadata"] for o in candidate[rt.plural])
            }
            for rt, key, obj in staged:
                items = candidate[rt.plural]
                at = position.get((rt.plural, key))
                _stamp(obj, None if at is None else items[at], now)
                if at is None:
                    position[(rt.plural, key)] = len(items)
                    items.append(obj)
                else:
                    items[at] = obj
            version = self._apply_candidate(candidate)
            out = []
            with self._data_lock:
                for rt, key, obj in staged:
                    self._revision += 1
                    obj["metadata"]["resourceVersion"] = str(self._revision)
                    previous = self._objects[rt.key].get(key)
                    self._objects[rt.key][key] = obj
                    if previous is None:
                        self._sorted_keys.pop(rt.key, None)
                    self._record(rt, "ADDED" if previous is None else "MODIFIED", obj, previous)
                    self._applied[(rt.plural, key[0], key[1])] = version
                    out.append(copy.deepcopy(obj))
            return out

    # ---- internals -------------------------------------------------------------------------
    def _key(self, rt: ResourceType, namespace: str, name: str) -> Key:
        return (namespace if rt.namespaced else "", name)

    def check_writable(self, rt: ResourceType, verb: str) -> None:
        """405 unless ``verb`` is served for ``rt`` (an Istio kind, or an owned write)."""
        if rt.writable:
            return
        if verb in rt.owned_writes and rt.key in self._owners:
            return
        if not rt.owned_writes:
            raise method_not_allowed(
                f"{rt.plural} are read-only on the embedded mesh; change them with "
                "'chaosmesh mesh up -f FILE'"
            )
        raise method_not_allowed(
            f"{rt.plural} cannot be {_PAST.get(verb, verb + 'd')} through the embedded mesh's "
            f"API (only {', '.join(rt.owned_writes)}); change them with "
            "'chaosmesh mesh up -f FILE'"
        )

    def _record(
        self,
        rt: ResourceType,
        kind: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None,
    ) -> None:
        """Log a change committed at ``self._revision`` (hold ``_data_lock``)."""
        events = self._events[rt.key]
        if len(events) == events.maxlen:
            self._compacted[rt.key] = events[0].revision
        events.append(Event(self._revision, rt.key, kind, obj, previous))
        self._changed.notify_all()

    def _current(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self._data_lock:
            obj = self._objects[rt.key].get(self._key(rt, namespace, name))
            if obj is None:
                raise not_found(rt.group, rt.plural, name)
            return copy.deepcopy(obj)

    def _render(self, rt: ResourceType, obj: dict[str, Any], version: str | None) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["apiVersion"] = rt.api_version(version)
        out["kind"] = rt.kind
        return out

    def _check_name(self, rt: ResourceType, name: str) -> None:
        if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
            raise invalid(
                rt.group,
                rt.kind,
                name,
                [
                    Cause(
                        "metadata.name",
                        f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must '
                        "consist of lower case alphanumeric characters, '-' or '.', and must "
                        "start and end with an alphanumeric character",
                    )
                ],
            )

    def _check_body(
        self, rt: ResourceType, body: Any, namespace: str, version: str | None
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(f"the body of a {rt.kind} must be a JSON object")
        obj = copy.deepcopy(body)
        kind = obj.get("kind")
        if kind and kind != rt.kind:
            raise bad_request(f"the kind of the object ({kind}) does not match {rt.kind}")
        api_version = obj.get("apiVersion")
        if api_version and api_version.rpartition("/")[0] != rt.group:
            raise bad_request(
                f"the API version of the object ({api_version}) does not match "
                f"{rt.api_version(version)}"
            )
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the "
                    "namespace sent on the request"
                )
            meta["namespace"] = namespace
        for field_name in ("labels", "annotations"):
            value = meta.get(field_name)
            if value is not None and (
                not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
            ):
                raise invalid(
                    rt.group,
                    rt.kind,
                    meta.get("name", ""),
                    [Cause(f"metadata.{field_name}", "must be a map of string to string")],
                )
        if "spec" in obj and not isinstance(obj["spec"], dict):
            raise invalid(
                rt.group, rt.kind, meta.get("name", ""), [Cause("spec", "must be an object")]
            )
        obj["apiVersion"] = rt.api_version(version)
        obj["kind"] = rt.kind
        if self._validate is not None and rt.writable:
            causes = [Cause(c.field, c.message) for c in self._validate(obj)]
            if causes:
                raise invalid(rt.group, rt.kind, meta.get("name", ""), causes)
        if self._advise is not None and rt.writable:
            about = (rt.kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            for text in self._advise(obj):
                warn(text, about)  # a `Warning:` header on the answer to this request
        return obj

    def _update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        current: dict[str, Any],
        obj: dict[str, Any],
        version: str | None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        owner = self._owners.get(rt.key)
        if not rt.writable and owner is not None and not dry_run:
            owner.update(rt, self._render(rt, current, version), obj)
            return self.get(rt, namespace, name, version)
        _stamp(obj, current)
        if dry_run:
            # As kube-apiserver's dry run: the object as it would be, the stored version kept.
            obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self._render(rt, obj, version)
        return self._commit(rt, self._key(rt, namespace, name), obj, version)

    def _apply_candidate(
        self,
        candidate: dict[str, list[dict[str, Any]]],
        rt: ResourceType | None = None,
        name: str = "",
    ) -> str:
        """Run the apply hook on ``candidate``; Envoy's refusal becomes a 422 naming ``name``."""
        if self._apply is None:
            return ""
        try:
            version = self._apply(candidate)
        except ApplyRejected as exc:
            raise _refused_by_data_plane(exc, rt, name) from None
        self.config_version = version or self.config_version
        return version

    def _push(self, rt: ResourceType, key: Key, obj: dict[str, Any] | None) -> str:
        """Run the apply hook on the state the store would have after this write."""
        if self._apply is None:
            return ""
        candidate = self.istio_state()
        with self._data_lock:
            stored = self._objects[rt.key].get(key)
        items = [o for o in candidate[rt.plural] if o is not stored]
        if obj is not None:
            # The object about to be stored (nobody else holds it): only its resourceVersion
            # is set after the push, which no translation reads.
            items.append(obj)
        candidate[rt.plural] = items
        return self._apply_candidate(candidate, rt, key[1])

    def _commit(
        self, rt: ResourceType, key: Key, obj: dict[str, Any], version: str | None
    ) -> dict[str, Any]:
        applied = self._push(rt, key, obj)
        with self._data_lock:
            self._revision += 1
            obj["metadata"]["resourceVersion"] = str(self._revision)
            previous = self._objects[rt.key].get(key)
            self._objects[rt.key][key] = obj
            if previous is None:
                self._sorted_keys.pop(rt.key, None)
            self._record(rt, "ADDED" if previous is None else "MODIFIED", obj, previous)
        self._applied[(rt.plural, key[0], key[1])] = applied
        return self._render(rt, obj, version)
