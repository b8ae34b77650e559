#!/bin/sh
# Installs chaostoolkit-mesh for the cluster target into a new virtual environment:
#
#   install-python-layer.sh VENV SOURCE_DIR [embedded]
#
# The Dockerfile runs it to build the image's Python layer; a test runs the same script in a
# clean virtual environment (no container engine needed), so the two cannot drift apart.
# By default every dependency in SOURCE_DIR/pyproject.toml is installed except those listed
# under [tool.chaosmesh.image] leave-out (Envoy and the embedded mesh's workloads: the cluster
# has its own mesh). "embedded" installs those too, for a plan with target: embedded.
# pip's cache stays in the build stage, which the image does not keep.
set -eu
venv="$1"
src="$2"
with="${3:-}"
"${PYTHON:-python3}" -m venv "$venv"
pip="$venv/bin/python -m pip install --no-input"
if [ "$with" = "embedded" ]; then
    $pip "$src" "chaostoolkit-kubernetes>=0.39,<1"
else
    # The package without its dependencies, then its dependencies minus the left-out ones,
    # read from pyproject.toml: one list of dependencies, kept in one place.
    $pip --no-deps "$src"
    "$venv/bin/python" - "$src/pyproject.toml" >"$venv/cluster-requirements.txt" <<'PY'
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    pyproject = tomllib.load(handle)
leave_out = {name.lower() for name in pyproject["tool"]["chaosmesh"]["image"]["leave-out"]}
for requirement in pyproject["project"]["dependencies"]:
    if re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower() not in leave_out:
        print(requirement)
PY
    $pip -r "$venv/cluster-requirements.txt" "chaostoolkit-kubernetes>=0.39,<1"
fi
# Fail the build, not the first night's run, if the commands do not start.
"$venv/bin/chaosmesh" --version
"$venv/bin/chaos" --version
