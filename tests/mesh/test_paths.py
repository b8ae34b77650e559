"""The state directory's settings: which directory an experiment or a command uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosmesh_ext.mesh import paths


def test_the_configuration_wins_then_the_environment_then_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(paths.STATE_DIR_ENV, "from-env")
    assert paths.state_dir_of({"mesh_state_dir": "from-config"}) == tmp_path / "from-config"
    assert paths.state_dir_of({}) == tmp_path / "from-env"
    assert paths.default_state_dir() == "from-env"
    monkeypatch.delenv(paths.STATE_DIR_ENV)
    assert paths.state_dir_of(None) == tmp_path / ".chaosmesh"
    assert paths.default_state_dir() == ".chaosmesh"


def test_every_file_of_a_state_directory_lies_inside_it(tmp_path: Path) -> None:
    layout = paths.StatePaths(tmp_path)
    files = {
        name: getattr(layout, name)
        for name in dir(paths.StatePaths)
        if isinstance(getattr(paths.StatePaths, name), property)
    }
    assert all(path.parent == tmp_path for path in files.values())
    assert len(set(files.values())) == len(files)  # no two share a name
    assert layout.mesh_json.name == "mesh.json" and layout.kubeconfig.name == "kubeconfig"


def test_commands_find_the_projects_mesh_from_any_directory_below_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule for every command, chaos run's control and game days: walk up to the nearest
    .chaosmesh/, as git finds .git/ (CHAOSMESH_STATE_DIR still wins)."""
    home = tmp_path / "home"
    project = home / "project"
    deep = project / "experiments" / "nested"
    deep.mkdir(parents=True)
    (project / ".chaosmesh").mkdir()
    (home / ".chaosmesh" / "ledger").mkdir(parents=True)  # the per-user ledger home
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(paths.STATE_DIR_ENV)
    monkeypatch.chdir(deep)
    assert paths.default_state_dir() == str(project / ".chaosmesh")
    assert paths.state_dir_of({}) == project / ".chaosmesh"
    monkeypatch.chdir(project)
    assert paths.default_state_dir() == ".chaosmesh"  # here: as users type it
    monkeypatch.setenv(paths.STATE_DIR_ENV, "elsewhere")
    monkeypatch.chdir(deep)
    assert paths.default_state_dir() == "elsewhere"


def test_the_ledger_home_is_not_a_mesh_and_nothing_found_means_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    work = home / "work"
    work.mkdir(parents=True)
    (home / ".chaosmesh" / "ledger").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(paths.STATE_DIR_ENV)
    monkeypatch.chdir(work)
    assert paths.find_state_dir() is None
    assert paths.default_state_dir() == ".chaosmesh"  # a new mesh starts here
    (home / ".chaosmesh" / "kubeconfig").write_text("")  # a mesh ran in ~ itself
    assert paths.find_state_dir() == home / ".chaosmesh"
