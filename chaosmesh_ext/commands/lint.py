"""``chaosmesh lint``: check Istio and Kubernetes YAML — and experiments — before a run.

Like ``istioctl analyze`` on files: ``chaosmesh lint -f DIR -f FILE [--target cluster]
[--format json]``. A Chaos Toolkit experiment among the files gets its activity arguments
checked against the real functions (``experiment_check``), with the closest name for a typo.
Exit code 1 when there is an error finding (malformed YAML included), 0 otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..experiment_check import Problem, check_file
from ..istio.lint import EMBEDDED, TARGETS, Finding, has_errors, lint_paths, summary


def _text(findings: list[Finding]) -> str:
    lines = [str(f) for f in findings]
    counts = summary(findings)
    lines.append(
        f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
        if findings
        else "no problems found"
    )
    return "\n".join(lines)


def _files(paths: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".json", ".yaml", ".yml"))
        elif path.is_file():
            found.append(path)
    return found


def _line(text: str, problem: Problem) -> int | None:
    """Where the problem is in the file: the argument's line after its step's name."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if f'"{problem.step}"' in ln), None)
    if start is None:
        start = next((i for i, ln in enumerate(lines) if problem.step in ln), 0)
    needle = problem.key or ("func" if problem.field.endswith(".func") else "arguments")
    for i in range(start, len(lines)):
        if needle in lines[i]:
            return i + 1
    return start + 1


def experiment_findings(paths: tuple[str, ...]) -> list[Finding]:
    """Argument problems of the Chaos Toolkit experiments among ``paths`` (``experiment_check``)."""
    findings = []
    for path in _files(paths):
        problems = check_file(path)
        if not problems:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for problem in problems:
            findings.append(
                Finding(
                    problem.severity, str(path), "", "", "", problem.field,
                    f"'{problem.step}' ({problem.func}): {problem.message}", _line(text, problem),
                )
            )  # fmt: skip
    return findings


@click.command("lint")
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    metavar="FILE_OR_DIR",
    help="YAML/JSON file, a directory searched for *.yaml, *.yml, *.json, or - for standard "
    "input (repeatable).",
)
@click.option(
    "-n",
    "--namespace",
    default="default",
    show_default=True,
    help="Namespace of objects that name none (as kubectl -n).",
)
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    default=EMBEDDED,
    show_default=True,
    help="Where the files will run: fields the embedded mesh does not support "
    "(docs/FIDELITY.md) are errors for 'embedded', info notes for 'cluster'.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
def command(paths: tuple[str, ...], namespace: str, target: str, output_format: str) -> None:
    """Check Istio and Kubernetes YAML (like istioctl analyze) and experiments' arguments."""
    findings = lint_paths(paths, namespace=namespace, target=target) + experiment_findings(paths)
    if output_format == "json":
        click.echo(
            json.dumps(
                {"findings": [f.to_dict() for f in findings], "summary": summary(findings)},
                indent=2,
            )
        )
    else:
        click.echo(_text(findings))
    if has_errors(findings):
        raise SystemExit(1)
