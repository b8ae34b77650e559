#!/usr/bin/env bash
# Print the first Python interpreter that runs, trying the versions given in order
# (e.g. `find-python.sh 3.13 3.12 3.11`): `pythonX.Y` on PATH, then pyenv's installed versions
# under $PYENV_ROOT, under the root of the `pyenv` on PATH (found even when HOME is not where
# pyenv lives), and under ~/.pyenv. `--venv` also requires the venv module (ensurepip).
# Prints nothing and exits 1 when none runs. Used by the Makefile.
set -u

check='import sys'
if [ "${1:-}" = "--venv" ]; then
    check='import sys, ensurepip, venv'
    shift
fi

roots=()
[ -n "${PYENV_ROOT:-}" ] && roots+=("$PYENV_ROOT")
if pyenv_bin=$(command -v pyenv 2>/dev/null); then
    # <root>/bin/pyenv is a link to <root>/libexec/pyenv: the root is two levels up either way.
    roots+=("$(dirname "$(dirname "$(readlink -f "$pyenv_bin")")")")
fi
[ -n "${HOME:-}" ] && roots+=("$HOME/.pyenv")

for version in "$@"; do
    candidates=("python$version")
    for root in "${roots[@]}"; do
        # Newest patch release first.
        while IFS= read -r found; do
            candidates+=("$found")
        done < <(ls -d "$root"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -rV)
    done
    for python in "${candidates[@]}"; do
        # pyenv's shims exist for versions that are not selected: run it to know.
        if "$python" -c "$check; assert sys.version_info[:2] == tuple(map(int, '$version'.split('.')))" \
                >/dev/null 2>&1; then
            command -v "$python"
            exit 0
        fi
    done
done
exit 1
