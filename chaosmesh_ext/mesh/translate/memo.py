"""Results of the translator's costly steps, kept for the next translation while their inputs
stay the same objects.

istiod pushes only what a change touches. Here every translation still goes through the
Services and the route configurations (the VirtualServices are indexed across translations:
``vs_index``), but each costly step (the routes of one VirtualService on one listener, the
clusters of one Service, a gateway's route configuration, the merge of the DestinationRules of
one host...) looks its result up by a key naming every input it reads: Kubernetes objects by
identity (``id``), small values (ports, names, endpoint tuples) by value. A snapshot that
shares all but one object with the previous one recomputes only what read that object, and
returns the very same result objects for the rest, so comparing the new Envoy resources with
the old ones is cheap too.

Identity stands for content: an object must not be changed in place once translated (the API
store replaces an object on every write, never edits one). Each entry holds the objects whose
identities its key names (``pins``), so no other object can take one of those identities
while the entry lives. ``Memo.done()`` after a translation drops, now and then, the entries
it no longer needs, so the memo holds about one snapshot's worth of results.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Memo:
    """Results by key, dropped once no translation needs them.

    A result computed from other results (a route configuration from the routes of its
    VirtualServices) remembers their keys, so while it is reused they are kept as well: when
    it must be recomputed one day, its parts are still there to be reused. What the last
    translation used, and what that was made from, is all that is kept when ``done()`` finds
    the memo has grown by ``_SLACK`` entries since it last looked (then one translation in
    tens pays for the look, not every translation). Some entries pin a whole snapshot's
    lists: a looser bound let a thousand changes keep ~150 MB.
    """

    def __init__(self) -> None:
        # key -> (result, the objects whose id() the key holds, the keys it was made from)
        self._entries: dict[Hashable, _Entry] = {}
        self._used: set[Hashable] = set()  # keys the current translation asked for
        self._making: list[list[Hashable]] = []  # the parts of each result being computed
        self._live = 0  # entries kept by the last look
        # Translations ended (``done``, ``abandon``): what is read once per translation is
        # read again after each.
        self.generation = 0

    def get(self, key: Hashable, pins: object, compute: Callable[[], T]) -> T:
        """The result for ``key``, computed (and kept) when there is none. ``pins`` holds
        every object whose ``id()`` is in ``key``. A step that raises keeps nothing."""
        entry = self._entries.get(key)
        if entry is None:
            self._making.append([])
            try:
                value = compute()
            finally:
                parts = self._making.pop()
            entry = (value, pins, tuple(dict.fromkeys(parts)))
            self._entries[key] = entry
        self._used.add(key)
        if self._making:
            self._making[-1].append(key)
        return entry[0]  # type: ignore[no-any-return]

    def of(self, obj: Any, step: str, compute: Callable[[Any], T]) -> T:
        """``compute(obj)`` for one object, kept while the object is the same."""
        return self.get((step, id(obj)), obj, lambda: compute(obj))

    def done(self) -> None:
        """End of a translation: drop what it does not need, when that is worth a look."""
        if len(self._entries) > self._live + _SLACK:
            keep: dict[Hashable, _Entry] = {}
            todo = list(self._used)
            while todo:
                key = todo.pop()
                if key in keep:
                    continue
                entry = self._entries.get(key)
                if entry is not None:
                    keep[key] = entry
                    todo.extend(entry[2])
            self._entries = keep
            self._live = len(keep)
        self._used = set()
        self.generation += 1

    def abandon(self) -> None:
        """A translation failed: forget what it asked for (its results may stay a while)."""
        self._used = set()
        self._making = []
        self.generation += 1

    def __len__(self) -> int:
        return len(self._entries)


_Entry = tuple[Any, object, tuple[Hashable, ...]]
# Entries a memo may hold beyond what it needs before it looks: a change of one VirtualService
# adds about six, so about every forty changes (a look costs a few ms).
_SLACK = 256
