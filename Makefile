# One-line targets; everything runs inside the uv workspace environment (.venv).
# `make run` and `make test` are the two commands a newcomer needs (see README.md).

UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PACKAGES := -p liq_common -p liq_ingest_binance -p liq_ingest_bybit -p liq_detector -p liq_persister -p liq_alerter -p liq_exchange_sim -p liq_cli
PYTEST_ARGS ?=

.PHONY: help env run demo test test-e2e lint fmt types bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(UV):
	python3 -m pip install --user --quiet uv || python3 -m pip install --quiet --break-system-packages uv

env: $(UV)  ## create/refresh .venv from uv.lock (all packages, dev and embedded groups)
	$(UV) sync --all-packages --locked

run: env  ## run the five services (embedded Redis/PostgreSQL unless REDIS_URL/DATABASE_URL are set)
	$(UV) run --no-sync python deploy/local/stack.py

demo: env  ## the whole stack against the exchange simulator: a synthetic market, then a summary (< 2 min)
	$(UV) run --no-sync python deploy/local/demo.py

test: env  ## the whole test suite against real Redis and PostgreSQL
	$(UV) run --no-sync pytest $(PYTEST_ARGS)

test-e2e: env  ## only the end-to-end and fault tests (all services as subprocesses); also part of `make test`
	$(UV) run --no-sync pytest -m e2e $(PYTEST_ARGS)

lint: env  ## ruff + mypy --strict
	$(UV) run --no-sync ruff check libs services cli tests bench deploy
	$(UV) run --no-sync ruff format --check libs services cli tests bench deploy
	$(UV) run --no-sync mypy $(PACKAGES)

fmt: env  ## format and auto-fix
	$(UV) run --no-sync ruff format libs services cli tests bench deploy
	$(UV) run --no-sync ruff check --fix libs services cli tests bench deploy

bench: env  ## benchmarks of every stage: prints a table, writes bench-results.json
	$(UV) run --no-sync python bench/run.py

clean:  ## remove caches and local data
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache data bench-results.json
