"""One recorded change to an Istio object: read, edit (pure), write with optimistic concurrency.

The ledger entry is written (fsync'd) before the API write; the object carries the entry's id
in the ``chaosmesh.io/ledger`` annotation in the same write, so after a crash ``restore`` can
tell whether a pending write landed. A 409 (someone wrote between our read and our write) is
answered by reading again and re-running the edit on the fresh state — never by overwriting.
If the edit rejects its input nothing is recorded; if the write fails the entry is marked
``not-applied``: a failed change leaves the cluster as it was. An object being deleted (its
``deletionTimestamp`` set, finalizers pending) is not changed at all.

Two rules keep ``restore`` exact and polite:

- an edit that puts the object back as it was before the run's first change (``remove_faults``
  after ``inject_delay``) writes exactly that state — without our ledger annotation — and marks
  the run's entries for the object ``restored``: nothing is left outstanding;
- when someone else changed the object since this run's last write, the run changes it no
  further (:class:`ForeignChange`, with the diff): a later ``restore`` to the state before
  the run would silently undo their change;
- when the object carries another run's ledger marker for a change that run has not put
  back (two runs at once on one mesh, or a run killed mid-method), this run does not touch
  it (:class:`ForeignChange` naming that run): each run would restore it to a different
  state, and one run's verdict would be computed on the other's fault.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaosmesh_ext._interrupts import INTERRUPTS
from chaosmesh_ext._kobject import KObject
from chaosmesh_ext.kube.ledger import (
    APPLIED,
    LEDGER_ANNOTATION,
    OUTSTANDING,
    PENDING,
    RESTORED,
    Ledger,
    LedgerError,
    content,
    with_content,
)
from chaosmesh_ext.kube.objects import (
    REFUSED,
    Conflict,
    IstioObjects,
    KubeApiError,
    NotFound,
    ObjectRef,
    being_deleted,
)
from chaosmesh_ext.kube.restore import diff

Edit = Callable[[dict[str, Any] | None], dict[str, Any]]
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class ChangeResult:
    """What a change did, in a form fit for a journal (no secrets, plain JSON)."""

    ref: ObjectRef
    changed: bool
    created: bool
    resource_version: str | None
    attempts: int
    ledger_entry: str | None
    object: dict[str, Any]

    def summary(self, **extra: Any) -> dict[str, Any]:
        return {
            "object": str(self.ref),
            "kind": self.ref.kind,
            "namespace": self.ref.namespace,
            "name": self.ref.name,
            "changed": self.changed,
            "created": self.created,
            "resourceVersion": self.resource_version,
            "attempts": self.attempts,
            "ledger_entry": self.ledger_entry,
            **extra,
        }


def _mark(obj: dict[str, Any], entry_id: str) -> dict[str, Any]:
    marked = copy.deepcopy(obj)
    annotations = marked.setdefault("metadata", {}).get("annotations") or {}
    marked["metadata"]["annotations"] = {**annotations, LEDGER_ANNOTATION: entry_id}
    return marked


def _marker(obj: dict[str, Any]) -> str | None:
    marker = KObject(obj).annotations.get(LEDGER_ANNOTATION)
    return marker if isinstance(marker, str) else None


def _ignoring_mark(state: dict[str, Any] | None) -> dict[str, Any] | None:
    # Our own bookkeeping annotation does not make an edit a change.
    if state is None:
        return None
    state = copy.deepcopy(state)
    annotations = state.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LEDGER_ANNOTATION, None)
        if not annotations:
            state.pop("annotations")
    return state


class ForeignChange(Conflict):
    """Someone else changed the object since this run's last write: we leave it to them."""


def _open_entries(ledger: Ledger, ref: ObjectRef) -> list[dict[str, Any]]:
    """This run's entries for ``ref`` that restore would still act on, oldest first."""
    return [
        e
        for e in ledger.entries()
        if e["state"] in (PENDING, APPLIED)
        and (e["kind"], e["namespace"], e["name"]) == (ref.kind, ref.namespace, ref.name)
    ]


def _check_not_foreign(ref: ObjectRef, open_entries: list[dict[str, Any]], live: Any) -> None:
    applied = [e for e in open_entries if e["state"] == APPLIED and e.get("after")]
    if not applied or live is None:
        return
    last = applied[-1]
    ours = {k: v for k, v in last["after"].items() if k != "resourceVersion"}
    now = content(live)
    origin = _origin(open_entries)
    # Back as before the run (by them, or by our own write whose answer was lost) leaves
    # nothing of theirs for restore to undo.
    if ours != now and _ignoring_mark(now) != _ignoring_mark(origin):
        raise ForeignChange(
            ref,
            409,
            "Conflict",
            f"changed by someone else since this run's last change ({last['id']}, "
            f"{last['action']}); this run changes it no further, so that restore does not "
            f"undo their change:\n{diff(ours, now)}",
        )


def other_run_holding(ledger: Ledger, live: dict[str, Any] | None) -> str | None:
    """Why another run still holds ``live`` (its ledger marker names an entry that run has
    not restored), or None. Only ledgers in this ledger's directory can be read."""
    marker = _marker(live) if live is not None else None
    if not marker or "#" not in marker or marker.startswith(f"{ledger.run_id}#"):
        return None
    run_id = marker.rsplit("#", 1)[0]
    try:
        other = Ledger(run_id, ledger.path.parent)
        entry = next((e for e in other.entries() if e["id"] == marker), None)
        running = other.running()
    except (ValueError, LedgerError):
        return None
    if entry is None or entry["state"] not in OUTSTANDING:
        return None
    what = f"changed by run {run_id} ({marker}, {entry['action']})"
    if running is False:
        return (
            f"{what}, which is no longer running and left it changed; this run does not touch "
            f"it — put it back first: chaosmesh restore --run {run_id}"
        )
    return (
        f"{what}, which is still running; this run does not touch it (each run would "
        "restore it to a different state)"
    )


