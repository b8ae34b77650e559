# chaostoolkit-mesh — one command each: `make run` (every experiment on the embedded mesh)
# and `make test`. Both install into .venv first when needed.

SHELL := /bin/bash
VENV ?= .venv
# chaostoolkit >= 1.20 needs Python 3.12; 3.11 works with chaostoolkit 1.19. The newest that
# runs, from PATH or pyenv (PYENV_ROOT, the pyenv on PATH, ~/.pyenv): scripts/find-python.sh.
PYTHON ?= $(shell scripts/find-python.sh 3.13 3.12 3.11)
BIN := $(VENV)/bin
STAMP := $(VENV)/.install.stamp

# Programs the tests run, as program:Debian-package (tests/support/tools.py reads this line,
# and a test checks it names exactly the programs the tests ask for): kubectl (an independent
# Kubernetes client), Prometheus (the metrics hypotheses), Chromium (the report's screenshots).
SYSTEM_TOOLS := kubectl:kubernetes-client prometheus:prometheus chromium:chromium
# Load generators the benchmarks compare against (`make bench` installs them).
BENCH_TOOLS := hey:hey wrk:wrk

.PHONY: install system-deps bench-deps test run lint bench soak clean

install: $(STAMP) system-deps

# Says which Python and chaostoolkit it chose and shows pip's progress; pip's own output
# (setuptools' notice about editable installs included) goes to $(VENV)/install.log.
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python >= 3.11 found (pass PYTHON=/path/to/python3 or set PYENV_ROOT)" >&2; exit 1; }
	@scripts/install-venv.sh $(VENV) $(PYTHON)
	@touch $(STAMP)

system-deps:
	@$(call install_tools,$(SYSTEM_TOOLS))

bench-deps:
	@$(call install_tools,$(BENCH_TOOLS))

# Install the Debian packages of the programs in $(1) (program:package pairs) that are not on
# PATH; exit non-zero, saying what and how, when that cannot be done. NO_SYSTEM_DEPS=1 skips
# this (the tests that need a missing program then skip, or fail under CI=true).
define install_tools
missing=""; for pair in $(1); do command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
if [ -z "$$missing" ] || [ -n "$(NO_SYSTEM_DEPS)" ]; then exit 0; fi; \
if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	echo "error: missing Debian packages:$$missing. Install them as root (apt-get install -y$$missing)," >&2; \
	echo "       or run with NO_SYSTEM_DEPS=1 to skip the tests that need them" >&2; exit 1; \
fi; \
echo "installing Debian packages:$$missing"; \
if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) \
		>/tmp/chaosmesh-apt.log 2>&1; then \
	tail -n 20 /tmp/chaosmesh-apt.log >&2; \
	echo "error: apt-get install$$missing failed (full log: /tmp/chaosmesh-apt.log)" >&2; exit 1; \
fi; \
for pair in $(1); do command -v "$${pair%%:*}" >/dev/null 2>&1 || { \
	echo "error: $${pair%%:*} is still not on PATH after installing $${pair#*:}" >&2; exit 1; }; done
endef

# The suite on TEST_WORKERS pytest-xdist workers (most tests wait on Envoy and processes
# rather than use a core; `--dist loadgroup`: tests/conftest.py keeps the tests that share a
# module's or package's mesh on one worker), then the tests marked `serial` one at a time:
# they count what a loaded machine can delay. Both runs get PYTEST_ARGS; pytest's status 5
# (nothing selected, e.g. PYTEST_ARGS naming only tests of one kind) is no failure.
TEST_WORKERS ?= 3
define run_suite
status=0; \
$(1) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not serial" $(PYTEST_ARGS) || status=$$?; \
[ $$status != 5 ] || status=0; \
$(1) -m pytest -p no:xdist -m serial $(PYTEST_ARGS) || { s=$$?; [ $$s = 5 ] || status=$$s; }; \
exit $$status
endef

test: install
	@$(call run_suite,$(BIN)/python)

run: install
	$(BIN)/chaosmesh run --journals journals experiments/*.json

lint: install
	$(BIN)/ruff check chaosmesh_ext tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install bench-deps
	$(BIN)/python -m benchmarks

# Not part of `bench` or `test`: holds the machine for its whole duration (10 min by default;
# `make soak SOAK_ARGS="--minutes 2"` for a short run).
soak: install
	$(BIN)/python -m benchmarks.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .venv311 .chaosmesh .pytest_cache .mypy_cache .ruff_cache *.egg-info

# `make test-py311`: the suite on Python 3.11, the oldest supported, where pip resolves
# chaostoolkit 1.19 / chaostoolkit-lib 1.44 (3.12+ gets the newest), in its own .venv311.
# ensurepip: Debian's python3.11 without python3.11-venv cannot make a venv.
VENV311 ?= .venv311
# The oldest kubernetes client pyproject.toml allows: the 3.11 job tests it, the other the newest.
KUBERNETES_OLDEST ?= 37.0.0
PYTHON311 ?= $(shell scripts/find-python.sh --venv 3.11)
STAMP311 := $(VENV311)/.install.stamp

.PHONY: test-py311

test-py311: $(STAMP311) system-deps
	@$(call run_suite,$(VENV311)/bin/python)

$(STAMP311): pyproject.toml
	@test -n "$(PYTHON311)" || { echo "no Python 3.11 found (pass PYTHON311=/path/to/python3.11)" >&2; exit 1; }
	@scripts/install-venv.sh $(VENV311) $(PYTHON311) 'kubernetes==$(KUBERNETES_OLDEST)'
	@touch $(STAMP311)
