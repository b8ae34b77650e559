#!/bin/sh
# Installs chaostoolkit-mesh for the cluster target into a new virtual environment:
#
#   install-python-layer.sh VENV SOURCE_DIR [EXTRAS]
#
# The Dockerfile runs it to build the image's Python layer; a test runs the same script in a
# clean virtual environment (no container engine needed), so the two cannot drift apart.
# EXTRAS (e.g. "embedded") adds this package's extras; the default image has none: no Envoy.
# pip's cache stays in the build stage, which the image does not keep.
set -eu
venv="$1"
src="$2"
extras="${3:-}"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --no-input \
    "$src${extras:+[$extras]}" \
    "chaostoolkit-kubernetes>=0.39,<1"
# Fail the build, not the first night's run, if the commands do not start.
"$venv/bin/chaosmesh" --version
"$venv/bin/chaos" --version
