"""The suite cannot hide a missing program: every external program a test runs is asked for
through ``tests.support.tools.require_tool``, ``make install`` provides exactly that set, and
under ``CI=true`` (how ``.ci/run`` runs the suite) a missing one fails instead of skipping."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support import tools

TESTS = Path(__file__).resolve().parent


def _requested_programs() -> dict[str, list[str]]:
    """``{program: [files]}`` for every ``require_tool("<program>")`` call in the tests."""
    found: dict[str, list[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        if path == Path(__file__):
            continue  # this file's calls check the helper itself
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "require_tool"
            ):
                (argument,) = node.args
                assert isinstance(argument, ast.Constant), f"{path}: require_tool(<literal>)"
                found.setdefault(argument.value, []).append(str(path.relative_to(TESTS)))
    return found


def test_the_programs_the_tests_use_are_the_ones_make_install_provides() -> None:
    requested = _requested_programs()
    assert set(requested) == set(tools.makefile_tools()), (
        f"tests ask for {sorted(requested)}, the Makefile's SYSTEM_TOOLS installs "
        f"{sorted(tools.makefile_tools())}"
    )
    assert tools.makefile_tools()["kubectl"] == "kubernetes-client"  # Debian's name for it


def test_no_test_looks_for_a_program_by_itself() -> None:
    # shutil.which / find_binary in a test would skip (or pass) on its own terms, unseen by CI.
    pattern = re.compile(r"shutil\.which\(|find_binary\(\)|importorskip\(")
    offenders = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name != "tools.py" and path != Path(__file__)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    allowed = {"support/prometheus_fixtures.py"}  # find_binary() after require_tool
    assert [o for o in offenders if o.split(":")[0] not in allowed] == []


@pytest.fixture
def no_programs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: nothing is installed


def test_outside_ci_a_missing_program_skips_with_the_install_command(
    no_programs: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        tools.require_tool("kubectl")
    assert str(skipped.value) == (
        "kubectl is not installed; as root: apt-get install -y kubernetes-client (or make install)"
    )


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_missing_program_fails_naming_it(
    no_programs: None, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match=r"^CI=true: prometheus is not installed"):
        tools.require_tool("prometheus")


def test_a_program_make_install_does_not_provide_is_the_suites_bug() -> None:
    with pytest.raises(AssertionError, match=r"'hey' is not in the Makefile's SYSTEM_TOOLS"):
        tools.require_tool("hey")  # a benchmark's tool, installed by make bench only


def test_ci_runs_the_suite_with_ci_true_and_a_durations_report() -> None:
    script = (tools.ROOT / ".ci" / "run").read_text()
    assert re.search(r"^export CI=true$", script, re.MULTILINE)
    for target in ("test", "test-py311"):
        assert re.search(rf'^make {target} PYTEST_ARGS="--durations=25"$', script, re.MULTILINE)
