"""What the distribution declares: every imported package, its licence, where it runs.

A package imported by ``chaosmesh_ext`` but missing from ``dependencies`` installs fine here
(something else pulled it in) and breaks on a user's machine the day that something drops it.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _declared(extra: str | None = None) -> dict[str, Requirement]:
    """The core dependencies, plus those of ``extra``."""
    listed = list(PYPROJECT["project"]["dependencies"])
    if extra:
        listed += PYPROJECT["project"].get("optional-dependencies", {}).get(extra, [])
    requirements = [Requirement(r) for r in listed]
    return {_normalized(r.name): r for r in requirements}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files, for every absolute import of a non-stdlib module."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "chaosmesh_ext").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "chaosmesh_ext":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_imported_package_is_declared() -> None:
    """Core dependencies for everything; the ``embedded`` extra for the embedded mesh."""
    core, embedded = _declared(), _declared("embedded")
    distributions = metadata.packages_distributions()
    missing = []
    for module, files in sorted(_third_party_imports().items()):
        dists = {_normalized(d) for d in distributions.get(module, [module])}
        # a module outside mesh/ needs it from the core dependencies
        needs_core = any(not f.startswith("chaosmesh_ext/mesh/") for f in files)
        declared = core if needs_core else embedded
        if not dists & set(declared):
            where = sorted(
                f for f in files if needs_core is not f.startswith("chaosmesh_ext/mesh/")
            )
            missing.append(f"{module} ({', '.join(sorted(dists))}) imported by {where[0]}")
    assert missing == [], "imported but not declared in pyproject: " + "; ".join(missing)
    # the two that came in only through other packages until now
    assert {"requests", "urllib3"} <= set(core)


def test_installed_versions_satisfy_the_declared_ranges() -> None:
    """The CI jobs install the oldest (3.11) and the newest (3.12+) kubernetes allowed."""
    for name, requirement in _declared("embedded").items():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = metadata.version(name)
        assert requirement.specifier.contains(version, prereleases=True), (name, version)
    makefile = (ROOT / "Makefile").read_text()
    oldest = makefile.split("KUBERNETES_OLDEST ?= ", 1)[1].split()[0]
    kubernetes = _declared()["kubernetes"].specifier
    assert kubernetes.contains(oldest) and f">={oldest}" in str(kubernetes)


def test_license_and_metadata() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 190
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    installed = metadata.metadata("chaostoolkit-mesh")
    assert installed["License-Expression"] == "Apache-2.0"
    assert "Operating System :: POSIX :: Linux" in installed.get_all("Classifier")
    urls = dict(u.split(", ", 1) for u in installed.get_all("Project-URL"))
    assert {"Homepage", "Source", "Issues"} <= set(urls)


def test_the_embedded_mesh_refuses_other_systems_with_a_clear_message(tmp_path: Path) -> None:
    """`chaosmesh mesh up` (and the daemon itself) in a real process that believes it runs on
    macOS: a clear message, nothing started, nothing written."""
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n"
    )
    state = tmp_path / "state"
    cli = f"['mesh', 'up', '-f', {str(manifest)!r}, '--state-dir', {str(state)!r}]"
    daemon = f"['--state-dir', {str(state)!r}]"
    for entry in (
        # the command's modules imported first, as the real platform would have them
        f"import chaosmesh_ext.commands.mesh\nfrom chaosmesh_ext.cli import main as entry\n"
        f"args = {cli}",
        f"from chaosmesh_ext.mesh.daemon import main as entry\nargs = {daemon}",
    ):
        code = (
            f"import sys\n{entry}\n"
            "sys.platform = 'darwin'  # after the imports: the stdlib imports per platform\n"
            "sys.exit(entry(args))\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert proc.returncode in (1, 2), proc.stderr
        assert "the embedded mesh needs Linux (it uses /proc and prctl), not darwin" in proc.stderr
        assert "MESH_TARGET=kubernetes" in proc.stderr
        assert not state.exists()  # nothing started, nothing written