def _origin(open_entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The object's state before the run's first open change (None: none, or we created it)."""
    if not open_entries or open_entries[0]["absent_before"]:
        return None
    before: dict[str, Any] | None = open_entries[0]["before"]
    return before


def apply_change(
    objects: IstioObjects,
    ledger: Ledger,
    ref: ObjectRef,
    edit: Edit,
    action: str,
    create_if_absent: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> ChangeResult:
    """Apply ``edit`` to the live object (or to ``None`` to create it) and record it.

    ``edit`` is pure: it takes the current object (a copy) and returns the desired object, or
    raises to reject the input. Raises :class:`KubeApiError` subclasses for API failures and
    whatever ``edit`` raises for bad input; in both cases nothing was changed.
    """
    entry_id: str | None = None
    for attempt in range(1, max_attempts + 1):
        live = objects.get_or_none(ref)
        open_entries = [e for e in _open_entries(ledger, ref) if e["id"] != entry_id]
        if live is None and not create_if_absent:
            if entry_id:
                ledger.not_applied(entry_id, "object deleted before our write")
            raise NotFound(
                ref, 404, "NotFound", "not found: it must exist before this action can change it"
            )
        going = being_deleted(live)
        if going:
            # Changing an object on its way out would record a change restore cannot undo
            # (the object is gone by then) and make a fault look injected when it is not.
            if entry_id:
                ledger.not_applied(entry_id, f"object {going}")
            raise KubeApiError(ref, 409, "BeingDeleted", f"{going}; not changed")
        if entry_id and live is not None and _marker(live) == entry_id:
            # Our write landed although we saw an error (a lost response): it is done.
            ledger.applied(entry_id, live)
            rv = live["metadata"].get("resourceVersion")
            return ChangeResult(ref, True, False, rv, attempt, entry_id, live)
        held = other_run_holding(ledger, live)
        if held:
            if entry_id:
                ledger.not_applied(entry_id, held)
            raise ForeignChange(ref, 409, "Conflict", held)
        try:
            _check_not_foreign(ref, open_entries, live)
        except ForeignChange as exc:
            if entry_id:
                ledger.not_applied(entry_id, str(exc))
            raise
        try:
            desired = edit(copy.deepcopy(live) if live is not None else None)
        except INTERRUPTS:
            raise
        except Exception as exc:
            # After a conflict the fresh state may no longer take the edit (a route is gone):
            # nothing of ours was written.
            if entry_id:
                ledger.not_applied(entry_id, f"edit rejected on fresh state: {exc}")
            raise
        if live is not None and _ignoring_mark(content(desired)) == _ignoring_mark(content(live)):
            if entry_id:
                ledger.not_applied(entry_id, "nothing left to change after re-reading")
            rv = KObject(live).resource_version
            return ChangeResult(ref, False, False, rv, attempt, None, live)
        if entry_id is None:
            entry = ledger.begin(
                ref.kind, ref.namespace, ref.name, objects.api_version, live, action
            )
            entry_id = entry["id"]
        else:
            ledger.rebase(entry_id, live)
        origin = _origin(open_entries)
        back = origin is not None and _ignoring_mark(content(desired)) == _ignoring_mark(origin)
        # Back as before the run: write exactly that state, our annotation included only if the
        # object had it then (restore finds "already as before the run" after a crash here).
        body = with_content(desired, origin) if back and origin else _mark(desired, entry_id)
        meta = body["metadata"]
        meta["name"], meta["namespace"] = ref.name, ref.namespace
        try:
            if live is None:
                for server_field in ("resourceVersion", "uid", "creationTimestamp", "generation"):
                    meta.pop(server_field, None)
                written = objects.create(ref, body)
            else:
                meta["resourceVersion"] = live["metadata"]["resourceVersion"]
                written = objects.replace(ref, body)
        except Conflict:
            # Another writer got there first: start over from what is there now.
            continue
        except KubeApiError as exc:
            if exc.status is None and exc.reason != REFUSED:
                # Timeout or lost connection: the write may still have landed. Keep the entry
                # pending; restore reads the object's ledger annotation to find out.
                ledger.update(entry_id, error=str(exc))
            else:
                ledger.not_applied(entry_id, str(exc))
            raise
        # Anything else (SIGTERM, Ctrl-C mid-call) propagates with the entry left pending: the
        # write may or may not have landed, and restore reads the object's annotation to decide.
        ledger.applied(entry_id, written)
        if back:
            for done in [*open_entries, {"id": entry_id}]:
                ledger.update(
                    done["id"], state=RESTORED, restore=f"back as before the run ({action})"
                )
        rv = KObject(written).resource_version
        return ChangeResult(ref, True, live is None, rv, attempt, entry_id, written)
    if entry_id:
        ledger.not_applied(entry_id, f"gave up after {max_attempts} conflicting writes")
    raise Conflict(
        ref,
        409,
        "Conflict",
        f"changed by someone else on each of {max_attempts} attempts; "
        "nothing was changed — try again when the object is quiet",
    )
