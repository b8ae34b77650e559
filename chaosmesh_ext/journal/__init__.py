"""Journal review: read any journal Chaos Toolkit writes, summarise it, chart it.

``load_journal(path)`` gives a normalised ``Journal`` (``model``); ``summary.render`` turns
it into terminal text and ``report.render_html`` into one self-contained HTML page.
"""

from __future__ import annotations

from chaosmesh_ext.journal.loader import JournalError, load_journal, parse_journal, run_outcomes
from chaosmesh_ext.journal.model import (
    Hypothesis,
    Journal,
    LoadResult,
    Phase,
    Restored,
    RunRecord,
)

__all__ = [
    "Hypothesis",
    "Journal",
    "JournalError",
    "LoadResult",
    "Phase",
    "Restored",
    "RunRecord",
    "load_journal",
    "parse_journal",
    "run_outcomes",
]
