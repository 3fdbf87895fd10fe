# One entry point for set-up, the main job, tests, lint and benchmarks.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export DAGSTER_HOME := $(CURDIR)/dagster_home
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export UV_PYTHON_DOWNLOADS := never
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
VENV := .venv
PY := $(VENV)/bin/python
TP := $(VENV)/bin/trading-pipeline

.PHONY: help setup main fetch test test-fast lint pytest ui mlflow optuna bench bench-history bench-backtest bench-features bench-tuning bench-decision bench-lookahead bench-chain bench-workers report-selector report-sentiment report-arbitrage report-oos report-portfolio clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

setup: $(VENV)/.synced ## install the locked dependencies into .venv

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-extras
	@touch $@

main: setup ## set up and run the whole chain (history → discovery → selector → bots → replay) into ./data
	$(PY) -m trading_pipeline.defs.main_job $(MAIN_ARGS)

fetch: setup ## only the main job's history stage: the default universe's history into ./data
	$(PY) -m trading_pipeline.defs.main_job --stages history $(MAIN_ARGS)

test: setup lint pytest ## lint, type-check and run every test

lint: setup ## ruff (incl. the no-dagster-in-core rule), mypy, Dockerfile and workflow linters
	$(VENV)/bin/ruff check trading_pipeline trading_pipeline_tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/dagster definitions validate -w workspace.yaml

pytest: setup
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

test-fast: setup ## the fast tier: every test not marked slow (no servers, subprocesses, Dagster runs, MLflow), no lint
	$(VENV)/bin/pytest -q -m "not slow" $(PYTEST_ARGS)

ui: setup ## the Dagster UI on 127.0.0.1:3000 (Ctrl-C stops it)
	$(TP) ui

mlflow: setup ## the MLflow UI over the embedded store on 127.0.0.1:5000 (Ctrl-C stops it)
	$(TP) mlflow-ui

optuna: setup ## optuna-dashboard over the study storage on 127.0.0.1:8080, read-only (Ctrl-C stops it)
	$(TP) studies dashboard --port 8080

bench: bench-history bench-backtest bench-features bench-tuning bench-decision bench-lookahead bench-chain bench-workers ## every benchmark

bench-history: setup ## 2.6 M 1-minute rows CSV→Parquet vs pyarrow; no-change re-run time
	$(PY) benchmarks/bench_history.py
	$(PY) benchmarks/bench_fetch_rerun.py

bench-backtest: setup ## every family's fused grid vs vectorbt (combos/s, ratio, peak memory); 2.6 M-bar backtest
	$(PY) benchmarks/bench_backtest.py

bench-features: setup ## all indicators, 5 y hourly × 3 symbols, vs TA-Lib column by column
	$(PY) benchmarks/bench_features.py

bench-tuning: setup ## walk-forward trials/s per family and core, 5 y hourly, 4 folds: batched vs one at a time
	$(PY) benchmarks/bench_tuning.py

bench-workers: setup ## tuning workers: 1 vs 2 processes on one study per storage (journal file, Redis, gRPC proxy, PostgreSQL)
	$(PY) benchmarks/bench_workers.py

bench-decision: setup ## selector decision latency, candles in memory → choice: p50/p99 over 1,000
	$(PY) benchmarks/bench_decision.py

bench-lookahead: setup ## lookahead audit time per built-in family, 5 y real BTC 1h, vs one signals() call
	$(PY) benchmarks/bench_lookahead.py

bench-chain: setup ## the whole chain (make main) on a generated 5 y × 3 × 1h mirror served locally: time per stage
	$(PY) benchmarks/bench_chain.py

report-selector: setup ## real multi-year data: discovery → selector, held-out result beside every baseline
	$(PY) benchmarks/selector_real.py

report-sentiment: setup ## real bars: the selector held out with and without news sentiment (absent; then a labelled synthetic feed)
	$(PY) benchmarks/sentiment_real.py

report-arbitrage: setup ## real Coinbase × Binance overlap: alignment, gross spread, what survives costs
	$(PY) benchmarks/arb_real.py

report-oos: setup ## real BTC 1h: each family's continuous out-of-sample account beside the flat restart and buy-and-hold
	$(PY) benchmarks/oos_continuous_real.py

report-portfolio: setup ## real BTC/ETH/BNB 1h: portfolio families walk-forward, deflated, beside buy-and-hold of each coin and the equal-weight basket
	$(PY) benchmarks/portfolio_real.py

clean: ## remove the virtualenv and caches (keeps ./data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
