"""The VirtualServices of the last snapshot, indexed as every translation reads them, kept up
to date from one snapshot to the next by the objects that changed.

Every translation asks: which VirtualServices, oldest first; which of them are bound to
``mesh`` and which hosts they name; which are bound to each Gateway; which label keys their
``sourceLabels`` name. Answering by walking a thousand VirtualServices costs milliseconds per
change; here the answers stay between translations (the ``Memo`` keeps the index) and a new
snapshot is compared with the last one by identity (the API store replaces an object on every
write, never edits one): only the added and removed VirtualServices are indexed or unindexed.

The answers are the ones a walk in age order gives. That order is total in a mesh (two
VirtualServices never share a namespace and name); should two objects tie, a stable sort of
the snapshot decides between them, so then the index is rebuilt from the snapshot each time.
"""

from __future__ import annotations

from bisect import bisect_left, insort_right
from collections import Counter, deque
from collections.abc import Iterable, Sequence

from .facts import VirtualServiceFacts
from .memo import Memo
from .model import JSON, MeshSnapshot


def _age(facts: VirtualServiceFacts) -> tuple[str, str, str]:
    return facts.age


class VirtualServiceIndex:
    """Age-ordered views of one set of VirtualServices; ``sync`` moves it to another set."""

    def __init__(self, domain: str) -> None:
        self.domain = domain
        # (memo generation, the list) the index was last synced to: one sync per translation
        self.read: tuple[int, Sequence[JSON]] | None = None
        # Each change of the index has a number; what changed for the sidecars (the hosts
        # whose mesh VirtualServices changed, or any wildcard) is logged for the last few, so
        # a reader that saw number n asks only about what changed after it.
        self.changes = 0
        self._clear()

    def _clear(self) -> None:
        self._facts: dict[int, VirtualServiceFacts] = {}  # id(vs) -> its facts (keeps vs)
        self.by_age: list[VirtualServiceFacts] = []
        self._mesh: list[VirtualServiceFacts] = []  # bound to ``mesh``, oldest first
        self._exact: dict[str, list[VirtualServiceFacts]] = {}  # of ``_mesh``, by host
        self._wildcard: list[VirtualServiceFacts] = []  # of ``_mesh``, naming a wildcard host
        self._bound: dict[str, list[VirtualServiceFacts]] = {}  # Gateway ns/name -> bound
        self._label_keys: Counter[str] = Counter()
        self._ties = False  # two VirtualServices of one age: rebuild on every sync
        # What was handed out, rebuilt only when its part of the index changed.
        self._mesh_tuple: tuple[JSON, ...] | None = None
        self._exact_lists: dict[str, list[JSON]] = {}
        self._wildcard_list: list[tuple[JSON, list[str]]] | None = None
        self._bound_lists: dict[str, list[JSON]] = {}
        # Nothing is known of the changes up to ``_floor``: every reader starts again.
        self.changes += 1
        self._floor = self.changes
        self._log: deque[tuple[int, set[str] | None]] = deque()  # (number, hosts or None)
        self._touched: set[str] | None = set()  # this change's hosts; None: a wildcard too

    # ---- updates -------------------------------------------------------------------------
    def sync(self, virtual_services: Sequence[JSON]) -> None:
        """Make the index describe ``virtual_services`` (any order)."""
        try:
            if self._ties or not self._facts:
                self._rebuild(virtual_services)
                return
            wanted = set(map(id, virtual_services))
            if self._facts.keys() == wanted:
                if len(wanted) != len(virtual_services):
                    self._rebuild(virtual_services)  # one object listed twice
                return  # the usual case: one snapshot read by several builders
            self._touched = set()
            for key in self._facts.keys() - wanted:
                self._remove(self._facts.pop(key))
            for vs in virtual_services:
                if id(vs) not in self._facts:
                    facts = VirtualServiceFacts(vs, self.domain)
                    self._facts[id(vs)] = facts
                    self._add(facts)
            if self._ties or len(wanted) != len(virtual_services):
                self._rebuild(virtual_services)
                return
            self.changes += 1
            self._log.append((self.changes, self._touched))
            if len(self._log) > _LOGGED_CHANGES:
                self._floor = self._log.popleft()[0]
        except BaseException:
            self._clear()  # half updated: start from nothing next time
            raise

    def _rebuild(self, virtual_services: Sequence[JSON]) -> None:
        """From the snapshot, in its order (a stable sort decides ties, as a walk would)."""
        self._clear()
        every = [VirtualServiceFacts(vs, self.domain) for vs in virtual_services]
        self._facts = {id(f.vs): f for f in every}
        for facts in sorted(every, key=_age):
            self._place(facts)
        ages = [f.age for f in self.by_age]
        self._ties = len(set(ages)) != len(ages) or len(self._facts) != len(every)

    def _add(self, facts: VirtualServiceFacts) -> None:
        at = bisect_left(self.by_age, facts.age, key=_age)
        if at < len(self.by_age) and self.by_age[at].age == facts.age:
            self._ties = True
            return  # sync rebuilds
        self._place(facts)
        for gateway in facts.gateways:
            self._bound_lists.pop(gateway, None)
        if facts.for_mesh:
            self._mesh_tuple = None
            for host in facts.hosts:
                self._exact_lists.pop(host, None)
            self._touch(facts)
            if _names_wildcard(facts):
                self._wildcard_list = None

    def _place(self, facts: VirtualServiceFacts) -> None:
        """Put ``facts`` in every list it belongs to, after those of its age (so a rebuild in
        age order keeps the snapshot's order among ties, as a stable sort does)."""
        insort_right(self.by_age, facts, key=_age)
        self._label_keys.update(facts.source_label_keys)
        for gateway in facts.gateways:
            insort_right(self._bound.setdefault(gateway, []), facts, key=_age)
        if facts.for_mesh:
            insort_right(self._mesh, facts, key=_age)
            for host in dict.fromkeys(facts.hosts):
                insort_right(self._exact.setdefault(host, []), facts, key=_age)
            if _names_wildcard(facts):
                insort_right(self._wildcard, facts, key=_age)

    def _remove(self, facts: VirtualServiceFacts) -> None:
        _discard(self.by_age, facts)
        for key in facts.source_label_keys:
            self._label_keys[key] -= 1
            if not self._label_keys[key]:
                del self._label_keys[key]
        for gateway in facts.gateways:
            _discard(self._bound[gateway], facts)
            if not self._bound[gateway]:
                del self._bound[gateway]
            self._bound_lists.pop(gateway, None)
        if facts.for_mesh:
            _discard(self._mesh, facts)
            self._mesh_tuple = None
            for host in dict.fromkeys(facts.hosts):
                _discard(self._exact[host], facts)
                if not self._exact[host]:
                    del self._exact[host]
                self._exact_lists.pop(host, None)
            self._touch(facts)
            if _names_wildcard(facts):
                _discard(self._wildcard, facts)
                self._wildcard_list = None

    def _touch(self, facts: VirtualServiceFacts) -> None:
        """Log that the mesh VirtualServices of ``facts``' hosts changed."""
        if self._touched is None:
            return
        if _names_wildcard(facts):
            self._touched = None  # covers hosts it does not name
        else:
            self._touched.update(facts.hosts)

    # ---- reads (lists handed out are never changed afterwards) ---------------------------
    def mesh_hosts_changed_since(self, number: int) -> set[str] | None:
        """The hosts whose mesh VirtualServices (``mesh_exact``) changed after change
        ``number``; None when that is not known (long ago, or a wildcard host changed, which
        may cover any host)."""
        if number < self._floor:
            return None
        hosts: set[str] = set()
        for logged, touched in reversed(self._log):
            if logged <= number:
                break
            if touched is None:
                return None
            hosts |= touched
        return hosts

    def label_keys(self) -> Iterable[str]:
        """Every label key a ``sourceLabels`` match names."""
        return self._label_keys.keys()

    def mesh_virtual_services(self) -> tuple[JSON, ...]:
        """The VirtualServices bound to ``mesh``, oldest first."""
        if self._mesh_tuple is None:
            self._mesh_tuple = tuple(f.vs for f in self._mesh)
        return self._mesh_tuple

    def mesh_exact(self, host: str) -> list[JSON]:
        """The mesh VirtualServices naming ``host`` itself, oldest first."""
        found = self._exact_lists.get(host)
        if found is None:
            found = self._exact_lists[host] = [f.vs for f in self._exact.get(host, ())]
        return found

    def mesh_wildcards(self) -> list[tuple[JSON, list[str]]]:
        """The mesh VirtualServices naming a wildcard host, with their hosts, oldest first."""
        if self._wildcard_list is None:
            self._wildcard_list = [(f.vs, f.hosts) for f in self._wildcard]
        return self._wildcard_list

    def bound(self) -> dict[str, list[JSON]]:
        """Gateway ``ns/name`` -> the VirtualServices bound to it, oldest first."""
        out = {}
        for gateway, facts in self._bound.items():
            found = self._bound_lists.get(gateway)
            if found is None:
                found = self._bound_lists[gateway] = [f.vs for f in facts]
            out[gateway] = found
        return out


_LOGGED_CHANGES = 32  # a reader more changes behind starts again


def _names_wildcard(facts: VirtualServiceFacts) -> bool:
    return any(h.startswith("*") for h in facts.hosts)


def _discard(items: list[VirtualServiceFacts], facts: VirtualServiceFacts) -> None:
    """Remove ``facts`` (by identity) from an age-ordered list."""
    at = bisect_left(items, facts.age, key=_age)
    while items[at] is not facts:
        at += 1
    del items[at]


def vs_index(snapshot: MeshSnapshot, memo: Memo) -> VirtualServiceIndex:
    """The memo's index, moved to ``snapshot``'s VirtualServices (once per translation:
    comparing a thousand identities takes a tenth of a millisecond)."""
    index = memo.get(
        ("virtual service index", snapshot.domain),
        None,
        lambda: VirtualServiceIndex(snapshot.domain),
    )
    last = index.read
    if last is None or last[0] != memo.generation or last[1] is not snapshot.virtual_services:
        index.read = None
        index.sync(snapshot.virtual_services)
        index.read = (memo.generation, snapshot.virtual_services)
    return index
