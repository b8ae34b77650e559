#!/usr/bin/env bash
# Usage: install-venv.sh VENV PYTHON [REQUIREMENT...]
# Make the virtual environment VENV with PYTHON (unless it exists) and install this checkout
# into it, editable, with its dev extras (and the REQUIREMENTs: the 3.11 job pins the oldest
# kubernetes client the package allows). Says which Python it uses, shows pip's progress
# every few seconds, keeps pip's full output (its notices included) in VENV/install.log, and
# ends by saying which chaostoolkit it installed. Used by the Makefile.
set -euo pipefail

venv=$1
python=$2
shift 2
say() { echo "make: $*"; }

version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
say "Python $version ($python) -> $venv"
case $version in
    3.11.*) say "  (chaostoolkit >= 1.20 needs Python 3.12: this venv gets chaostoolkit 1.19;" \
                "set PYTHON=/path/to/python3.13 or PYENV_ROOT to use a newer one)" ;;
esac
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"

log=$venv/install.log
say "installing chaostoolkit-mesh and its dependencies (a minute or two the first time; log: $log)"
(
    "$venv/bin/python" -m pip install --upgrade pip
    "$venv/bin/python" -m pip install -e '.[dev]' "$@"
) >"$log" 2>&1 &
pip_pid=$!
started=$SECONDS
while kill -0 "$pip_pid" 2>/dev/null; do
    sleep 5
    kill -0 "$pip_pid" 2>/dev/null || break
    # The last thing pip said it was doing, shortened: collecting x, installing N packages.
    doing=$(grep -E '^(Collecting|Downloading|Building|Installing|Obtaining|Preparing)' "$log" \
        | tail -n 1 || true)
    case $doing in
        "Installing collected packages: pip") doing="upgrading pip" ;;
        "Installing collected packages: "*)
            doing="installing $(($(tr -cd , <<<"$doing" | wc -c) + 1)) packages" ;;
        *) doing=$(sed -e 's/ (from .*//' <<<"$doing" | cut -c 1-60) ;;
    esac
    say "  $((SECONDS - started)) s: ${doing:-starting pip}"
done
if ! wait "$pip_pid"; then
    tail -n 30 "$log" >&2
    say "pip install failed (full log: $log)" >&2
    exit 1
fi
"$venv/bin/python" - <<'PY'
import sys
from importlib.metadata import version

print(
    f"make: ready: Python {sys.version.split()[0]}, chaostoolkit {version('chaostoolkit')},"
    f" chaostoolkit-lib {version('chaostoolkit-lib')}, kubernetes {version('kubernetes')}"
)
PY
