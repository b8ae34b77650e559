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
