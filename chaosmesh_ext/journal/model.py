"""The normalised shape of a Chaos Toolkit journal that the summary and report render.

Journals differ between chaostoolkit versions and run outcomes (an interrupted activity has
no ``status``, a failed probe has an ``exception`` list and no output, a run may have no
method); the loader irons that out so renderers never guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaosmesh_ext.journal.verdict import Verdict


@dataclass(frozen=True)
class LoadResult:
    """The numbers of one load probe run (fortio result or this extension's flat keys)."""

    count: int | None
    qps: float | None
    error_rate: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    codes: dict[str, int]
    url: str | None = None


@dataclass(frozen=True)
class RunRecord:
    """One activity as it ran: a probe of a hypothesis, a method step or a rollback."""

    name: str
    type: str  # "probe" | "action" | "?"
    provider: str  # e.g. "python ctk_helpers.inject", "process sleep", "http GET url"
    arguments: dict[str, Any]
    # "succeeded" | "failed" | "interrupted" (chaoslib leaves status out when interrupted)
    status: str
    start: datetime | None
    end: datetime | None
    duration: float | None
    output: Any
    error: str | None  # last meaningful line of chaoslib's exception list
    tolerance: Any = None
    tolerance_met: bool | None = None
    load: LoadResult | None = None
    split: dict[str, float] | None = None
    background: bool = False


@dataclass(frozen=True)
class Hypothesis:
    """The steady-state hypothesis as checked at one moment (before, during, after)."""

    met: bool | None
    probes: list[RunRecord]


@dataclass(frozen=True)
class Phase:
    """Time the safety-net control spent outside any activity (e.g. starting the mesh)."""

    what: str
    start: datetime
    end: datetime

    @property
    def duration(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Restored:
    """One object the safety-net control put back (or could not) after the run."""

    kind: str
    namespace: str | None
    name: str
    action: str  # "restored" | "deleted" | "conflict" | "failed" | ...
    detail: str = ""

    @property
    def label(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}".strip()


@dataclass(frozen=True)
class Journal:
    """A journal, normalised."""

    source: str
    title: str
    description: str
    status: str  # completed | failed | aborted | interrupted | unknown
    deviated: bool
    start: datetime | None
    end: datetime | None
    duration: float | None
    chaoslib_version: str | None
    hypothesis_title: str | None
    before: Hypothesis | None
    after: Hypothesis | None
    during: list[Hypothesis]
    method: list[RunRecord]
    rollbacks: list[RunRecord]
    has_method: bool
    restored: list[Restored] = field(default_factory=list)
    safety_net: bool = False  # the chaosmesh control left a section in the journal
    interruption: str | None = None
    # Why the safety-net control stopped the run after a failed method activity, if it did.
    stopped: str | None = None
    # What the control spent time on (mesh start-up, safety net, mesh stop), in order.
    phases: list[Phase] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """One word a person reads first (``verdict.verdict``): completed only for a run that
        ran its method as declared and kept its steady state."""
        return self.verdict.word

    @property
    def reason(self) -> str:
        """Why the run is not a pass, in one sentence ("" when it is)."""
        return self.verdict.reason

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    @property
    def verdict(self) -> Verdict:
        from chaosmesh_ext.journal.verdict import verdict  # verdict reads this module

        return verdict(self)

    def load_results(self) -> list[tuple[str, RunRecord]]:
        """Every load probe result with its phase: before, during, after."""
        found: list[tuple[str, RunRecord]] = []
        if self.before:
            found += [("before", r) for r in self.before.probes if r.load]
        found += [("during", r) for r in self.method if r.load]
        for hyp in self.during:
            found += [("during", r) for r in hyp.probes if r.load]
        if self.after:
            found += [("after", r) for r in self.after.probes if r.load]
        return found

    def splits(self) -> list[tuple[str, RunRecord]]:
        """Every traffic split measured, with its phase."""
        found: list[tuple[str, RunRecord]] = []
        if self.before:
            found += [("before", r) for r in self.before.probes if r.split]
        found += [("during", r) for r in self.method if r.split]
        if self.after:
            found += [("after", r) for r in self.after.probes if r.split]
        return found
