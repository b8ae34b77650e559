# chaostoolkit-mesh — one command each: `make run` (every experiment on the embedded mesh)
# and `make test`. Both install into .venv first when needed.

SHELL := /bin/bash
VENV ?= .venv
# chaostoolkit >= 1.20 needs Python 3.12; 3.11 works with chaostoolkit 1.19. Prefer the newest
# interpreter that actually runs (pyenv shims exist for versions that are not selected).
PYTHON ?= $(shell for p in python3.13 python3.12 $$(ls -d $$HOME/.pyenv/versions/3.1[23]*/bin/python3 2>/dev/null | sort -r) python3.11 python3; do \
            if $$p -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1; then echo $$p; break; fi; done)
BIN := $(VENV)/bin
STAMP := $(VENV)/.install.stamp

# Debian packages some tests, experiments and benchmarks use: Prometheus (the metrics
# hypothesis), Chromium (the report's screenshot test), hey and wrk (benchmark references).
SYSTEM_TOOLS := prometheus chromium hey wrk

.PHONY: install system-deps test run lint bench soak clean

install: $(STAMP) system-deps

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python >= 3.11 found" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian packages:$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) \
			>/tmp/chaosmesh-apt.log 2>&1 || echo "WARNING: apt-get install failed (see /tmp/chaosmesh-apt.log); tests that need$$missing will be skipped"; \
	else \
		echo "note: missing$$missing; install them (e.g. sudo apt-get install$$missing) for every test and experiment"; \
	fi

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

run: install
	$(BIN)/chaosmesh run --journals journals experiments/*.json

lint: install
	$(BIN)/ruff check chaosmesh_ext tests benchmarks
	$(BIN)/mypy

bench: install
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
PYTHON311 ?= $(shell for p in python3.11 $$(ls -d $$HOME/.pyenv/versions/3.11*/bin/python3 2>/dev/null | sort -r); do \
            if $$p -c 'import sys, ensurepip; assert sys.version_info[:2] == (3, 11)' >/dev/null 2>&1; then echo $$p; break; fi; done)
STAMP311 := $(VENV311)/.install.stamp

.PHONY: test-py311

test-py311: $(STAMP311) system-deps
	$(VENV311)/bin/python -m pytest $(PYTEST_ARGS)

$(STAMP311): pyproject.toml
	@test -n "$(PYTHON311)" || { echo "no Python 3.11 found (pass PYTHON311=/path/to/python3.11)" >&2; exit 1; }
	@test -x $(VENV311)/bin/python || $(PYTHON311) -m venv $(VENV311)
	$(VENV311)/bin/python -m pip install -q --upgrade pip
	$(VENV311)/bin/python -m pip install -q -e '.[dev]'
	@$(VENV311)/bin/python -c 'from importlib.metadata import version as v; \
		print("python 3.11: chaostoolkit", v("chaostoolkit"), "/ chaostoolkit-lib", v("chaostoolkit-lib"))'
	@touch $(STAMP311)
