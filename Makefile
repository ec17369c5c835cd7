# ML observability lab. `make help` lists the targets.
# Every target creates and uses the project virtual environment (.venv) by itself.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
# make test's pytest-xdist workers, whole modules each: most stack tests wait on alerts and
# paced runs, so 3 workers overlap those waits on 2 cores (TEST_WORKERS=0: one process).
TEST_WORKERS ?= 3
# Stamp depends on the lock so a changed lock re-syncs the venv.
# `lab` as users run it from make: Ctrl-C is held back (GNU env) until lab/__main__.py has its
# handler, so an interrupt in the interpreter's first milliseconds also ends with 130, no traceback.
BLOCK_INT := $(shell env --block-signal=INT true 2>/dev/null && echo env --block-signal=INT)
LAB := $(BLOCK_INT) $(PY) -m lab
VENV_STAMP := $(VENV)/.synced

SCENARIOS := $(patsubst scenarios/%.toml,%,$(wildcard scenarios/*.toml))

.PHONY: help venv lock check-lock lint test test-lab bench bench-e2e calibrate drills list clean $(addprefix scenario-,$(SCENARIOS))

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort | awk -F'\t' '{printf "  %-22s %s\n", $$1, $$2}'
	@echo "  scenario-<name>        run a scenario paced for people; known: $(SCENARIOS)"
	@echo "  (ARGS='--seed 3 --fix' passes options to a scenario run)"

venv: $(VENV_STAMP) ## create/refresh the project virtual environment (LAB_TORCH=cpu|pypi forces which torch)

# scripts/venv_sync.py says in one line which torch it installs: the CPU-only build where
# PyTorch's CPU index answers (Linux), else PyPI's (docs/install.md has sizes and times).
$(VENV_STAMP): requirements.lock pyproject.toml scripts/venv_sync.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@echo "Installing pinned dependencies into $(VENV) (first time: torch is large, see docs/install.md)..."
	@$(PY) scripts/venv_sync.py --uv $(VENV)/bin/uv
	@# python -m venv seeds setuptools, which uv's sync keeps; its .pth slows every start and widens
	@# the window for a Python traceback on an early Ctrl-C (pyproject.toml, exclude-dependencies)
	@$(PY) -c 'import importlib.util as u, sys; sys.exit(u.find_spec("setuptools") is not None)' || \
	  $(VENV)/bin/uv pip uninstall -q --python $(PY) setuptools
	@$(VENV)/bin/uv pip install -q --python $(PY) --no-deps --config-settings editable_mode=compat -e .
	@touch $@

$(VENV)/bin/uv:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)

lock: $(VENV)/bin/uv ## re-resolve requirements.lock from pyproject.toml: every platform (markers), PyPI's torch
	$(VENV)/bin/uv pip compile -q pyproject.toml --extra dev --universal --python-version 3.11 --no-sources \
	  --custom-compile-command "make lock" -o requirements.lock

check-lock: $(VENV)/bin/uv ## requirements.lock is current and installs on Linux x86-64/arm64, macOS arm64 (PyPI metadata)
	@scripts/check-lock.sh $(VENV)/bin/uv

list: $(VENV_STAMP) ## list the scenarios
	@$(LAB) list

# A static pattern rule: plain pattern rules are never applied to .PHONY targets.
$(addprefix scenario-,$(SCENARIOS)): scenario-%: $(VENV_STAMP) ## run a scenario (e.g. make scenario-overfit ARGS=--fix)
	@$(LAB) run $* $(ARGS)

# Anything else named scenario-*: let `lab run` say which scenarios exist.
scenario-%: $(VENV_STAMP)
	@$(LAB) run $* $(ARGS)

lint: $(VENV_STAMP) ## ruff on lab/ and tests/ (pyflakes, pycodestyle errors, import order)
	@$(PY) -m ruff check lab tests

test: lint ## lint, then the whole test suite (unit, scenario seeds, end-to-end on the native stack)
	@$(PY) -m pytest tests --durations=15 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-lab: $(VENV_STAMP) ## the Python and scenario tests, no stack (`-m "not stack"`: markers are set by directory)
	@$(PY) -m pytest tests -m "not stack" $(PYTEST_ARGS)

bench: $(VENV_STAMP) ## benchmark instrumentation overhead and the drift monitor; writes results/bench.{json,md}, results/drift.{json,md}
	@$(PY) -m lab.dev.bench --out results
	@$(PY) -m lab.dev.drift_bench --out results

clean: ## remove the virtual environment and caches in the repository
	rm -rf $(VENV) .pytest_cache .lab

-include mk/*.mk

bench-e2e: $(VENV_STAMP) ## measure recorded-to-queryable delay through the running stack (make up first); writes results/bench_e2e.json
	@$(PY) -m lab.dev.bench_e2e --out results

drills: $(VENV_STAMP) ## fault drills against private native stacks (outages, floods, overload, bad requests, target down); writes results/drills.md
	@LAB_DRILLS_REPORT=results/drills.md $(PY) -m pytest -q tests/e2e/test_collector_outage.py tests/e2e/test_drills.py \
	  tests/e2e/test_series_flood.py tests/e2e/test_overload.py

calibrate: $(VENV_STAMP) ## every scenario and fix over the 50 calibration seeds, all cores: each alert's signal vs its threshold -> results/scenarios.md
	@$(PY) -m lab.dev.calibrate --out results/scenarios.md $(ARGS)
