# yijian — every target installs what it needs first.
#   make run    all four services in one process on http://127.0.0.1:$${PORT:-8000}
#   make test   lint, types and the whole test suite (what CI runs)
#   make up     PostgreSQL, Kafka and one process per service; make down stops them
#   make bench  the benchmarks, each figure beside its baseline (bench-quick: < 3 minutes)
#   make soak   longer fault tests, then mixed faults under load (~7 min); the checker's table

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run up down test soak lint typecheck unit install prerequisites schemas jurisdiction clean bench bench-quick

$(UV):
	@echo "==> bootstrapping uv $(UV_VERSION) into $(TOOLS)/"
	@$(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The virtual environment is rebuilt only when the lock file changes.
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	@echo "==> installing locked dependencies into $(VENV)/"
	@# Compiled now, so no process compiles every module as it starts (where
	@# PYTHONDONTWRITEBYTECODE is set, each start did: a service took 4.4 s to import, 1.8 s now).
	@$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

install: $(VENV)/.synced

run: install
	@$(BIN)/yijian run

# The production shape: PostgreSQL, Kafka and one process per service (see deploy/local/).
up: install prerequisites
	@deploy/local/up.sh

down:
	@deploy/local/down.sh

test: lint typecheck prerequisites
	@echo "==> tests"
	@$(BIN)/pytest

# The longer fault tests (pytest -m soak), then mixed faults under load for SOAK_MINUTES
# (default 4) and the fault checker's table (tests/faults/soak.py): about 7 minutes, bounded.
# Fails if anything acknowledged was lost or anything happened twice.
soak: install prerequisites
	@echo "==> the longer fault tests"
	@YIJIAN_SOAK=1 timeout 1200 $(BIN)/pytest -m soak -s tests/integration
	@echo "==> mixed faults for $${SOAK_MINUTES:-4} minutes"
	@timeout 1800 $(BIN)/python -m tests.faults.soak --minutes $${SOAK_MINUTES:-4}

# Operating-system packages the tests use (chromium, PostgreSQL, Java, Maven, iproute2).
prerequisites:
	@deploy/local/prerequisites.sh

lint: install
	@echo "==> ruff"
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

typecheck: install
	@echo "==> mypy --strict"
	@$(BIN)/mypy

unit: install
	@$(BIN)/pytest tests/unit

# Benchmarks against baselines measured in the same run (bench/, docs/performance.md); they
# start their own PostgreSQL and Kafka on loopback and write bench/results/<suite>.json.
bench: install prerequisites
	@$(BIN)/python -m bench

bench-quick: install prerequisites
	@$(BIN)/python -m bench --quick

# Regenerate the committed event JSON Schemas after a deliberate contract change.
schemas: install
	@$(BIN)/python -m yijian.contracts.publish

# Regenerate the (made-up) village and grid data set; deterministic.
jurisdiction: install
	@$(BIN)/python -m yijian.jurisdiction.generate

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
