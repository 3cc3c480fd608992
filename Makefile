# evaljobs: `make demo` runs the main job on the embedded default (SQLite); `make test` runs
# the tests against real PostgreSQL, Pushgateway and Prometheus (installed when missing).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: venv system-deps test demo demo-stop bench clean screenshot

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

# The 20 slowest tests close the log: the suite must stay under ~15 minutes on 2 cores.
test: venv system-deps
	$(BIN)/python -m pytest --durations=20

demo: venv
	$(BIN)/python -m dev.demo

demo-stop:
	$(BIN)/python -m dev.demo --stop

# The README's pictures of `evaljobs report` and `evaljobs gate --html` (headless Chromium): docs/*.png.
screenshot: venv system-deps
	$(BIN)/python -m dev.screenshot

# What a user runs, as ratios against the join floor measured in the same run (PostgreSQL at
# 127.0.0.1:5432 or $(BENCH_URL)); rows via BENCH_ROWS (default 1,000,000). The data is made in
# SQL in the schema bench9 and kept between runs of the same size. See bench/run.py.
BENCH_ROWS ?= 1000000
BENCH_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
bench: venv
	$(BIN)/python bench/run.py --rows $(BENCH_ROWS) --url '$(BENCH_URL)'

clean:
	rm -rf $(VENV) .demo .stack .pytest_cache .hypothesis build dist

# A local Pushgateway and Prometheus with prometheus/evaljobs.rules.yml, fed with the demo.
.PHONY: stack stack-down
stack: venv system-deps
	$(BIN)/python -m dev.stack up

stack-down:
	$(BIN)/python -m dev.stack down

# The same job on SQLite, PostgreSQL, DuckDB and Spark (a Thrift Server started for the run),
# as ratios to each engine's own join floor; rows via BENCH_ROWS, engines via BENCH_ENGINES.
BENCH_ENGINES ?= sqlite,postgresql,duckdb,spark
.PHONY: bench-engines
bench-engines: venv
	$(BIN)/python bench/engines.py --rows $(BENCH_ROWS) --engines $(BENCH_ENGINES) --postgres-url '$(BENCH_URL)'
