"""Journals as log lines: one JSON object per line, so a pod's log keeps every journal.

A game day in a pod without a volume prints each journal as it is written
(``chaosmesh gameday run --journal-lines``); ``kubectl logs`` then holds them among the
progress lines, and ``chaosmesh journal show|report`` read such a log file directly. A line
is ``{"kind": "chaosmesh.io/journal", "gameday": ..., "run": ..., "file": ..., "journal":
{...}}``; any other line is ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaosmesh_ext.journal.loader import JournalError, parse_journal
from chaosmesh_ext.journal.model import Journal

KIND = "chaosmesh.io/journal"


def journal_line(gameday: str, run: str, file: str, journal: dict[str, Any]) -> str:
    """The journal as one line of compact JSON (no newline inside)."""
    record = {"kind": KIND, "gameday": gameday, "run": run, "file": file, "journal": journal}
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def journals_in_log(path: str | Path) -> list[Journal] | None:
    """The journals printed as lines in the log at ``path``; None when it holds none."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    found: list[Journal] = []
    for number, line in enumerate(text.splitlines(), start=1):
        # kubectl logs --timestamps puts a timestamp in front: start at the object.
        start = line.find('{"kind":')
        if start < 0 or KIND not in line:
            continue
        try:
            record = json.loads(line[start:])
        except json.JSONDecodeError:
            raise JournalError(
                f"{p}:{number}: a journal line that is not complete JSON (cut short?)"
            ) from None
        if not isinstance(record, dict) or record.get("kind") != KIND:
            continue
        source = f"{p}:{number} ({record.get('run', '?')}/{record.get('file', '?')})"
        found.append(parse_journal(record.get("journal"), source))
    return found or None
