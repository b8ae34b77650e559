"""Read a journal file (any chaostoolkit version) into the normalised ``model.Journal``."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaosmesh_ext.errors import ChaosMeshError
from chaosmesh_ext.journal.model import Hypothesis, Journal, Phase, Restored, RunRecord
from chaosmesh_ext.journal.outputs import load_result, traffic_split

# The name under which the safety-net control records what it restored, in the
# experiment's "extensions" list of the journal: {"name": "chaosmesh", "restored": [...]}.
EXTENSION_NAME = "chaosmesh"


class JournalError(ChaosMeshError, ValueError):
    """A file that is not a journal; the message names the file and the problem."""


def load_journal(path: str | Path) -> Journal:
    """Read and normalise the journal at ``path``; raise ``JournalError`` on bad input."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JournalError(f"journal {p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JournalError(f"journal {p}: cannot read: {exc}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JournalError(
            f"journal {p}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    return parse_journal(raw, str(p))


def run_outcomes(path: str | Path) -> list[tuple[str, str, str]] | None:
    """The (experiment, status, why) rows of a ``summary.json`` that ``chaosmesh gameday run``
    or ``chaosmesh run`` wrote beside its journals; None for any other file.

    Such a summary sits in the same directory as the journals, so ``journal report dir/*.json``
    meets it: it heads the report instead of failing it.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(raw, dict) or "experiment" in raw:
        return None
    outcomes = raw.get("outcomes")
    if not isinstance(raw.get("plan"), str) or not isinstance(outcomes, list):
        return None
    rows = []
    for item in outcomes:
        if isinstance(item, dict):
            rows.append(
                (
                    Path(str(item.get("experiment") or "?")).name,
                    str(item.get("status") or "unknown"),
                    str(item.get("reason") or ""),
                )
            )
    return rows


def parse_journal(raw: Any, source: str = "<journal>") -> Journal:
    """Normalise an already decoded journal."""
    if not isinstance(raw, dict):
        raise JournalError(f"journal {source}: expected a JSON object, got {type(raw).__name__}")
    experiment = raw.get("experiment")
    if not isinstance(experiment, dict) or not (
        "run" in raw or "steady_states" in raw or "status" in raw
    ):
        raise JournalError(
            f"journal {source}: not a Chaos Toolkit journal (no 'experiment' object with "
            "'status'/'run'/'steady_states' beside it)"
        )
    raw_states = raw.get("steady_states")
    states: dict[str, Any] = raw_states if isinstance(raw_states, dict) else {}
    hyp_def = experiment.get("steady-state-hypothesis")
    restored, safety_net = _restored(raw, experiment)
    stopped = _stopped(raw, experiment)
    values = _values(raw, experiment)

    def record(item: Any) -> RunRecord:
        return _record(item, values)

    def hypothesis(item: Any) -> Hypothesis | None:
        return _hypothesis(item, values)

    interruption = raw.get("interruption")
    return Journal(
        source=source,
        title=str(experiment.get("title") or "(untitled experiment)"),
        description=str(experiment.get("description") or ""),
        status=str(raw.get("status") or "unknown"),
        deviated=bool(raw.get("deviated")),
        start=_time(raw.get("start")),
        end=_time(raw.get("end")),
        duration=_float(raw.get("duration")),
        chaoslib_version=_str(raw.get("chaoslib-version")),
        hypothesis_title=_str(hyp_def.get("title")) if isinstance(hyp_def, dict) else None,
        before=hypothesis(states.get("before")),
        after=hypothesis(states.get("after")),
        during=[h for h in map(hypothesis, _list(states.get("during"))) if h],
        method=[record(r) for r in _list(raw.get("run"))],
        rollbacks=[record(r) for r in _list(raw.get("rollbacks"))],
        has_method=bool(_list(experiment.get("method"))),
        restored=restored,
        safety_net=safety_net,
        interruption=_control_interruption(raw, experiment) or _interruption(interruption),
        stopped=stopped,
        phases=_phases(raw, experiment),
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        # chaoslib 1.44 writes naive ISO times (UTC); 1.45 adds +00:00. Always aware, so the
        # control's phases (aware) and a 1.44 journal's activities share one time line.
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _interruption(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("reason") or value.get("name") or value)
    return None if value is None else str(value)


def _hypothesis(raw: Any, values: dict[str, Any]) -> Hypothesis | None:
    if not isinstance(raw, dict):
        return None
    met = raw.get("steady_state_met")
    return Hypothesis(
        met=met if isinstance(met, bool) else None,
        probes=[_record(p, values) for p in _list(raw.get("probes"))],
    )


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


def substitute(data: Any, values: dict[str, Any]) -> Any:
    """``data`` with each ``${name}`` known in ``values`` replaced, as chaoslib did for the
    run: a string that is only ``${name}`` becomes the value itself, others get its text."""
    if not values:
        return data
    if isinstance(data, str):
        whole = _PLACEHOLDER.fullmatch(data)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]

        def text(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(values[name]) if name in values else match.group(0)

        return _PLACEHOLDER.sub(text, data)
    if isinstance(data, dict):
        return {k: substitute(v, values) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute(v, values) for v in data]
    return data


def _phases(raw: dict[str, Any], experiment: dict[str, Any]) -> list[Phase]:
    """The control's own time (``"phases": [{"what", "start", "end"}]``), in order."""
    found = []
    for section in _sections(raw, experiment):
        for item in _list(section.get("phases")):
            if not isinstance(item, dict):
                continue
            start, end = _time(item.get("start")), _time(item.get("end"))
            if start is not None and end is not None:
                found.append(Phase(str(item.get("what") or "control"), start, end))
    return sorted(found, key=lambda p: p.start)


def _values(raw: dict[str, Any], experiment: dict[str, Any]) -> dict[str, Any]:
    """The values the run's ``${name}`` forms stood for (the control's ``values`` record)."""
    found: dict[str, Any] = {}
    for section in _sections(raw, experiment):
        if isinstance(section.get("values"), dict):
            found.update(section["values"])
    return found


def _provider(provider: Any) -> str:
    if not isinstance(provider, dict):
        return "?"
    kind = str(provider.get("type") or "?")
    if kind == "python":
        return f"python {provider.get('module', '?')}.{provider.get('func', '?')}"
    if kind == "process":
        return f"process {provider.get('path', '?')}"
    if kind == "http":
        return f"http {provider.get('method', 'GET')} {provider.get('url', '?')}"
    return kind


def _error(exception: Any) -> str | None:
    """The line that says what went wrong, from chaoslib's traceback list (or a string)."""
    if isinstance(exception, str):
        lines = exception.splitlines()
    elif isinstance(exception, list):
        lines = [ln for item in exception for ln in str(item).splitlines()]
    else:
        return None
    lines = [ln.strip() for ln in lines if ln.strip()]
    if not lines:
        return None
    last = lines[-1]
    # chaoslib wraps the cause, sometimes twice (an ActivityFailed raised by the provider):
    # "chaoslib.exceptions.ActivityFailed: chaoslib.exceptions.ActivityFailed: ConnectionError"
    prefix = "chaoslib.exceptions.ActivityFailed: "
    while last.startswith(prefix):
        last = last[len(prefix) :]
    return last


def _record(raw: Any, values: dict[str, Any] | None = None) -> RunRecord:
    raw = raw if isinstance(raw, dict) else {}
    activity: dict[str, Any] = raw["activity"] if isinstance(raw.get("activity"), dict) else {}
    provider: dict[str, Any] = (
        activity["provider"] if isinstance(activity.get("provider"), dict) else {}
    )
    args = substitute(provider.get("arguments"), values or {})
    if not isinstance(args, dict):
        args = {} if args is None else {"arguments": args}
    status = raw.get("status")
    output = raw.get("output")
    tolerance_met = raw.get("tolerance_met")
    return RunRecord(
        name=str(activity.get("name") or activity.get("ref") or "(unnamed)"),
        type=str(activity.get("type") or "?"),
        provider=_provider(provider),
        arguments=args,
        # chaoslib leaves "status" out of an activity a signal interrupted.
        status=str(status) if status else "interrupted",
        start=_time(raw.get("start")),
        end=_time(raw.get("end")),
        duration=_float(raw.get("duration")),
        output=output,
        error=_error(raw.get("exception")),
        tolerance=activity.get("tolerance"),
        tolerance_met=tolerance_met if isinstance(tolerance_met, bool) else None,
        load=load_result(output),
        # This extension's split probes may see one version only (a 0/100 split).
        split=traffic_split(output, single=str(provider.get("func", "")).endswith("split")),
        background=bool(activity.get("background")),
    )


def _restored(raw: dict[str, Any], experiment: dict[str, Any]) -> tuple[list[Restored], bool]:
    """What the safety net restored, from ``{"name": "chaosmesh", ...}`` extension sections.

    ``chaosmesh_ext.control`` writes ``"safety_net": [{"when": ..., "restored": [{"object":
    "Kind ns/name", "result": ..., "detail": ...}]} | {"when": ..., "error": ...}]`` into the
    journal's experiment ``extensions``; a flat ``"restored": [{"kind", "namespace", "name",
    "action", "detail"} | "text"]`` is read too, and so is a top-level ``extensions`` list.
    """
    sections = _sections(raw, experiment)
    items: list[Restored] = []
    for section in sections:
        batches = [section] + [b for b in _list(section.get("safety_net")) if isinstance(b, dict)]
        for batch in batches:
            if batch is not section and batch.get("error"):
                items.append(
                    Restored(
                        kind="",
                        namespace=None,
                        name="safety net",
                        action="failed",
                        detail=str(batch["error"]),
                    )
                )
            items += [r for r in map(_restored_item, _list(batch.get("restored"))) if r]
    return items, bool(sections)


def _sections(raw: dict[str, Any], experiment: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in _list(experiment.get("extensions")) + _list(raw.get("extensions"))
        if isinstance(s, dict) and s.get("name") == EXTENSION_NAME
    ]


def _stopped(raw: dict[str, Any], experiment: dict[str, Any]) -> str | None:
    """Why the safety-net control stopped the run (``"stopped": {"activity", "reason"}``)."""
    for section in _sections(raw, experiment):
        stopped = section.get("stopped")
        if isinstance(stopped, dict) and stopped.get("reason"):
            return str(stopped["reason"])
    return None


def _control_interruption(raw: dict[str, Any], experiment: dict[str, Any]) -> str | None:
    """Why the safety-net control interrupted the run's start (a signal while the embedded
    mesh started: ``"interrupted": "..."``): it says more than chaostoolkit's "received
    SIGTERM"."""
    for section in _sections(raw, experiment):
        if section.get("interrupted"):
            return str(section["interrupted"])
    return None


def _restored_item(item: Any) -> Restored | None:
    if isinstance(item, str):
        return Restored(kind="", namespace=None, name=item, action="restored")
    if not isinstance(item, dict):
        return None
    kind, namespace, name = (
        str(item.get("kind") or ""),
        _str(item.get("namespace")),
        str(item.get("name") or ""),
    )
    if not name and isinstance(item.get("object"), str):
        # "VirtualService default/reviews"
        kind, _, where = item["object"].partition(" ")
        namespace, _, name = where.rpartition("/")
        namespace = namespace or None
    return Restored(
        kind=kind,
        namespace=namespace,
        name=name or "?",
        action=str(item.get("action") or item.get("result") or "restored"),
        detail=str(item.get("detail") or item.get("message") or ""),
    )
