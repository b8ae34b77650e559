"""What a run proved: one word and one sentence, the same for every command that judges one.

Chaos Toolkit's own status says whether the run *ran*, not whether it *tested* anything:

- a steady state that is not met before the method ends the run ``completed`` (not
  deviated) without running the method: nothing was tested;
- a method action that failed is recorded and the method plays on, so a fault that was never
  injected still ends ``completed`` — and an unchanged steady state then reads as resilience.

``chaosmesh run``, ``chaosmesh gameday run`` and ``chaosmesh journal show/report`` all use
:func:`verdict`, so none of them reports such a run as a pass. Pure: takes a ``Journal``.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosmesh_ext.journal import digest
from chaosmesh_ext.journal.model import Journal, RunRecord

NOT_TESTED = "steady state not met before the fault: nothing was tested"
NOT_INJECTED = "fault not injected"
METHOD_PROBE_FAILED = "method probe failed"
_INTERRUPT = "chaoslib.exceptions.InterruptExecution"


@dataclass(frozen=True)
class Verdict:
    """``word``: completed | deviated | failed | aborted | interrupted | unknown.

    ``reason`` is empty for a run that completed and tested what it declared.
    """

    word: str
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.word == "completed"


def _failing(probes: list[RunRecord]) -> str:
    bad = [p for p in probes if p.tolerance_met is False or p.status != "succeeded"]
    return "; ".join(f"{p.name} ({digest.tolerance(p)})" for p in bad)


def _failed(records: list[RunRecord], kind: str) -> list[RunRecord]:
    return [r for r in records if r.type == kind and r.status == "failed"]


def _errors(records: list[RunRecord]) -> str:
    return "; ".join(f"{r.name}: {r.error or 'failed'}" for r in records)


def verdict(journal: Journal) -> Verdict:
    """The run's verdict; only a run that completed, ran its method as declared and kept
    its steady state is ``completed``."""
    before = journal.before
    if before is not None and before.met is False:
        failing = _failing(before.probes)
        return Verdict("failed", NOT_TESTED + (f": {failing}" if failing else ""))
    signalled = [r for r in journal.method if r.error and r.error.startswith(_INTERRUPT)]
    if signalled:
        # chaoslib 1.44 records a SIGTERM inside an activity as that activity's failure and
        # plays on: the run was interrupted, its fault was not "not injected".
        first = signalled[0]
        said = (first.error or "")[len(_INTERRUPT) :].lstrip(": ") or "signal received"
        return Verdict("interrupted", f"interrupted: {said} (during {first.name})")
    actions = _failed(journal.method, "action")
    if actions:
        return Verdict("failed", f"{NOT_INJECTED}: {_errors(actions)}")
    if journal.stopped:
        # The safety-net control stopped the run: a failed method activity, a target that
        # could not be prepared, or an embedded mesh that died (never a deviation: the
        # system under test was not what failed).
        return Verdict("failed", journal.stopped)
    if journal.deviated:
        if journal.after is not None and journal.after.met is False:
            return Verdict(
                "deviated",
                f"steady state not met after the method: {_failing(journal.after.probes)}",
            )
        for i, hyp in enumerate(journal.during):
            if hyp.met is False:
                return Verdict(
                    "deviated",
                    f"steady state not met during the method (check {i + 1}): "
                    + _failing(hyp.probes),
                )
        return Verdict("deviated", "steady state not met")
    if journal.status == "interrupted":
        return Verdict(
            "interrupted", f"interrupted: {journal.interruption or 'no reason recorded'}"
        )
    if journal.status != "completed":
        errors = [r for r in journal.method + journal.rollbacks if r.error]
        return Verdict(journal.status, journal.status + (f": {_errors(errors)}" if errors else ""))
    probes = _failed(journal.method, "probe")
    if probes:
        return Verdict("failed", f"{METHOD_PROBE_FAILED}: {_errors(probes)}")
    return Verdict("completed")
